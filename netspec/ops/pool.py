"""Pooling: max/avg windows, adaptive and global pooling."""
from __future__ import annotations

import math
from fractions import Fraction
from typing import ClassVar, Optional

from pydantic import Field

from .base import (
    GLOBAL,
    REQUIRED,
    Kind,
    Op,
    Pair,
    Params,
    PosPair,
    ShapeError,
    Source,
    Window,
    _feature_map,
    _one,
    _window_out,
    register,
    sliding_windows,
)

# --------------------------------------------------------------------------- pooling

class MaxPoolParams(Params):
    kernel: PosPair
    stride: Optional[PosPair] = Field(None, description="defaults to kernel")
    padding: Pair = (0, 0)
    dilation: PosPair = (1, 1)
    ceil_mode: bool = False


class AvgPoolParams(Params):
    kernel: PosPair
    stride: Optional[PosPair] = Field(None, description="defaults to kernel")
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True


class _Pool(Op):
    kind = Kind.POOL

    def resolve(self, p, ins):
        _feature_map(self.name, ins[0])
        a = p.model_dump()
        if a["stride"] is None:
            a["stride"] = a["kernel"]
        a.setdefault("dilation", (1, 1))
        ph, pw = a["padding"]
        a["pad"] = (ph, ph, pw, pw)
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["padding"], a["dilation"]
        if ph > kh // 2 or pw > kw // 2:
            raise ShapeError(f"padding {a['padding']} is more than half the kernel {a['kernel']}",
                             "PyTorch pooling requires padding <= kernel // 2")
        ho = _window_out(h, kh, sh, 2 * ph, dh, a["ceil_mode"], ph)
        wo = _window_out(w, kw, sw, 2 * pw, dw, a["ceil_mode"], pw)
        if ho < 1 or wo < 1:
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw})",
                             "the input is too small here: raise the input size, or reduce stride/kernel")
        return (c, ho, wo)

    def full_macs(self, a, ins, out):
        return math.prod(out) * math.prod(a["kernel"])  # each window element compared / accumulated once

    def window(self, a, ins, out):
        return sliding_windows(a)


@register
class MaxPool(_Pool):
    name = "maxpool"
    Params = MaxPoolParams
    doc = "Max pooling (ceil_mode, padding, dilation)."

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.MaxPool2d(a["kernel"], a["stride"], a["padding"], a["dilation"], ceil_mode=a["ceil_mode"])

    def source(self, a, ins, out):
        return Source("nn.MaxPool2d", (("kernel_size", _one(a["kernel"]), REQUIRED), ("stride", _one(a["stride"]), None),
                                       ("padding", _one(a["padding"]), 0), ("dilation", _one(a["dilation"]), 1),
                                       ("ceil_mode", a["ceil_mode"], False)), 2)


@register
class AvgPool(_Pool):
    name = "avgpool"
    Params = AvgPoolParams
    doc = "Average pooling (ceil_mode, count_include_pad)."

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.AvgPool2d(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"],
                            count_include_pad=a["count_include_pad"])

    def source(self, a, ins, out):
        return Source("nn.AvgPool2d", (("kernel_size", _one(a["kernel"]), REQUIRED), ("stride", _one(a["stride"]), None),
                                       ("padding", _one(a["padding"]), 0), ("ceil_mode", a["ceil_mode"], False),
                                       ("count_include_pad", a["count_include_pad"], True)), 2)


class AdaptivePoolParams(Params):
    output: PosPair = (1, 1)


def _adaptive_window(n: int, m: int) -> Window:
    """PyTorch's adaptive windows [floor(i·n/m), ceil((i+1)·n/m)) along one axis. Uniform when m
    divides n; otherwise the widest window and the mean stride n/m (an approximation)."""
    if n % m == 0:
        return Window(n // m, n // m, 0)
    widest = max(-(-(i + 1) * n // m) - (i * n // m) for i in range(m))
    return Window(widest, Fraction(n, m), 0)


class _AdaptivePool(Op):
    kind = Kind.POOL
    Params = AdaptivePoolParams
    torch_name: ClassVar[str]

    def infer(self, a, ins):
        c, _, _ = _feature_map(self.name, ins[0])
        return (c, *a["output"])

    def full_macs(self, a, ins, out):
        return math.prod(ins[0])  # each input element accumulated once

    def window(self, a, ins, out):
        if tuple(a["output"]) == (1, 1):
            return GLOBAL
        return tuple(_adaptive_window(n, m) for n, m in zip(ins[0][1:], a["output"]))

    def torch(self, a, ins, out):
        import torch.nn as nn
        return getattr(nn, self.torch_name)(a["output"])

    def source(self, a, ins, out):
        return Source(f"nn.{self.torch_name}", (("output_size", _one(a["output"]), REQUIRED),), 1)


@register
class AdaptiveAvgPool(_AdaptivePool):
    name = "adaptive_avgpool"
    torch_name = "AdaptiveAvgPool2d"
    doc = "Adaptive average pooling to a fixed output size."


@register
class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive_maxpool"
    torch_name = "AdaptiveMaxPool2d"
    doc = "Adaptive max pooling to a fixed output size."


class GlobalPoolParams(Params):
    keepdim: bool = Field(True, description="keep (C, 1, 1); false gives flat (C,) like x.mean([2, 3])")


@register
class GlobalAvgPool(Op):
    name = "global_avgpool"
    kind = Kind.POOL
    Params = GlobalPoolParams
    doc = "Mean over H and W."

    def infer(self, a, ins):
        c, _, _ = _feature_map(self.name, ins[0])
        return (c, 1, 1) if a["keepdim"] else (c,)

    def full_macs(self, a, ins, out):
        return math.prod(ins[0])

    def window(self, a, ins, out):
        return GLOBAL

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.GlobalAvgPool(a["keepdim"])

    def source(self, a, ins, out):
        return Source("GlobalAvgPool", (("keepdim", a["keepdim"], True),))

    def inline(self, a, xs):
        return f"{xs[0]}.mean([2, 3], keepdim={a['keepdim']})"


