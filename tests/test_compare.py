"""`netspec compare`: the pure comparison over analysis reports, its command line and its diagram."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import SPECS
from netspec.analysis import analyze
from netspec.analysis.compare import compare, output_stride
from netspec.cli import main
from netspec.commands.compare import _spec_parser, split_items
from netspec.lower import lower
from netspec.spec import load_spec

EXP = SPECS / "experiments"


def report(path, **kw):
    return analyze(lower(load_spec(path)), **kw)


@pytest.fixture(scope="module")
def mobilenets():
    return report(SPECS / "mobilenet_v1.yaml"), report(SPECS / "mobilenet_v2.yaml")


def test_position_alignment_keeps_each_networks_stage_names(mobilenets):
    v1, v2 = mobilenets
    c = compare([v1, v2], ["v1", "v2"])
    n1 = len([s for s in v1.stages if s.type == "stage"])
    n2 = len([s for s in v2.stages if s.type == "stage"])
    assert (n1, n2) == (5, 7)
    assert [r.key for r in c.rows] == ["stem", *[f"stage {i}" for i in range(7)], "head"]
    # v1 has no 6th and 7th stage: empty on its side, present on v2's
    assert [r.sides[0] is None for r in c.rows] == [False] * 6 + [True, True, False]
    assert [r.sides[1].name for r in c.rows[1:-1]] == [s.name for s in v2.stages if s.type == "stage"]


@pytest.mark.parametrize("align", ["position", "stride"])
def test_rows_add_up_to_the_network(mobilenets, align):
    c = compare(list(mobilenets), align=align)
    for i, r in enumerate(mobilenets):
        for key in ("params", "macs", "mem_access"):
            total = sum(getattr(row.sides[i], key) for row in c.rows if row.sides[i] is not None)
            assert total == getattr(r.network.costs, key) == getattr(c.networks[i], key)


def test_stride_alignment_merges_stages_at_the_same_scale(mobilenets):
    v1, v2 = mobilenets
    c = compare([v1, v2], align="stride")
    assert [r.key for r in c.rows] == ["stem", "/2", "/4", "/8", "/16", "/32", "head"]
    row16 = c.rows[4]
    by_name = {s.name: s for s in v2.stages}
    assert row16.sides[1].names == ["stage 3", "stage 4"]
    assert row16.sides[1].macs == by_name["stage 3"].costs.macs + by_name["stage 4"].costs.macs
    assert row16.sides[1].shape == tuple(by_name["stage 4"].shape)  # the last merged stage's output
    assert row16.sides[0].shape == (512, 14, 14)
    assert output_stride((3, 224, 224), (96, 14, 14)) == 16 and output_stride((3, 299, 299), (288, 35, 35)) == 8
    assert output_stride((3, 224, 224), (1000,)) is None


def test_ratios_are_to_the_first_network(mobilenets):
    v1, v2 = mobilenets
    c = compare([v1, v2])
    assert c.ratio("params", 1) == v2.network.costs.params / v1.network.costs.params
    assert c.ratio("macs", 1, c.rows[-2]) is None  # v1 has no stage 6
    d = c.to_dict()
    assert d["network"]["ratios"][0]["macs"] == round(v2.network.costs.macs / v1.network.costs.macs, 6)
    assert d["stages"][-2]["networks"][0] is None and d["stages"][-2]["row"] == "stage 6"
    assert set(d["network"]["networks"][1]["guidelines"]) == {"G1", "G2", "G3", "G4"}


def test_a_5x5_conv_against_two_3x3_convs():
    a, b = report(EXP / "conv5x5.yaml"), report(EXP / "conv3x3x2.yaml")
    c = compare([a, b])
    net_a, net_b = c.networks
    assert c.ratio("params", 1) == c.ratio("macs", 1) == 18 / 25  # 2·3·3·C² against 5·5·C²
    assert net_a.rf == net_b.rf == "5 (jump 1)"                     # the same field
    assert (net_a.fragments_per_block, net_b.fragments_per_block) == (1, 2)
    assert net_b.mem_access > net_a.mem_access                     # but an extra layer's traffic
    assert net_b.elementwise_share > net_a.elementwise_share


def test_compare_needs_two_reports_with_the_same_settings(mobilenets):
    with pytest.raises(ValueError, match="at least two"):
        compare([mobilenets[0]])
    with pytest.raises(ValueError, match="batch"):
        compare([mobilenets[0], report(SPECS / "mobilenet_v2.yaml", batch=2)])
    with pytest.raises(ValueError, match="alignment"):
        compare(list(mobilenets), align="depth")


# --------------------------------------------------------------------------- command line

def test_split_items_ties_options_to_the_spec_before_them():
    p = _spec_parser()
    assert split_items(["a.yaml", "--set", "x=1", "--variant=v", "--json", "b.yaml", "--set", "y=2", "--no-such"], p) \
        == [["a.yaml", "--set", "x=1", "--variant=v", "--json"], ["b.yaml", "--set", "y=2", "--no-such"]]


def test_cli_table(capsys):
    assert main(["compare", str(SPECS / "mobilenet_v1.yaml"), str(SPECS / "mobilenet_v2.yaml")]) == 0
    out = capsys.readouterr().out
    assert "A  mobilenet_v1" in out and "B  mobilenet_v2" in out
    assert "params                  4,231,976      3,504,872      −727,104  0.828×" in out
    assert "stage 6  —" in out and "G4 B:" in out


def test_cli_variants_json_and_options_anywhere(capsys):
    spec = str(SPECS / "mobilenet_v1.yaml")
    assert main(["compare", spec, "--json", "--variants", "1.0_224,0.5_224"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["labels"] == ["mobilenet_v1_1_0_224", "mobilenet_v1_0_5_224"]  # the variants' own names
    assert 0.2 < d["network"]["ratios"][0]["macs"] < 0.3  # width 0.5: about a quarter of the MACs


def test_cli_per_spec_set_applies_to_its_spec_only(capsys):
    spec = str(SPECS / "shufflenet_v1.yaml")
    g8 = ["--set", "vars.g=8", "--set", "vars.c2=384", "--set", "vars.c3=768", "--set", "vars.c4=1536"]
    assert main(["compare", spec, spec, *g8, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["labels"] == ["shufflenet_v1", "shufflenet_v1 (vars.g=8, vars.c2=384, vars.c3=768, vars.c4=1536)"]
    a, b = d["network"]["networks"]
    assert a["params"] != b["params"] and "g = 3" in a["guidelines"]["G2"] and "g = 8" in b["guidelines"]["G2"]


@pytest.mark.parametrize("argv, message", [
    (["specs/mobilenet_v1.yaml"], "at least two networks"),
    (["specs/mobilenet_v1.yaml", "--variants", "1.0_224,0.3"], "mobilenet_v1.yaml:21:1: variants: unknown variant '0.3'"),
    (["specs/mobilenet_v1.yaml", "specs/nope.yaml"], "no such file: specs/nope.yaml"),
    (["specs/mobilenet_v1.yaml", "specs/mobilenet_v2.yaml", "--variants", "1.0,0.5"], "exactly one SPEC"),
    (["specs/mobilenet_v1.yaml", "--variants", "1.0"], "at least two names"),
    (["specs/mobilenet_v1.yaml", "specs/mobilenet_v2.yaml", "--render", "x.txt"], "unknown file type"),
])
def test_cli_errors_exit_2_with_a_location(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(SPECS.parent)
    assert main(["compare", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_spec_options_before_any_spec_are_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "--set", "x=1", "specs/mobilenet_v1.yaml", "specs/mobilenet_v2.yaml"])
    assert info.value.code == 2 and "unrecognized arguments: --set" in capsys.readouterr().err


def test_cli_render_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "c.dot"
    out.write_text("mine")
    specs = [str(EXP / "conv5x5.yaml"), str(EXP / "conv3x3x2.yaml")]
    assert main(["compare", *specs, "--render", str(out)]) == 2
    assert out.read_text() == "mine" and "--force" in capsys.readouterr().err
    assert main(["compare", *specs, "--render", str(out), "--force"]) == 0
    assert out.read_text().startswith("digraph compare {")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
def test_render_side_by_side_one_column_per_network_top_to_bottom(tmp_path):
    out = tmp_path / "c.dot"
    assert main(["compare", str(SPECS / "mobilenet_v1.yaml"), str(SPECS / "mobilenet_v2.yaml"),
                 "--align", "stride", "--render", str(out)]) == 0
    layout = json.loads(subprocess.run(["dot", "-Tjson", str(out)], capture_output=True, check=True).stdout)
    objects = layout["objects"]
    clusters = [o for o in objects if o["name"].startswith("cluster_net")]
    assert [c["label"].split("\n")[0] for c in clusters] == ["mobilenet_v1", "mobilenet_v2"]
    pos = {o["_gvid"]: tuple(map(float, o["pos"].split(","))) for o in objects if "pos" in o}
    name = {o["_gvid"]: o["name"] for o in objects}
    for e in layout["edges"]:
        assert pos[e["tail"]][1] > pos[e["head"]][1], (name[e["tail"]], name[e["head"]])
    y = {name[g]: p[1] for g, p in pos.items()}
    # aligned rows stand level: both inputs, both stems, and /16 (v1 stage 3, v2 stage 3 + 4) start together
    assert y["net0.input"] == y["net1.input"] and y["net0.stem"] == y["net1.stem"]
    assert y["net0.stages.3"] == y["net1.stages.3"]
    x = {name[g]: p[0] for g, p in pos.items()}
    assert max(x[n] for n in x if n.startswith("net0.")) < min(x[n] for n in x if n.startswith("net1."))
