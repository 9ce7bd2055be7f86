"""Activation memory: peak bytes of live tensors over the inference schedule.

The schedule is the lowering order (a topological order, and the order the
compiled module executes its nodes). A tensor is allocated when its node runs
and freed after its last consumer has run; the logits live to the end. Ops
that move no data (`Op.view`: flatten, identity, chunk, dropout in eval) alias
their input's storage instead of allocating, which extends its lifetime; so
do the ops the compiled module runs in place in an eval forward with gradients
off (`netspec.optimize.inference_inplace_nodes`: batch norm, activations, adds
and gating write into an input they are the last reader of). `inplace=False`
gives the memory of a build without in-place ops. Weights are not activations and are not counted here (params × dtype bytes gives them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from .. import ops
from ..optimize import inference_inplace_nodes


@dataclass
class ActivationMemory:
    peak_bytes: int
    peak_at: str               # the node running when the peak is reached
    live_at_peak: list[str]    # storages (producing nodes) live at that moment
    input_bytes: int
    total_bytes: int           # every allocation summed: the memory with no reuse at all


def inference_schedule(G: nx.DiGraph) -> list[str]:
    logits = G.graph["outputs"]["logits"]
    needed = nx.ancestors(G, logits) | {logits}
    return [n for n in G.nodes if n in needed]


def storage_roots(G: nx.DiGraph, schedule: list[str], inplace: bool = True) -> dict[str, str]:
    """Each node's storage: its own, or (for views and in-place ops) the storage of the input it reuses."""
    overwrites = inference_inplace_nodes(G) if inplace else {}
    root: dict[str, str] = {}
    for n in schedule:
        d = G.nodes[n]
        if d["op"] != "input" and ops.get_op(d["op"]).view:
            root[n] = root[d["inputs"][0]]
        elif n in overwrites:
            root[n] = root[d["inputs"][overwrites[n]]]
        else:
            root[n] = n
    return root


def _sweep(G: nx.DiGraph, batch: int, dtype_bytes: int, inplace: bool):
    """The schedule, each storage's size and last use, and the live bytes at each step."""
    schedule = inference_schedule(G)
    step = {n: i for i, n in enumerate(schedule)}
    root = storage_roots(G, schedule, inplace)
    last_use = {r: step[r] for r in set(root.values())}
    for n in schedule:
        for i in G.nodes[n]["inputs"]:
            last_use[root[i]] = max(last_use[root[i]], step[n])
    last_use[root[G.graph["outputs"]["logits"]]] = len(schedule) - 1
    size = {r: batch * dtype_bytes * math.prod(G.nodes[r]["shape"]) for r in last_use}

    delta = [0] * (len(schedule) + 1)  # sweep: +size at allocation, -size after last use
    for r, end in last_use.items():
        delta[step[r]] += size[r]
        delta[end + 1] -= size[r]
    live, running = [], 0
    for i in range(len(schedule)):
        running += delta[i]
        live.append(running)
    return schedule, step, last_use, size, live


def live_bytes(G: nx.DiGraph, batch: int = 1, dtype_bytes: int = 4, inplace: bool = True) -> dict[str, int]:
    """Activation bytes live while each node of the inference schedule runs (its inputs, its output
    and everything kept for later); the peak of `activation_memory` is the largest of them."""
    schedule, _, _, _, live = _sweep(G, batch, dtype_bytes, inplace)
    return dict(zip(schedule, live))


def activation_memory(G: nx.DiGraph, batch: int = 1, dtype_bytes: int = 4, inplace: bool = True) -> ActivationMemory:
    schedule, step, last_use, size, live = _sweep(G, batch, dtype_bytes, inplace)
    peak, peak_step = -1, 0
    for i, v in enumerate(live):
        if v > peak:
            peak, peak_step = v, i
    live_at_peak = [r for r, end in last_use.items() if step[r] <= peak_step <= end]
    return ActivationMemory(peak, schedule[peak_step], sorted(live_at_peak, key=step.get),
                            size["input"], sum(size.values()))
