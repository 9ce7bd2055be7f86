"""Small torch modules for the ops torch.nn has no module for.

Imported lazily by the op factories in `netspec.ops`, so the front end never
loads torch. Parameterless modules keep the generated forward a plain chain of
`call_module` nodes, which keeps the module tree (and `print(model)`) a
faithful picture of the spec.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv2dSame(nn.Conv2d):
    """Conv2d with asymmetric (top, bottom, left, right) padding, e.g. TF 'SAME'.

    Subclasses nn.Conv2d so state_dict keys stay `weight`/`bias`.
    """

    def __init__(self, *args, pad: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        t, b, l, r = pad
        self.pad = (l, r, t, b)  # F.pad order: last dim first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


def conv2d(a: dict) -> nn.Conv2d:
    t, b, l, r = a["pad"]
    common = dict(stride=a["stride"], dilation=a["dilation"], groups=a["groups"], bias=a["bias"])
    if t == b and l == r:
        return nn.Conv2d(a["in_channels"], a["out"], a["kernel"], padding=(t, l), **common)
    return Conv2dSame(a["in_channels"], a["out"], a["kernel"], pad=a["pad"], **common)


class GlobalAvgPool(nn.Module):
    def __init__(self, keepdim: bool = True):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"keepdim={self.keepdim}"


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: drop whole residual branches while training."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class Concat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, 1)


class Add(nn.Module):
    """Sum left to right. `inplace` (0 or 1, set by the build from `netspec.optimize.inplace_nodes`):
    the sum is written into that input, which nothing else reads. Either way the result is
    bit-identical to `xs[0] + xs[1] + ...` (IEEE addition is commutative)."""

    def __init__(self, inplace: Optional[int] = None):
        super().__init__()
        self.inplace = inplace

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.inplace is None:
            out = xs[0] + xs[1]
        else:
            out = xs[self.inplace].add_(xs[1 - self.inplace])
        for x in xs[2:]:
            out.add_(x)  # out is ours alone now
        return out

    def extra_repr(self) -> str:
        return "" if self.inplace is None else f"inplace={self.inplace}"


class Mul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


class Chunk(nn.Module):
    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks = chunks
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, 1)[self.index]

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, index={self.index}"


class ChannelShuffle(nn.Module):
    """torchvision ShuffleNetV2's channel_shuffle: view (g, C/g), transpose, flatten."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.view(b, self.groups, c // self.groups, h, w)
        return x.transpose(1, 2).contiguous().view(b, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
