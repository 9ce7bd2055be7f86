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


def compile(graph: nx.DiGraph, *, seed: int | None = 0, optimize: bool = False, channels_last: bool | None = None,
            freeze: bool = False, torch_compile: bool = False):
    """Compile the graph IR into a `torch.nn.Module` (the only step that imports torch).

    `optimize=True` returns the inference-only module (docs/performance.md): batch norm folded,
    dropout and identities removed, in-place activations, channels-last memory format (unless
    `channels_last=False`); optionally frozen with `torch.jit.freeze` or wrapped in `torch.compile`. To optimise a trained
    model, call `netspec.backends.torch_optimize.optimize_module(model)`."""
    try:
        from .backends.pytorch import compile_graph
    except ImportError as exc:
        raise ImportError(f"compiling a module needs torch ({exc}); install it: pip install torch") from exc
    model = compile_graph(graph, seed=seed)
    if not optimize:
        if channels_last is not None or freeze or torch_compile:
            raise ValueError("channels_last, freeze and torch_compile apply to the optimised build: "
                             "pass optimize=True")
        return model
    from .backends.torch_optimize import optimize_module
    return optimize_module(model, channels_last=channels_last is not False, freeze=freeze, compile=torch_compile)


def build(source: str | Path, *, overrides: list[str] | None = None, aux: bool = True, seed: int | None = 0,
          optimize: bool = False, channels_last: bool | None = None, freeze: bool = False,
          torch_compile: bool = False):
    """load → lower → compile in one call (`optimize` and its options as in `compile`)."""
    return compile(lower(load(source, overrides=overrides), aux=aux and not optimize), seed=seed, optimize=optimize,
                   channels_last=channels_last, freeze=freeze, torch_compile=torch_compile)


__all__ = ["load", "lower", "compile", "build"]
