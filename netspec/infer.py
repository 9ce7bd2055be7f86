"""Static shape inference: one op's output shape, tensors and resolved attributes.

Lowering calls `infer_op` as it adds each node: nodes are added in
topological order, and block templates need their input's channels to expand.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ops
from .limits import MAX_CHANNELS, MAX_SPATIAL


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
    _check_bounds(shape)
    return Inferred(attrs, shape, op.weights(attrs, in_shapes, shape), op.buffers(attrs, in_shapes, shape))


def _check_bounds(shape: ops.Shape) -> None:
    """Every tensor stays within the limits (a concat of many inputs or a huge padding can exceed them)."""
    if shape and shape[0] > MAX_CHANNELS:
        raise ops.ShapeError(f"output has {shape[0]:,} channels (features), more than the limit {MAX_CHANNELS:,}",
                             "no CNN needs this many; check the widths and multipliers that lead here")
    if any(s > MAX_SPATIAL for s in shape[1:]):
        raise ops.ShapeError(f"output size {'x'.join(map(str, shape[1:]))} exceeds {MAX_SPATIAL:,} per side",
                             "check padding and input size")
