"""Receptive field of every node, propagated on the DAG in topological order.

Per spatial axis a node's RF is (size, jump, centre): the number of input
pixels one output element sees, the input distance between neighbouring
outputs (effective stride), and the input coordinate of the centre of output
element 0's field. Through a window (extent k = d·(k−1)+1, stride s, padding
p before the first element):

    size'   = size + (k − 1)·jump
    jump'   = jump · s
    centre' = centre + ((k − 1)/2 − p)·jump

Point-wise ops (BN, activations, element-wise, concat, flatten) leave it
unchanged. Where branches merge (add, mul, concat) the largest field wins,
as in google-research/receptive_field, and alignment is checked: different
jumps or centres across the inputs are recorded as warnings on the node.
Global ops (global pooling, adaptive pooling to 1×1, a window spanning the
whole input with a single output such as AvgPool2d(7) on a 7×7 map, linear)
make the field `global`, and so does anything downstream of them, e.g. the output of a
squeeze-and-excitation gate. With `ignore_gates=True` an input that is
broadcast over space (a 1×1 gate multiplied into a feature map) does not take
part in the merge: that is the "spatial" RF of networks with SE blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Union

import networkx as nx

from .. import ops

Number = Union[int, Fraction]


@dataclass(frozen=True)
class AxisRF:
    size: Number
    jump: Number
    centre: Number

    def through(self, w: ops.Window) -> "AxisRF":
        twice = w.extent - 1 - 2 * w.pad  # 2 x ((k - 1)/2 - p): a Fraction only when it is odd
        shift = (twice // 2) * self.jump if twice % 2 == 0 else Fraction(twice, 2) * self.jump
        return AxisRF(self.size + (w.extent - 1) * self.jump, self.jump * w.stride, self.centre + shift)


# exact arithmetic: ints while everything stays integral (almost always), Fractions otherwise
INPUT_RF = (AxisRF(1, 1, 0), AxisRF(1, 1, 0))


@dataclass
class RF:
    """A node's receptive field: per-axis (H, W) geometry, or global (`axes` is None)."""

    axes: Optional[tuple[AxisRF, AxisRF]]
    warnings: list[str] = field(default_factory=list)

    @property
    def is_global(self) -> bool:
        return self.axes is None

    @property
    def size(self) -> Union[str, tuple[Number, Number]]:
        return ops.GLOBAL if self.axes is None else (self.axes[0].size, self.axes[1].size)

    def describe(self) -> str:
        if self.axes is None:
            return "global"
        (h, w) = self.axes
        size = _num(h.size) if h.size == w.size else f"{_num(h.size)}×{_num(w.size)}"
        jump = _num(h.jump) if h.jump == w.jump else f"{_num(h.jump)}×{_num(w.jump)}"
        return f"{size} (jump {jump})"

    def to_dict(self) -> dict:
        if self.axes is None:
            return {"size": "global", "warnings": self.warnings}
        return {"size": [_num(a.size) for a in self.axes], "jump": [_num(a.jump) for a in self.axes],
                "centre": [_num(a.centre) for a in self.axes], "warnings": self.warnings}


def _num(x: Number) -> Union[int, float]:
    return int(x) if Fraction(x).denominator == 1 else float(x)


def _is_gate(in_shape: ops.Shape, out_shape: ops.Shape) -> bool:
    """A per-channel input broadcast over a spatial output (SE's sigmoid gate)."""
    return len(in_shape) == 3 and len(out_shape) == 3 and in_shape[1:] == (1, 1) and out_shape[1:] != (1, 1)


def _covers_input(window, in_shape: ops.Shape, out_shape: ops.Shape) -> bool:
    """One output whose window spans the whole input (AvgPool2d(7) on a 7×7 map): global pooling."""
    return (len(in_shape) == 3 and len(out_shape) == 3 and out_shape[1:] == (1, 1)
            and all(w.extent >= n for w, n in zip(window, in_shape[1:])))


def merge(fields: list[RF]) -> RF:
    """Largest field per axis over the inputs, with an alignment check."""
    if any(f.is_global for f in fields):
        return RF(None)
    if len(fields) == 1:
        return RF(fields[0].axes)
    warnings = []
    axes = []
    for ax, name in enumerate("HW"):
        options = [f.axes[ax] for f in fields]
        if len({o.jump for o in options}) > 1:
            warnings.append(f"unaligned merge along {name}: effective strides "
                            f"{sorted({_num(o.jump) for o in options})} differ")
        elif len({o.centre for o in options}) > 1:
            warnings.append(f"centres differ along {name}: "
                            f"{sorted({_num(o.centre) for o in options})} (asymmetric padding?)")
        axes.append(max(options, key=lambda o: o.size))
    return RF(tuple(axes), warnings)


def node_rf(G: nx.DiGraph, n: str, inputs: list[RF]) -> RF:
    d = G.nodes[n]
    if d["op"] == "input":
        return RF(INPUT_RF)
    merged = merge(inputs)
    if merged.is_global:
        return merged
    window = ops.get_op(d["op"]).window(d["attrs"], d["in_shapes"], d["shape"])
    if window == ops.GLOBAL or _covers_input(window, d["in_shapes"][0], d["shape"]):
        return RF(None, merged.warnings)
    return RF(tuple(a.through(w) for a, w in zip(merged.axes, window)), merged.warnings)


def receptive_fields(G: nx.DiGraph, ignore_gates: bool = False) -> dict[str, RF]:
    """RF of every node (auxiliary heads included), in topological order."""
    out: dict[str, RF] = {}
    for n in nx.topological_sort(G):
        d = G.nodes[n]
        ins = d["inputs"]
        if ignore_gates and len(ins) > 1:
            kept = [i for i, s in zip(ins, d["in_shapes"]) if not _is_gate(s, d["shape"])]
            ins = kept or ins
        out[n] = node_rf(G, n, [out[i] for i in ins])
    return out


def features_node(G: nx.DiGraph, spatial: dict[str, RF]) -> str:
    """The last feature map before the classifier (torchvision's `.features`): walk back from the
    logits along first inputs past every node whose spatial RF is global (classifier, global pool)
    and every view (flatten, dropout), which moves no data."""
    n = G.graph["outputs"]["logits"]
    while G.nodes[n]["inputs"] and (spatial[n].is_global or ops.get_op(G.nodes[n]["op"]).view):
        n = G.nodes[n]["inputs"][0]
    return n
