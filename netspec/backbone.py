"""Backbones: which IR nodes are a network's feature maps, and the graph that computes only them (no torch).

timm's convention (`features_only=True, out_indices=...`): index i is the last feature map at
stride 2^(i+1) - 0 is stride 2, 1 stride 4, ... 4 stride 32. Here a feature map is the output of a
top-level entry of the stem or a stage (a block such as `stages.layer1.blocks.1`, or a plain op such as
`stem.relu`), on the main path (not an aux head, not the head), and its stride is the product of the
strides on the way from the input (at a merge, that of the largest input map); an op without a `stride` that
shrinks the map (an adaptive pool) counts its size ratio. The head never takes part, so a spec whose
scaling rules name head entries (MobileNetV2's `head.conv`) needs no edit: the head is pruned from the
graph, not from the spec.

`out_nodes=[...]` names other points: a stage (`stages.layer3`: its last output), a block scope or a node.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from .errors import SourceLoc, SpecError, did_you_mean

MAX_INDEX = 4  # timm's five levels: strides 2 .. 32


@dataclass(frozen=True)
class FeaturePoint:
    node: str       # the IR node whose output is the map
    module: str     # its top-level entry's scope (what timm calls the module name)
    channels: int
    reduction: int  # stride relative to the input


class FeatureInfo(list):
    """timm's `model.feature_info`: a list of {"num_chs", "reduction", "module"} with accessors."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]

    def module_name(self) -> list[str]:
        return [f["module"] for f in self]


def strides(G: nx.DiGraph) -> dict[str, int]:
    """Every node's stride relative to the input (powers of two for the zoo; 0 once the map is gone)."""
    out: dict[str, int] = {}
    for n in G.nodes:  # insertion order is topological
        data = G.nodes[n]
        if data["op"] == "input":
            out[n] = 1
            continue
        shape, ins = data["shape"], data["in_shapes"]
        # a merge follows its largest map: an SE gate (C x 1 x 1) broadcast onto a block's map is not a stride
        spatial = [(s[1] if len(s) == 3 else 0, out[i]) for i, s in zip(data["inputs"], ins)]
        base = max(spatial)[1] if spatial else 1
        if len(shape) != 3 or base == 0:
            out[n] = 0
            continue
        stride = data["attrs"].get("stride")
        if isinstance(stride, (tuple, list)) and stride:
            step = int(stride[0])
        elif ins and len(ins[0]) == 3 and shape[1] and ins[0][1] > shape[1]:
            step = 2 ** round(math.log2(ins[0][1] / shape[1]))
        else:
            step = 1
        out[n] = base * step
    return out


def _unit(G: nx.DiGraph, n: str) -> str:
    blocks = G.nodes[n]["blocks"]
    return blocks[0] if blocks else n


def _main_nodes(G: nx.DiGraph) -> list[str]:
    return [n for n in G.nodes if G.nodes[n]["op"] != "input" and not G.nodes[n]["aux"]
            and G.nodes[n]["part"] not in (None, "head")]


def feature_points(G: nx.DiGraph) -> dict[int, FeaturePoint]:
    """{index: the last feature map at stride 2^(index+1)} for the indices the network has."""
    stride = strides(G)
    last_of_unit: dict[str, str] = {}
    for n in _main_nodes(G):
        last_of_unit[_unit(G, n)] = n  # a block's output is its last node
    found: dict[int, FeaturePoint] = {}
    for unit, n in last_of_unit.items():
        s, shape = stride[n], G.nodes[n]["shape"]
        if len(shape) != 3 or s < 2 or s & (s - 1):
            continue
        index = int(math.log2(s)) - 1
        if index <= MAX_INDEX:
            found[index] = FeaturePoint(n, unit, int(shape[0]), s)  # later entries replace earlier ones
    return dict(sorted(found.items()))


def named_point(G: nx.DiGraph, name: str) -> FeaturePoint:
    """A stage scope, block scope or node id -> its output."""
    stride = strides(G)
    if name in G and G.nodes[name]["op"] != "input":
        node = name
    else:
        members = [n for n in G.nodes if G.nodes[n]["part"] == name or name in G.nodes[n]["blocks"]]
        if not members:
            scopes = [s for s in G.graph["scopes"] if s not in ("stem", "head")] + list(G.nodes)
            raise SpecError(f"no stage, block or node '{name}'", SourceLoc("out_nodes"),
                            did_you_mean(name, scopes, "points"))
        node = members[-1]
    shape = G.nodes[node]["shape"]
    return FeaturePoint(node, name, int(shape[0]), stride[node])


def select(G: nx.DiGraph, out_indices=None, out_nodes=None) -> list[FeaturePoint]:
    """The requested points: `out_nodes` by name, else `out_indices` (default: every index the network has)."""
    if out_nodes is not None:
        if isinstance(out_nodes, str) or not out_nodes:
            raise SpecError("out_nodes must be a non-empty list of names", SourceLoc("out_nodes"),
                            'out_nodes=["stages.layer3"]')
        return [named_point(G, str(n)) for n in out_nodes]
    points = feature_points(G)
    if out_indices is None:
        return list(points.values())
    chosen = []
    for i in out_indices:
        if isinstance(i, bool) or not isinstance(i, int) or i not in points:
            have = ", ".join(f"{k} (stride {p.reduction})" for k, p in points.items())
            raise SpecError(f"{G.graph['name']} has no feature map at index {i!r}"
                            + (f" (stride {2 ** (i + 1)})" if isinstance(i, int) and 0 <= i < 16 else ""),
                            SourceLoc("out_indices"), f"available: {have}")
        chosen.append(points[i])
    return chosen


def feature_graph(G: nx.DiGraph, points: list[FeaturePoint]) -> nx.DiGraph:
    """G pruned to what the points need; its outputs are the points (in order; "logits" names the last,
    for the passes that look for it)."""
    keep = {"input"}
    for p in points:
        keep |= nx.ancestors(G, p.node) | {p.node}
    H = G.subgraph([n for n in G.nodes if n in keep]).copy()  # keeps insertion (topological) order
    outputs = {f"feature{i}": p.node for i, p in enumerate(points)}
    H.graph = {**G.graph, "outputs": {"logits": points[-1].node, **outputs}, "unused": [],
               "feature_info": FeatureInfo({"num_chs": p.channels, "reduction": p.reduction, "module": p.module}
                                           for p in points)}
    return H
