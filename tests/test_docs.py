"""The documentation is true to the code: its examples build, generated pages are fresh."""
from __future__ import annotations

import re
import sys

import netspec
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))


def yaml_blocks(path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S)


def test_spec_language_example_builds(tmp_path):
    example = yaml_blocks(ROOT / "docs" / "spec-language.md")[0]
    path = tmp_path / "tiny_resnet.yaml"
    path.write_text(example)
    G = netspec.lower(netspec.load(path))
    assert G.graph["name"] == "tiny_resnet"
    assert set(G.graph["outputs"]) == {"logits", "aux"}
    assert G.nodes[G.graph["outputs"]["logits"]]["shape"] == (10,)


def test_template_example_is_a_valid_block(tmp_path):
    template = next(b for b in yaml_blocks(ROOT / "docs" / "spec-language.md") if b.startswith("blocks:\n  mbconv_lite:"))
    body = "\n".join("  " + line for line in template.splitlines()[1:])
    path = tmp_path / "t.yaml"
    path.write_text("name: t\ninput: {size: 16}\nnum_classes: 10\nblocks:\n" + body + "\n"
                    "stages:\n  - blocks: [{type: mbconv_lite, out: 3}, {type: mbconv_lite, out: 8, stride: 2}]\n"
                    "head: [{type: flatten}, {type: linear, out: $num_classes}]\n")
    G = netspec.lower(netspec.load(path))
    assert "stages.0.blocks.0.add" in G and "stages.0.blocks.1.add" not in G


def test_reference_page_is_generated_from_the_code():
    import gen_reference

    committed = (ROOT / "docs" / "reference.md").read_text()
    assert committed == gen_reference.render(), "docs/reference.md is stale: run python tools/gen_reference.py"


def test_compare_page_shows_what_the_commands_print():
    """docs/compare.md pastes real `netspec compare` output; refresh it with tools/refresh_console.py."""
    import refresh_console

    page = ROOT / "docs" / "compare.md"
    text = page.read_text()
    assert len(refresh_console.BLOCK.findall(text)) >= 4
    assert refresh_console.refresh(text) == text, \
        "docs/compare.md is stale: run python tools/refresh_console.py docs/compare.md"
