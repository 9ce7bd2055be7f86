"""Fully connected layers."""
from __future__ import annotations

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


