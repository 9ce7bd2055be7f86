"""Scaling policies (width, depth, resolution, compound, variants), `netspec expand` and `netspec scale`."""
from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest

from netspec.analysis import costs
from netspec.cli import main
from netspec.commands.scale import compound_candidates, search
from netspec.errors import SpecError
from netspec.lower import lower
from netspec.scale import apply_scaling, resolve
from netspec.spec import load_spec

from conftest import ROOT, SPECS

TOY = """
name: toy
input: {channels: 3, size: 32}
num_classes: 10
vars: {dropout: 0.1, wide: 24}
stem:
  - {type: conv_bn_act, name: conv, out: 16, kernel: 3, stride: 2}
stages:
  - name: first
    blocks: [{type: conv_bn_act, out: 16, repeat: 1}]
  - blocks: [{type: conv_bn_act, out: 24, stride: 2}, {type: conv_bn_act, out: 24, repeat: 2}]
  - blocks: [{type: conv_bn_act, out: 40, repeat: 1}, {type: conv_bn_act, out: 40, repeat: 1},
             {type: conv_bn_act, out: 40, repeat: 2}]
  - name: last
    blocks: [{type: conv_bn_act, out: $wide, repeat: 2}]
head:
  - {type: conv_bn_act, name: conv, out: 100, kernel: 1}
  - {type: global_avgpool, name: pool, keepdim: false}
  - {type: dropout, name: dropout, p: $dropout}
  - {type: linear, name: fc, out: $num_classes}
"""


def toy(write_spec, scaling: str = "", variants: str = "", overrides=None):
    text = TOY + (f"scaling:\n{scaling}" if scaling else "") + (f"variants:\n{variants}" if variants else "")
    return load_spec(write_spec(text), overrides=overrides)


def stage_repeats(spec) -> list[list[int]]:
    return [[e.repeat for e in st.blocks] for st in spec.stages]


def channels(spec) -> dict[str, object]:
    return {"stem": spec.stem[0].out, "head": spec.head[0].out,
            "stages": [[e.out for e in st.blocks] for st in spec.stages]}


# --------------------------------------------------------------------------- width

def test_width_make_divisible_scales_literals_not_expressions(write_spec):
    s = apply_scaling(toy(write_spec, "  width: 1.4\n"))
    # make_divisible(c * 1.4, 8): 16 -> 22.4 -> int(26.4) // 8 * 8 = 24; 24 -> 33.6 -> 32 (>= 30.24);
    # 40 -> 56; 100 -> 140 -> int(144) // 8 * 8 = 144; $wide and $num_classes are taken as written
    assert channels(s) == {"stem": 24, "head": 144, "stages": [[24], [32, 32], [56, 56, 56], ["$wide"]]}
    assert s.head[-1].out == "$num_classes"


def test_width_slim_and_round_rules(write_spec):
    s = apply_scaling(toy(write_spec, "  width: {multiplier: 0.3, rounding: {rule: slim, min_depth: 8}}\n"))
    # max(int(c * 0.3), 8): 16 -> 4.8 -> 8; 24 -> 7.2 -> 8; 40 -> 12; 100 -> 30
    assert channels(s)["stages"][:3] == [[8], [8, 8], [12, 12, 12]] and channels(s)["head"] == 30
    s = apply_scaling(toy(write_spec, "  width: {multiplier: 0.3, rounding: {rule: round}}\n"))
    # round(c * 0.3), ties to even: 16 -> 4.8 -> 5; 24 -> 7.2 -> 7; 40 -> 12; 100 -> 30
    assert channels(s)["stages"][:3] == [[5], [7, 7], [12, 12, 12]] and channels(s)["head"] == 30


def test_width_fixed_points_and_min_multiplier(write_spec):
    s = apply_scaling(toy(write_spec, "  width:\n    multiplier: 0.5\n    fixed: [stem.conv, stages.first]\n"
                                      "    min_multiplier: {head.conv: 1.0}\n"))
    # stem and stage 'first' fixed; stages 24 -> 12 -> int(16) // 8 * 8 = 16, 40 -> 20 -> 24;
    # head scaled by max(1, 0.5) = 1: a multiplier of 1 leaves 100 as written (not rounded to 104)
    assert channels(s) == {"stem": 16, "head": 100, "stages": [[16], [16, 16], [24, 24, 24], ["$wide"]]}
    s = apply_scaling(toy(write_spec, "  width:\n    multiplier: 1.2\n    min_multiplier: {head.conv: 1.5}\n"))
    # head: make_divisible(100 * max(1.2, 1.5), 8) = int(154) // 8 * 8 = 152; stem: 16 * 1.2 = 19.2 ->
    # int(23.2) // 8 * 8 = 16, but 16 < 0.9 * 19.2 = 17.28 (the 10 % guard) -> 24
    assert (channels(s)["head"], channels(s)["stem"]) == (152, 24)


def test_width_multiplier_one_is_identity(write_spec):
    spec = toy(write_spec, overrides=["stem[0].out=20"])
    assert apply_scaling(spec).stem[0].out == 20           # make_divisible(20) would be 24


def test_width_unknown_selector_is_an_error(write_spec):
    with pytest.raises(SpecError) as exc:
        apply_scaling(toy(write_spec, "  width: {multiplier: 2, fixed: [stem.cnv]}\n"))
    assert "names no entry" in str(exc.value) and "stem.conv" in exc.value.first.hint
    assert exc.value.first.loc.line > 0


def test_width_rule_typo_is_located(write_spec):
    with pytest.raises(SpecError) as exc:
        toy(write_spec, "  width: {multiplier: 2, rounding: {rule: make_divisible, min_depth: 8}}\n")
    assert "min_depth" in str(exc.value)


# --------------------------------------------------------------------------- depth

def test_depth_uniform_scales_written_repeats_only(write_spec):
    s = apply_scaling(toy(write_spec, "  depth: 2.2\n"))
    # ceil(1 * 2.2) = 3; stage 1: only the written repeat 2 scales (the stride entry has none) -> ceil(4.4) = 5;
    # stage 2 [1, 1, 2]: target ceil(4 * 2.2) = 9, reverse shares: round(2/4 * 9) = round(4.5) = 4,
    # round(1/2 * 5) = round(2.5) = 2, then 3 -> [3, 2, 4]; stage 3: ceil(2 * 2.2) = 5
    assert stage_repeats(s) == [[3], [1, 5], [3, 2, 4], [5]]


def test_depth_per_stage_and_fixed_stages(write_spec):
    s = apply_scaling(toy(write_spec, "  depth: {multiplier: [3, 1.5, 0.5, 2], fixed_stages: [first, -1]}\n"))
    # stage 0 and the last held at 1; stage 1: ceil(2 * 1.5) = 3; stage 2 at 0.5 -> [1, 1, 1] (timm's minimum)
    assert stage_repeats(s) == [[1], [1, 3], [1, 1, 1], [2]]


def test_depth_round_rule(write_spec):
    s = apply_scaling(toy(write_spec, "  depth: {multiplier: 1.25, rounding: round}\n"))
    # max(1, round(n * 1.25)): 1 -> 1; 2 -> round(2.5) = 2 (ties to even); [1,1,2] -> total round(5) = 5:
    # round(2/4 * 5) = 2, round(1/2 * 3) = 2, 1 -> [1, 2, 2]
    assert stage_repeats(s) == [[1], [1, 2], [1, 2, 2], [2]]


def test_depth_exact_arithmetic(write_spec):
    spec = toy(write_spec, "  depth: 2.2\n", overrides=["stages[3].blocks[0].repeat=25"])
    assert stage_repeats(apply_scaling(spec))[3] == [55]  # math.ceil(25 * 2.2) would be 56


def test_depth_errors(write_spec):
    with pytest.raises(SpecError, match="2 values for 4 stages"):
        apply_scaling(toy(write_spec, "  depth: [1, 2]\n"))
    with pytest.raises(SpecError, match="no stage 'middle'"):
        apply_scaling(toy(write_spec, "  depth: {multiplier: 2, fixed_stages: [middle]}\n"))


# --------------------------------------------------------------------------- resolution, compound, variants

def test_resolution_set_scaled_and_overridden(write_spec):
    assert apply_scaling(toy(write_spec, "  resolution: 48\n")).input.size == (48, 48)
    s = apply_scaling(toy(write_spec, "  resolution: {multiplier: 1.15, divisor: 8}\n"))
    assert s.input.size == (40, 40)                       # 32 * 1.15 = 36.8 -> round(4.6) * 8 = 40
    assert apply_scaling(toy(write_spec, "  resolution: 48\n"), resolution=64).input.size == (64, 64)


def test_compound_phi():
    spec = load_spec(SPECS / "efficientnet.yaml")
    _, plan = resolve(spec, phi=2)
    # width 1.1^2 = 1.21, depth 1.2^2 = 1.44 (exact), resolution round(224 * 1.15^2 = 296.24) = 296
    assert plan.width == Fraction(121, 100)
    assert set(plan.depth) == {Fraction(144, 100)}
    assert plan.resolution == (296, 296)
    s = apply_scaling(spec, phi=2)
    assert [st.blocks[0].repeat for st in s.stages] == [2, 3, 3, 5, 5, 6, 2]   # ceil(n * 1.44)
    assert apply_scaling(spec, phi=0).input.size == (224, 224)


def test_variant_values_and_set_precedence(write_spec):
    variants = ("  big: {width: 2.0, depth: 2.0, resolution: 64, dropout: 0.3, drop_path_rate: 0.1,\n"
                "        set: {vars.wide: 48, defaults.batchnorm: {eps: 0.001}}}\n")
    s = apply_scaling(toy(write_spec, variants=variants), variant="big")
    assert s.name == "toy_big" and s.input.size == (64, 64) and s.drop_path_rate == 0.1
    assert s.vars == {"dropout": 0.3, "wide": 48} and s.defaults["batchnorm"] == {"eps": 0.001}
    assert channels(s)["stem"] == 32 and stage_repeats(s)[1] == [1, 4]
    assert not s.variants and s.scaling.width.multiplier == 1.0     # applied: scaling again changes nothing
    assert apply_scaling(s).model_dump() == s.model_dump()
    # --set wins over the variant on the same value
    s = apply_scaling(toy(write_spec, variants=variants, overrides=["scaling.width=1.0", "vars.dropout=0.5"]),
                      variant="big")
    assert channels(s)["stem"] == 16 and s.vars["dropout"] == 0.5 and stage_repeats(s)[1] == [1, 4]


def test_variant_errors(write_spec):
    with pytest.raises(SpecError) as exc:
        apply_scaling(toy(write_spec, variants="  b1: {width: 1.1}\n"), variant="b2")
    assert "unknown variant 'b2'" in str(exc.value) and "b1" in exc.value.first.hint
    with pytest.raises(SpecError, match="no `variants:` table"):
        apply_scaling(toy(write_spec), variant="b2")
    spec = load_spec(write_spec(TOY.replace("vars: {dropout: 0.1, wide: 24}", "vars: {wide: 24}")
                                .replace("p: $dropout", "p: 0.1") + "variants:\n  x: {dropout: 0.3}\n"))
    with pytest.raises(SpecError, match="no `vars.dropout`"):
        apply_scaling(spec, variant="x")
    with pytest.raises(SpecError, match="greater than or equal to 1"):
        apply_scaling(toy(write_spec, variants="  x: {set: {num_classes: 0}}\n"), variant="x")
    with pytest.raises(SpecError, match="does not exist"):
        apply_scaling(toy(write_spec, variants="  x: {set: {\"stages[9].name\": a}}\n"), variant="x")


def test_variant_bad_value_is_reported_by_the_schema(write_spec):
    with pytest.raises(SpecError):
        toy(write_spec, variants="  x: {width: -1}\n")


def test_cli_variant_and_set_shorthand(capsys):
    assert main(["validate", str(SPECS / "efficientnet.yaml"), "--variant", "b3"]) == 0
    assert "300×300" in capsys.readouterr().out
    assert main(["validate", str(SPECS / "efficientnet.yaml"), "--variant", "b9"]) == 2
    assert "unknown variant 'b9'" in capsys.readouterr().err


def test_front_end_does_not_import_torch():
    code = ("import sys; from netspec.cli import main; "
            "main(['scale', 'specs/efficientnet_v2.yaml']); main(['expand', 'specs/efficientnet.yaml', '--variant', 'b7']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------- expand

def graph_view(G):
    return [(n, d["op"], d["attrs"], d["shape"], d["inputs"], d["weights"], d["stage"]) for n, d in G.nodes(data=True)]


@pytest.mark.parametrize("spec_file, variant", [
    ("efficientnet.yaml", "b3"), ("efficientnet_v2.yaml", "s"), ("shufflenet_v2.yaml", "x0_5"),
    ("mobilenet_v1.yaml", "0.25_128"), ("mobilenet_v2.yaml", "0.35"),
])
def test_expand_round_trips(spec_file, variant, capsys, tmp_path):
    assert main(["expand", str(SPECS / spec_file), "--variant", variant]) == 0
    text = capsys.readouterr().out
    assert "repeat:" not in text                           # every repeat unrolled
    (tmp_path / "x.yaml").write_text(text)
    again = load_spec(tmp_path / "x.yaml")
    assert not again.variants
    original = lower(apply_scaling(load_spec(SPECS / spec_file), variant=variant))
    assert graph_view(lower(apply_scaling(again))) == graph_view(original)
    assert costs.total_macs(lower(again)) == costs.total_macs(original)


def test_expand_keeps_named_repeats_rolled_and_writes_json(write_spec, capsys):
    path = write_spec(TOY.replace("{type: conv_bn_act, out: 24, repeat: 2}", "{type: conv_bn_act, name: rep, out: 24, repeat: 2}"))
    assert main(["expand", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stages"][1]["blocks"][1] == {"type": "conv_bn_act", "name": "rep", "out": 24, "repeat": 2}
    # an unnamed repeat is unrolled; copies after the first get stride 1
    assert data["stages"][2]["blocks"][2:] == [{"type": "conv_bn_act", "out": 40}, {"type": "conv_bn_act", "out": 40, "stride": 1}]


# --------------------------------------------------------------------------- netspec scale

def test_scale_family_table(capsys, figures):
    assert main(["scale", str(SPECS / "efficientnet.yaml"), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    b0 = figures["torchvision"]["efficientnet_b0"]
    assert rows["(base)"]["macs"] == b0["macs"] and rows["b0"]["ratio"] == 1.0
    for v in ("b1", "b3", "b7"):
        ref = figures["torchvision"][f"efficientnet_{v}"]
        assert rows[v]["params"] == ref["params"] and rows[v]["macs"] == ref["macs"]   # crop == paper resolution
        assert rows[v]["ratio"] == pytest.approx(ref["macs"] / b0["macs"])
    assert (rows["b3"]["width"], rows["b3"]["depth"], rows["b3"]["resolution"]) == ("1.2", "1.4", 300)
    assert main(["scale", str(SPECS / "shufflenet_v2.yaml")]) == 0
    out = capsys.readouterr().out
    assert "x2_0" in out and "7,393,996" in out


def test_search_candidates_respect_the_constraint():
    step, target, tol = Fraction(1, 10), 2.0, 0.05
    cands = compound_candidates(target, step, tol)
    assert (Fraction(2), Fraction(1), Fraction(1)) in cands                    # 2 * 1 * 1 = 2
    assert (Fraction(1), Fraction(1), Fraction(14, 10)) in cands               # 1 * 1 * 1.96 = 1.96
    assert (Fraction(12, 10), Fraction(11, 10), Fraction(11, 10)) not in cands  # 1.2 * 1.21 * 1.21 = 1.757
    for a, b, g in cands:
        assert min(a, b, g) >= 1 and (a / step).denominator == 1
        assert abs(a * b * b * g * g - 2) <= Fraction(2 * 5, 100) * 2          # 2 x tolerance prefilter
    assert (Fraction(1), Fraction(1), Fraction(1)) not in cands               # product 1


def test_search_measures_the_scaled_graph(write_spec):
    spec = toy(write_spec)
    base, rows = search(spec, target=2.0, step=Fraction(1, 5), tolerance=0.1)
    assert rows, "the toy net has grid points near 2x MACs"
    for r in rows:
        assert abs(r.ratio - 2.0) <= 0.2                                    # measured, within the tolerance
        a, b, g = (Fraction(x.split("=")[1]) for x in r.name.split())
        assert r.formula == pytest.approx(float(a * b * b * g * g))
    # one candidate recomputed independently: compound scaling at phi = 1 with its (alpha, beta, gamma)
    a, b, g = (float(x.split("=")[1]) for x in rows[0].name.split())
    again = lower(apply_scaling(toy(write_spec, f"  compound: {{phi: 1, alpha: {a}, beta: {b}, gamma: {g}}}\n")))
    assert costs.total_macs(again) == rows[0].macs and costs.total_macs(again) / base.macs == rows[0].ratio


def test_search_cli_errors(capsys):
    with pytest.raises(SystemExit) as info:  # argparse: the option's own error, before any work
        main(["scale", str(SPECS / "mobilenet_v1.yaml"), "--search", "--grid", "0"])
    assert info.value.code == 2
    assert "argument --grid: must be a finite number from 0.001 to 1, got 0" in capsys.readouterr().err


# --------------------------------------------------------------------------- torch

@pytest.mark.parametrize("spec_file, variant", [("mobilenet_v2.yaml", "0.35"), ("shufflenet_v2.yaml", "x0_5")])
def test_compiled_variant_matches_analysis(spec_file, variant):
    torch = pytest.importorskip("torch")
    from netspec.api import compile

    G = lower(apply_scaling(load_spec(SPECS / spec_file), variant=variant, resolution=64))
    model = compile(G).eval()
    assert sum(p.numel() for p in model.parameters()) == costs.total_params(G)
    assert sum(b.numel() for b in model.buffers()) == costs.total_buffers(G)
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 64, 64)).shape) == (1, 1000)


def test_compiled_efficientnet_b5_carries_the_variant_settings(figures):
    torch = pytest.importorskip("torch")
    from netspec.api import compile

    G = lower(apply_scaling(load_spec(SPECS / "efficientnet.yaml"), variant="b5", resolution=32))
    model = compile(G).eval()
    assert sum(p.numel() for p in model.parameters()) == figures["torchvision"]["efficientnet_b5"]["params"]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {(m.eps, m.momentum) for m in bns} == {(1e-3, 0.01)}
    # 39 blocks (3,5,5,7,7,9,3); stochastic depth on the residual ones, the last at p = 0.2 * 38 / 39
    drops = [m for m in model.modules() if type(m).__name__ == "StochasticDepth"]
    assert len(drops) == 39 - 7 and drops[-1].p == pytest.approx(0.2 * 38 / 39)
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 32, 32)).shape) == (1, 1000)


def test_width_keys_reach_block_parameters(write_spec):
    path = write_spec("""
        name: mini_googlenet
        input: {size: 32}
        num_classes: 10
        scaling:
          width: {multiplier: 0.5, keys: [out, c1, c3r, c3, c5r, c5, pool_proj]}
        stem:
          - {type: conv_bn_act, name: conv, out: 64, kernel: 3}
        stages:
          - blocks: [{type: inception_v1, c1: 64, c3r: 96, c3: 128, c5r: 16, c5: 32, pool_proj: 32}]
        head:
          - {type: global_avgpool, name: pool, keepdim: false}
          - {type: linear, name: fc, out: $num_classes}
    """)
    s = apply_scaling(load_spec(path))
    e = s.stages[0].blocks[0]
    # make_divisible(c * 0.5, 8): 64 -> 32, 96 -> 48, 128 -> 64, 16 -> 8, 32 -> 16; out 64 -> 32
    assert (e.c1, e.c3r, e.c3, e.c5r, e.c5, e.pool_proj, s.stem[0].out) == (32, 48, 64, 8, 16, 16, 32)
    G = lower(s)
    assert G.nodes["stages.0.blocks.0.cat"]["shape"][0] == 32 + 64 + 16 + 16


@pytest.mark.parametrize("spec_path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_expand_round_trips_every_spec(spec_path, tmp_path):
    from netspec.commands.expand import expanded, to_yaml

    spec = load_spec(spec_path)
    (tmp_path / "x.yaml").write_text(to_yaml(expanded(spec)))
    assert graph_view(lower(load_spec(tmp_path / "x.yaml"))) == graph_view(lower(apply_scaling(spec)))
