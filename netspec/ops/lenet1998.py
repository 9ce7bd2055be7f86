"""LeCun et al. 1998's own ops: C3's sparse connection table, trainable subsampling,
the scaled tanh squashing function and the RBF output layer."""
from __future__ import annotations

import math
from typing import Annotated, Optional

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
    _feature_map,
    _window_out,
    register,
    sliding_windows,
)


class TableConv2dParams(Params):
    table: Annotated[list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]], Field(
        min_length=1, description="for each output map, the input maps it reads (LeNet-5's Table I); "
                                  "the number of output maps is its length")]
    kernel: PosPair
    stride: PosPair = (1, 1)
    padding: Pair = (0, 0)
    bias: bool = True


@register
class TableConv2d(Op):
    name = "table_conv2d"
    kind = Kind.CONV
    Params = TableConv2dParams
    doc = ("2-D convolution through a connection table: output map i sums the convolutions of the input "
           "maps `table[i]` only, one kernel per connection (LeNet-5's C3).")

    def resolve(self, p, ins):
        c, h, w = _feature_map(self.name, ins[0])
        a = p.model_dump()
        a["in_channels"] = c
        a["out"] = len(p.table)
        a["dilation"] = (1, 1)
        ph, pw = p.padding
        a["pad"] = (ph, ph, pw, pw)
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        for i, maps in enumerate(a["table"]):
            bad = [m for m in maps if m >= c]
            if bad:
                raise ShapeError(f"table[{i}] reads input map {bad[0]} but the input has {c} maps (0..{c - 1})",
                                 "every entry of the table names an input map, counted from 0")
            if len(set(maps)) != len(maps):
                raise ShapeError(f"table[{i}] lists an input map twice: {maps}", "list each input map once")
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        t, b, l, r = a["pad"]
        ho, wo = _window_out(h, kh, sh, t + b), _window_out(w, kw, sw, l + r)
        if ho < 1 or wo < 1:
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw})",
                             "the input is too small here: raise the input size, or reduce stride/kernel")
        return (a["out"], ho, wo)

    def weights(self, a, ins, out):
        w = {"weight": (sum(len(m) for m in a["table"]), *a["kernel"])}  # one kernel per connection
        if a["bias"]:
            w["bias"] = (a["out"],)
        return w

    def buffers(self, a, ins, out):
        # the gather of each connection's input map and the order the outputs are put back in
        return {"in_index": (sum(len(m) for m in a["table"]),), "out_index": (a["out"],)}

    def macs(self, a, ins, out):
        _, ho, wo = out
        return sum(len(m) for m in a["table"]) * math.prod(a["kernel"]) * ho * wo

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (math.prod(out) if a["bias"] else 0)

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)

    def weight_reads(self, a, weights, buffers):
        return sum(math.prod(s) for s in weights.values())

    def window(self, a, ins, out):
        return sliding_windows(a)

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.TableConv2d(a["in_channels"], a["table"], a["kernel"], a["stride"], a["padding"], a["bias"])

    def source(self, a, ins, out):
        return Source("TableConv2d", (("in_channels", a["in_channels"], REQUIRED), ("table", a["table"], REQUIRED),
                                      ("kernel", tuple(a["kernel"]), REQUIRED), ("stride", tuple(a["stride"]), (1, 1)),
                                      ("padding", tuple(a["padding"]), (0, 0)), ("bias", a["bias"], True)), 2)


class ScaledTanhParams(Params):
    amplitude: float = Field(1.7159, description="A in A * tanh(S * x)")
    slope: float = Field(2 / 3, description="S in A * tanh(S * x)")


@register
class ScaledTanh(Op):
    name = "scaled_tanh"
    kind = Kind.ACT
    Params = ScaledTanhParams
    elementwise = "activation"
    doc = ("LeCun's squashing function A * tanh(S * x); the defaults A = 1.7159, S = 2/3 give f(1) = 1, "
           "f(-1) = -1 (LeCun et al. 1998, Appendix A).")

    def full_macs(self, a, ins, out):
        return math.prod(out)

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.ScaledTanh(a["amplitude"], a["slope"])

    def source(self, a, ins, out):
        return Source("ScaledTanh", (("amplitude", a["amplitude"], REQUIRED), ("slope", a["slope"], REQUIRED)), 2)


class SubsampleParams(Params):
    kernel: PosPair = (2, 2)
    stride: Optional[PosPair] = Field(None, description="defaults to kernel")
    bias: bool = True


@register
class Subsample(Op):
    name = "subsample"
    kind = Kind.POOL
    Params = SubsampleParams
    doc = ("LeNet-5's trainable subsampling (S2, S4): per map, the sum of each window times a trainable "
           "coefficient plus a trainable bias (the squashing function is a separate op). Computed as a "
           "depthwise conv whose kernel is the map's coefficient repeated.")

    def resolve(self, p, ins):
        c, _, _ = _feature_map(self.name, ins[0])
        a = p.model_dump()
        if a["stride"] is None:
            a["stride"] = a["kernel"]
        a["channels"] = c
        a["dilation"] = (1, 1)
        a["pad"] = (0, 0, 0, 0)
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        ho, wo = _window_out(h, kh, sh, 0), _window_out(w, kw, sw, 0)
        if ho < 1 or wo < 1:
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw})",
                             "the input is too small here: raise the input size, or reduce the kernel")
        return (c, ho, wo)

    def weights(self, a, ins, out):
        w = {"weight": (a["channels"],)}
        if a["bias"]:
            w["bias"] = (a["channels"],)
        return w

    def macs(self, a, ins, out):
        return math.prod(out) * math.prod(a["kernel"])  # as the depthwise conv it runs as

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (math.prod(out) if a["bias"] else 0)

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)  # LeCun: S2 has 6 x 14 x 14 x (4 + 1) = 5,880

    def window(self, a, ins, out):
        return sliding_windows(a)

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.Subsample(a["channels"], a["kernel"], a["stride"], a["bias"])

    def source(self, a, ins, out):
        return Source("Subsample", (("channels", a["channels"], REQUIRED), ("kernel", tuple(a["kernel"]), REQUIRED),
                                    ("stride", tuple(a["stride"]), REQUIRED), ("bias", a["bias"], True)), 3)


class RBFParams(Params):
    out: Annotated[int, Field(ge=1, description="output units (classes)")]


@register
class RBF(Op):
    name = "rbf"
    kind = Kind.LINEAR
    Params = RBFParams
    doc = ("Euclidean radial basis function units (LeNet-5's output layer): y_i = sum_j (x_j - c_ij)^2 "
           "over fixed +-1 centres c (a buffer, not trained). The paper drew them as 7x12 bitmaps of "
           "the characters and notes random +-1 codes would do; here they are random +-1 from the "
           "build seed. Smaller is more likely: the outputs are penalties, not logits.")

    def resolve(self, p, ins):
        if len(ins[0]) != 1:
            raise ShapeError(f"rbf needs flat features (F,) but got {ins[0]}",
                             "add a `flatten` (or a `linear` layer) before it")
        return {**p.model_dump(), "in_features": ins[0][0]}

    def infer(self, a, ins):
        return (a["out"],)

    def buffers(self, a, ins, out):
        return {"centers": (a["out"], a["in_features"])}

    def macs(self, a, ins, out):
        # computed as |x|^2 - 2 x.c + |c|^2: the x.c product is the multiply-accumulates
        return a["in_features"] * a["out"]

    def full_macs(self, a, ins, out):
        return 2 * a["in_features"] * a["out"]  # per term: a subtraction and a multiply-add

    def weight_reads(self, a, weights, buffers):
        return math.prod(buffers["centers"])

    def connections(self, a, ins, out):
        return a["in_features"] * a["out"]  # one per centre component (no bias)

    def window(self, a, ins, out):
        return GLOBAL

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.RBF(a["in_features"], a["out"])

    def source(self, a, ins, out):
        return Source("RBF", (("in_features", a["in_features"], REQUIRED), ("out_features", a["out"], REQUIRED)), 2)


