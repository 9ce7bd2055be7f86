"""Regularisers: dropout and drop path (stochastic depth), identities at inference."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import REQUIRED, Kind, Op, Params, Source, register

# --------------------------------------------------------------------------- regularisers

class DropoutParams(Params):
    p: Annotated[float, Field(ge=0, lt=1)] = 0.5


@register
class Dropout(Op):
    name = "dropout"
    kind = Kind.REGULARIZER
    Params = DropoutParams
    doc = "Dropout (identity in eval mode)."
    view = True

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Dropout(a["p"])

    def source(self, a, ins, out):
        return Source("nn.Dropout", (("p", a["p"], 0.5),), 1)


class DropPathParams(Params):
    p: Annotated[float, Field(ge=0, lt=1)] = 0.0
    mode: Literal["row", "batch"] = "row"


@register
class DropPath(Op):
    name = "drop_path"
    kind = Kind.REGULARIZER
    Params = DropPathParams
    doc = "Stochastic depth on a residual branch (torchvision StochasticDepth semantics)."
    view = True

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.StochasticDepth(a["p"], a["mode"])

    def source(self, a, ins, out):
        return Source("StochasticDepth", (("p", a["p"], REQUIRED), ("mode", a["mode"], "row")), 1)


