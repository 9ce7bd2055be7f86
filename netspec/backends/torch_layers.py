"""Small torch modules for the ops torch.nn has no module for.

Imported lazily by the op factories in `netspec.ops`, so the front end never
loads torch. Parameterless modules keep the generated forward a plain chain of
`call_module` nodes, which keeps the module tree (and `print(model)`) a
faithful picture of the spec.

This file is also the source `netspec eject` copies these layers from (read as text with `ast`,
never imported there), so every definition here is TorchScript-scriptable: multi-input layers of
any arity (`Concat`, `Add`) take one `List[Tensor]`, and the compiled module calls them with a list.
"""
from __future__ import annotations

from typing import List, Optional

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
        self.pad: List[int] = [l, r, t, b]  # F.pad order: last dim first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, self.pad), self.weight, self.bias)


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
        return x.mean([2, 3], keepdim=self.keepdim)

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


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d: layer norm over the channels at each position of (N, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ChannelLinear(nn.Linear):
    """nn.Linear over the channels at each position: ConvNeXt's pwconv layers (channels-last Linear),
    with the same (out, in) weight, computed on the channels-last view as torchvision does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """x * gamma with a learned per-channel gamma of shape (C, 1, 1) (or (C,) on flat features)."""

    def __init__(self, channels: int, init: float = 1e-6, dims: int = 3):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels, *([1] * (dims - 1))), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}"


class Concat(nn.Module):
    def forward(self, xs: List[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, 1)


class Add(nn.Module):
    """Sum left to right. `inplace` (0 or 1, set by the build from `netspec.optimize.inplace_nodes`):
    the sum is written into that input, which nothing else reads. Either way the result is
    bit-identical to `xs[0] + xs[1] + ...` (IEEE addition is commutative)."""

    def __init__(self, inplace: Optional[int] = None):
        super().__init__()
        self.inplace = inplace

    def forward(self, xs: List[torch.Tensor]) -> torch.Tensor:
        inplace = self.inplace  # a local: TorchScript refines Optional locals, not attributes
        if inplace is None:
            out = xs[0] + xs[1]
        else:
            out = xs[inplace].add_(xs[1 - inplace])
        for x in xs[2:]:
            out.add_(x)  # out is ours alone now
        return out

    def extra_repr(self) -> str:
        return "" if self.inplace is None else f"inplace={self.inplace}"


class Mul(nn.Module):
    """x * y with broadcasting. `inplace` (0 or 1): the product is written into that input (of the
    product's shape); only in the no-grad eval forward (`netspec.optimize.inference_inplace_nodes`)."""

    def __init__(self, inplace: Optional[int] = None):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        inplace = self.inplace
        if inplace is None:
            return x * y
        return x.mul_(y) if inplace == 0 else y.mul_(x)

    def extra_repr(self) -> str:
        return "" if self.inplace is None else f"inplace={self.inplace}"


_BATCH_NORM_OUT = torch.ops.aten.native_batch_norm.out


class BatchNormInPlace(nn.Module):
    """Eval-mode batch norm written into its input: the eval forward with gradients off runs it where
    `netspec.optimize.inference_inplace_nodes` finds the input dead afterwards. Same kernel as
    `nn.BatchNorm*d` in eval (aten's native_batch_norm, through its `out=` form), so bit-identical.
    Shares the wrapped module (parameters, running statistics): `.to()`, `.double()` and
    `load_state_dict` on the model reach it. A module in training mode (set on its own), or one
    without running statistics, normalises with batch statistics, and is called as it is."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        params, buffers = bn._parameters, bn._buffers  # plain dict reads: this runs ~50 times a forward
        mean, var = buffers["running_mean"], buffers["running_var"]
        if bn.training or mean is None or var is None:  # batch statistics: as the module does it
            return bn(x)
        unused = x.new_empty(0)  # save_mean / save_invstd: left empty in eval
        _BATCH_NORM_OUT(x, params["weight"], params["bias"], mean, var, False, 0.0, bn.eps,
                        out=x, save_mean=unused, save_invstd=unused)
        return x


class Chunk(nn.Module):
    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks = chunks
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, 1)[self.index]

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, index={self.index}"


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision ShuffleNetV2's channel_shuffle: view (groups, C / groups), transpose, flatten."""
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w)
    return x.transpose(1, 2).contiguous().view(b, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


# --------------------------------------------------------------------------- LeNet-5 (LeCun et al. 1998)

class ScaledTanh(nn.Module):
    """A * tanh(S * x), LeCun's squashing function."""

    def __init__(self, amplitude: float, slope: float):
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope}"


class Subsample(nn.Module):
    """Per map: (sum of each k x k window) * weight + bias, as a depthwise conv whose kernel is the
    map's weight repeated (so the cost counters see the k*k multiply-adds per output)."""

    def __init__(self, channels: int, kernel, stride, bias: bool = True):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels)) if bias else None
        # LeCun's uniform init in +-2.4 / fan-in (fan-in = the window's k*k inputs)
        bound = 2.4 / (self.kernel[0] * self.kernel[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.weight.shape[0]  # from the parameter, not the input: a constant when traced (ONNX)
        kernel = self.weight.view(c, 1, 1, 1).expand(c, 1, self.kernel[0], self.kernel[1]).contiguous()
        return F.conv2d(x, kernel, self.bias, self.stride, groups=c)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, kernel={self.kernel}, stride={self.stride}, bias={self.bias is not None}"


class TableConv2d(nn.Module):
    """Convolution through a connection table: output map i reads input maps table[i] only.

    Output maps with the same number of inputs run as one grouped conv over their gathered input
    maps, so every multiply-add done is one the table asks for (and the cost counters agree).
    `weight` holds one kernel per connection, output maps ordered by fan-in (table order within
    a fan-in; for LeNet-5's Table I, 3-input maps 0-5, 4-input maps 6-14, map 15: the table order).
    """

    def __init__(self, in_channels: int, table, kernel, stride=(1, 1), padding=(0, 0), bias: bool = True):
        super().__init__()
        table = [list(m) for m in table]
        self.kernel, self.stride, self.padding = tuple(kernel), tuple(stride), tuple(padding)
        # (fan-in, number of output maps) per group, in computed order
        self.groups = [(k, sum(len(m) == k for m in table)) for k in sorted({len(m) for m in table})]
        order = [i for k, _ in self.groups for i, m in enumerate(table) if len(m) == k]
        self.register_buffer("in_index", torch.tensor([c for i in order for c in table[i]], dtype=torch.long))
        self.register_buffer("out_index", torch.tensor([order.index(i) for i in range(len(table))],
                                                       dtype=torch.long))
        self.weight = nn.Parameter(torch.empty(sum(len(m) for m in table), *self.kernel))
        self.bias = nn.Parameter(torch.empty(len(table))) if bias else None
        pos = 0
        for i in order:  # PyTorch's default conv bound, 1 / sqrt(fan-in), per output map
            k = len(table[i])
            bound = 1 / (k * self.kernel[0] * self.kernel[1]) ** 0.5
            nn.init.uniform_(self.weight[pos:pos + k], -bound, bound)
            if self.bias is not None:
                nn.init.uniform_(self.bias[i:i + 1], -bound, bound)
            pos += k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gathered = x.index_select(1, self.in_index)
        outs: List[torch.Tensor] = []
        pos = 0
        for k, n in self.groups:
            w = self.weight[pos:pos + n * k].view(n, k, self.kernel[0], self.kernel[1])
            outs.append(F.conv2d(gathered[:, pos:pos + n * k], w, None, self.stride, self.padding, groups=n))
            pos += n * k
        y = torch.cat(outs, 1).index_select(1, self.out_index)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return (f"{self.out_index.shape[0]} maps, {self.weight.shape[0]} connections, kernel={self.kernel}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class RBF(nn.Module):
    """Euclidean RBF units y_i = sum_j (x_j - c_ij)^2 over fixed +-1 centres (a buffer)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        codes = torch.randint(0, 2, (out_features, in_features)).float() * 2 - 1
        self.register_buffer("centers", codes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.centers
        return x.square().sum(1, keepdim=True) - 2 * (x @ c.t()) + c.square().sum(1)

    def extra_repr(self) -> str:
        return f"in_features={self.centers.shape[1]}, out_features={self.centers.shape[0]}"
