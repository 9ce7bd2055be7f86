"""Static shape inference: one op's output shape, tensors and resolved attributes.

Lowering calls `infer_op` as it adds each node (nodes are added in
topological order, and block templates need their input's channels to expand),
and `check_shapes` re-derives every shape of a finished graph from its
attributes, as a consistency check for passes that edit the graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

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


def check_shapes(G: nx.DiGraph) -> None:
    """Re-infer every node from its inputs, in topological order; raise on any mismatch."""
    for n in nx.topological_sort(G):
        data = G.nodes[n]
        if data["op"] == "input":
            continue
        ins = [G.nodes[i]["shape"] for i in data["inputs"]]
        shape = tuple(ops.get_op(data["op"]).infer(data["attrs"], ins))
        if shape != data["shape"]:
            raise ops.ShapeError(f"{n}: stored shape {data['shape']} but inputs give {shape}")
