"""The Python API: the pipeline as plain functions, each of the previous stage's output.

    spec  = load("specs/mobilenet_v2.yaml")          # YAML -> validated Spec
    graph = lower(spec)                              # Spec -> graph IR with shapes
    model = compile(graph)                           # graph IR -> torch.nn.Module (imports torch)

    model = build("specs/efficientnet.yaml", variant="b3", weights="efficientnet_b3.pth")
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx

from .lower import lower
from .scale import apply_scaling
from .spec import Spec, load_spec


def load(source: str | Path, *, overrides: list[str] | None = None, variant: str | None = None) -> Spec:
    """Read, validate (and, with overrides `path=value`, patch) a spec; with `variant`, scale it to that preset."""
    spec = load_spec(source, overrides=overrides)
    return apply_scaling(spec, variant=variant) if variant is not None else spec


def compile(graph: nx.DiGraph, *, seed: int | None = 0):
    """Compile the graph IR into a `torch.nn.Module` (the only step that imports torch)."""
    try:
        from .backends.pytorch import compile_graph
    except ImportError as exc:
        raise ImportError(f"compiling a module needs torch ({exc}); install it: pip install torch") from exc
    return compile_graph(graph, seed=seed)


def build(source: str | Path, *, overrides: list[str] | None = None, variant: str | None = None, aux: bool = True,
          seed: int | None = 0, weights: str | Path | None = None):
    """load → lower → compile in one call; `weights` loads a checkpoint (netspec's own keys, or the
    spec's reference's: see docs/interop.md)."""
    spec = load(source, overrides=overrides, variant=variant)
    graph = lower(spec, aux=aux)
    if weights is None:
        return compile(graph, seed=seed)
    return compile_with_weights(graph, spec, weights)


def compile_with_weights(graph: nx.DiGraph, spec: Spec, weights: str | Path):
    """Compile without initialising (on the meta device) and take every tensor from the checkpoint."""
    import torch

    from .weights import load_weights, reference_keys
    keys = reference_keys(spec.reference_keys, spec.locs.loc(("reference_keys",)))
    with torch.device("meta"):
        model = compile(graph, seed=None)
    load_weights(model, weights, ref_keys=keys)
    return model


__all__ = ["load", "lower", "compile", "build"]
