"""Compile-time scaling (width, depth, resolution, compound, variants).

Placeholder until the scaling policies land: only the resolution override is applied.
"""
from __future__ import annotations

from .spec import Spec


def apply_scaling(spec: Spec, *, variant: str | None = None, phi: float | None = None,
                  resolution: int | None = None) -> Spec:
    if resolution is not None:
        spec = spec.model_copy(update={"input": spec.input.model_copy(update={"size": (resolution, resolution)})})
    return spec
