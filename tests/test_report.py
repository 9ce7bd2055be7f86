"""`netspec report` and `compare --html` without a browser: the page's data, escaping, sizes, errors.
The browser half is tests/test_report_browser.py."""
from __future__ import annotations

import base64
import gzip
import json
import re

import pytest

import netspec
from conftest import SPECS
from netspec.analysis import analyze
from netspec.cli import main
from netspec.htmlreport import diagrams
from netspec.escape import html_text, script_json

HOSTILE = "</script><script>alert('x')</script><!-- \"q\" & 'a' </SCRIPT >"
MAX_BYTES = 3 * 2 ** 20   # the bound the issue sets for EfficientNet-B7 (every zoo spec meets it)
ZOO = sorted(p.name for p in SPECS.glob("*.yaml"))


def page_data(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="netspec-data">(.*?)</script>', text, re.S)
    assert m, "the page's data element is missing"
    return json.loads(m.group(1))


def svg_of(view: dict) -> str:
    return gzip.decompress(base64.b64decode(view["svg"])).decode("utf-8")


# --------------------------------------------------------------------------- escaping

def test_script_json_cannot_end_the_script_and_round_trips():
    value = {HOSTILE: [HOSTILE, "\u2028\u2029", 1.5, None]}
    text = script_json(value)
    lowered = text.lower()
    assert "</" not in text and "<!--" not in text and "<script" not in lowered and "&" not in text
    assert json.loads(text) == value


def test_html_text_escapes_markup_and_quotes():
    out = html_text(HOSTILE)
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    assert "&amp;" in out and html_text("a&b") == "a&amp;b"


def test_hostile_strings_from_a_spec_stay_data(tmp_path):
    """A reference and an override carrying markup reach the page as text and as JSON, never as markup."""
    out = tmp_path / "r.html"
    text = netspec.report(SPECS / "lenet5.yaml", out, overrides=[f"reference={HOSTILE}"])
    assert out.read_text(encoding="utf-8") == text
    # exactly the page's own two scripts, and the only closing tags are theirs
    assert len(re.findall(r"<script\b", text, re.I)) == 2
    assert len(re.findall(r"</script", text, re.I)) == 2
    assert "<script>alert" not in text and "<!-- " not in text  # as markup nowhere
    data = page_data(text)
    assert data["network"]["summary"]["reference"] == HOSTILE
    assert html_text(f"reference={HOSTILE}") in text  # the subtitle, escaped


# --------------------------------------------------------------------------- the page's data

@pytest.fixture(scope="module")
def mnv2():
    G = netspec.lower(netspec.load(SPECS / "mobilenet_v2.yaml"))
    text = netspec.report(SPECS / "mobilenet_v2.yaml")
    return G, page_data(text), text


def test_details_equal_analyze(mnv2):
    G, data, _ = mnv2
    report = analyze(G)
    r = report.to_dict()
    items = data["network"]["items"]
    assert {n.name: items[n.name]["rf"] for n in report.nodes} == {n.name: n.rf.describe() for n in report.nodes}
    for row in r["nodes"]:
        assert {k: items[row["name"]][k] for k in ("params", "macs", "mem_access")} == \
            {k: row["costs"][k] for k in ("params", "macs", "mem_access")}, row["name"]
    for row in r["blocks"] + r["stages"]:
        it = items[row["scope"]]
        assert (it["params"], it["macs"], it["mem_access"]) == \
            (row["costs"]["params"], row["costs"]["macs"], row["costs"]["mem_access"]), row["scope"]
    # one bar per analyze stage, in its order
    assert [s["id"] for s in data["network"]["stages"]] == [s["scope"] for s in r["stages"]]
    assert max(s["live_bytes"] for s in data["network"]["stages"]) == r["memory"]["peak_bytes"]


def test_every_view_is_a_graphviz_svg_whose_nodes_have_details(mnv2):
    G, data, _ = mnv2
    net = data["network"]
    views = {v["id"]: v for v in net["views"]}
    assert {"network", "stage", "block", "op", "open:stages.1", "open:stages.1.blocks.1"} <= set(views)
    blocks = {n for n in G.graph["scopes"] if G.graph["scopes"][n]["kind"] == "block"}
    for vid in ("stage", "open:stages.1", "open:stages.1.blocks.1"):
        svg = svg_of(views[vid])
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        titles = re.findall(r'<g id="[^"]*" class="node">\s*<title>([^<]*)</title>', svg)
        assert titles and all(t in net["items"] for t in titles), vid
    # opening a stage draws its blocks; opening a block draws its ops, framed by its cluster
    opened = svg_of(views["open:stages.1"])
    assert "<title>stages.1.blocks.0</title>" in opened and "<title>stages.1</title>" not in opened
    ops = svg_of(views["open:stages.1.blocks.1"])
    assert "<title>stages.1.blocks.1.dw.conv</title>" in ops and "<title>cluster_stages.1.blocks.1</title>" in ops
    # a search goes to a view that draws the node
    assert net["home"]["stages.1.blocks.1.dw.conv"] == "open:stages.1.blocks.1"
    assert net["home"]["stages.1.blocks.1"] == "open:stages.1" and net["home"]["stages.1"] == "stage"
    assert all(v.startswith("open:") or v in views for v in net["home"].values())
    outer = {G.nodes[n]["blocks"][0] for n in G.nodes if G.nodes[n]["blocks"]}
    assert outer <= blocks and {f"open:{b}" for b in outer} <= set(views)
    assert len(views) == len(diagrams.views(G)) == 4 + len(outer) + len(G.graph["stages"]) + 2  # + stem, head


def test_page_is_self_contained(mnv2):
    _, data, text = mnv2
    assert not re.search(r'\b(src|href)\s*=\s*"(https?:)?//', text)
    assert "http://" not in text.replace("http://www.w3.org/", "") and "https://" not in text
    assert "<link" not in text and "@import" not in text and "Content-Security-Policy" in text
    assert data["run"] is None and data["family"]["current"] == "(base)"  # mobilenet_v2 has width variants


def test_family_of_a_spec_with_variants(tmp_path):
    text = netspec.report(SPECS / "mobilenet_v1.yaml", variant="0.5_160")
    fam = page_data(text)["family"]
    names = [r["name"] for r in fam["rows"]]
    assert fam["current"] == "0.5_160" and "(base)" in names and "0.5_160" in names
    half = next(r for r in fam["rows"] if r["name"] == "0.5_160")
    G = netspec.lower(netspec.load(SPECS / "mobilenet_v1.yaml", variant="0.5_160"))
    assert half["params"] == analyze(G).network.costs.params
    assert all(r["latency_ms"] is None for r in fam["rows"])  # the extension point: no invented numbers
    assert 'id="family"' in text


def test_run_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"epoch": e, "lr": 0.1, "train_loss": 2.0 / e, "val_loss": 2.1 / e, "val_acc1": 0.3 * e,
             "val_acc5": 0.5 + 0.1 * e, "images_per_s": 100.0, "seconds": 3.0 * e, "res": [32, 32]} for e in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = page_data(netspec.report(SPECS / "lenet5.yaml", run=run))
    assert [r["epoch"] for r in data["run"]["rows"]] == [1, 2, 3]
    assert data["run"]["final"]["val_acc1"] == pytest.approx(0.9) and data["run"]["best_acc1"] == pytest.approx(0.9)


# --------------------------------------------------------------------------- the command

def test_cli_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(SPECS / "lenet5.yaml"), "-o", str(out)]) == 0
    first = out.read_bytes()
    assert main(["report", str(SPECS / "lenet5.yaml"), "-o", str(out)]) == 2
    assert "exists; not overwriting" in capsys.readouterr().err and out.read_bytes() == first
    assert main(["report", str(SPECS / "lenet5.yaml"), "-o", str(out), "--force", "--level", "op"]) == 0
    assert page_data(out.read_text())["initial_view"] == "op"
    with pytest.raises(netspec.SpecError, match="not overwriting"):
        netspec.report(SPECS / "lenet5.yaml", out)


@pytest.mark.parametrize("args, message", [
    (["-o", "{tmp}/r.svg"], "a report is an HTML file"),
    (["-o", "{tmp}/missing/r.html"], "does not exist"),
    (["-o", "{tmp}/r.html", "--run", "{tmp}"], "no metrics.jsonl"),
    (["-o", "{tmp}/r.html", "--run", "{tmp}/bad"], "line 2 is not JSON"),
    (["-o", "{tmp}/r.html", "--run", "{tmp}/noepoch"], "no numeric 'epoch'"),
    (["-o", "{tmp}/r.html", "--variant", "nope"], "nope"),
])
def test_cli_errors_are_located_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, oops\n')
    (tmp_path / "noepoch").mkdir()
    (tmp_path / "noepoch" / "metrics.jsonl").write_text('{"val_acc1": 0.5}\n')
    argv = ["report", str(SPECS / "mobilenet_v1.yaml"), *[a.format(tmp=tmp_path) for a in args]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_compare_html(tmp_path, capsys):
    out = tmp_path / "c.html"
    assert main(["compare", str(SPECS / "mobilenet_v1.yaml"), str(SPECS / "mobilenet_v2.yaml"), "--html", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    data = page_data(text)
    assert data["kind"] == "compare" and data["compare"]["labels"] == ["mobilenet_v1", "mobilenet_v2"]
    svg = gzip.decompress(base64.b64decode(data["diagram"])).decode()
    assert "<title>net0.stages.0</title>" in svg and "<title>net1.stages.6</title>" in svg
    assert main(["compare", str(SPECS / "mobilenet_v1.yaml"), str(SPECS / "mobilenet_v2.yaml"), "--html", str(out)]) == 2
    assert "not overwriting" in capsys.readouterr().err


# --------------------------------------------------------------------------- every zoo spec

@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_spec_gives_a_bounded_page(tmp_path, name):
    out = tmp_path / "r.html"
    assert main(["report", str(SPECS / name), "-o", str(out)]) == 0
    size = out.stat().st_size
    assert 20_000 < size <= MAX_BYTES, size
    data = page_data(out.read_text(encoding="utf-8"))
    assert {v["id"] for v in data["network"]["views"]} >= {"network", "stage", "block", "op"}


@pytest.mark.slow
def test_efficientnet_b7_within_the_size_bound(tmp_path):
    out = tmp_path / "b7.html"
    assert main(["report", str(SPECS / "efficientnet.yaml"), "--variant", "b7", "--level", "op", "-o", str(out)]) == 0
    assert out.stat().st_size <= MAX_BYTES
