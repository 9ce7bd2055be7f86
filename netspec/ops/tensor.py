"""Data movement and element-wise combination: flatten, identity, concat, add, mul, chunk, channel shuffle."""
from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from ..limits import MAX_CHANNELS
from .base import (
    REQUIRED,
    Channels,
    Kind,
    Op,
    Params,
    ShapeError,
    Source,
    _feature_map,
    register,
)

# --------------------------------------------------------------------------- data movement

@register
class Flatten(Op):
    name = "flatten"
    kind = Kind.DATA
    doc = "(C, H, W) -> (C*H*W,)."
    view = True

    def infer(self, a, ins):
        return (math.prod(ins[0]),)

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Flatten(1)

    def source(self, a, ins, out):
        return Source("nn.Flatten", (("start_dim", 1, REQUIRED),), 1)

    def inline(self, a, xs):
        return f"torch.flatten({xs[0]}, 1)"


@register
class Identity(Op):
    name = "identity"
    kind = Kind.DATA
    doc = "Passes its input through (a named tap point)."
    view = True

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Identity()

    def source(self, a, ins, out):
        return Source("nn.Identity")

    def inline(self, a, xs):
        return xs[0]


@register
class Concat(Op):
    name = "concat"
    kind = Kind.DATA
    arity = None
    min_inputs = 1  # one input is the identity (torch.cat of one tensor; DenseNet's first layer reads [x])
    doc = "Concatenate along channels; spatial sizes must agree."
    elementwise = "concat"

    def infer(self, a, ins):
        first = ins[0]
        for s in ins[1:]:
            if len(s) != len(first) or s[1:] != first[1:]:
                raise ShapeError(f"concat of unequal spatial sizes: {', '.join(map(str, ins))}",
                                 "every input must have the same H and W; check strides, padding and ceil_mode "
                                 "in the branches")
        return (sum(s[0] for s in ins), *first[1:])

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.Concat()

    def source(self, a, ins, out):
        return Source("Concat")

    def inline(self, a, xs):
        return f"torch.cat([{', '.join(xs)}], 1)"


@register
class Add(Op):
    name = "add"
    kind = Kind.ELEMENTWISE
    arity = None
    doc = "Element-wise sum of equally shaped tensors (residual connections)."
    elementwise = "add"

    def full_macs(self, a, ins, out):
        return (len(ins) - 1) * math.prod(out)

    def infer(self, a, ins):
        if any(s != ins[0] for s in ins[1:]):
            raise ShapeError(f"add of unequal shapes: {', '.join(map(str, ins))}",
                             "residual adds need equal channels and spatial size; use a projection "
                             "or a `when:` condition")
        return ins[0]

    overwrites = (0, 1)  # the first two only: the sum stays bit-identical (IEEE addition commutes)

    def torch_inplace(self, module, k):
        from ..backends import torch_layers as L
        return L.Add(inplace=k)

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.Add()

    def source(self, a, ins, out):
        return Source("Add")

    def inline(self, a, xs):
        return " + ".join(xs)


@register
class Mul(Op):
    name = "mul"
    kind = Kind.ELEMENTWISE
    arity = 2
    doc = "Element-wise product with broadcasting (squeeze-and-excitation gating)."
    elementwise = "mul"

    def full_macs(self, a, ins, out):
        return math.prod(out)

    def infer(self, a, ins):
        x, y = ins
        if len(x) != len(y):
            raise ShapeError(f"mul of shapes with different rank: {x}, {y}")
        out = []
        for p, q in zip(x, y):
            if p != q and 1 not in (p, q):
                raise ShapeError(f"mul of shapes that do not broadcast: {x}, {y}",
                                 "each axis must match or be 1")
            out.append(max(p, q))
        return tuple(out)

    overwrites = (0, 1)  # into the full-size operand (IEEE multiplication commutes)

    def torch_inplace(self, module, k):
        from ..backends import torch_layers as L
        return L.Mul(inplace=k)

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.Mul()

    def source(self, a, ins, out):
        return Source("Mul")

    def inline(self, a, xs):
        return f"{xs[0]} * {xs[1]}"


class ChunkParams(Params):
    chunks: Channels = 2
    index: Annotated[int, Field(ge=0, le=MAX_CHANNELS)] = 0


@register
class Chunk(Op):
    name = "chunk"
    kind = Kind.DATA
    Params = ChunkParams
    doc = "Channel split: piece `index` of `chunks` equal pieces (x.chunk(chunks, 1)[index])."
    elementwise = "split"
    view = True  # x.chunk() is a view: the consumer reads the slice in place

    def infer(self, a, ins):
        c = ins[0][0]
        if a["index"] >= a["chunks"]:
            raise ShapeError(f"chunk index {a['index']} out of range for {a['chunks']} chunks")
        if c % a["chunks"]:
            raise ShapeError(f"{c} channels do not split into {a['chunks']} equal chunks")
        return (c // a["chunks"], *ins[0][1:])

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.Chunk(a["chunks"], a["index"])

    def source(self, a, ins, out):
        return Source("Chunk", (("chunks", a["chunks"], REQUIRED), ("index", a["index"], REQUIRED)), 2)

    def inline(self, a, xs):
        return f"{xs[0]}.chunk({a['chunks']}, 1)[{a['index']}]"


class ShuffleParams(Params):
    groups: Channels


@register
class ChannelShuffle(Op):
    name = "channel_shuffle"
    kind = Kind.DATA
    Params = ShuffleParams
    doc = "ShuffleNet channel shuffle: view (g, C/g), transpose, flatten."
    elementwise = "shuffle"  # the transpose is made contiguous: one full copy

    def infer(self, a, ins):
        c = _feature_map(self.name, ins[0])[0]
        if c % a["groups"]:
            raise ShapeError(f"channels not divisible by groups: {c} channels, {a['groups']} groups")
        return ins[0]

    def torch(self, a, ins, out):
        from ..backends import torch_layers as L
        return L.ChannelShuffle(a["groups"])

    def source(self, a, ins, out):
        return Source("ChannelShuffle", (("groups", a["groups"], REQUIRED),), 1)

    def inline(self, a, xs):
        return f"channel_shuffle({xs[0]}, {a['groups']})"
