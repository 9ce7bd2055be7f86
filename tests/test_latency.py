"""Predicted latency (netspec/latency): the profile format, the fit, the prediction, the budget search.

Every test but the calibrate smoke test uses a synthetic profile written here, so results are
deterministic: the prediction is pure arithmetic over the IR.
"""
from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest

from netspec.analysis import costs
from netspec.analysis.groups import block_of, stage_of
from netspec.cli import main
from netspec.errors import SpecError
from netspec.latency import load_profile, predict
from netspec.latency.features import classify, conv_class, lineage, node_features, spilled
from netspec.latency.fit import fit_class
from netspec.latency.profile import FORMAT, parse_profile
from netspec.latency.search import search
from netspec.lower import lower
from netspec.spec import load_spec

from conftest import SPECS

# seconds: 10 us per call, 1 ns per 50 MACs (50 GMAC/s), 1 ns per element; the depthwise class 5x slower.
# Batch 8 has an 8 MiB cache: an element a node moves beyond it costs 2 ns more.
CACHE_8 = 8 << 20
SYNTHETIC = {
    "format": FORMAT, "version": 2,
    "device": {"cpu": "synthetic", "torch": "none", "threads": 1, "clock": "cpu"},
    "batches": {
        "1": {"forward_s": 1e-5, "classes": {
            "*": {"coef": [1e-5, 2e-11, 1e-9, 0.0]},
            "conv2d/depthwise": {"coef": [1e-5, 1e-10, 1e-9, 0.0]},
            "relu+inplace": {"coef": [2e-6, 0.0, 5e-10, 0.0]}}},
        "8": {"forward_s": 2e-5, "cache_bytes": CACHE_8, "classes": {"*": {"coef": [1e-5, 1e-11, 1e-9, 2e-9]}}},
    },
}


@pytest.fixture
def profile_file(tmp_path):
    path = tmp_path / "device.json"
    path.write_text(json.dumps(SYNTHETIC))
    return path


@pytest.fixture(scope="module")
def mnv2():
    return lower(load_spec(SPECS / "mobilenet_v2.yaml"))


def by_hand(G, n, batch, coef, cache=math.inf):
    return sum(c * x for c, x in zip(coef, node_features(G, n, batch, cache), strict=True))


def test_prediction_is_the_sum_of_the_class_models(profile_file, mnv2):
    profile = load_profile(profile_file)
    p = predict(mnv2, profile, 1)
    classes = classify(mnv2)
    assert set(p.nodes) == set(classes) and "input" not in p.nodes
    dw = [n for n, c in classes.items() if c.startswith("conv2d/depthwise")]
    assert len(dw) == 17                                           # one per inverted residual block
    strided = [n for n in dw if classes[n] == "conv2d/depthwise/s2"]
    assert len(strided) == 4 and p.fallback["conv2d/depthwise/s2"] == "conv2d/depthwise"
    assert all(p.classes[n] == "conv2d/depthwise" for n in dw)
    for n in dw[:3]:
        assert p.nodes[n] == pytest.approx(by_hand(mnv2, n, 1, SYNTHETIC["batches"]["1"]["classes"]["conv2d/depthwise"]["coef"]))
    bn = next(n for n, c in classes.items() if c.startswith("batchnorm"))
    assert p.classes[bn] == "*" and p.fallback["batchnorm+inplace"] == "*"
    assert p.nodes[bn] == pytest.approx(by_hand(mnv2, bn, 1, [1e-5, 2e-11, 1e-9, 0.0]))
    # levels: blocks and stages partition the nodes; the network adds the per-forward time
    assert sum(p.blocks.values()) == pytest.approx(sum(p.nodes.values()))
    assert sum(p.stages.values()) == pytest.approx(sum(p.nodes.values()))
    assert p.network == pytest.approx(1e-5 + sum(p.nodes.values()))
    block = block_of(mnv2, dw[0])
    assert p.blocks[block] == pytest.approx(sum(t for n, t in p.nodes.items() if block_of(mnv2, n) == block))
    assert set(p.stages) == {stage_of(mnv2, n) for n in p.nodes}


def test_batch_picks_the_nearest_calibrated_model(profile_file, mnv2):
    profile = load_profile(profile_file)
    assert predict(mnv2, profile, 1).calibrated_batch == 1
    assert predict(mnv2, profile, 2).calibrated_batch == 1     # log scale: 2 is nearer 1 than 8
    p8 = predict(mnv2, profile, 8)
    assert p8.calibrated_batch == 8
    n = next(iter(p8.nodes))
    assert node_features(mnv2, n, 8, CACHE_8)[3] > 0                # the stem conv spills at batch 8
    assert p8.nodes[n] == pytest.approx(by_hand(mnv2, n, 8, [1e-5, 1e-11, 1e-9, 2e-9], CACHE_8))
    assert predict(mnv2, profile, 16).network > p8.network       # features scale with the batch


def test_inplace_plan_and_views_decide_the_class(mnv2):
    classes = classify(mnv2)
    assert {c for c in classes.values() if c.startswith("relu6")} == {"relu6+inplace"}
    assert classes["head.dropout"] == "dropout"
    assert node_features(mnv2, "head.dropout", 1) == (1.0, 0.0, 0.0, 0.0)   # a view: the call only
    assert conv_class({"groups": 1, "in_channels": 3, "kernel": (3, 3), "stride": (2, 2)}) == "conv2d/kxk/s2"
    assert conv_class({"groups": 4, "in_channels": 64, "kernel": (1, 1), "stride": (1, 1)}) == "conv2d/grouped/1x1"
    assert conv_class({"groups": 4, "in_channels": 64, "kernel": (3, 3), "stride": (2, 2)}) == "conv2d/grouped/kxk/s2"
    assert lineage("conv2d/grouped/kxk/s2", "conv2d", "conv")[:3] == [
        "conv2d/grouped/kxk/s2", "conv2d/grouped/kxk", "conv2d/grouped"]
    assert lineage("conv2d/kxk/s2", "conv2d", "conv") == ["conv2d/kxk/s2", "conv2d/kxk", "conv2d", "conv", "*"]
    assert lineage("relu+inplace", "relu", "activation") == ["relu+inplace", "relu", "activation", "*"]


def test_fit_recovers_known_coefficients():
    true = (2e-6, 3e-11, 4e-10)
    X = [(1.0, m, e) for m, e in ((1e5, 3e4), (4e6, 1e5), (2e7, 9e5), (8e7, 2e5), (3e8, 5e6), (1e6, 7e6))]
    t = [sum(c * x for c, x in zip(true, row)) for row in X]
    coef, err = fit_class(X, t)
    assert coef == pytest.approx(true, rel=1e-6) and err < 1e-9
    # non-negative: a feature that would need a negative weight is dropped
    coef, _ = fit_class([(1.0, 1.0, 0.0), (1.0, 2.0, 0.0), (1.0, 3.0, 0.0)], [3.0, 2.0, 1.0])
    assert all(c >= 0 for c in coef)
    with pytest.raises(ValueError):
        fit_class([(1.0, 1.0, 1.0)], [0.0])


def test_spill_is_the_traffic_beyond_the_cache(mnv2):
    # MobileNet V2's first expansion (16 -> 96 channels at 112x112) reads 16 and writes 96 channel maps
    expand = next(n for n in classify(mnv2) if mnv2.nodes[n]["op"] == "conv2d"
                  and mnv2.nodes[n]["shape"][0] == 96)
    _, _, e1, s1 = node_features(mnv2, expand, 1, 32 << 20)
    _, _, e8, s8 = node_features(mnv2, expand, 8, 32 << 20)
    assert e1 == 112 * 112 * (16 + 96) + 16 * 96                   # activations read + written, weights once
    assert s1 == 0                                                   # 5.6 MB: fits a 32 MiB cache at batch 1
    assert 4 * e8 > 32 << 20 and s8 == pytest.approx(e8 * (1 - (32 << 20) / (4 * e8)))   # 45 MB at 8
    assert spilled(1000.0, 4000.0) == 0 and spilled(1000.0, 3000.0) == pytest.approx(250.0)
    assert node_features(mnv2, expand, 8)[3] == 0                    # no cache size: never spills


def test_calibration_finds_the_cache_size_and_the_spill_cost(mnv2):
    """Timings made from a known model (cache 8 MiB, spilled elements 3 ns each) are fitted back: the
    cache size among the candidates, and the coefficients of each class."""
    from netspec import ops
    from netspec.latency.calibrate import fit_with_cache
    true = (1e-5, 2e-11, 1e-9, 3e-9)
    classes = classify(mnv2)
    rows, op_of = [], {}
    for batch in (2, 4, 8):                      # one graph at several sizes, like the zoo's variety of maps
        for n, cls in classes.items():
            t = sum(c * x for c, x in zip(true, node_features(mnv2, n, batch, CACHE_8)))
            rows.append((cls, (mnv2, n, batch), t))
    for cls in set(classes.values()):
        op = ops.get_op(mnv2.nodes[next(n for n, c in classes.items() if c == cls)]["op"])
        op_of[cls] = (op.name, op.kind.value)
    model = fit_with_cache(rows, op_of, candidates=(2 << 20, 4 << 20, CACHE_8, 32 << 20))
    assert model.cache_bytes == CACHE_8
    fitted = model.classes["conv2d/1x1"]
    assert fitted.coef == pytest.approx(true, rel=1e-4) and fitted.rel_error < 1e-6


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="x"), "not a netspec device profile"),
    (lambda d: d.update(version=3), "version"),
    (lambda d: d.update(version=True), "version"),
    (lambda d: d["batches"]["8"].update(cache_bytes=-1), "byte count"),
    (lambda d: d["batches"]["8"].update(cache_bytes="32M"), "byte count"),
    (lambda d: d["batches"]["8"].update(cache_bytes=float("nan")), "byte count"),
    (lambda d: d["batches"]["1"]["classes"]["*"].update(coef=[1e-5, 0, 0]), "coef"),
    (lambda d: d.update(batches={}), "at least one batch"),
    (lambda d: d["batches"].update({"0": d["batches"]["1"]}), "integer from 1 to 4096"),
    (lambda d: d["batches"]["1"]["classes"]["*"].update(coef=[1, 2]), "coef"),
    (lambda d: d["batches"]["1"]["classes"]["*"].update(coef=[1e-5, -1.0, 0, 0]), "finite number >= 0"),
    (lambda d: d["batches"]["1"]["classes"]["*"].update(coef=[1e-5, float("nan"), 0, 0]), "finite number >= 0"),
    (lambda d: d["batches"]["1"]["classes"]["*"].update(coef=[True, 0, 0, 0]), "finite number >= 0"),
])
def test_bad_profiles_are_located_errors(edit, message):
    data = json.loads(json.dumps(SYNTHETIC))
    edit(data)
    with pytest.raises(SpecError) as e:
        parse_profile(data, "p.json")
    assert message in str(e.value) and "p.json" in str(e.value) and "netspec calibrate" in str(e.value)


def test_version_1_profiles_still_predict_without_a_spill_term(mnv2):
    """A profile written before the spill term (three coefficients, no cache size) still loads: its
    prediction is the three-term model, as a cache that never spills."""
    v1 = {"format": FORMAT, "version": 1, "device": {"threads": 1},
          "batches": {"8": {"forward_s": 0.0, "classes": {"*": {"coef": [1e-5, 1e-11, 1e-9]}}}}}
    profile = parse_profile(v1, "old.json")
    assert profile.batches[8].cache_bytes == math.inf
    p = predict(mnv2, profile, 8)
    assert p.network == pytest.approx(sum(by_hand(mnv2, n, 8, [1e-5, 1e-11, 1e-9, 0.0]) for n in p.nodes))
    data = profile.to_dict()
    assert data["version"] == 2 and "cache_bytes" not in data["batches"]["8"]
    assert parse_profile(data).batches[8].classes["*"].coef == (1e-5, 1e-11, 1e-9, 0.0)


def test_missing_and_broken_profile_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NETSPEC_DEVICE_PROFILE", str(tmp_path / "none.json"))
    assert main(["analyze", str(SPECS / "lenet5.yaml"), "--latency"]) == 2
    err = capsys.readouterr().err
    assert "no device profile at" in err and "netspec calibrate" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["analyze", str(SPECS / "lenet5.yaml"), "--device", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    bad.write_text(json.dumps({"format": FORMAT, "version": 1, "batches": {"1": {"classes": {}}}}))
    assert main(["analyze", str(SPECS / "lenet5.yaml"), "--device", str(bad)]) == 2
    assert "no model for" in capsys.readouterr().err


def test_analyze_latency_table_and_json(profile_file, capsys, mnv2):
    assert main(["analyze", str(SPECS / "mobilenet_v2.yaml"), "--latency", "--device", str(profile_file)]) == 0
    out = capsys.readouterr().out
    net_ms = predict(mnv2, load_profile(profile_file), 1).network * 1e3
    assert f"latency     {net_ms:.3f} ms predicted, batch 1, 1 thread(s) on synthetic" in out
    assert "pred ms" in out and "no model for " in out and "batchnorm+inplace (used *)" in out
    assert main(["analyze", str(SPECS / "mobilenet_v2.yaml"), "--device", str(profile_file), "--json",
                 "--batch", "8"]) == 0
    lat = json.loads(capsys.readouterr().out)["latency"]
    assert lat["batch"] == 8 and lat["calibrated_batch"] == 8 and lat["device"]["cpu"] == "synthetic"
    assert lat["network_s"] == pytest.approx(sum(lat["stages_s"].values()) + lat["forward_s"])


TOY = """
name: toy
input: {channels: 3, size: 32}
num_classes: 10
stem:
  - {type: conv_bn_act, name: conv, out: 16, kernel: 3, stride: 2}
stages:
  - blocks: [{type: conv_bn_act, out: 24, stride: 2}, {type: conv_bn_act, out: 24, repeat: 2}]
  - blocks: [{type: conv_bn_act, out: 40, stride: 2, repeat: 2}]
head:
  - {type: global_avgpool, name: pool, keepdim: false}
  - {type: linear, name: fc, out: $num_classes}
scaling:
  width: {multiplier: 1.0, rounding: {rule: make_divisible, divisor: 8}}
  depth: {multiplier: 1.0, rounding: ceil}
"""


def test_budget_search_is_deterministic_and_respects_the_budget(write_spec, profile_file):
    spec = load_spec(write_spec(TOY))
    profile = load_profile(profile_file)
    base_ms = predict(lower(spec), profile, 1).network
    budget = 2 * base_ms
    base, found = search(spec, profile, budget_s=budget, step=Fraction(1, 4))
    assert base.latency_s == pytest.approx(base_ms) and (base.alpha, base.beta, base.gamma) == (1, 1, 1)
    best = found[0]
    assert best.within_budget and best.latency_s <= budget and best.macs > base.macs
    feasible = [c for c in found if c.within_budget]
    assert best.macs == max(c.macs for c in feasible)                 # the EfficientNet objective
    assert all(c.latency_s > budget for c in found if not c.within_budget)
    # the chosen point recomputed independently: the spec's own scaling at phi = 1
    from netspec.scale import apply_scaling, spec_data
    from netspec.spec import spec_from_data
    data = spec_data(spec)
    data["scaling"]["compound"] = {"phi": 1, "alpha": float(best.alpha), "beta": float(best.beta),
                                   "gamma": float(best.gamma)}
    G = lower(apply_scaling(spec_from_data(data, spec.locs)))
    assert costs.total_macs(G) == best.macs and predict(G, profile, 1).network == pytest.approx(best.latency_s)
    again = search(spec, profile, budget_s=budget, step=Fraction(1, 4))[1]
    assert [c.label for c in again] == [c.label for c in found]       # deterministic
    # MnasNet's soft reward trades MACs against latency: a point may sit over the budget
    _, soft = search(spec, profile, budget_s=budget, step=Fraction(1, 2), objective="mnasnet")
    top = soft[0]
    assert top.score == pytest.approx(math.log(top.macs) * (top.latency_s / budget) ** -0.07)
    assert top.score == max(c.score for c in soft)


def test_budget_search_cli(write_spec, profile_file, capsys):
    path = write_spec(TOY)
    assert main(["scale", str(path), "--search", "--latency-budget", "1us", "--grid", "0.25",
                 "--device", str(profile_file), "--no-measure"]) == 0
    assert "no grid point is within 0.001 ms" in capsys.readouterr().out
    assert main(["scale", str(path), "--search", "--latency-budget", "0.5ms", "--grid", "0.5",
                 "--device", str(profile_file), "--no-measure", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["best"]["predicted_ms"] <= 0.5 < res["base"]["predicted_ms"] * 2
    assert res["objective"] == "efficientnet" and res["budget_ms"] == 0.5 and res["best"]["measured_ms"] is None
    assert main(["scale", str(path), "--latency-budget", "5ms", "--device", str(profile_file)]) == 2
    assert "add --search" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["scale", str(path), "--search", "--latency-budget=-3ms"])
    assert "positive latency" in capsys.readouterr().err


def test_calibrate_writes_a_profile_that_predicts(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "dev.json"
    args = ["calibrate", str(SPECS / "lenet5.yaml"), "--threads", "1", "--rounds", "2", "--budget", "5",
            "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert f"wrote {out}" in printed.out and "cpu clock" in printed.out and "calibrate:" in printed.err
    profile = load_profile(out)
    assert set(profile.batches) == {1, 8} and profile.threads == 1 and profile.device["clock"] == "cpu"
    m = profile.batches[1].classes
    assert {"conv2d/kxk", "linear", "*"} <= set(m) and all(c >= 0 for cm in m.values() for c in cm.coef)
    G = lower(load_spec(SPECS / "lenet5.yaml"))
    assert not predict(G, profile, 1).fallback and predict(G, profile, 1).network > 0
    assert main(args) == 2                                               # never over a profile without --force
    assert "not overwriting" in capsys.readouterr().err
    assert main(["calibrate", "--batches", "0", "--out", str(tmp_path / "x.json")]) == 2
    assert main(["calibrate", "--threads", "2", "--clock", "cpu", "--out", str(tmp_path / "x.json")]) == 2
    assert "one thread's CPU time" in capsys.readouterr().err


def test_calibration_runs_in_passes_and_keeps_a_fastest_forward():
    """Passes: a warm-up, then timed ones until the budget is spent (at least one); `on_pass` runs after
    each, outside the budget; each node's sample is its network's fastest forward; a cache size from
    the candidates is kept per batch."""
    pytest.importorskip("torch")
    from netspec.latency.calibrate import CACHE_CANDIDATES, calibrate
    G = lower(load_spec(SPECS / "lenet5.yaml"))
    seen = []
    profile = calibrate([G], batches=(1, 4), threads=1, clock="cpu", rounds=3, budget_s=60, on_pass=seen.append)
    assert seen == [0, 1, 2, 3] and profile.device["passes"] == 3
    assert profile.device["samples"] == 2 * len(classify(G))        # one forward's nodes per batch
    assert all(m.cache_bytes in CACHE_CANDIDATES for m in profile.batches.values())
    seen.clear()
    profile = calibrate([G], batches=(1,), threads=1, clock="cpu", rounds=50, budget_s=1e-3, on_pass=seen.append)
    assert seen == [0, 1] and profile.device["passes"] == 1          # the budget stops it after one timed pass


def test_bench_prints_predicted_beside_measured(profile_file, capsys):
    pytest.importorskip("torch")
    assert main(["bench", str(SPECS / "lenet5.yaml"), "--threads", "1", "--repeat", "3", "--device",
                 str(profile_file), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    G = lower(load_spec(SPECS / "lenet5.yaml"))
    assert res["predicted_ms"] == pytest.approx(predict(G, load_profile(profile_file), 1).network * 1e3)
    assert res["error"] == pytest.approx(res["predicted_ms"] / res["min_ms"] - 1)   # the fastest: what it models


def test_compare_shows_predicted_latency_beside_macs(profile_file, capsys):
    a, b = SPECS / "mobilenet_v1.yaml", SPECS / "mobilenet_v2.yaml"
    assert main(["compare", str(a), str(b), "--device", str(profile_file), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    profile = load_profile(profile_file)
    want = [predict(lower(load_spec(s)), profile, 1).network * 1e3 for s in (a, b)]
    assert d["predicted_latency_ms"] == pytest.approx(want) and d["device"]["cpu"] == "synthetic"
    assert main(["compare", str(a), str(b), "--latency", "--device", str(profile_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    macs = next(i for i, line in enumerate(lines) if line.startswith("MACs "))
    assert lines[macs + 1].split()[:4] == ["predicted", "ms", f"{want[0]:.3f}", f"{want[1]:.3f}"]


def test_guideline_tables_show_predicted_latency(profile_file):
    import importlib.util

    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("bench_guidelines_latency", ROOT / "bench" / "guidelines.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    table = bench.TABLES[1]                        # G2: group convs at fixed MACs
    name, configs = table["groups"][0]
    rows = [{"label": c["label"], "set": c["set"], "paper": c["paper"], "macs": 1, "mem_access": 1, "median_ms": 1.0,
             "iqr_ms": 0.0, "min_ms": 1.0, "images_per_s": 1000.0 / (i + 1)} for i, c in enumerate(configs)]
    results = {"machine": "m", "torch": "t", "threads": 1, "rounds": 1, "warmup": 0,
               "tables": [{"key": "G2", "title": table["title"], "groups": [{"name": name, "rows": rows}]}]}
    profile = load_profile(profile_file)
    bench.add_predictions(results, profile)
    for c, r in zip(configs, rows):
        assert r["predicted_ms"] == pytest.approx(predict(bench.graph_of(c), profile, 1).network * 1e3)
    text = bench.render(results)
    assert "| predicted ms | predicted rel. |" in text and "predicted latency orders it with tau" in text
    assert "synthetic" in text


def test_latency_bench_statistics():
    pytest.importorskip("torch")
    import importlib.util

    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("bench_latency", ROOT / "bench" / "latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert bench.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert bench.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)   # 2 concordant, 1 discordant
    rows = [{"model": m, "batch": 1, "zoo": True, "predicted_ms": p, "measured_ms": t, "error": p / t - 1}
            for m, p, t in (("a", 11.0, 10.0), ("b", 19.0, 20.0), ("c", 45.0, 30.0))]
    s = bench.summary(rows)["batch 1, zoo"]
    assert s["median_abs_error"] == pytest.approx(0.1) and s["max_abs_error"] == pytest.approx(0.5)
    assert s["within_20"] == 2 and s["kendall_tau"] == 1.0 and s["networks"] == 3
