"""What the latency model sees of a node: its cost class and its features (no torch).

A node's time is modelled as `c_call + c_mac * MACs + c_elem * elements + c_spill * spilled` with
coefficients per cost class: the call (module dispatch, allocation bookkeeping), the arithmetic
(`full` profile MACs of the batch), the memory traffic (activation elements read + written by the
batch, plus weights read once; ShuffleNet V2's memory access cost) and the part of that traffic
that cannot stay in the last-level cache. A node whose working set (the bytes it reads and writes)
is W, on a device whose effective cache is C (the profile's `cache_bytes`), spills the fraction
max(0, 1 - C/W) of its elements to memory: MobileNet V2's expanded maps at batch 8 (38 MB) run at
memory bandwidth where the same ops at batch 1 (5 MB) stay in a 32 MB L3. The class separates what runs a different
kernel: conv by its groups and kernel (dense 1x1, dense kxk, grouped, depthwise), every other op by
name, and an op the no-grad forward runs in place (`optimize.inference_inplace_nodes`: it allocates
nothing) from its out-of-place form.
"""
from __future__ import annotations

import math

import networkx as nx

from .. import ops
from ..analysis.memory import inference_schedule
from ..optimize import inference_inplace_nodes

FEATURES = ("call", "macs", "elements", "spilled")
BYTES_PER_ELEMENT = 4   # float32: what the compiled module computes in
INPLACE = "+inplace"


def conv_class(a: dict) -> str:
    """conv2d/{1x1, kxk, grouped/1x1, grouped/kxk, depthwise}, with /s2 for a strided conv (a different
    kernel: it reads its input with gaps, and in a network a strided depthwise conv reads a
    just-expanded map). Grouped convs split by kernel as dense ones do: ShuffleNet V1's grouped 1x1
    convs (dozens of channels a group) and RegNet's or ResNeXt's grouped 3x3 (4 to 64) run different
    kernels."""
    g, cin = a["groups"], a["in_channels"]
    kernel = "1x1" if tuple(a["kernel"]) == (1, 1) else "kxk"
    if g > 1 and g == cin:
        base = "conv2d/depthwise"
    elif g > 1:
        base = "conv2d/grouped/" + kernel
    else:
        base = "conv2d/" + kernel
    return base + ("/s2" if tuple(a["stride"]) != (1, 1) else "")


def node_class(G: nx.DiGraph, n: str, inplace: dict) -> str:
    d = G.nodes[n]
    if d["op"] == "conv2d":
        return conv_class(d["attrs"])
    name = ops.get_op(d["op"]).name
    return name + INPLACE if n in inplace else name


def lineage(cls: str, op: str, kind: str) -> list[str]:
    """A class and the wider models it falls back to, most specific first: conv2d/depthwise/s2 ->
    conv2d/depthwise -> conv2d -> conv -> '*'; relu+inplace -> relu -> activation -> '*'.
    Calibration fits every one of them, prediction takes the first the profile has."""
    chain = [cls]
    while "/" in chain[-1]:
        chain.append(chain[-1].rsplit("/", 1)[0])
    return list(dict.fromkeys([*chain, op, kind, "*"]))


def fallbacks(G: nx.DiGraph, n: str, cls: str) -> list[str]:
    op = ops.get_op(G.nodes[n]["op"])
    return lineage(cls, op.name, op.kind.value)


def spilled(elements: float, cache_bytes: float) -> float:
    """The elements of a node's traffic beyond the cache: all of them scaled by max(0, 1 - C/W)."""
    working_set = BYTES_PER_ELEMENT * elements
    if working_set <= cache_bytes or working_set <= 0:
        return 0.0
    return elements * (1.0 - cache_bytes / working_set)


def node_features(G: nx.DiGraph, n: str, batch: int, cache_bytes: float = math.inf) -> tuple[float, ...]:
    """(call, MACs, elements, spilled elements) of node n for a batch, on a cache of `cache_bytes`."""
    d = G.nodes[n]
    op = ops.get_op(d["op"])
    a, ins, out = d["attrs"], d["in_shapes"], d["shape"]
    macs = batch * op.full_macs(a, ins, out)
    elements = float(batch * op.mem_io(a, ins, out) + op.weight_reads(a, d["weights"], d["buffers"]))
    return (1.0, float(macs), elements, spilled(elements, cache_bytes))


def forward_nodes(G: nx.DiGraph) -> list[str]:
    """The nodes the inference forward runs, in order (aux heads and unused nodes left out)."""
    # the generated forward calls no module for an identity (it passes its input on)
    return [n for n in inference_schedule(G) if G.nodes[n]["op"] not in ("input", "identity")]


def classify(G: nx.DiGraph) -> dict[str, str]:
    inplace = inference_inplace_nodes(G)
    return {n: node_class(G, n, inplace) for n in forward_nodes(G)}
