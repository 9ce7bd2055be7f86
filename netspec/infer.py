"""Static shape inference: one op's output shape, tensors and resolved attributes.

Lowering calls `infer_op` as it adds each node: nodes are added in
topological order, and block templates need their input's channels to expand.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ops


@dataclass
class Inferred:
    attrs: dict
    shape: ops.Shape
    weights: dict[str, ops.Shape]
    buffers: dict[str, ops.Shape]


def infer_op(op: ops.Op, params: ops.Params, in_shapes: list[ops.Shape]) -> Inferred:
    """Resolve attributes and infer the output shape; raises `ops.ShapeError`."""
    attrs = op.resolve(params, in_shapes)
    shape = tuple(op.infer(attrs, in_shapes))
    return Inferred(attrs, shape, op.weights(attrs, in_shapes, shape), op.buffers(attrs, in_shapes, shape))
