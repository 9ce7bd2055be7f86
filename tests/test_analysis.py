"""Static analysis on small specs: every metric against values computed by hand in the test."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from fractions import Fraction

import pytest

from netspec import ops
from netspec.analysis import analyze
from netspec.analysis.fragmentation import fragmentation, max_parallel
from netspec.analysis.guidelines import g1_lower_bound, group_convs, pointwise_convs
from netspec.analysis.memory import activation_memory
from netspec.analysis.receptive import receptive_fields
from netspec.cli import main
from netspec.lower import lower
from netspec.spec import load_spec

from conftest import ROOT, SPECS

EXPERIMENTS = SPECS / "experiments"


def graph(text: str, overrides=None):
    return lower(load_spec("<test>.yaml", text=textwrap.dedent(text).lstrip("\n"), overrides=overrides))


def experiment(name: str, **sets):
    sets = [f"{k.replace('__', '.')}={v}" for k, v in sets.items()]
    return lower(load_spec(EXPERIMENTS / f"{name}.yaml", overrides=sets))


# conv 3x3 (3 -> 4, bias) -> BN -> ReLU -> global pool -> linear 4 -> 10 on a 3x8x8 input
TINY = """
name: tiny
input: {channels: 3, size: 8}
num_classes: 10
stem:
  - {type: conv2d, name: conv, out: 4, kernel: 3, padding: 1, bias: true}
  - {type: batchnorm, name: bn}
  - {type: relu, name: act}
head:
  - {type: global_avgpool, name: pool, keepdim: false}
  - {type: linear, name: fc, out: 10}
"""


@pytest.fixture(scope="module")
def tiny():
    return graph(TINY)


# --------------------------------------------------------------------------- costs

def test_params_buffers_macs_flops(tiny):
    net = analyze(tiny).network.costs
    assert net.params == (4 * 3 * 3 * 3 + 4) + (2 * 4) + (4 * 10 + 10)  # conv w+b, BN affine, fc w+b = 170
    assert net.buffers == 4 + 4 + 1                                     # running mean, var, step counter
    ref = 4 * 8 * 8 * 3 * 3 * 3 + 4 * 10                                # conv Cout*H*W*Cin*k*k + fc in*out
    assert net.macs == net.macs_reference == ref == 6952
    assert net.flops == 2 * ref
    full = analyze(tiny, profile="full").network.costs
    hw = 8 * 8
    assert full.macs == full.macs_full == (
        ref
        + 4 * hw        # conv bias: one add per output element
        + 4 * hw        # BN: one multiply-add per element
        + 4 * hw        # ReLU: one op per element
        + 4 * hw        # global pool: each input element accumulated once
        + 10            # fc bias
    ) == 7986
    assert full.flops == 2 * 7986
    assert analyze(tiny, batch=3).network.costs.macs == 3 * ref


def test_mem_access_and_intensity(tiny):
    hw = 64
    conv = 3 * hw + 4 * hw + (108 + 4)          # input + output + weights and bias
    bn = 2 * 4 * hw + 8 + 8                     # in + out + affine + running mean/var
    act = 2 * 4 * hw
    pool = 4 * hw + 4
    fc = 4 + 10 + 50
    r = analyze(tiny)
    assert [n.costs.mem_access for n in r.nodes] == [conv, bn, act, pool, fc]
    assert r.network.costs.mem_access == 1924
    assert r.network.costs.intensity == pytest.approx(6952 / 1924)
    # batch 2: activations twice, weights read once
    b2 = analyze(tiny, batch=2).network.costs.mem_access
    weights = 112 + 16 + 50                     # conv, BN (affine + running stats), fc
    assert b2 == 2 * (1924 - weights) + weights == 3670


def test_mem_access_of_pointwise_group_conv_is_the_papers_formula():
    # ShuffleNet V2 Eq. 2: MAC = hw(c1 + c2) + c1*c2/g for a 1x1 group conv without bias
    G = experiment("g2_group_conv", input__channels=90, vars__g=2)
    r = analyze(G)
    hw, c, g = 56 * 56, 90, 2
    assert {n.costs.mem_access for n in r.nodes} == {hw * (c + c) + c * c // g}
    assert r.network.costs.macs == 10 * hw * c * c // g


def test_views_move_no_data():
    G = graph("""
        name: views
        input: {channels: 2, size: 3}
        num_classes: 4
        head:
          - {type: flatten, name: flat}
          - {type: dropout, name: drop}
          - {type: linear, name: fc, out: 4, bias: false}
    """)
    r = analyze(G)
    assert [n.costs.mem_access for n in r.nodes] == [0, 0, 18 + 4 + 72]


def test_unknown_profile_and_level(tiny):
    with pytest.raises(ValueError, match="profile"):
        analyze(tiny, profile="torchvision")
    with pytest.raises(ValueError, match="batch"):
        analyze(tiny, batch=0)
    with pytest.raises(ValueError, match="level"):
        analyze(tiny).rows("layer")


# --------------------------------------------------------------------------- aggregation

AUX = """
name: aux
input: {channels: 1, size: 4}
num_classes: 2
stem: [{type: conv2d, name: c, out: 2, kernel: 1, bias: false}]
head: [{type: flatten}, {type: linear, name: fc, out: 2, bias: false}]
aux_heads:
  - {name: side, at: c, layers: [{type: flatten}, {type: linear, name: fc, out: 3, bias: false}]}
"""


def test_aux_heads_are_reported_but_not_in_network_totals():
    r = analyze(graph(AUX))
    assert r.network.costs.params == 2 + 32 * 2          # conv 1->2, fc 32->2
    assert r.params_with_aux == 2 + 64 + 32 * 3          # + aux fc 32->3
    assert r.network.costs.macs == 2 * 16 + 32 * 2       # aux MACs excluded
    side = [s for s in r.stages if s.aux]
    assert [(s.name, s.costs.params, s.costs.macs) for s in side] == [("aux head side", 96, 96)]


def test_levels_sum_to_the_network():
    r = analyze(lower(load_spec(SPECS / "mobilenet_v2.yaml")), profile="full")
    for level in ("node", "block", "stage"):
        rows = [x for x in r.rows(level) if not x.aux]
        for key in ("params", "buffers", "macs_reference", "macs_full", "mem_access"):
            assert sum(getattr(x.costs, key) for x in rows) == getattr(r.network.costs, key), (level, key)
    blocks = [b for b in r.blocks if b.type == "mbconv"]
    assert len(blocks) == 17                          # 1+2+3+4+3+3+1 inverted residuals


# --------------------------------------------------------------------------- activation memory

def test_activation_memory_peak(tiny):
    m = activation_memory(tiny, batch=1, dtype_bytes=4)
    # schedule: input 192, conv 256, bn 256, act 256, pool 4, fc 10 (elements). With gradients off
    # BN writes into the conv output and the ReLU into that (each is its input's last reader), so
    # the peak is while conv runs: input + conv output = 448 elements; nothing is ever higher
    assert m.peak_bytes == 448 * 4
    assert m.peak_at == "stem.conv"
    assert m.live_at_peak == ["input", "stem.conv"]
    assert m.input_bytes == 192 * 4
    assert m.total_bytes == (192 + 256 + 4 + 10) * 4
    off = activation_memory(tiny, inplace=False)  # every op allocates: the peak is while bn runs
    assert off.total_bytes == (192 + 3 * 256 + 4 + 10) * 4
    assert (off.peak_bytes, off.peak_at) == (512 * 4, "stem.bn")
    assert activation_memory(tiny, batch=8, dtype_bytes=2).peak_bytes == 448 * 8 * 2


def test_activation_memory_keeps_a_residual_input_alive():
    G = graph("""
        name: res
        input: {channels: 1, size: 4}
        stem:
          - {type: conv2d, name: a, out: 2, kernel: 1, bias: false}
          - {type: relu, name: b}
          - {type: identity, name: view}
          - {type: relu, name: c}
          - {type: add, name: sum, inputs: [a, c]}
    """)
    # sizes (elements): input 16, a 32, b 32, view aliases b, c 32, sum 32. b cannot overwrite a (sum
    # reads a later); c overwrites b through its view; sum writes into a. While b runs: a + b = 64
    m = activation_memory(G)
    assert m.peak_bytes == 64 * 4
    assert m.peak_at == "stem.b"
    assert m.total_bytes == (16 + 2 * 32) * 4
    off = activation_memory(G, inplace=False)
    # while c runs: a (needed by sum) + b (through its view) + c = 96
    assert (off.peak_bytes, off.peak_at, off.total_bytes) == (96 * 4, "stem.c", (16 + 4 * 32) * 4)


# --------------------------------------------------------------------------- receptive field

def rf(G, node, ignore_gates=False):
    return receptive_fields(G, ignore_gates)[node]


def test_rf_chain_dilation_and_per_axis():
    G = graph("""
        name: chain
        input: {channels: 1, size: 64}
        stem:
          - {type: conv2d, name: c7, out: 2, kernel: 7, stride: 2, padding: 3}
          - {type: maxpool, name: pool, kernel: 3, stride: 2, padding: 1, ceil_mode: true}
          - {type: conv2d, name: dil, out: 2, kernel: 3, padding: 2, dilation: 2}
          - {type: conv2d, name: wide, out: 2, kernel: [1, 7], padding: [0, 3]}
    """)
    c7, pool, dil, wide = (rf(G, f"stem.{n}").axes for n in ("c7", "pool", "dil", "wide"))
    assert (c7[0].size, c7[0].jump, c7[0].centre) == (1 + 6 * 1, 2, 0)             # r + (k-1)*j
    assert (pool[0].size, pool[0].jump) == (7 + 2 * 2, 4)                            # ceil_mode: same RF
    assert (dil[0].size, dil[0].jump) == (11 + (2 * (3 - 1) + 1 - 1) * 4, 4)         # k_eff = d(k-1)+1 = 5
    assert dil[0].size == 1 + 6 + 2 * 2 + 4 * 4 == 27                                # closed form
    assert (wide[0].size, wide[1].size) == (27, 27 + 6 * 4)                          # 1x7: only W grows
    assert rf(G, "stem.wide").describe() == "27×51 (jump 4)"
    assert all(a.centre == 0 for a in wide)                                          # symmetric padding


def test_rf_centre_offsets():
    G = graph("""
        name: centres
        input: {channels: 1, size: 16}
        stem:
          - {type: conv2d, name: valid, out: 1, kernel: 3}
          - {type: maxpool, name: even, kernel: 2, stride: 2}
          - {type: conv2d, name: tf, out: 1, kernel: 4, stride: 2, padding: tf_same}
    """)
    valid, even, tf = (rf(G, f"stem.{n}").axes[0] for n in ("valid", "even", "tf"))
    assert valid.centre == 1                       # output 0 sees inputs 0..2
    assert even.centre == 1 + Fraction(1, 2)       # then inputs 0..3 of the 2x2 window: centre 1.5
    # tf_same on 7 inputs, k4 s2: 4 outputs, total pad (4-1)*2 + 4 - 7 = 3 -> top 1, bottom 2;
    # centre += ((4-1)/2 - 1) * jump 2
    assert G.nodes["stem.tf"]["attrs"]["pad"][:2] == (1, 2)
    assert tf.centre == Fraction(3, 2) + Fraction(1, 2) * 2


def test_rf_merge_takes_the_largest_field_and_checks_alignment():
    G = graph("""
        name: merge
        input: {channels: 1, size: 8}
        stem:
          - {type: conv2d, name: a, inputs: input, out: 1, kernel: 3, stride: 2, padding: 1}
          - {type: avgpool, name: b, inputs: input, kernel: 2, stride: 2}
          - {type: concat, name: cat, inputs: [a, b]}
          - {type: conv2d, name: s4, inputs: input, out: 1, kernel: 1, stride: 4}
          - {type: conv2d, name: k5, inputs: input, out: 1, kernel: 5}
          - {type: conv2d, name: k3, out: 1, kernel: 3}
          - {type: add, name: bad, inputs: [s4, k3]}
    """)
    cat = rf(G, "stem.cat")
    assert cat.axes[0].size == 3 and cat.axes[0].jump == 2   # max(3, 2)
    assert cat.warnings and "centres differ" in cat.warnings[0]  # 0 vs 0.5
    bad = rf(G, "stem.bad")
    assert bad.axes[0].size == 7                              # 5 then 3: 1 + 4 + 2
    assert "unaligned" in bad.warnings[0] and "[1, 4]" in bad.warnings[0]


def test_rf_global_ops_and_se_gates():
    G = graph("""
        name: se
        input: {channels: 8, size: 16}
        num_classes: 3
        stem:
          - {type: conv2d, name: conv, out: 8, kernel: 3, padding: 1}
          - {type: squeeze_excite, name: se, squeeze: 2}
          - {type: conv2d, name: after, out: 8, kernel: 3, padding: 1}
        head:
          - {type: adaptive_avgpool, name: pool, output: 1}
          - {type: flatten}
          - {type: linear, name: fc, out: 3}
    """)
    assert rf(G, "stem.se.pool").is_global
    assert rf(G, "stem.se.scale").is_global                    # the gate mixes the whole image
    assert rf(G, "stem.after").size == "global"
    assert rf(G, "stem.se.scale", ignore_gates=True).size == (3, 3)
    assert rf(G, "stem.after", ignore_gates=True).size == (5, 5)
    assert rf(G, "head.pool", ignore_gates=True).is_global      # adaptive pool to 1x1
    r = analyze(G)
    assert r.features == "stem.after"
    assert r.features_rf.is_global and r.features_rf_spatial.size == (5, 5)
    assert r.to_dict()["features_rf"]["size"] == "global"


def test_rf_a_window_spanning_the_whole_map_is_global_pooling():
    G = graph("""
        name: fixedpool
        input: {channels: 1, size: 14}
        stem:
          - {type: conv2d, name: conv, out: 2, kernel: 3, stride: 2, padding: 1}
          - {type: avgpool, name: pool7, kernel: 7}
          - {type: flatten, name: flat}
    """)
    assert rf(G, "stem.pool7").is_global                       # 7x7 map -> 1x1: ShuffleNet v1's head
    assert analyze(G).features == "stem.conv"


def test_rf_adaptive_pool_windows():
    assert ops.get_op("adaptive_avgpool").window({"output": (6, 6)}, [(1, 6, 6)], (1, 6, 6)) == \
        (ops.Window(1, 1, 0), ops.Window(1, 1, 0))                          # same size: identity
    assert ops.get_op("adaptive_avgpool").window({"output": (4, 4)}, [(1, 8, 8)], (1, 4, 4))[0] == ops.Window(2, 2, 0)
    # 7 -> 3: windows [0,3) [2,5) [4,7): widest 3, mean stride 7/3
    assert ops.get_op("adaptive_avgpool").window({"output": (3, 3)}, [(1, 7, 7)], (1, 3, 3))[0] == \
        ops.Window(3, Fraction(7, 3), 0)


# --------------------------------------------------------------------------- fragmentation (Table 3)

@pytest.mark.parametrize("layout, n, fragments, parallel", [
    ("series", 1, 1, 1),
    ("series", 2, 2, 1),
    ("series", 4, 4, 1),
    ("parallel", 2, 2, 2),
    ("parallel", 4, 4, 4),
])
def test_table3_fragmentation(layout, n, fragments, parallel):
    G = experiment("g3_fragmentation", input__channels=64, vars__layout=layout, vars__n=n)
    rows = fragmentation(G)
    assert len(rows) == 10                                     # ten stacked blocks
    assert {(f.fragments, f.parallel) for f in rows} == {(fragments, parallel)}


def test_fragmentation_of_mixed_branches_and_library_blocks():
    G = graph("""
        name: branches
        input: {channels: 8, size: 8}
        blocks:
          mixed:
            body:
              - {type: conv2d, name: b1, out: 4, kernel: 1}
              - {type: conv2d, name: b2a, inputs: input, out: 4, kernel: 1}
              - {type: conv2d, name: b2b, out: 4, kernel: 3, padding: 1}
              - {type: maxpool, name: b3a, inputs: input, kernel: 3, stride: 1, padding: 1}
              - {type: conv2d, name: b3b, out: 4, kernel: 1}
              - {type: concat, name: cat, inputs: [b1, b2b, b3b]}
        stages:
          - blocks:
              - {type: mixed, name: m}
              - {type: shufflenet_v2_unit, name: down, out: 16, stride: 2}
              - {type: shufflenet_v2_unit, name: unit, out: 16}
    """)
    frags = {f.block.rsplit(".", 1)[-1]: (f.fragments, f.parallel) for f in fragmentation(G)}
    assert frags["m"] == (5, 3)          # 4 convs + 1 pool; at most one per branch at a time
    assert frags["down"] == (5, 2)       # dw+pw branch beside pw-dw-pw
    assert frags["unit"] == (3, 1)       # the split-off half has no conv


def test_max_parallel_is_an_antichain_not_a_branch_count():
    # a -> b, a -> c, b -> d, c -> d, plus e independent: widest independent set {b, c, e} = 3
    import networkx as nx
    G = nx.DiGraph([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    G.add_node("e")
    assert max_parallel(G, ["a", "b", "c", "d", "e"]) == 3


# --------------------------------------------------------------------------- element-wise ops (G4)

def test_elementwise_counts_and_shares():
    G = experiment("g4_elementwise", input__channels=32)
    ew = analyze(G).elementwise
    full, mid = 32 * 56 * 56, 8 * 56 * 56                   # 100,352 and 25,088 elements
    relu = 2 * 2 * mid + 2 * full                             # two ReLUs on the bottleneck, one after the add
    add = 3 * full                                            # read two, write one
    convs = (full + mid + 32 * 8) + (2 * mid + 8 * 8 * 9) + (mid + full + 8 * 32)
    total = 10 * (relu + add + convs)
    assert total == analyze(G).network.costs.mem_access == 9_042_560
    assert ew.buckets["activation"].count == 30 and ew.buckets["add"].count == 10
    assert ew.buckets["activation"].mem_access == 10 * relu
    assert ew.buckets["add"].mem_access == 10 * add
    assert ew.elementwise.mem_share == pytest.approx(10 * (relu + add) / total)
    assert ew.buckets["depthwise"].count == 0
    none = analyze(experiment("g4_elementwise", input__channels=32, vars__relu="false",
                              vars__shortcut="false")).elementwise
    assert none.elementwise.count == 0
    assert analyze(G).network.costs.macs == analyze(experiment(
        "g4_elementwise", input__channels=32, vars__relu="false", vars__shortcut="false")).network.costs.macs


def test_depthwise_and_bias_are_tallied_separately():
    G = graph("""
        name: dw
        input: {channels: 4, size: 4}
        stem:
          - {type: conv2d, name: dw, out: 4, kernel: 3, padding: 1, groups: depthwise, bias: true}
          - {type: channel_shuffle, name: shuffle, groups: 2}
          - {type: chunk, name: first_half, chunks: 2, index: 0}
    """)
    ew = analyze(G).elementwise
    assert ew.buckets["depthwise"].count == 1 and ew.elementwise.count == 2      # shuffle + split
    assert ew.buckets["shuffle"].mem_access == 2 * 64 and ew.buckets["split"].mem_access == 0
    assert (ew.bias_nodes, ew.bias_macs) == (1, 64)
    assert ew.with_depthwise.count == 3


# --------------------------------------------------------------------------- guidelines G1-G3

def test_g1_channel_ratio_excess():
    eq = pointwise_convs(experiment("g1_channel_ratio", input__channels=32, vars__c2=32))
    assert len(eq) == 20 and all(abs(r.excess) < 1e-6 for r in eq)    # c1 = c2 meets the bound exactly
    rows = pointwise_convs(experiment("g1_channel_ratio", input__channels=22, vars__c2=44))
    hw, c1, c2 = 56 * 56, 22, 44
    mem = hw * (c1 + c2) + c1 * c2                                     # 207,944
    bound = 2 * hw * math.sqrt(c1 * c2) + c1 * c2                      # 2*sqrt(hw*B) + B/hw, B = hw*c1*c2
    assert rows[0].mem_access == mem
    assert rows[0].lower_bound == pytest.approx(bound) == g1_lower_bound(hw, hw * c1 * c2)
    assert rows[0].excess_ratio == pytest.approx(mem / bound - 1) and 0.06 < rows[0].excess_ratio < 0.061
    assert rows[0].ratio == "1:2" and rows[1].ratio == "2:1"


def test_g2_group_penalty():
    rows = group_convs(experiment("g2_group_conv", input__channels=184, vars__g=8))
    assert len(rows) == 10
    assert {r.penalty for r in rows} == {56 * 56 * 184 * 7 // 8}       # hw * c2 * (1 - 1/g)
    assert rows[0].mem_access == 2 * 184 * 56 * 56 + 184 * 184 // 8
    assert group_convs(experiment("g2_group_conv", input__channels=64, vars__g=1)) == []
    audit = analyze(experiment("g2_group_conv", input__channels=184, vars__g=8)).guidelines
    assert "10 group convs (g = 8)" in audit.g2.verdict


def test_g3_verdict_counts_parallel_branches_in_plain_words():
    g3 = analyze(lower(load_spec(SPECS / "googlenet.yaml"))).guidelines.g3
    assert "up to 4 parallel branches (stages.inception3.blocks.inception3a)" in g3.verdict


def test_guideline_verdicts_name_the_worst_offenders():
    r = analyze(lower(load_spec(SPECS / "mobilenet_v2.yaml")))
    g = r.guidelines
    assert g.g1.worst[0].node == "stages.1.blocks.0.expand.conv"   # 16 -> 96 at 112x112, the largest map
    assert g.g1.worst[0].ratio == "1:6"
    assert "no group convs" in g.g2.verdict
    assert g.g3.worst[0].fragments == 3 and g.g3.worst[0].parallel == 1
    assert "no parallel branches" in g.g3.verdict and "up to 1 " not in g.g3.verdict
    assert "17 depthwise convs" in g.g4.verdict


# --------------------------------------------------------------------------- CLI and torch independence

def test_cli_analyze_table_and_json(capsys):
    assert main(["analyze", str(SPECS / "mobilenet_v2.yaml"), "--level", "block"]) == 0
    out = capsys.readouterr().out
    assert "300,774,272" in out and "FLOPs = 2 x MACs" in out and "G4" in out and "491 (jump 32)" in out
    assert main(["analyze", str(SPECS / "lenet5.yaml"), "--json", "--profile", "full", "--batch", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"] == "full" and data["batch"] == 2
    net = data["network"]["costs"]
    assert net["macs"] == net["macs_full"] and net["flops"] == 2 * net["macs"]
    assert {"memory", "fragmentation", "elementwise", "guidelines", "nodes", "blocks", "stages"} <= set(data)


def test_cli_analyze_resolution_levels_and_overrides(capsys):
    spec = str(SPECS / "mobilenet_v2.yaml")
    assert main(["analyze", spec, "--res", "160", "--json"]) == 0
    small = json.loads(capsys.readouterr().out)
    assert small["input_shape"] == [3, 160, 160]
    assert small["network"]["costs"]["macs"] < 300_774_272
    assert small["features_rf"]["size"] == [491, 491]            # the RF does not depend on the input size
    assert main(["analyze", spec, "--level", "network", "--set", "num_classes=10"]) == 0
    out = capsys.readouterr().out
    assert "\nmobilenet_v2  network" in out and "2,236,682" in out  # 3,504,872 - 1281*1000 + 1281*10
    if not (SPECS / "googlenet.yaml").exists():
        pytest.skip("googlenet.yaml does not exist yet")
    assert main(["analyze", str(SPECS / "googlenet.yaml"), "--level", "block"]) == 0
    out = capsys.readouterr().out
    assert "frag/par" in out and "inception_v1" in out and " 7/4 " in out
    assert "(aux)" in out                                         # aux heads reported, marked


def test_cli_analyze_spec_error_exits_2(write_spec, capsys):
    bad = write_spec("""
        name: bad
        input: {channels: 3, size: 8}
        stem: [{type: conv2d, out: 4, kernel: 9}]
    """)
    assert main(["analyze", str(bad)]) == 2
    assert "output size" in capsys.readouterr().err


def test_analysis_runs_without_torch():
    code = textwrap.dedent(f"""
        import sys
        from netspec.cli import main
        from netspec.analysis import analyze
        from netspec.lower import lower
        from netspec.spec import load_spec
        r = analyze(lower(load_spec({str(SPECS / 'mobilenet_v2.yaml')!r})), profile="full")
        assert r.features_rf.size == (491, 491)
        assert main(["analyze", {str(SPECS / 'mobilenet_v2.yaml')!r}, "--json"]) == 0
        assert "torch" not in sys.modules, "analysis imported torch"
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
