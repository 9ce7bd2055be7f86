"""Addressing repeats (`f.0`, `f.-1`, `f.*`, `input.*`) and the hints for bare names in expressions.

The densely connected toy block of docs/spec-language.md is compared with a hand-written torch
module: same parameter shapes in the same order, same outputs after copying the weights.
"""
from __future__ import annotations

import re

import pytest

import netspec
from conftest import ROOT
from netspec.analysis import costs

DENSE = """
    name: dense_toy
    input: {channels: 8, size: 16}
    num_classes: 10
    blocks:
      dense_unit:
        doc: DenseNet-style layer - concat of all it reads, BN-ReLU-conv3x3 to `growth` new channels.
        params: {growth: {type: int}}
        body:
          - {type: concat, name: cat, inputs: [input.*]}
          - {type: batchnorm, name: norm}
          - {type: relu, name: relu}
          - {type: conv2d, name: conv, out: $growth, kernel: 3, padding: 1, bias: false}
    stem:
      - {type: conv2d, name: conv0, out: 16, kernel: 3, padding: 1, bias: false}
    stages:
      - name: dense1
        blocks:
          - {type: dense_unit, name: f, growth: 4, repeat: 3, inputs: [conv0, f.*]}
          - {type: concat, name: out, inputs: [conv0, f.*]}
    head:
      - {type: global_avgpool, keepdim: false}
      - {type: linear, name: fc, out: $num_classes}
    """


def lower(write_spec, text: str):
    return netspec.lower(netspec.load(write_spec(text)))


def error(write_spec, text: str) -> str:
    with pytest.raises(netspec.SpecError) as err:
        lower(write_spec, text)
    return str(err.value)


def test_the_docs_dense_example_is_this_one():
    """docs/spec-language.md shows this very spec (so what the docs show is what is tested)."""
    doc = (ROOT / "docs" / "spec-language.md").read_text()
    body = "\n".join(line[4:] for line in DENSE.strip("\n").splitlines())
    assert body.strip() in doc


def test_dense_connectivity_gathers_every_earlier_repeat(write_spec):
    G = lower(write_spec, DENSE)
    f = "stages.dense1.blocks.f"
    assert G.nodes[f"{f}.0.cat"]["inputs"] == ["stem.conv0"]
    assert G.nodes[f"{f}.2.cat"]["inputs"] == ["stem.conv0", f"{f}.0.conv", f"{f}.1.conv"]
    assert G.nodes["stages.dense1.blocks.out"]["inputs"] == ["stem.conv0", f"{f}.0.conv", f"{f}.1.conv",
                                                               f"{f}.2.conv"]
    assert G.nodes["stages.dense1.blocks.out"]["shape"] == (16 + 3 * 4, 16, 16)
    # each layer reads 16, 20, 24 channels: BN (2 c) + 3x3 conv (9 c * 4)
    assert costs.total_params(G) == 9 * 8 * 16 + sum(2 * c + 36 * c for c in (16, 20, 24)) + 28 * 10 + 10


def test_dense_toy_equals_a_hand_written_torch_module(write_spec):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class DenseLayer(nn.Module):
        def __init__(self, c_in, growth):
            super().__init__()
            self.norm, self.relu = nn.BatchNorm2d(c_in), nn.ReLU()
            self.conv = nn.Conv2d(c_in, growth, 3, padding=1, bias=False)

        def forward(self, features):
            return self.conv(self.relu(self.norm(torch.cat(features, 1))))

    class DenseToy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv0 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
            self.layers = nn.ModuleList(DenseLayer(16 + 4 * k, 4) for k in range(3))
            self.fc = nn.Linear(28, 10)

        def forward(self, x):
            features = [self.conv0(x)]
            for layer in self.layers:
                features.append(layer(features))
            return self.fc(torch.cat(features, 1).mean((2, 3)))

    ref, ours = DenseToy(), netspec.compile(lower(write_spec, DENSE))
    theirs = list(ref.parameters()) + list(ref.buffers())
    mine = list(ours.parameters()) + list(ours.buffers())
    assert [t.shape for t in theirs] == [t.shape for t in mine]
    with torch.no_grad():
        for src, dst in zip(theirs, mine):
            if src.is_floating_point():
                src.copy_(torch.randn_like(src).abs() + 0.5)
            dst.copy_(src)
    x = torch.randn(2, 8, 16, 16)
    for mode in (False, True):
        ref.train(mode), ours.train(mode)
        with torch.no_grad():
            assert torch.allclose(ref(x), ours(x), rtol=1e-5, atol=1e-5)


def test_single_repeats_by_index_from_either_end(write_spec):
    G = lower(write_spec, """
        name: idx
        input: {channels: 3, size: 8}
        stem:
          - {type: conv2d, name: f, out: 4, kernel: 1, repeat: 3}
          - {type: concat, name: a, inputs: [f.0, f.-1, "f[-2]", f]}
        """)
    assert G.nodes["stem.a"]["inputs"] == ["stem.f.0", "stem.f.2", "stem.f.1", "stem.f.2"]


def test_aux_heads_attach_at_one_repeat(write_spec):
    G = lower(write_spec, """
        name: aux_at
        input: {channels: 3, size: 8}
        stem:
          - {type: conv2d, name: f, out: 4, kernel: 1, repeat: 3}
        head: [{type: global_avgpool, keepdim: false}, {type: linear, out: 2}]
        aux_heads:
          - {name: early, at: f.0, layers: [{type: global_avgpool, keepdim: false}]}
          - {name: late, at: f.-2, layers: [{type: global_avgpool, keepdim: false}]}
        """)
    assert G.nodes["aux.early.0"]["inputs"] == ["stem.f.0"]
    assert G.nodes["aux.late.0"]["inputs"] == ["stem.f.1"]
    text = error(write_spec, """
        name: aux_at
        input: {channels: 3, size: 8}
        stem:
          - {type: conv2d, name: f, out: 4, kernel: 1, repeat: 3}
        aux_heads:
          - {name: early, at: f.3, layers: [{type: global_avgpool, keepdim: false}]}
        """)
    assert "spec.yaml:6:" in text and "attached at unknown point 'f.3'" in text


def test_an_entry_reads_its_own_previous_repeats(write_spec):
    """Inside f, `f.*` is the repeats before this one; a later entry reads one of them by index."""
    G = lower(write_spec, """
        name: own
        input: {channels: 4, size: 8}
        stem:
          - {type: conv2d, name: c, out: 4, kernel: 1}
          - {type: conv2d, name: d, out: 4, kernel: 1}
          - {type: add, name: f, inputs: [c, d, f.*], repeat: 3}
        """)
    assert G.nodes["stem.f.0"]["inputs"] == ["stem.c", "stem.d"]
    assert G.nodes["stem.f.2"]["inputs"] == ["stem.c", "stem.d", "stem.f.0", "stem.f.1"]
    G = lower(write_spec, """
        name: own
        input: {channels: 4, size: 8}
        stem:
          - {type: conv2d, name: c, out: 4, kernel: 1}
          - {type: conv2d, name: g, out: 4, kernel: 1, repeat: 3, inputs: [c]}
          - {type: add, name: h, inputs: [c, g.0]}
        """)
    # without a self-reference, later repeats chain as before
    assert [G.nodes[f"stem.g.{k}"]["inputs"] for k in range(3)] == [["stem.c"], ["stem.g.0"], ["stem.g.1"]]
    assert G.nodes["stem.h"]["inputs"] == ["stem.c", "stem.g.0"]


REPEAT_ERRORS = [
    # (inputs, message, line of the entry)
    ("[f.3]", "'f.3': repeat 3 of 'f' is out of range: it has 3 repeats (f.0 .. f.2)", 5),
    ("[f.-4]", "'f.-4': repeat -4 of 'f' is out of range", 5),
    ("[g.*]", "unknown input 'g.*'", 5),
    ("[ff.0]", "unknown input 'ff.0'", 5),
]


@pytest.mark.parametrize("inputs, message, line", REPEAT_ERRORS, ids=[r[0] for r in REPEAT_ERRORS])
def test_bad_repeat_references_are_located(write_spec, inputs, message, line):
    text = error(write_spec, f"""
        name: bad
        input: {{channels: 3, size: 8}}
        stem:
          - {{type: conv2d, name: f, out: 4, kernel: 1, repeat: 3}}
          - {{type: concat, name: a, inputs: {inputs}}}
        """)
    assert message in text
    assert re.search(rf"spec\.yaml:{line}:\d+: stem\[1\]\.inputs", text), text
    if "ff" in inputs:
        assert "did you mean 'f'?" in text


@pytest.mark.parametrize("ref", ["f.-1", "f.0", "'f[-1]'"])
def test_an_entry_cannot_index_its_own_repeats(write_spec, ref):
    text = error(write_spec, f"""
        name: bad
        input: {{channels: 3, size: 8}}
        stem:
          - {{type: conv2d, name: f, out: 3, kernel: 1, inputs: [input, {ref}], repeat: 2}}
        """)
    assert "spec.yaml:4:" in text and "stem[0].inputs" in text
    assert "an entry cannot read one of its own repeats by index" in text and "'f.*' gathers" in text


def test_a_bare_name_still_means_the_earlier_entry(write_spec):
    """A later part may reuse a name; `inputs: conv` inside head.conv reads stem.conv, as before."""
    G = lower(write_spec, """
        name: shadow
        input: {channels: 3, size: 8}
        stem: [{type: conv2d, name: conv, out: 4, kernel: 1}, {type: relu}]
        head: [{type: conv2d, name: conv, out: 4, kernel: 1, inputs: conv, repeat: 2}]
        """)
    assert G.nodes["head.conv.0"]["inputs"] == ["stem.conv"]
    assert G.nodes["head.conv.1"]["inputs"] == ["head.conv.0"]


def test_an_empty_gather_is_an_error(write_spec):
    text = error(write_spec, """
        name: bad
        input: {channels: 3, size: 8}
        stem:
          - {type: concat, name: f, inputs: [f.*], repeat: 2}
        """)
    assert "spec.yaml:4:" in text and "name no tensor" in text


# --------------------------------------------------------------------------- bare names in expressions

HINT_SPEC = """
    name: hints
    input: {{channels: 8, size: 8}}
    vars: {{down: false, width: 8}}
    blocks:
      res:
        params: {{down: {{type: bool, default: false}}}}
        body:
          - {{type: conv2d, name: c2, out: 8, kernel: 1}}
          - {{type: add, name: add, inputs: "{inputs}"}}
    stem:
      - {{type: res}}
      - {{type: conv2d, name: c3, out: 8, kernel: 1, when: "{when}"}}
    """


OK_WHEN = "$width > 0"
OK_INPUTS = "['input', 'c2' if $down else 'prev']"


@pytest.mark.parametrize("inputs, when, hint", [
    # the case: an entry name inside an expression is a quoted string
    ("[c2, 'c2' if $down else 'input']", OK_WHEN,
     "'c2' is an entry name: inside an expression write it as a quoted string, 'c2'"),
    # a variable: dollar sign
    (OK_INPUTS, "width > 0 and not $down", "'width' is a variable: variables are written with a dollar sign, $width"),
    # neither: the closest of both kinds
    ("[c2x if not $down else 'input', prev]", OK_WHEN, "did you mean 'c2' (an entry name)?"),
    (OK_INPUTS, "widht > 0 and not $down", "did you mean $width (a variable)?"),
])
def test_bare_names_get_the_right_hint(write_spec, inputs, when, hint):
    text = error(write_spec, HINT_SPEC.format(inputs=inputs, when=when))
    assert "bare name" in text and hint in text
    if inputs == OK_INPUTS:  # at top level: the entry's own key
        assert re.search(r"spec\.yaml:12:\d+: stem\[1\]\.when", text), text
    else:                        # inside a block: the call site, and the template entry's line
        assert "spec.yaml:11:" in text and "in block res" in text and "spec.yaml:9:" in text, text
