"""Semantics of the spec language: repeats, names, conditions, defaults, user blocks, aux heads."""
from __future__ import annotations

import json

import pytest

import netspec
from netspec.analysis import costs
from netspec.spec import json_schema

HEAD = """
        head:
          - {type: global_avgpool, name: pool, keepdim: false}
          - {type: linear, name: fc, out: $num_classes}
        """


def graph(write_spec, text, **kw):
    return netspec.lower(netspec.load(write_spec(text)), **kw)


def test_repeat_strides_only_the_first_and_chains_channels(write_spec):
    G = graph(write_spec, """
        name: r
        input: {channels: 3, size: 32}
        num_classes: 10
        stages:
          - blocks:
              - {type: conv_bn_act, out: 8, stride: 2, repeat: 3}
              - {type: conv_bn_act, name: last, out: 4, repeat: 2}
        """ + HEAD)
    convs = [n for n, d in G.nodes(data=True) if d["op"] == "conv2d"]
    assert convs == ["stages.0.blocks.0.conv", "stages.0.blocks.1.conv", "stages.0.blocks.2.conv",
                     "stages.0.blocks.last.0.conv", "stages.0.blocks.last.1.conv"]
    assert [G.nodes[c]["attrs"]["stride"] for c in convs] == [(2, 2), (1, 1), (1, 1), (1, 1), (1, 1)]
    assert [G.nodes[c]["attrs"]["in_channels"] for c in convs] == [3, 8, 8, 8, 4]
    assert G.nodes["stages.0.blocks.2.conv"]["shape"] == (8, 16, 16)


def test_names_not_positions_wire_the_graph(write_spec):
    text = """
        name: n
        input: {channels: 3, size: 16}
        num_classes: 10
        stages:
          - blocks:
              - {type: conv2d, name: a, out: 4, kernel: 1}
              {extra}
              - {type: conv2d, name: b, inputs: input, out: 6, kernel: 1}
              - {type: concat, name: cat, inputs: [a, b]}
        """ + HEAD
    plain = graph(write_spec, text.replace("{extra}", ""))
    # inserting a layer between a and b does not change what the concat reads
    edited = graph(write_spec, text.replace("{extra}", "- {type: relu, name: inserted}"))
    for G in (plain, edited):
        assert G.nodes["stages.0.blocks.cat"]["inputs"] == ["stages.0.blocks.a", "stages.0.blocks.b"]
        assert G.nodes["stages.0.blocks.cat"]["shape"] == (10, 16, 16)
    assert edited.nodes["stages.0.blocks.inserted"]["inputs"] == ["stages.0.blocks.a"]


def test_when_and_type_none_skip_entries(write_spec):
    G = graph(write_spec, """
        name: w
        input: {channels: 3, size: 8}
        num_classes: 10
        vars: {use_bn: false, act: none}
        stages:
          - blocks:
              - {type: conv2d, out: 4, kernel: 1}
              - {type: batchnorm, when: $use_bn}
              - {type: $act}
              - {type: relu, when: "$in == 4"}
        """ + HEAD)
    assert [d["op"] for _, d in G.nodes(data=True)] == ["input", "conv2d", "relu", "global_avgpool", "linear"]


def test_defaults_apply_per_type_and_explicit_values_win(write_spec):
    G = graph(write_spec, """
        name: d
        input: {channels: 3, size: 8}
        num_classes: 10
        defaults:
          conv2d: {bias: false}
          batchnorm: {eps: 0.001, momentum: 0.01}
          conv_bn_act: {act: hardswish}
        stages:
          - blocks:
              - {type: conv_bn_act, out: 4}
              - {type: conv2d, out: 4, kernel: 1, bias: true}
        """ + HEAD)
    n = G.nodes
    assert n["stages.0.blocks.0.conv"]["attrs"]["bias"] is False
    assert (n["stages.0.blocks.0.bn"]["attrs"]["eps"], n["stages.0.blocks.0.bn"]["attrs"]["momentum"]) == (0.001, 0.01)
    assert n["stages.0.blocks.0.act"]["op"] == "hardswish"
    assert n["stages.0.blocks.1"]["attrs"]["bias"] is True


def test_user_defined_block_is_data(write_spec):
    G = graph(write_spec, """
        name: u
        input: {channels: 3, size: 32}
        num_classes: 10
        blocks:
          res:
            doc: two 3x3 conv-bn-relu with an identity shortcut
            params: {width: {type: int}}
            body:
              - {type: conv_bn_act, name: c1, out: $width}
              - {type: conv_bn_act, name: c2, out: $width, act: none}
              - {type: add, name: add, inputs: [input, prev]}
              - {type: relu, name: relu}
        stem:
          - {type: conv_bn_act, out: 16}
        stages:
          - blocks: [{type: res, width: 16, repeat: 2}]
        """ + HEAD)
    # stem 3*16*9 + 2*16 (BN); each res: 2 * (16*16*9 + 2*16); fc 16*10 + 10
    assert costs.total_params(G) == (432 + 32) + 2 * 2 * (2304 + 32) + 170
    add = G.nodes["stages.0.blocks.1.add"]
    assert add["inputs"] == ["stages.0.blocks.0.relu", "stages.0.blocks.1.c2.bn"]
    assert G.graph["scopes"]["stages.0.blocks.1"]["type"] == "res"
    assert add["blocks"] == ("stages.0.blocks.1",)


def test_mbconv_residual_and_drop_path_rule(write_spec):
    G = graph(write_spec, """
        name: m
        input: {channels: 3, size: 32}
        num_classes: 10
        drop_path_rate: 0.2
        stem: [{type: conv_bn_act, out: 16, stride: 2}]
        stages:
          - blocks: [{type: mbconv, out: 16, expand: 1, repeat: 2}]
          - blocks: [{type: mbconv, out: 24, stride: 2, repeat: 2}]
        """ + HEAD)
    # 4 stage blocks: block i gets p = 0.2 * i / 4; blocks without a residual have no drop path
    assert "stages.0.blocks.0.drop_path" not in G  # p = 0: nothing to drop
    assert G.nodes["stages.0.blocks.1.drop_path"]["attrs"]["p"] == pytest.approx(0.05)
    assert "stages.1.blocks.0.add" not in G  # stride 2 and 16 != 24: no residual
    assert G.nodes["stages.1.blocks.1.drop_path"]["attrs"]["p"] == pytest.approx(0.15)
    assert G.nodes["stages.1.blocks.1.add"]["inputs"] == ["stages.1.blocks.0.project.bn",
                                                          "stages.1.blocks.1.drop_path"]
    # expansion: hidden = int(round(16 * 6)) = 96; with expand 1 there is no expand conv
    assert G.nodes["stages.1.blocks.0.expand.conv"]["attrs"]["out"] == 96
    assert "stages.0.blocks.0.expand.conv" not in G


def test_aux_heads_are_side_outputs_excluded_from_inference_totals(write_spec):
    text = """
        name: a
        input: {channels: 3, size: 16}
        num_classes: 10
        stages:
          - blocks: [{type: conv_bn_act, name: mid, out: 8}]
          - blocks: [{type: conv_bn_act, out: 16}]
        """ + HEAD + """
        aux_heads:
          - name: aux1
            at: mid
            layers:
              - {type: global_avgpool, keepdim: false}
              - {type: linear, out: $num_classes}
        """
    G = graph(write_spec, text)
    assert G.graph["outputs"] == {"logits": "head.fc", "aux1": "aux.aux1.1"}
    assert G.nodes["aux.aux1.0"]["inputs"] == ["stages.0.blocks.mid.act"]
    assert costs.total_params(G, include_aux=True) - costs.total_params(G) == 8 * 10 + 10
    no_aux = graph(write_spec, text, aux=False)
    assert list(no_aux.graph["outputs"]) == ["logits"] and "aux.aux1.1" not in no_aux


def test_set_overrides_before_validation(write_spec):
    path = write_spec("""
        name: s
        input: {channels: 3, size: 16}
        num_classes: 10
        stages:
          - blocks: [{type: conv_bn_act, out: 8, stride: 2}]
        """ + HEAD)
    G = netspec.lower(netspec.load(path, overrides=["num_classes=7", "stages[0].blocks[0].stride=1",
                                                    "input.size=[20, 24]"]))
    assert G.nodes["head.fc"]["shape"] == (7,)
    assert G.nodes["stages.0.blocks.0.conv"]["shape"] == (8, 20, 24)


def test_asymmetric_kernels_and_tf_same_padding(write_spec):
    G = graph(write_spec, """
        name: k
        input: {channels: 3, size: [17, 16]}
        num_classes: 10
        stages:
          - blocks:
              - {type: conv2d, name: row, out: 4, kernel: [1, 7], padding: [0, 3]}
              - {type: conv2d, name: tf, out: 4, kernel: 3, stride: 2, padding: tf_same}
        """ + HEAD)
    assert G.nodes["stages.0.blocks.row"]["shape"] == (4, 17, 16)
    tf = G.nodes["stages.0.blocks.tf"]
    # TF SAME: out = ceil(n / s); total pad = (out-1)*s + k - n -> 17: 9, pad 2 = 1+1; 16: 8, pad 1 = 0+1
    assert tf["shape"] == (4, 9, 8)
    assert tf["attrs"]["pad"] == (1, 1, 0, 1)


def test_pool_ceil_mode_matches_pytorch_rule(write_spec):
    G = graph(write_spec, """
        name: p
        input: {channels: 3, size: 14}
        num_classes: 10
        stages:
          - blocks:
              - {type: maxpool, name: floor, kernel: 3, stride: 2}
              - {type: maxpool, name: ceil, inputs: input, kernel: 3, stride: 2, ceil_mode: true}
              - {type: maxpool, name: padded, inputs: input, kernel: 3, stride: 2, padding: 1, ceil_mode: true}
        """ + HEAD)
    shape = lambda n: G.nodes[f"stages.0.blocks.{n}"]["shape"][1:]  # noqa: E731
    assert shape("floor") == (6, 6)    # (14 - 3) // 2 + 1
    assert shape("ceil") == (7, 7)     # ceil(11 / 2) + 1
    assert shape("padded") == (8, 8)   # ceil(13 / 2) + 1; the last window starts at 7 * 2 = 14 < 14 + 1
    # (the case where PyTorch drops a last window that starts in the padding is in test_ops.py)


def test_json_schema_is_usable_by_editors():
    schema = json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "netspec network spec"
    defs = schema["$defs"]
    conv = defs["Conv2dEntry"]["properties"]
    assert {"out", "kernel", "stride", "padding", "groups", "bias", "name", "inputs", "repeat", "when"} <= set(conv)
    assert defs["Conv2dEntry"]["additionalProperties"] is False
    assert "MbconvEntry" in defs and "expand" in defs["MbconvEntry"]["properties"]
    assert '"discriminator"' in text or "oneOf" in text or "anyOf" in text


def test_a_skipped_entry_may_name_skipped_inputs(write_spec):
    G = graph(write_spec, """
        name: w
        input: {channels: 3, size: 8}
        num_classes: 10
        blocks:
          maybe_branch:
            params: {extra: {type: bool, default: false}}
            body:
              - {type: conv2d, name: a, out: 4, kernel: 1}
              - {type: conv2d, name: b, inputs: input, out: 4, kernel: 1, when: $extra}
              - {type: concat, name: cat, inputs: [a, b], when: $extra}
        stages:
          - blocks: [{type: maybe_branch}, {type: maybe_branch, extra: true}]
        """ + HEAD)
    assert "stages.0.blocks.0.cat" not in G
    assert G.nodes["stages.0.blocks.1.cat"]["shape"] == (8, 8, 8)


def test_defaults_may_supply_required_parameters(write_spec):
    G = graph(write_spec, """
        name: d
        input: {channels: 3, size: 8}
        num_classes: 10
        defaults: {maxpool: {kernel: 2}}
        stages:
          - blocks: [{type: maxpool}, {type: maxpool, kernel: 3, stride: 1}]
        """ + HEAD)
    assert G.nodes["stages.0.blocks.0"]["shape"] == (3, 4, 4)
    assert G.nodes["stages.0.blocks.1"]["shape"] == (3, 2, 2)


def test_aux_head_scope_places_its_modules_and_must_be_free(write_spec):
    text = """
        name: a
        input: {channels: 3, size: 16}
        num_classes: 10
        stages:
          - name: s0
            blocks: [{type: conv_bn_act, name: mid, out: 8}]
          - blocks: [{type: conv_bn_act, out: 16}]
        """ + HEAD + """
        aux_heads:
          - name: side
            at: mid
            scope: {scope}
            layers: [{type: global_avgpool, keepdim: false}, {type: linear, name: fc, out: $num_classes}]
        """
    G = graph(write_spec, text.replace("{scope}", "stages.s0.side"))
    fc = G.nodes["stages.s0.side.fc"]
    assert fc["aux"] and fc["part"] == "stages.s0.side"  # an aux head, though inside the stage's scope
    assert G.graph["outputs"]["side"] == "stages.s0.side.fc"
    assert G.nodes["stages.s0.blocks.mid.conv"]["part"] == "stages.s0"
    from netspec.analysis import costs
    rows = {r.scope: r.params for r in costs.parts(G)}
    assert rows["stages.s0"] == 3 * 8 * 9 + 2 * 8 and rows["stages.s0.side"] == 8 * 10 + 10
    with pytest.raises(netspec.SpecError) as info:
        graph(write_spec, text.replace("{scope}", "stages.s0.blocks.mid"))
    assert info.value.first.loc.path == "aux_heads[0].scope"
    assert "already used" in info.value.first.message


def test_set_on_a_policy_shorthand_keeps_its_other_settings(figures):
    # `--set scaling.width=0.5` changes the multiplier only: MobileNetV2's last conv keeps 1280
    from netspec.scale import apply_scaling
    from conftest import SPECS

    spec = apply_scaling(netspec.load(SPECS / "mobilenet_v2.yaml", overrides=["scaling.width=0.5"]))
    G = netspec.lower(spec)
    from netspec.analysis import costs
    assert costs.total_params(G) == figures["other"]["mobilenet_v2_0.5"]["params"]
    assert G.nodes["head.conv.conv"]["attrs"]["out"] == 1280


def test_unused_outputs_are_listed(write_spec, capsys):
    from netspec.cli import main

    path = write_spec("""
        name: u
        input: {channels: 3, size: 8}
        num_classes: 10
        stages:
          - blocks:
              - {type: conv2d, name: a, out: 4, kernel: 1}
              - {type: conv2d, name: b, inputs: input, out: 4, kernel: 1}
              - {type: concat, name: forgotten, inputs: [a, b]}
              - {type: relu, inputs: b}
        """ + HEAD)
    G = netspec.lower(netspec.load(path))
    assert G.graph["unused"] == ["stages.0.blocks.forgotten"]
    assert main(["validate", str(path)]) == 0
    assert "'stages.0.blocks.forgotten' (concat) is computed but never used" in capsys.readouterr().err
    for spec in ("mobilenet_v2", "googlenet", "shufflenet_v2", "inception_v3"):  # the zoo has none
        from conftest import SPECS
        assert netspec.lower(netspec.load(SPECS / f"{spec}.yaml")).graph["unused"] == []
