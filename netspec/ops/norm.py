"""Normalisation: batch norm, local response norm, layer norm, group norm."""
from __future__ import annotations

import math
from typing import Annotated, Optional

from pydantic import Field

from ..limits import MAX_CHANNELS
from .base import REQUIRED, Kind, Op, Params, ShapeError, Source, _feature_map, register

# --------------------------------------------------------------------------- normalisation

class BatchNormParams(Params):
    eps: Annotated[float, Field(gt=0)] = 1e-5
    momentum: Optional[Annotated[float, Field(ge=0, le=1)]] = 0.1
    affine: bool = True
    zero_init: bool = Field(False, description=(
        "start the scale (gamma) at 0 instead of 1, so a residual branch ending here starts as the "
        "identity (Goyal et al. 2017; torchvision's zero_init_residual)"))


@register
class BatchNorm(Op):
    name = "batchnorm"
    kind = Kind.NORM
    Params = BatchNormParams
    doc = "BatchNorm2d (or BatchNorm1d on flat features)."

    def resolve(self, p, ins):
        return {**p.model_dump(), "channels": ins[0][0]}

    def weights(self, a, ins, out):
        return {"weight": (a["channels"],), "bias": (a["channels"],)} if a["affine"] else {}

    def buffers(self, a, ins, out):
        c = a["channels"]
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}

    elementwise = "norm"

    def full_macs(self, a, ins, out):
        return math.prod(out)  # eval: y = x·scale + shift, one multiply-add per element

    def weight_reads(self, a, weights, buffers):
        # eval reads weight, bias, running mean and running variance (not the step counter)
        return sum(math.prod(s) for s in weights.values()) + 2 * a["channels"]

    overwrites = (0,)  # eval: y = x·scale + shift per element (with running statistics)

    def torch_inplace(self, module, k):
        from ..backends import torch_layers as L
        return L.BatchNormInPlace(module)

    def torch(self, a, ins, out):
        import torch.nn as nn
        cls = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
        bn = cls(a["channels"], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])
        if a["zero_init"] and a["affine"]:
            nn.init.zeros_(bn.weight)
        return bn

    def source(self, a, ins, out):
        call = "nn.BatchNorm2d" if len(ins[0]) == 3 else "nn.BatchNorm1d"
        return Source(call, (("num_features", a["channels"], REQUIRED), ("eps", a["eps"], 1e-5),
                             ("momentum", a["momentum"], 0.1), ("affine", a["affine"], True)), 1)


class LRNParams(Params):
    size: Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


@register
class LocalResponseNorm(Op):
    name = "lrn"
    kind = Kind.NORM
    Params = LRNParams
    doc = "Local response normalisation, PyTorch convention: b = a / (k + alpha/n * sum a^2)^beta."

    def infer(self, a, ins):
        return _feature_map(self.name, ins[0])

    def full_macs(self, a, ins, out):
        # per element: `size` multiply-adds for the sum of squares, then scale-shift, power, divide
        return math.prod(out) * (a["size"] + 3)

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.LocalResponseNorm(a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])

    def source(self, a, ins, out):
        return Source("nn.LocalResponseNorm", (("size", a["size"], REQUIRED), ("alpha", a["alpha"], 1e-4),
                                               ("beta", a["beta"], 0.75), ("k", a["k"], 1.0)), 1)




class LayerNormParams(Params):
    eps: Annotated[float, Field(gt=0)] = 1e-5
    affine: bool = Field(True, description="learned per-channel scale and shift (nn.LayerNorm's elementwise_affine)")


@register
class LayerNorm(Op):
    name = "layernorm"
    kind = Kind.NORM
    Params = LayerNormParams
    doc = ("Layer norm over the channels at each position (torchvision's LayerNorm2d; ConvNeXt's "
           "channels-last nn.LayerNorm), or over flat features.")
    elementwise = "norm"

    def resolve(self, p, ins):
        return {**p.model_dump(), "channels": ins[0][0]}

    def weights(self, a, ins, out):
        return {"weight": (a["channels"],), "bias": (a["channels"],)} if a["affine"] else {}

    def full_macs(self, a, ins, out):
        # per element: add to the mean, subtract it, square-accumulate the variance, multiply by
        # 1/std, scale-shift; per position: mean and 1/sqrt(var + eps)
        positions = math.prod(out[1:]) if len(out) == 3 else 1
        return math.prod(out) * (5 if a["affine"] else 4) + 2 * positions

    def torch(self, a, ins, out):
        import torch.nn as nn
        from ..backends import torch_layers as L
        cls = L.LayerNorm2d if len(ins[0]) == 3 else nn.LayerNorm
        return cls(a["channels"], eps=a["eps"], elementwise_affine=a["affine"])

    def source(self, a, ins, out):
        call = "LayerNorm2d" if len(ins[0]) == 3 else "nn.LayerNorm"
        return Source(call, (("normalized_shape", a["channels"], REQUIRED), ("eps", a["eps"], 1e-5),
                             ("elementwise_affine", a["affine"], True)), 1)


class GroupNormParams(Params):
    groups: Annotated[int, Field(ge=1, le=MAX_CHANNELS)] = Field(description="channel groups (1: layer norm "
                                                                             "over C, H, W; C: instance norm)")
    eps: Annotated[float, Field(gt=0)] = 1e-5
    affine: bool = True


@register
class GroupNorm(Op):
    name = "groupnorm"
    kind = Kind.NORM
    Params = GroupNormParams
    doc = "Group norm (Wu & He 2018): statistics over each group of channels and all positions."
    elementwise = "norm"

    def resolve(self, p, ins):
        c = _feature_map(self.name, ins[0])[0]
        if c % p.groups:
            raise ShapeError(f"groupnorm: {c} channels do not split into {p.groups} groups",
                             "groups must divide the input's channels")
        return {**p.model_dump(), "channels": c}

    def weights(self, a, ins, out):
        return {"weight": (a["channels"],), "bias": (a["channels"],)} if a["affine"] else {}

    def full_macs(self, a, ins, out):
        return math.prod(out) * (5 if a["affine"] else 4) + 2 * a["groups"]

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.GroupNorm(a["groups"], a["channels"], eps=a["eps"], affine=a["affine"])

    def source(self, a, ins, out):
        return Source("nn.GroupNorm", (("num_groups", a["groups"], REQUIRED), ("num_channels", a["channels"], REQUIRED),
                                       ("eps", a["eps"], 1e-5), ("affine", a["affine"], True)), 2)
