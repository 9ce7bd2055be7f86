"""docs/porting.md runs as shown: its commands print what the page shows, its Python snippets print
the output blocks that follow them, and the YAML it quotes is the shipped block library and spec."""
from __future__ import annotations

import re
import runpy
import shlex

import pytest

from conftest import ROOT
from netspec.cli import main

GUIDE = (ROOT / "docs" / "porting.md").read_text()
# every fenced block with its language: ("console" | "python" | "yaml" | "", text)
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", GUIDE, flags=re.S)


def shown_lines_appear_in_order(shown: list[str], actual: str) -> None:
    """Each shown line is a line of the actual output, in the same order ('...' skips lines)."""
    lines = [line.rstrip() for line in actual.splitlines()]
    at = 0
    for line in shown:
        if line.strip() == "...":
            continue
        assert line.rstrip() in lines[at:], f"not printed (in this order): {line!r}\n--- actual:\n{actual}"
        at = lines.index(line.rstrip(), at) + 1


def console_commands() -> list[tuple[str, list[str]]]:
    out = []
    for lang, text in BLOCKS:
        if lang != "console":
            continue
        for chunk in re.split(r"^\$ ", text, flags=re.M)[1:]:
            command, *shown = chunk.rstrip("\n").split("\n")
            out.append((command, shown))
    return out


COMMANDS = console_commands()


def test_the_guide_has_commands_and_snippets():
    assert len(COMMANDS) >= 3 and sum(lang == "python" for lang, _ in BLOCKS) >= 2


@pytest.mark.parametrize("command, shown", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_commands_print_what_the_guide_shows(command, shown, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)
    assert argv[0] == "netspec"
    assert main(argv[1:]) == 0
    shown_lines_appear_in_order(shown, capsys.readouterr().out)


def python_snippets() -> list[tuple[str, str]]:
    """(code, the plain output block right after it)."""
    out = []
    for k, (lang, text) in enumerate(BLOCKS):
        if lang == "python":
            following = BLOCKS[k + 1] if k + 1 < len(BLOCKS) else ("", "")
            out.append((text, following[1] if following[0] == "" else ""))
    return out


SNIPPETS = python_snippets()


@pytest.mark.parametrize("code, printed", SNIPPETS, ids=[f"snippet{k}" for k in range(len(SNIPPETS))])
def test_python_snippets_print_what_the_guide_shows(code, printed, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    runpy.run_path(str(script), run_name="__main__")
    shown_lines_appear_in_order(printed.splitlines(), capsys.readouterr().out)


@pytest.mark.parametrize("source, key", [("netspec/blocks/resnet.yaml", "resnet_bottleneck:"),
                                         ("specs/resnet.yaml", "variants:"),
                                         ("netspec/blocks/convnext.yaml", "convnext_block:"),
                                         ("specs/convnext.yaml", "drop_path_counts:")])
def test_quoted_yaml_is_the_shipped_file(source, key):
    """The YAML the guide quotes is a (line-by-line, in-order) excerpt of the file it comes from."""
    text = (ROOT / source).read_text()
    lines = text.splitlines()
    quoted = [t for lang, t in BLOCKS if lang == "yaml"]
    block = next(t for t in quoted if key in t.splitlines()[0] or key in t)
    at = 0
    for line in block.splitlines():
        assert line in lines[at:], f"{line!r} is not in {source} (or out of order)"
        at = lines.index(line, at) + 1
