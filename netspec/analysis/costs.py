"""Per-node costs: parameters, buffers, MACs, memory access; totals per stage and network.

`reference` MACs count conv and linear multiply-accumulates only (no bias,
BN, activation, pooling or element-wise ops), the convention of torchvision's
published GFLOPS and of `torch.utils.flop_counter.FlopCounterMode` / 2.
`full` MACs add bias, BN, activations, pooling and element-wise ops, with the
per-element conventions of each op's `full_macs` (docs/analysis.md).
`mem_access` is ShuffleNet V2's memory access cost ("MAC" in the paper):
activation elements read + written, plus weights read once.
Auxiliary heads are excluded unless asked for: they do not run at inference.
All per-node functions count one sample unless they take `batch`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from .. import ops
from .groups import block_of, stage_label, stage_of, stage_order


def node_params(G: nx.DiGraph, n: str) -> int:
    return sum(math.prod(s) for s in G.nodes[n]["weights"].values())


def node_buffers(G: nx.DiGraph, n: str) -> int:
    return sum(math.prod(s) for s in G.nodes[n]["buffers"].values())


def node_macs(G: nx.DiGraph, n: str) -> int:
    d = G.nodes[n]
    return ops.get_op(d["op"]).macs(d["attrs"], d["in_shapes"], d["shape"])


PROFILES = ("reference", "full")


def node_full_macs(G: nx.DiGraph, n: str) -> int:
    d = G.nodes[n]
    return ops.get_op(d["op"]).full_macs(d["attrs"], d["in_shapes"], d["shape"])


def node_io_elements(G: nx.DiGraph, n: str) -> int:
    """Activation elements read + written by one sample."""
    d = G.nodes[n]
    return ops.get_op(d["op"]).mem_io(d["attrs"], d["in_shapes"], d["shape"])


def node_weight_reads(G: nx.DiGraph, n: str) -> int:
    d = G.nodes[n]
    return ops.get_op(d["op"]).weight_reads(d["attrs"], d["weights"], d["buffers"])


def node_mem_access(G: nx.DiGraph, n: str, batch: int = 1) -> int:
    """Elements read + written for a batch: activations scale with the batch, weights are read once."""
    return batch * node_io_elements(G, n) + node_weight_reads(G, n)


def is_depthwise(G: nx.DiGraph, n: str) -> bool:
    d = G.nodes[n]
    return d["op"] == "conv2d" and d["attrs"]["groups"] > 1 and d["attrs"]["groups"] == d["attrs"]["in_channels"]


def nodes(G: nx.DiGraph, include_aux: bool = False) -> list[str]:
    return [n for n, d in G.nodes(data=True) if include_aux or not d["aux"]]


def total_params(G: nx.DiGraph, include_aux: bool = False) -> int:
    return sum(node_params(G, n) for n in nodes(G, include_aux))


def total_buffers(G: nx.DiGraph, include_aux: bool = False) -> int:
    return sum(node_buffers(G, n) for n in nodes(G, include_aux))


def total_macs(G: nx.DiGraph, include_aux: bool = False) -> int:
    return sum(node_macs(G, n) for n in nodes(G, include_aux))


@dataclass
class PartSummary:
    """One row of `netspec build`: stem, a stage, the head or an aux head."""

    name: str
    scope: str
    output_shape: tuple
    params: int
    macs: int
    blocks: int


def parts(G: nx.DiGraph) -> list[PartSummary]:
    """Per-part totals in network order: stem, stages, head, aux heads."""
    members: dict[str, list[str]] = {scope: [] for scope in stage_order(G)}
    for n in G.nodes:
        part = stage_of(G, n)
        if part in members:
            members[part].append(n)
    rows: list[PartSummary] = []
    for scope, ns in members.items():
        if not ns:
            continue
        # one unit per stage entry instance: its outermost block, or the op itself (repeats unrolled)
        blocks = len({block_of(G, n) for n in ns if n.startswith(f"{scope}.blocks.")})
        rows.append(PartSummary(
            name=stage_label(G, scope), scope=scope, output_shape=G.nodes[ns[-1]]["shape"],
            params=sum(node_params(G, n) for n in ns), macs=sum(node_macs(G, n) for n in ns), blocks=blocks,
        ))
    return rows
