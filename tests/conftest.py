"""Shared test helpers: paths, the reference figures, writing small specs."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
# The reference figures live beside the checkout (../shared/reference), as in CI.
FIGURES_PATH = ROOT.parent / "shared" / "reference" / "figures.json"


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
