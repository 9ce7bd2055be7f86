"""Shared test helpers: paths, the reference figures, writing small specs."""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

# Under pytest-xdist each worker process gets one torch thread, so N workers use N cores
# instead of N x cores fighting over them (read by torch when it starts its thread pool).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
# The reference figures (with their sources: tests/reference/README.md) live in the repository.
FIGURES_PATH = ROOT / "tests" / "reference" / "figures.json"


@pytest.fixture(scope="session")
def figures() -> dict:
    if not FIGURES_PATH.exists():
        pytest.fail(f"reference figures not found at {FIGURES_PATH}")
    return json.loads(FIGURES_PATH.read_text())


@pytest.fixture
def write_spec(tmp_path):
    """Write a dedented YAML spec to a temp file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write
