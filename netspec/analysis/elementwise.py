"""Element-wise operations (ShuffleNet V2, guideline G4).

The paper's element-wise ops are "ReLU, AddTensor, AddBias, etc.": small
FLOPs, heavy memory access; it counts concat, channel shuffle and channel
split as one merged element-wise op, and treats depthwise convolution as
element-wise-like for its high mem_access/FLOPs ratio. Each op declares its
bucket (`Op.elementwise`); depthwise convs are tallied separately. A bias is
fused into its conv/linear, so it is counted (nodes with a bias, and its full
MACs) but adds no memory access of its own.

Shares are of the inference network's totals: mem_access, and a roofline time
proxy per node, max(full MACs, balance × mem_access), in MAC-times, where
`balance` is the machine's MACs per element of memory traffic (nominal 16).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx

from .. import ops
from . import costs
from .groups import ordered_nodes

BUCKETS = ("add", "mul", "activation", "norm", "concat", "split", "shuffle")
DEFAULT_BALANCE = 16.0


def bucket_of(G: nx.DiGraph, n: str) -> str | None:
    """The node's element-wise bucket, 'depthwise' for depthwise convs, else None."""
    if costs.is_depthwise(G, n):
        return "depthwise"
    return ops.get_op(G.nodes[n]["op"]).elementwise


def time_proxy(macs_full: int, mem_access: int, balance: float = DEFAULT_BALANCE) -> float:
    """Roofline time in MAC-times: compute-bound or memory-bound, whichever is slower."""
    return max(float(macs_full), balance * mem_access)


@dataclass
class Bucket:
    name: str
    count: int = 0
    macs_full: int = 0
    mem_access: int = 0
    time_proxy: float = 0.0
    mem_share: float = 0.0
    time_share: float = 0.0


@dataclass
class ElementwiseSummary:
    buckets: dict[str, Bucket]
    bias_nodes: int
    bias_macs: int
    elementwise: Bucket             # all buckets but depthwise
    with_depthwise: Bucket          # the paper's extended view
    worst: list[tuple[str, str, int, float]] = field(default_factory=list)  # node, bucket, mem_access, share


def _add(b: Bucket, macs: int, mem: int, t: float) -> None:
    b.count += 1
    b.macs_full += macs
    b.mem_access += mem
    b.time_proxy += t


def elementwise_summary(G: nx.DiGraph, batch: int = 1, balance: float = DEFAULT_BALANCE,
                        top: int = 5) -> ElementwiseSummary:
    buckets = {name: Bucket(name) for name in (*BUCKETS, "depthwise")}
    total_mem, total_time = 0, 0.0
    bias_nodes = bias_macs = 0
    per_node = []
    for n in ordered_nodes(G):
        d = G.nodes[n]
        macs = batch * costs.node_full_macs(G, n)
        mem = costs.node_mem_access(G, n, batch)
        t = time_proxy(macs, mem, balance)
        total_mem += mem
        total_time += t
        if d["op"] in ("conv2d", "linear") and d["attrs"].get("bias"):
            bias_nodes += 1
            bias_macs += batch * (math.prod(d["shape"]) if d["op"] == "conv2d" else d["shape"][0])
        b = bucket_of(G, n)
        if b is not None:
            _add(buckets[b], macs, mem, t)
            per_node.append((n, b, mem))
    ew, ewd = Bucket("elementwise"), Bucket("elementwise+depthwise")
    for b in buckets.values():
        for agg in ((ew, ewd) if b.name != "depthwise" else (ewd,)):
            agg.count += b.count
            agg.macs_full += b.macs_full
            agg.mem_access += b.mem_access
            agg.time_proxy += b.time_proxy
    for b in (*buckets.values(), ew, ewd):
        b.mem_share = b.mem_access / total_mem if total_mem else 0.0
        b.time_share = b.time_proxy / total_time if total_time else 0.0
    worst = sorted((x for x in per_node if x[1] != "depthwise"), key=lambda x: -x[2])[:top]
    return ElementwiseSummary(buckets, bias_nodes, bias_macs, ew, ewd,
                              [(n, b, m, m / total_mem if total_mem else 0.0) for n, b, m in worst])
