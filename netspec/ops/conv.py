"""Convolution: conv2d (dense, grouped, depthwise, dilated; PyTorch and TF 'same' padding)."""
from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import Field

from .base import (
    Channels,
    Kind,
    Op,
    Pair,
    Params,
    PosPair,
    ShapeError,
    _conv_source,
    _feature_map,
    _window_out,
    register,
    sliding_windows,
)

# --------------------------------------------------------------------------- convolution

PaddingRule = Literal["same", "valid", "tf_same"]


class Conv2dParams(Params):
    out: Annotated[Channels, Field(description="output channels")]
    kernel: Annotated[PosPair, Field(description="kernel size, int or [kh, kw]")]
    stride: Annotated[PosPair, Field(description="stride, int or [sh, sw]")] = (1, 1)
    padding: Annotated[Union[Pair, PaddingRule], Field(
        description="int, [ph, pw], 'same' (symmetric (k-1)//2*dilation, as torchvision), "
                    "'tf_same' (TensorFlow SAME: asymmetric, depends on input size) or 'valid' (0)")] = (0, 0)
    dilation: PosPair = (1, 1)
    groups: Annotated[Union[Channels, Literal["depthwise"]], Field(
        description="groups, or 'depthwise' for groups = input channels")] = 1
    bias: bool = True


def conv_padding(kernel, stride, dilation, padding, size) -> tuple[int, int, int, int]:
    """Resolved (top, bottom, left, right) padding."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        ph, pw = ((kernel[0] - 1) // 2 * dilation[0], (kernel[1] - 1) // 2 * dilation[1])
        return (ph, ph, pw, pw)
    if padding == "tf_same":
        pads = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)  # type: ignore[return-value]
    ph, pw = padding
    return (ph, ph, pw, pw)


@register
class Conv2d(Op):
    name = "conv2d"
    kind = Kind.CONV
    Params = Conv2dParams
    doc = "2-D convolution (groups, dilation, per-axis kernel/stride/padding)."

    def resolve(self, p, ins):
        c, h, w = _feature_map(self.name, ins[0])
        a = p.model_dump()
        a["in_channels"] = c
        if a["groups"] == "depthwise":
            a["groups"] = c
        a["pad"] = conv_padding(p.kernel, p.stride, p.dilation, p.padding, (h, w))
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        g = a["groups"]
        if g < 1 or c % g or a["out"] % g:
            raise ShapeError(f"channels not divisible by groups: in {c}, out {a['out']}, groups {g}",
                             "both input and output channels must be multiples of groups")
        t, b, l, r = a["pad"]
        (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a["dilation"]
        ho = _window_out(h, kh, sh, t + b, dh)
        wo = _window_out(w, kw, sw, l + r, dw)
        if ho < 1 or wo < 1:
            dilated = f", dilation {dh}x{dw}" if (dh, dw) != (1, 1) else ""
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw}{dilated})",
                             "the input is too small here: raise the input size, or reduce stride/kernel/dilation")
        return (a["out"], ho, wo)

    def weights(self, a, ins, out):
        kh, kw = a["kernel"]
        w = {"weight": (a["out"], a["in_channels"] // a["groups"], kh, kw)}
        if a["bias"]:
            w["bias"] = (a["out"],)
        return w

    def macs(self, a, ins, out):
        cout, ho, wo = out
        kh, kw = a["kernel"]
        return cout * ho * wo * (a["in_channels"] // a["groups"]) * kh * kw

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (math.prod(out) if a["bias"] else 0)  # bias: one add per output

    def window(self, a, ins, out):
        return sliding_windows(a)

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)  # every multiply, plus the bias of each output

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.conv2d(a)

    def source(self, a, ins, out):
        return _conv_source(a)


