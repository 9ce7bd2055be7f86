"""Fine-tuning: a checkpoint of the same network with another number of classes.

Every tensor loads except the classifier's, which keeps its initialisation; the report says which
keys were skipped. The classifier is found on the graph IR, not by name: on each path back from an
output (the logits and any aux head) the first op that owns parameters (`head.fc`, MobileNetV3's
`head.classifier.3`, SqueezeNet's final 1x1 conv, GoogLeNet's `aux1.head.fc2`). Only those tensors
may differ in shape, and only where they do are they skipped; `strict=True` refuses any difference.
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx

from .analysis.costs import node_params


def classifier_nodes(G: nx.DiGraph) -> list[str]:
    """The ops that produce the class scores: the first parametrised op on every path back from an output."""
    found: set[str] = set()
    for out in G.graph["outputs"].values():
        stack, seen = [out], set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if node_params(G, n) > 0:
                found.add(n)
            else:
                stack.extend(G.predecessors(n))
    return sorted(found)


def classifier_keys(keys, G: nx.DiGraph) -> frozenset[str]:
    """The state-dict keys of the classifier ops (their scope is the node id)."""
    prefixes = tuple(f"{n}." for n in classifier_nodes(G))
    return frozenset(k for k in keys if k.startswith(prefixes))


def load_pretrained(graph: nx.DiGraph, ref_keys: list[str] | None, weights: str | Path, *, strict: bool = False,
                    seed: int | None = 0, max_params: int | None = None, allow_nonfinite: bool = False):
    """(model, weights.Report): the compiled graph with the checkpoint's tensors (NaN or infinite
    values are refused unless `allow_nonfinite`, which only warns).

    Built on the meta device when every tensor comes from the file (nothing to initialise); when the
    classifier's shapes differ (and not `strict`), built initialised with `seed` and the classifier
    keeps that initialisation."""
    import torch

    from .api import compile
    from .weights import _shape, assign, match, read_checkpoint

    ckpt = read_checkpoint(weights, allow_nonfinite=allow_nonfinite)
    with torch.device("meta"):
        model = compile(graph, seed=None, max_params=max_params)
    shapes = {k: _shape(v) for k, v in model.state_dict().items()}
    may_differ = frozenset() if strict else classifier_keys(shapes, graph)
    report = match(shapes, ckpt, ref_keys=ref_keys, file=str(weights), may_differ=may_differ)
    if report.skipped:
        model = compile(graph, seed=seed, max_params=max_params)
    assign(model, ckpt, report)
    return model, report


def load_into(model, graph: nx.DiGraph, ref_keys: list[str] | None, weights: str | Path, *, strict: bool = False):
    """Load a checkpoint into an initialised model in place (`netspec train --weights`); the weights.Report."""
    from .weights import _shape, assign, match, read_checkpoint

    ckpt = read_checkpoint(weights)
    shapes = {k: _shape(v) for k, v in model.state_dict().items()}
    may_differ = frozenset() if strict else classifier_keys(shapes, graph)
    report = match(shapes, ckpt, ref_keys=ref_keys, file=str(weights), may_differ=may_differ)
    assign(model, ckpt, report)
    return report
