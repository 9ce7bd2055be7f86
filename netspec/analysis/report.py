"""`analyze(G)`: every static metric of a graph IR in one typed report.

Each metric is a small pure function in its own module (costs, memory,
receptive, fragmentation, elementwise, guidelines); this module only
aggregates them per node, block, stage and network and serialises the result.
Auxiliary heads are reported (as their own stages, and in `params_with_aux`)
but excluded from the network totals: they do not run at inference.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional

import networkx as nx

from . import costs
from .elementwise import DEFAULT_BALANCE, ElementwiseSummary, bucket_of, elementwise_summary
from .fragmentation import Fragmentation, fragmentation
from .groups import block_of, ordered_nodes, stage_label, stage_of, stage_order
from .guidelines import GuidelineAudit, audit
from .memory import ActivationMemory, activation_memory
from .receptive import RF, features_node, receptive_fields

LEVELS = ("node", "block", "stage", "network")


@dataclass
class Costs:
    """Additive metrics of a node or a group of nodes, for the report's batch."""

    params: int = 0
    buffers: int = 0
    macs_reference: int = 0
    macs_full: int = 0
    mem_access: int = 0
    profile: str = "reference"

    @property
    def macs(self) -> int:
        """MACs of the selected profile."""
        return self.macs_full if self.profile == "full" else self.macs_reference

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: MACs per element of memory access."""
        return self.macs / self.mem_access if self.mem_access else 0.0

    def __iadd__(self, other: "Costs") -> "Costs":
        for f in ("params", "buffers", "macs_reference", "macs_full", "mem_access"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        return self

    def to_dict(self) -> dict:
        return {"params": self.params, "buffers": self.buffers, "macs": self.macs, "flops": self.flops,
                "macs_reference": self.macs_reference, "macs_full": self.macs_full,
                "mem_access": self.mem_access, "intensity": round(self.intensity, 4)}


@dataclass
class NodeReport:
    name: str
    op: str
    kind: str
    shape: tuple
    stage: str
    block: str
    aux: bool
    costs: Costs
    rf: RF
    elementwise: Optional[str]


@dataclass
class GroupReport:
    """A block, a stage or the network: summed costs and the RF at its output."""

    name: str
    level: str
    type: str
    nodes: int
    shape: tuple
    aux: bool
    costs: Costs
    rf: RF
    scope: str = ""   # the block / stage scope it sums (node names and fragmentation refer to it)


@dataclass
class Report:
    name: str
    input_shape: tuple
    batch: int
    dtype_bytes: int
    profile: str
    network: GroupReport
    params_with_aux: int
    stages: list[GroupReport]
    blocks: list[GroupReport]
    nodes: list[NodeReport]
    memory: ActivationMemory
    fragmentation: list[Fragmentation]
    elementwise: ElementwiseSummary
    features: str                 # torchvision's `.features` end point
    features_rf: RF               # strict: a squeeze-excitation gate makes it global
    features_rf_spatial: RF       # ignoring broadcast gates
    guidelines: GuidelineAudit

    def rows(self, level: str) -> list:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        return {"node": self.nodes, "block": self.blocks, "stage": self.stages, "network": [self.network]}[level]

    def to_dict(self) -> dict:
        return _jsonable(self)


def _jsonable(x: Any) -> Any:
    if isinstance(x, (Costs, RF)):
        return x.to_dict()
    if dataclasses.is_dataclass(x):
        out = {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
        for prop in ("excess", "excess_ratio", "ratio", "penalty_ratio"):  # derived guideline numbers
            if hasattr(type(x), prop):
                out[prop] = _jsonable(getattr(x, prop))
        return out
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Fraction):
        return int(x) if x.denominator == 1 else float(x)
    if isinstance(x, float):
        return round(x, 6)
    return x


def node_costs(G: nx.DiGraph, n: str, batch: int, profile: str) -> Costs:
    return Costs(costs.node_params(G, n), costs.node_buffers(G, n), batch * costs.node_macs(G, n),
                 batch * costs.node_full_macs(G, n), costs.node_mem_access(G, n, batch), profile)


def _group(G, name, level, type_, members, node_reports, rfs, scope="") -> GroupReport:
    total = Costs(profile=node_reports[members[0]].costs.profile)
    for n in members:
        total += node_reports[n].costs
    last = members[-1]
    return GroupReport(name, level, type_, len(members), G.nodes[last]["shape"], bool(G.nodes[last]["aux"]),
                       total, rfs[last], scope)


def analyze(G: nx.DiGraph, batch: int = 1, dtype_bytes: int = 4, profile: str = "reference",
            balance: float = DEFAULT_BALANCE) -> Report:
    """Every static metric of the graph, for a batch of `batch` samples of `dtype_bytes` each."""
    if profile not in costs.PROFILES:
        raise ValueError(f"unknown MAC profile {profile!r}; use one of {', '.join(costs.PROFILES)}")
    if batch < 1 or dtype_bytes < 1:
        raise ValueError("batch and dtype_bytes must be positive")
    rfs = receptive_fields(G)
    spatial = receptive_fields(G, ignore_gates=True)
    every = [n for n in ordered_nodes(G, include_aux=True) if G.nodes[n]["op"] != "input"]
    nodes = {n: NodeReport(n, G.nodes[n]["op"], G.nodes[n]["kind"], G.nodes[n]["shape"], stage_of(G, n),
                           block_of(G, n), bool(G.nodes[n]["aux"]), node_costs(G, n, batch, profile), rfs[n],
                           bucket_of(G, n))
             for n in every}

    blocks: dict[str, list[str]] = {}
    stages: dict[str, list[str]] = {}
    for n in every:
        blocks.setdefault(block_of(G, n), []).append(n)
        stages.setdefault(stage_of(G, n), []).append(n)
    scopes = G.graph["scopes"]
    block_rows = [_group(G, b, "block", scopes[b]["type"] if b in scopes else G.nodes[b]["op"], ms, nodes, rfs, b)
                  for b, ms in blocks.items()]
    stage_rows = [_group(G, stage_label(G, s), "stage", scopes.get(s, {}).get("kind", s), stages[s], nodes, rfs, s)
                  for s in stage_order(G) if s in stages]
    inference = [n for n in every if not nodes[n].aux]
    network = _group(G, G.graph["name"], "network", "network", inference, nodes, rfs)
    network.rf = rfs[G.graph["outputs"]["logits"]]

    frags = fragmentation(G)
    ew = elementwise_summary(G, batch, balance)
    feat = features_node(G, spatial)
    return Report(
        name=G.graph["name"], input_shape=tuple(G.graph["input_shape"]), batch=batch, dtype_bytes=dtype_bytes,
        profile=profile, network=network, params_with_aux=sum(nodes[n].costs.params for n in every),
        stages=stage_rows, blocks=block_rows, nodes=list(nodes.values()),
        memory=activation_memory(G, batch, dtype_bytes), fragmentation=frags, elementwise=ew,
        features=feat, features_rf=rfs[feat], features_rf_spatial=spatial[feat],
        guidelines=audit(G, frags, ew),
    )
