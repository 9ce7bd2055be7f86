"""Predicted latency of a graph on a calibrated device: per node, block, stage and network (no torch).

Each node the inference forward runs costs its cost class's fitted time for its features
(`features.py`); a block, a stage and the network are the sums over their nodes, plus the
profile's per-forward time for the network. Memory traffic follows the no-grad in-place plan, the
forward `netspec bench` times: an op written into its input is its own class (it allocates
nothing), views cost only their call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ..analysis.groups import block_of, stage_label, stage_of
from ..errors import SourceLoc, SpecError
from .features import classify, fallbacks, node_features
from .profile import Profile


@dataclass
class LatencyPrediction:
    batch: int
    calibrated_batch: int          # the profile's batch whose model was applied
    network: float                 # seconds per forward of the whole batch
    forward_s: float               # of which: the module's own call, outside every node
    nodes: dict[str, float]        # in forward order
    classes: dict[str, str]        # node -> the cost class whose model was applied
    blocks: dict[str, float] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    stage_labels: dict[str, str] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)   # class missing in the profile -> used instead

    def to_dict(self) -> dict:
        return {"batch": self.batch, "calibrated_batch": self.calibrated_batch, "network_s": self.network,
                "forward_s": self.forward_s, "stages_s": self.stages, "blocks_s": self.blocks,
                "nodes_s": self.nodes, "classes": self.classes, "fallback": self.fallback}


def predict(G: nx.DiGraph, profile: Profile, batch: int = 1) -> LatencyPrediction:
    """Seconds per forward of `batch` samples, per node / block / stage / network."""
    if batch < 1:
        raise ValueError("batch must be >= 1")
    used_batch, model = profile.batch_model(batch)
    nodes: dict[str, float] = {}
    classes: dict[str, str] = {}
    fallback: dict[str, str] = {}
    for n, cls in classify(G).items():
        for c in fallbacks(G, n, cls):
            if c in model.classes:
                break
        else:
            raise SpecError(f"the device profile has no model for '{cls}' (node {n}) nor any fallback",
                            SourceLoc(profile.path or "<profile>", path=f"batches.{used_batch}.classes"),
                            "recalibrate with `netspec calibrate`; its profile has a '*' class for any op")
        if c != cls:
            fallback[cls] = c
        classes[n] = c
        nodes[n] = model.classes[c].time(node_features(G, n, batch, model.cache_bytes))
    blocks: dict[str, float] = {}
    stages: dict[str, float] = {}
    for n, t in nodes.items():
        b, s = block_of(G, n), stage_of(G, n)
        blocks[b] = blocks.get(b, 0.0) + t
        stages[s] = stages.get(s, 0.0) + t
    network = model.forward_s + sum(nodes.values())
    return LatencyPrediction(batch, used_batch, network, model.forward_s, nodes, classes, blocks, stages,
                             {s: stage_label(G, s) for s in stages}, fallback)
