"""Hostile or odd input: every case ends in a located error (exit 2), never a hang or a traceback."""
from __future__ import annotations

import pytest

import netspec
from conftest import SPECS
from netspec.cli import main
from netspec.errors import SpecError
from netspec.expr import ExprError, evaluate

HEAD = """
        head:
          - {type: global_avgpool, keepdim: false}
          - {type: linear, out: 10}
        """


def issue_of(path, **kw):
    with pytest.raises(SpecError) as info:
        netspec.lower(netspec.load(path, **kw))
    return info.value.first


@pytest.mark.parametrize("bodies, chain", [
    ({"a": "[{type: b}]", "b": "[{type: a}]"}, "a > b > a"),
    ({"a": "[{type: relu}, {type: a}]"}, "a > a"),
])
def test_blocks_that_contain_themselves(write_spec, bodies, chain):
    blocks = "\n".join(f"          {name}: {{body: {body}}}" for name, body in bodies.items())
    path = write_spec(f"""
        name: r
        input: {{size: 8}}
        blocks:
{blocks}
        stem: [{{type: a}}]
        """)
    issue = issue_of(path)
    assert f"refers to itself ({chain})" in issue.message and issue.loc.path == "stem[0]"


def test_yaml_alias_bomb_is_refused_quickly(write_spec):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write_spec("\n".join(lines) + "\n")
    issue = issue_of(path)
    assert "expands to more than" in issue.message and "aliases" in issue.hint


def test_deeply_nested_yaml(write_spec):
    path = write_spec("name: x\ninput: {size: 8}\nvars: {a: " + "[" * 3000 + "]" * 3000 + "}\n")
    assert issue_of(path).message == "the spec is nested too deeply"


@pytest.mark.parametrize("text", ["$w * 'a' * 1000000000", "[$w] * 100000000", "make_divisible($w, 0)"])
def test_expressions_are_bounded(text):
    with pytest.raises(ExprError):
        evaluate(text, {"w": 8})


def test_merge_keys_may_be_overridden_but_keys_not_repeated(write_spec):
    base = """
        name: m
        input: {channels: 3, size: 16}
        stages:
          - blocks:
              - &blk {type: conv_bn_act, out: 8}
              - {<<: *blk, out: 16}
        """ + HEAD
    G = netspec.lower(netspec.load(write_spec(base)))
    assert G.nodes["stages.0.blocks.1.conv"]["attrs"]["out"] == 16
    issue = issue_of(write_spec(base.replace("{<<: *blk, out: 16}", "{<<: *blk, out: 16, out: 4}")))
    assert issue.message == "duplicate key 'out'"


def test_duplicate_stage_and_entry_names(write_spec):
    text = """
        name: d
        input: {channels: 3, size: 16}
        stages:
          - {name: s1, blocks: [{type: conv_bn_act, name: a, out: 8}]}
          - {name: s2, blocks: [{type: conv_bn_act, name: b, out: 8}]}
        """ + HEAD
    issue = issue_of(write_spec(text.replace("name: s2", "name: s1")))
    assert (issue.loc.path, issue.message) == ("stages[1].name", "duplicate stage name 's1'")
    issue = issue_of(write_spec(text.replace("name: a, out: 8}]", "name: a, out: 8}, {type: relu, name: a}]")))
    assert issue.message.startswith("duplicate name 'a'") and issue.loc.path == "stages[0].blocks[1].name"
    # a later part may reuse a name (stem.conv and head.conv): references then see the later one
    netspec.lower(netspec.load(write_spec(text.replace("name: b", "name: a"))))


@pytest.mark.parametrize("snippet, path", [
    ("{type: conv2d, out: true, kernel: 3}", "stages[0].blocks[0].out"),
    ("{type: conv2d, out: 8, kernel: 3.0}", "stages[0].blocks[0].kernel"),
    ("{type: conv_bn_act, out: 8, bias: 1}", "stages[0].blocks[0].bias"),
])
def test_booleans_and_floats_are_not_silently_integers(write_spec, snippet, path):
    issue = issue_of(write_spec(f"""
        name: b
        input: {{channels: 3, size: 16}}
        stages:
          - blocks: [{snippet}]
        """ + HEAD))
    assert issue.loc.path == path


def test_absurd_input_size(write_spec):
    issue = issue_of(write_spec("name: x\ninput: {size: 99999999999999999999}\nhead: [{type: flatten}]\n"))
    assert issue.loc.path == "input.size" and "65536" in issue.message


@pytest.mark.parametrize("override, message", [
    ("name.sub=1", "'name' is a value, not a mapping or list"),
    ("stages.x=1", "is a list; index it with a number"),
    ("num_classes=[", "is not valid YAML"),
])
def test_bad_set_overrides(override, message):
    with pytest.raises(SpecError) as info:
        netspec.load(SPECS / "lenet5.yaml", overrides=[override])
    assert message in info.value.first.message and info.value.first.loc.file == "--set"


def test_set_values_are_blamed_on_the_command_line():
    issue = issue_of(SPECS / "lenet5.yaml", overrides=["num_classes=0"])
    assert issue.loc.file == "--set num_classes=0" and issue.loc.path == "num_classes"


def test_commands_never_overwrite_and_never_trace_back(tmp_path, capsys):
    spec = tmp_path / "net.yaml"
    spec.write_text((SPECS / "lenet5.yaml").read_text())
    before = spec.read_text()
    assert main(["expand", str(spec), "-o", str(spec)]) == 2
    assert spec.read_text() == before
    (tmp_path / "s.json").write_text("mine")
    assert main(["schema", "--out", str(tmp_path / "s.json")]) == 2
    assert (tmp_path / "s.json").read_text() == "mine"
    for argv in (["render", str(spec), "-o", str(tmp_path / "no" / "x.svg")],
                 ["expand", str(spec), "-o", str(tmp_path / "no" / "x.yaml")],
                 ["schema", "--out", str(tmp_path / "no" / "s.json")]):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not overwriting" in err and "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["analyze", str(SPECS / "lenet5.yaml"), "--batch", "0"],
    ["validate", str(SPECS / "efficientnet.yaml"), "--phi", "nan"],
    ["validate", str(SPECS / "efficientnet.yaml"), "--phi", "1e9"],
    ["validate", str(SPECS / "lenet5.yaml"), "--res", "0"],
])
def test_bad_numeric_arguments_are_usage_errors(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_scale_search_refuses_an_unbounded_grid(capsys):
    assert main(["scale", str(SPECS / "lenet5.yaml"), "--search", "--target", "1000", "--grid", "0.5"]) == 2
    assert "coarser --grid" in capsys.readouterr().err


def test_named_repeated_blocks_count_once_each(write_spec):
    from netspec.analysis import costs

    G = netspec.lower(netspec.load(write_spec("""
        name: n
        input: {channels: 3, size: 16}
        stages:
          - blocks: [{type: conv_bn_act, name: c, out: 8, repeat: 3}, {type: relu}]
        """ + HEAD)))
    assert [r.blocks for r in costs.parts(G) if r.scope == "stages.0"] == [4]


@pytest.mark.parametrize("text", ["+".join(["$w"] * 5000), "+".join(["$w"] * 120), "-" * 900 + "$w"])
def test_long_or_deep_expressions_are_refused_not_crashed(text):
    with pytest.raises(ExprError, match="characters long|nested too deeply|cannot parse"):
        evaluate(text, {"w": 8})
