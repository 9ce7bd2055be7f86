"""The model zoo page and gallery: generated from the specs, and never stale."""
from __future__ import annotations

import importlib.util

import pytest

from conftest import ROOT, SPECS
from netspec.lower import lower
from netspec.spec import load_spec

DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def gallery():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "tools" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regenerated(gallery, tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    gallery.generate(out, SPECS, svg=False)
    return out


def test_committed_zoo_is_up_to_date(regenerated):
    fresh = (regenerated / "zoo.md").read_text()
    committed = (DOCS / "zoo.md").read_text() if (DOCS / "zoo.md").exists() else ""
    assert committed == fresh, "docs/zoo.md is stale: run `python tools/gallery.py`"


def test_committed_gallery_is_up_to_date(regenerated):
    """DOT is compared, not SVG: SVG bytes vary across Graphviz versions, netspec's DOT does not."""
    fresh = {p.name: p.read_text() for p in (regenerated / "gallery").glob("*.dot")}
    committed = {p.name: p.read_text() for p in (DOCS / "gallery").glob("*.dot")}
    assert sorted(committed) == sorted(fresh), "docs/gallery/ lists other specs: run `python tools/gallery.py`"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"stale diagrams {stale}: run `python tools/gallery.py`"
    missing_svg = [n for n in fresh if not (DOCS / "gallery" / n).with_suffix(".svg").exists()]
    assert not missing_svg, f"no SVG beside {missing_svg}: run `python tools/gallery.py` (needs Graphviz)"


def test_zoo_has_one_row_per_shipped_spec(regenerated):
    specs_table = (regenerated / "zoo.md").read_text().split("## Variants")[0]
    rows = [line for line in specs_table.splitlines() if line.startswith("| [")]
    specs = sorted(SPECS.glob("*.yaml"))
    assert len(rows) == len(specs) > 0
    for row, path in zip(rows, specs):
        assert f"(../specs/{path.name})" in row and f"(gallery/{path.stem}.svg)" in row


def test_zoo_lists_every_variant_with_its_source(regenerated):
    variants_table = (regenerated / "zoo.md").read_text().split("## Variants")[1]
    listed = [line.split(" | ")[:3] for line in variants_table.splitlines() if line.startswith("| [")]
    expected = [(path.name, name, " ".join(v.doc.split()))
                for path in sorted(SPECS.glob("*.yaml")) for name, v in load_spec(path).variants.items()]
    assert [(row[0].split("(../specs/")[1].rstrip(")"), row[1].strip("`"), row[2]) for row in listed] == expected
    assert all(doc for _, _, doc in expected), "every variant names its source in `doc`"


@pytest.mark.parametrize("spec, depth", [
    ("lenet5", 2 + 3),        # conv1, conv2, fc1, fc2, fc3
    ("vgg", 13 + 3),          # default D = VGG-16: the 16 of its name: 13 convs and 3 linear layers
    ("googlenet", 22),        # "22 layers deep when counting only layers with parameters" (Szegedy et al. 2014)
    ("mobilenet_v2", 1 + (2 + 3 * 16) + 2),  # stem conv; block 1 has 2 convs, 16 more have 3; head conv, fc
])
def test_depth_counts_weight_layers_on_the_longest_path(gallery, spec, depth):
    path = SPECS / f"{spec}.yaml"
    if not path.exists():
        pytest.skip(f"{spec}.yaml not shipped")
    assert gallery.network_depth(lower(load_spec(path))) == depth
