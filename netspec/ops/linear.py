"""Fully connected layers, over flat features or over the channels of each position, and layer scale."""
from __future__ import annotations

import math

from pydantic import Field

from .base import (
    GLOBAL,
    REQUIRED,
    Channels,
    Kind,
    Op,
    Params,
    ShapeError,
    Source,
    register,
)

# --------------------------------------------------------------------------- linear

class LinearParams(Params):
    out: Channels
    bias: bool = True


@register
class Linear(Op):
    name = "linear"
    kind = Kind.LINEAR
    Params = LinearParams
    doc = "Fully connected layer on flat features."

    def resolve(self, p, ins):
        if len(ins[0]) != 1:
            raise ShapeError(f"linear needs flat features (F,) but got {ins[0]}",
                             "add a `flatten` (or `global_avgpool` with keepdim: false) before it")
        return {**p.model_dump(), "in_features": ins[0][0]}

    def infer(self, a, ins):
        return (a["out"],)

    def weights(self, a, ins, out):
        w = {"weight": (a["out"], a["in_features"])}
        if a["bias"]:
            w["bias"] = (a["out"],)
        return w

    def macs(self, a, ins, out):
        return a["in_features"] * a["out"]

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (a["out"] if a["bias"] else 0)

    def window(self, a, ins, out):
        return GLOBAL  # every output mixes every input feature

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Linear(a["in_features"], a["out"], bias=a["bias"])

    def source(self, a, ins, out):
        return Source("nn.Linear", (("in_features", a["in_features"], REQUIRED), ("out_features", a["out"], REQUIRED),
                                    ("bias", a["bias"], True)), 2)




class ChannelLinearParams(Params):
    out: Channels
    bias: bool = True


@register
class ChannelLinear(Op):
    name = "channel_linear"
    kind = Kind.LINEAR
    Params = ChannelLinearParams
    doc = ("nn.Linear over the channels at each position of a feature map: a 1×1 conv whose weight is "
           "(out, in), as ConvNeXt's channels-last pwconv layers store it.")

    def resolve(self, p, ins):
        if len(ins[0]) != 3:
            raise ShapeError(f"channel_linear needs a feature map (C, H, W) but got {ins[0]}",
                             "on flat features use `linear`")
        return {**p.model_dump(), "in_features": ins[0][0]}

    def infer(self, a, ins):
        return (a["out"], *ins[0][1:])

    def weights(self, a, ins, out):
        w = {"weight": (a["out"], a["in_features"])}
        if a["bias"]:
            w["bias"] = (a["out"],)
        return w

    def macs(self, a, ins, out):
        return a["in_features"] * math.prod(out)

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (math.prod(out) if a["bias"] else 0)

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.ChannelLinear(a["in_features"], a["out"], bias=a["bias"])

    def source(self, a, ins, out):
        return Source("ChannelLinear", (("in_features", a["in_features"], REQUIRED), ("out_features", a["out"], REQUIRED),
                                        ("bias", a["bias"], True)), 2)


class LayerScaleParams(Params):
    init: float = Field(1e-6, description="initial value of every channel's scale (ConvNeXt: 1e-6)")


@register
class LayerScale(Op):
    name = "layer_scale"
    kind = Kind.ELEMENTWISE
    Params = LayerScaleParams
    doc = ("A learned per-channel scale, x · gamma, gamma (C, 1, 1) starting at `init` (CaiT, ConvNeXt). "
           "Registered first in its block, as torchvision's CNBlock registers its `layer_scale`.")
    elementwise = "mul"
    #: the reference registers this tensor on its block, before the block's submodules
    registers_first = True

    def resolve(self, p, ins):
        return {**p.model_dump(), "channels": ins[0][0]}

    def weights(self, a, ins, out):
        return {"weight": (a["channels"], *([1] * (len(ins[0]) - 1)))}

    def full_macs(self, a, ins, out):
        return math.prod(out)

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.LayerScale(a["channels"], a["init"], len(ins[0]))

    def source(self, a, ins, out):
        return Source("LayerScale", (("channels", a["channels"], REQUIRED), ("init", a["init"], 1e-6),
                                     ("dims", len(ins[0]), 3)), 1)
