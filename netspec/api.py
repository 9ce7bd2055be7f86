"""The Python API: the pipeline as plain functions, each of the previous stage's output.

    spec  = load("specs/mobilenet_v2.yaml")          # YAML -> validated Spec
    spec  = load("specs/vgg.yaml", variant="A-LRN")  # ... a named variant (also phi=, res=, as the CLI)
    graph = lower(spec)                              # Spec -> graph IR with shapes
    model = compile(graph)                           # graph IR -> torch.nn.Module (imports torch)
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx

from .lower import lower
from .scale import apply_scaling
from .spec import Spec, load_spec


def load(source: str | Path, *, overrides: list[str] | None = None, variant: str | None = None,
         phi: float | None = None, res: int | None = None) -> Spec:
    """Read, validate (and, with overrides `path=value`, patch) a spec.

    `variant`, `phi` and `res` are the CLI's `--variant`, `--phi` and `--res`: a named preset of the
    spec's `variants:` table, a compound-scaling coefficient, an input resolution (wins over both).
    With any of them the spec's scaling is applied and the scaled spec returned (its `variants:`
    table is then gone, as in `netspec expand`); without them, the spec as validated.
    """
    spec = load_spec(source, overrides=overrides)
    if variant is None and phi is None and res is None:
        return spec
    return apply_scaling(spec, variant=variant, phi=phi, resolution=res)


def compile(graph: nx.DiGraph, *, seed: int | None = 0):
    """Compile the graph IR into a `torch.nn.Module` (the only step that imports torch)."""
    try:
        from .backends.pytorch import compile_graph
    except ImportError as exc:
        raise ImportError(f"compiling a module needs torch ({exc}); install it: pip install torch") from exc
    return compile_graph(graph, seed=seed)


def build(source: str | Path, *, overrides: list[str] | None = None, variant: str | None = None,
          phi: float | None = None, res: int | None = None, aux: bool = True, seed: int | None = 0):
    """load → lower → compile in one call (the keyword arguments as in `load`)."""
    spec = load(source, overrides=overrides, variant=variant, phi=phi, res=res)
    return compile(lower(spec, aux=aux), seed=seed)


__all__ = ["load", "lower", "compile", "build"]
