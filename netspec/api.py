"""The Python API: the pipeline as plain functions, each of the previous stage's output.

    spec  = load("specs/mobilenet_v2.yaml")          # YAML -> validated Spec
    graph = lower(spec)                              # Spec -> graph IR with shapes
    model = compile(graph)                           # graph IR -> torch.nn.Module (imports torch)
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx

from .lower import lower
from .spec import Spec, load_spec


def load(source: str | Path, *, overrides: list[str] | None = None) -> Spec:
    """Read, validate (and, with overrides `path=value`, patch) a spec."""
    return load_spec(source, overrides=overrides)


def compile(graph: nx.DiGraph, *, seed: int | None = 0):
    """Compile the graph IR into a `torch.nn.Module` (the only step that imports torch)."""
    try:
        from .backends.pytorch import compile_graph
    except ImportError as exc:
        raise ImportError(f"compiling a module needs torch ({exc}); install it: pip install torch") from exc
    return compile_graph(graph, seed=seed)


def build(source: str | Path, *, overrides: list[str] | None = None, aux: bool = True, seed: int | None = 0):
    """load → lower → compile in one call."""
    return compile(lower(load(source, overrides=overrides), aux=aux), seed=seed)


__all__ = ["load", "lower", "compile", "build"]
