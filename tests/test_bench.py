"""`netspec bench` and the guideline micro-benchmarks: timing plumbing and experiment design."""
from __future__ import annotations

import importlib.util
import json
import math

import pytest

from netspec.analysis import analyze
from netspec.cli import main
from netspec.commands.bench import Timing, measure
from netspec.lower import lower
from netspec.spec import load_spec

from conftest import ROOT, SPECS

torch = pytest.importorskip("torch")


def load_bench_script():
    spec = importlib.util.spec_from_file_location("bench_guidelines", ROOT / "bench" / "guidelines.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timing_statistics():
    t = Timing([0.004, 0.001, 0.003, 0.002, 0.005])
    assert t.median == 0.003
    assert t.iqr == pytest.approx(0.004 - 0.002)       # quartiles of 1..5 ms (inclusive method): 2 and 4
    assert t.spread == pytest.approx(0.002 / 0.003)
    assert Timing([0.5]).iqr == 0.0


def test_measure_runs_warmup_then_repeats_and_reports_progress():
    calls, seen = [], []
    t = measure(lambda x: calls.append(x), "x", warmup=2, repeat=3, progress=lambda *a: seen.append(a))
    assert len(calls) == 5 and len(t.samples) == 3
    assert seen[:2] == [("warm-up", 1, 2), ("warm-up", 2, 2)] and seen[-1] == ("run", 3, 3)


def test_cli_bench_json(capsys):
    assert main(["bench", str(SPECS / "lenet5.yaml"), "--repeat", "3", "--warmup", "1", "--threads", "1",
                 "--batch", "2", "--json"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    r = analyze(lower(load_spec(SPECS / "lenet5.yaml")), batch=2)
    assert res["repeat"] == 3 and res["batch"] == 2 and res["threads"] == 1
    assert res["macs"] == r.network.costs.macs_reference and res["mem_access"] == r.network.costs.mem_access
    assert 0 < res["min_ms"] <= res["median_ms"] <= res["max_ms"]
    assert "run 3/3" in captured.err                      # progress goes to stderr


def test_cli_bench_table_and_bad_arguments(capsys):
    assert main(["bench", str(SPECS / "lenet5.yaml"), "--repeat", "2", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "MACs" in out and "mem_access" in out
    with pytest.raises(SystemExit) as info:  # argparse refuses it
        main(["bench", str(SPECS / "lenet5.yaml"), "--repeat", "0"])
    assert info.value.code == 2


def test_guideline_tables_hold_macs_fixed():
    """The paper's controlled experiments: within a group, configurations differ but MACs do not
    (within 6%: the paper's own integer widths, e.g. 22*44 = 968 vs 32*32 = 1024 in Table 1, and
    Table 2's g=8 uses 184 for 180)."""
    bench = load_bench_script()
    for table in bench.TABLES:
        for name, configs in table["groups"]:
            macs = [analyze(bench.graph_of(c)).network.costs.macs for c in configs]
            assert max(macs) / min(macs) < 1.06, (table["key"], name, macs)
            if table["key"] == "G4":                     # removing ReLU / shortcut changes no MAC
                assert len(set(macs)) == 1


def test_guideline_bench_helpers():
    bench = load_bench_script()
    assert bench.kendall_tau([1, 2, 3], [10, 20, 30]) == 1
    assert bench.kendall_tau([3, 2, 1], [10, 20, 30]) == -1
    rows = [{"label": "a", "images_per_s": 2.0, "paper": 5.0, "mem_access": 10},
            {"label": "b", "images_per_s": 1.0, "paper": 4.0, "mem_access": 20}]
    assert bench.agreement(rows) == ("the same ordering as the paper; the same fastest configuration; "
                                     "static mem_access predicts this machine's ordering with tau +1.00")
    rows[1]["images_per_s"] = 3.0
    assert "different fastest configuration (here b, paper a)" in bench.agreement(rows)


def test_guideline_bench_runs_one_group(tmp_path):
    bench = load_bench_script()
    name, configs = bench.TABLES[0]["groups"][0]
    rows = bench.run_group(configs[:2], rounds=2, warmup=0, threads=1)
    assert [r["label"] for r in rows] == ["1:1 (32,32)", "1:2 (22,44)"]
    assert all(r["images_per_s"] > 0 and math.isfinite(r["median_ms"]) for r in rows)
    section = bench.render({"machine": "m", "torch": "t", "threads": 1, "rounds": 2, "warmup": 0,
                            "tables": [{"key": "G1", "title": "T1", "groups": [{"name": name, "rows": rows}]}]})
    assert section.startswith(bench.BEGIN) and section.endswith(bench.END) and "| 1:1 (32,32) |" in section
