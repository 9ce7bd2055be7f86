"""Issue 18's language rules: expression functions, repeat variables, `defaults:` for a spec's own
blocks and evaluated in the entry's scope, the drop-path rules, and shadowing of library blocks."""
from __future__ import annotations

import math

import pytest

import netspec
from netspec.cli import main
from netspec.errors import SpecError
from netspec.expr import ExprError, evaluate

HEAD = """
        head:
          - {type: global_avgpool, name: pool, keepdim: false}
          - {type: linear, name: fc, out: $num_classes}
        """


def graph(write_spec, text, **kw):
    return netspec.lower(netspec.load(write_spec(text)), **kw)


def error_of(write_spec, text) -> str:
    with pytest.raises(SpecError) as exc:
        graph(write_spec, text)
    return str(exc.value)


@pytest.mark.parametrize("text, expected", [
    ("log(8)", math.log(8)), ("log(8, 2)", 3.0), ("log2(1024)", 10.0), ("log10(1000)", 3.0),
    ("exp(1)", math.e), ("sqrt(16)", 4.0), ("ceil(2.1)", 3), ("floor(2.9)", 2), ("abs(-3)", 3),
    ("min(3, 1, 2)", 1), ("max([4, 7])", 7), ("sum([1, 2, 3])", 6), ("len([1, 2, 3])", 3),
    # RegNetX-400MF's first block width: 8 * round(w0 * wm**round(log(w/w0)/log(wm)) / 8)
    ("8 * round(24 * 2.54 ** round(log((0 * 24.48 + 24) / 24) / log(2.54)) / 8)", 24),
])
def test_expression_functions(text, expected):
    assert evaluate(text, {}) == pytest.approx(expected)


@pytest.mark.parametrize("text, message", [
    ("log(0)", "bad call"), ("log(-1)", "bad call"), ("sqrt(-1)", "bad call"), ("log2('a')", "takes a number"),
    ("exp(1000)", "larger than"), ("exp(40)", "larger than"), ("log(true)", "takes a number"),
    ("sum(3)", "takes a list"), ("len(3)", "takes a list"), ("sum([[1], [2]])", "bad call"),
])
def test_expression_functions_refuse_bad_arguments(text, message):
    with pytest.raises(ExprError, match=message):
        evaluate(text, {})


def test_repeat_index_and_count(write_spec):
    G = graph(write_spec, """
        name: r
        input: {channels: 3, size: 16}
        num_classes: 10
        stages:
          - blocks:
              - {type: conv2d, out: "8 * ($i + 1)", kernel: 1, repeat: 3}
              - {type: conv2d, out: "$n", kernel: 1, repeat: 2}
              - {type: conv2d, out: "4 + $i", kernel: 1}
        """ + HEAD)
    outs = [d["shape"][0] for n, d in G.nodes(data=True) if d["op"] == "conv2d"]
    assert outs == [8, 16, 24, 2, 2, 4]


def test_a_variable_named_i_or_n_keeps_its_meaning(write_spec):
    # a spec written before repeat variables existed may have `vars: {n: ...}`: it keeps its value
    G = graph(write_spec, """
        name: r
        input: {channels: 3, size: 16}
        num_classes: 10
        vars: {n: 5}
        stages:
          - blocks:
              - {type: conv2d, out: $n, kernel: 1, repeat: 2}
        """ + HEAD)
    assert [d["shape"][0] for n, d in G.nodes(data=True) if d["op"] == "conv2d"] == [5, 5]


def test_repeat_index_reaches_a_block_through_its_parameters(write_spec):
    G = graph(write_spec, """
        name: r
        input: {channels: 3, size: 32}
        num_classes: 10
        stages:
          - blocks:
              - {type: conv_bn_act, out: 8, stride: "2 if $i == 1 else 1", repeat: 3}
        """ + HEAD)
    convs = [n for n, d in G.nodes(data=True) if d["op"] == "conv2d"]
    # only the first repeat keeps `stride` (the documented rule): repeat 1's expression is overridden
    assert [G.nodes[c]["attrs"]["stride"] for c in convs] == [(1, 1)] * 3


OWN_BLOCK = """
        name: own
        input: {channels: 3, size: 16}
        num_classes: 10
        vars: {gw: 4, bn_m: 0.01}
        defaults:
          grouped: {group_width: $gw}
          batchnorm: {momentum: $bn_m}
        blocks:
          grouped:
            params: {out: {type: int}, group_width: {type: int}}
            body:
              - {type: conv2d, name: conv, out: $out, kernel: 3, padding: 1, groups: "$out // $group_width"}
              - {type: batchnorm, name: bn}
        stem:
          - {type: conv2d, name: conv0, out: 16, kernel: 1}
          - {type: batchnorm, name: bn0}
        stages:
          - blocks:
              - {type: grouped, out: 16}
              - {type: grouped, out: 16, group_width: 8}
        """ + HEAD


def test_defaults_supply_required_parameters_of_the_specs_own_blocks(write_spec):
    G = graph(write_spec, OWN_BLOCK)
    assert G.nodes["stages.0.blocks.0.conv"]["attrs"]["groups"] == 4
    assert G.nodes["stages.0.blocks.1.conv"]["attrs"]["groups"] == 2  # written on the entry: wins


def test_expressions_in_defaults_are_evaluated(write_spec):
    G = graph(write_spec, OWN_BLOCK)
    assert G.nodes["stem.bn0"]["attrs"]["momentum"] == 0.01
    assert G.nodes["stages.0.blocks.0.bn"]["attrs"]["momentum"] == 0.01


def test_defaults_are_evaluated_in_the_entrys_scope(write_spec):
    # `$in` in a default is the input of the entry it applies to; `$out` a parameter of the block around it
    G = graph(write_spec, """
        name: scope
        input: {channels: 3, size: 16}
        num_classes: 10
        defaults:
          conv2d: {out: "$in * 2", kernel: 1}
        stem:
          - {type: conv2d, name: a}
          - {type: conv2d, name: b}
        """ + HEAD)
    assert G.nodes["stem.a"]["shape"][0] == 6 and G.nodes["stem.b"]["shape"][0] == 12


def test_an_error_in_a_default_points_at_the_defaults_line(write_spec):
    text = OWN_BLOCK.replace("momentum: $bn_m", "momentum: $bn_mom")
    message = error_of(write_spec, text)
    assert "defaults.batchnorm.momentum" in message and "unknown variable '$bn_mom'" in message
    assert ":7:" in message.splitlines()[0]  # the defaults line, not stem[0]
    assert "applied to the entry at" in message and "stem[1]" in message


def test_a_default_of_the_wrong_type_points_at_the_defaults_line(write_spec):
    text = OWN_BLOCK.replace("momentum: $bn_m", "momentum: \"$bn_m > 0\"")
    message = error_of(write_spec, text)
    assert "defaults.batchnorm.momentum" in message and "a default, applied to the entry" in message


def test_a_default_block_parameter_of_the_wrong_type_points_at_the_defaults_line(write_spec):
    text = OWN_BLOCK.replace("group_width: $gw}", "group_width: \"'four' if $gw else 1\"}")
    message = error_of(write_spec, text)
    assert "defaults.grouped.group_width" in message


DROP = """
        name: dp
        input: {channels: 3, size: 16}
        num_classes: 10
        drop_path_rate: 0.3
        {rules}
        blocks:
          res:
            params: {}
            body:
              - {type: conv2d, name: conv, out: $in, kernel: 1}
              - {type: drop_path, name: dp, p: $drop_path}
              - {type: add, inputs: [input, prev]}
        stages:
          - blocks:
              - {type: res, repeat: 2}
              - {type: conv2d, out: 3, kernel: 1}
          - blocks:
              - {type: res, repeat: 2}
        """ + HEAD


@pytest.mark.parametrize("rules, expected", [
    ("", [0.0, 0.3 / 5, 0.3 * 3 / 5, 0.3 * 4 / 5]),  # every stage entry counts, i / n
    ("drop_path_counts: blocks", [0.0, 0.3 / 4, 0.3 * 2 / 4, 0.3 * 3 / 4]),
    ("{drop_path_counts: blocks, drop_path_spread: index/(total-1)}".strip("{}").replace(", ", "\n        "),
     [0.0, 0.1, 0.2, 0.3]),  # torchvision's ConvNeXt: the last block gets the full rate
])
def test_drop_path_rules(write_spec, rules, expected):
    G = graph(write_spec, DROP.replace("{rules}", rules))
    ps = [d["attrs"]["p"] for n, d in G.nodes(data=True) if d["op"] == "drop_path"]
    assert ps == pytest.approx(expected)


SHADOW = """
        name: shadow
        input: {channels: 3, size: 16}
        num_classes: 10
        blocks:
          conv_bn_act:
            params: {width: {type: int}}
            body:
              - {type: conv2d, name: only_conv, out: $width, kernel: 1}
        stem:
          - {type: conv_bn_act, width: 8}
        stages:
          - blocks:
              - {type: mbconv, out: 8, expand: 1, kernel: 3}
        """ + HEAD


def test_a_specs_block_may_shadow_a_library_block(write_spec):
    G = graph(write_spec, SHADOW)
    assert G.nodes["stem.0.only_conv"]["shape"] == (8, 16, 16)
    # the library's mbconv keeps using the library's conv_bn_act (conv + bn + act)
    inside = [d["op"] for n, d in G.nodes(data=True) if n.startswith("stages.0.blocks.0.")]
    assert "batchnorm" in inside and not any("only_conv" in n for n in G if n.startswith("stages."))


def test_validate_notes_the_shadowing(write_spec, capsys):
    assert main(["validate", str(write_spec(SHADOW))]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "shadows the library block" in err and "blocks.conv_bn_act" in err


def test_shadowing_a_primitive_op_stays_an_error(write_spec):
    text = SHADOW.replace("conv_bn_act:", "relu:").replace("{type: conv_bn_act, width: 8}", "{type: relu}")
    message = error_of(write_spec, text)
    assert "shadows the primitive op 'relu'" in message


DERIVED = """
        name: derived
        input: {channels: 3, size: 32}
        num_classes: 10
        vars:
          depth: 5
          widths: {for: j, in: "range($depth)", value: "8 * (1 + $j // 2)"}
          stage_list: runs($widths)
        stem:
          - {type: conv2d, name: conv, out: 8, kernel: 3, padding: 1}
        stages:
          - name: s
            for: [width, blocks]
            in: $stage_list
            vars: {out: $width * 2}
            blocks:
              - {type: conv2d, out: $out, kernel: 3, padding: 1, repeat: $blocks}
        """ + HEAD


def test_list_builder_and_runs():
    env = {"depth": 5}
    from netspec.expr import substitute
    widths = substitute({"for": "j", "in": "range($depth)", "value": "8 * (1 + $j // 2)"}, env)
    assert widths == [8, 8, 16, 16, 24]
    assert evaluate("runs($w)", {"w": widths}) == [[8, 2], [16, 2], [24, 1]]
    assert evaluate("range(2, 5)", {}) == [2, 3, 4]


def test_derived_stages_from_a_list(write_spec):
    G = graph(write_spec, DERIVED)
    assert G.graph["stages"] == ["stages.s1", "stages.s2", "stages.s3"]
    convs = [(n, d["shape"][0]) for n, d in G.nodes(data=True) if d["op"] == "conv2d" and n.startswith("stages.")]
    assert convs == [("stages.s1.blocks.0", 16), ("stages.s1.blocks.1", 16), ("stages.s2.blocks.0", 32),
                     ("stages.s2.blocks.1", 32), ("stages.s3.blocks.0", 48)]


@pytest.mark.parametrize("old, new, where, message", [
    ('in: $stage_list', 'in: $stage_lst', "stages[0].in", "unknown variable '$stage_lst'"),
    ('in: $stage_list', 'in: $depth', "stages[0].in", "derived stages need a list"),
    ('for: [width, blocks]', 'for: [width, blocks, extra]', "stages[0].in", "does not unpack into width, blocks, extra"),
    ('vars: {out: $width * 2}', 'vars: {out: $widht * 2}', "stages[0].vars.out", "unknown variable '$widht'"),
    ('value: "8 * (1 + $j // 2)"', 'value: "8 * (1 + $k // 2)"', "vars.widths", "unknown variable '$k'"),
    ('in: "range($depth)"', 'in: "range(10 ** 6)"', "vars.widths", "longer than"),
    ('in: "range($depth)"', 'in: {for: i, in: "range(3)", value: $i}', "vars.widths", "do not nest"),
    ('            in: $stage_list\n', '', "stages[0]", "need both `for`"),
])
def test_derived_stage_errors_are_located(write_spec, old, new, where, message):
    text = DERIVED.replace(old, new)
    assert text != DERIVED
    error = error_of(write_spec, text)
    assert message in error
    located = [line for line in error.splitlines() if "spec.yaml:" in line]
    assert located and f": {where}:" in located[0], located


def test_derived_stages_are_bounded(write_spec):
    text = DERIVED.replace("value: \"8 * (1 + $j // 2)\"", "value: $j").replace("depth: 5", "depth: 2000")
    assert "derived stages (at most 1,000)" in error_of(write_spec, text)


def test_expand_keeps_entries_that_read_the_repeat_index_rolled(write_spec, capsys):
    path = write_spec("""
        name: r
        input: {channels: 3, size: 16}
        num_classes: 10
        stages:
          - blocks:
              - {type: conv2d, out: "8 * ($i + 1)", kernel: 1, repeat: 3}
              - {type: conv2d, out: 8, kernel: 1, repeat: 2}
        """ + HEAD)
    assert main(["expand", str(path), "-o", str(path.with_name("out.yaml"))]) == 0
    G = netspec.lower(netspec.load(path.with_name("out.yaml")))
    assert [d["shape"][0] for n, d in G.nodes(data=True) if d["op"] == "conv2d"] == [8, 16, 24, 8, 8]


def test_a_typo_in_a_derived_stage_suggests_the_keys_as_written(write_spec):
    error = error_of(write_spec, DERIVED.replace("            in: $stage_list", "            inn: $stage_list"))
    assert "unknown key 'inn'" in error and "did you mean 'in'?" in error
