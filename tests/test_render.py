"""`netspec render`: the structure of the DOT it writes, per level, and the files it makes."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SPECS
from netspec import render as R
from netspec.analysis import costs
from netspec.cli import main
from netspec.errors import SpecError
from netspec.lower import lower
from netspec.spec import load_spec

# A small network with every feature a diagram has to show: a conv-bn-act block, a residual
# MBConv (b1: stride 1, 8 -> 8), a strided one without residual (b2), a Fire block joined by a
# concat, a plain head and an aux head hanging off b2.
TINY = """
name: tiny
input: {channels: 3, size: 32}
num_classes: 10
stem:
  - {type: conv_bn_act, name: conv, out: 8, kernel: 3, stride: 2}
stages:
  - blocks:
      - {type: mbconv, name: b1, expand: 2, out: 8}
      - {type: mbconv, name: b2, expand: 2, out: 16, stride: 2}
  - blocks:
      - {type: fire, name: f1, squeeze: 4, e1: 8, e3: 8}
head:
  - {type: global_avgpool, name: pool, keepdim: false}
  - {type: linear, name: fc, out: $num_classes}
aux_heads:
  - name: aux1
    at: b2
    layers:
      - {type: global_avgpool, name: pool, keepdim: false}
      - {type: linear, name: fc, out: $num_classes}
"""

ID = r'("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*)'
NODE = re.compile(rf"^\s*{ID} \[")
EDGE = re.compile(rf"^\s*{ID} -> {ID}(?: \[(.*)\])?$")


def unquote(s: str) -> str:
    return s[1:-1] if s.startswith('"') else s


def parse(dot: str):
    """Nodes {id: attribute text}, edges [(src, dst, attribute text)], cluster labels - from DOT text."""
    nodes, edges, clusters = {}, [], []
    lines = dot.splitlines()
    for i, line in enumerate(lines):
        if m := EDGE.match(line):
            edges.append((unquote(m[1]), unquote(m[2]), m[3] or ""))
        elif line.strip().startswith("subgraph") and "cluster_" in line:
            clusters.append(re.search(r"label=(\"[^\"]*\"|\S+)", lines[i + 1])[1].strip('"'))
        elif (m := NODE.match(line)) and m[1] not in ("node", "edge", "graph"):
            nodes[unquote(m[1])] = line
    return nodes, edges, clusters


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def G(tiny):
    return lower(load_spec(tiny))


# ops per part, from the block templates:
#   stem.conv   conv_bn_act: conv, bn, act                                   3
#   b1          mbconv: expand (3), dw (3), project (conv, bn: 2), add       9
#   b2          same without the add (stride 2)                              8
#   f1          fire: squeeze (2), expand1x1 (2), expand3x3 (2), concat      7
#   head, aux   pool, linear                                              2 + 2
# plus the input: 1 + 3 + 9 + 8 + 7 + 2 + 2 = 32 nodes. Every op has one input except the
# add and the concat (two), so there are 31 + 1 + 1 = 33 edges.
@pytest.mark.parametrize("level, n_nodes, n_edges, n_clusters", [
    ("op", 32, 33, 5 + 13),   # parts + block scopes: stem.conv 1, b1 and its 3 convs 4, b2 4, f1 4
    # input, stem.conv, b1, b2, f1, head.pool, head.fc, aux pool, aux fc; stem.conv -> b1 stands for
    # two IR edges (into the expand conv and into the add); clusters: stem, 2 stages, head, aux1
    ("block", 9, 8, 5),
    ("stage", 6, 5, 0),       # input, stem, stage 0, stage 1, head, aux1; aux1 hangs off stage 0
    ("network", 5, 4, 0),     # input, stem, body, head, aux1
])
def test_node_edge_and_cluster_counts_per_level(G, level, n_nodes, n_edges, n_clusters):
    nodes, edges, clusters = parse(R.render(G, level=level))
    assert len(nodes) == n_nodes
    assert len(edges) == n_edges
    assert len(clusters) == n_clusters
    assert {s for s, _, _ in edges} | {d for _, d, _ in edges} <= set(nodes)


def test_block_level_groups_and_labels(G):
    nodes, edges, clusters = parse(R.render(G, level="block"))
    assert set(nodes) == {"input", "stem.conv", "stages.0.blocks.b1", "stages.0.blocks.b2", "stages.1.blocks.f1",
                          "head.pool", "head.fc", "aux.aux1.pool", "aux.aux1.fc"}
    b1, b2, f1 = nodes["stages.0.blocks.b1"], nodes["stages.0.blocks.b2"], nodes["stages.1.blocks.f1"]
    assert "<B>mbconv  b1</B>" in b1 and "k3 · e2 · relu6 · out 8" in b1 and "+ identity shortcut" in b1
    assert "k3 · s2 · e2" in b2 and "shortcut" not in b2
    assert "squeeze 4 · e1 8 · e3 8" in f1 and "concat of 2 branches" in f1
    # the residual block is outlined in the residual colour; its anatomy strip has one cell per op (9)
    assert 'color="#d62728"' in b1 and b1.count("<TD BGCOLOR=") == 9
    assert clusters == ["stem", "stage 0", "stage 1", "head", "aux head aux1"]
    # edges carry the tensor shape: 3x32x32 in, 8x16x16 after the stride-2 stem, 16x8x8 after b2
    labels = {(s, d): a for s, d, a in edges}
    assert 'label=" 3×32×32"' in labels[("input", "stem.conv")]
    assert 'label=" 8×16×16"' in labels[("stem.conv", "stages.0.blocks.b1")]
    assert 'label=" 16×8×8"' in labels[("stages.0.blocks.b2", "aux.aux1.pool")]


def test_op_level_colours_joins_and_residual_edges(G):
    nodes, edges, _ = parse(R.render(G, level="op"))
    conv, dw = nodes["stages.0.blocks.b1.expand.conv"], nodes["stages.0.blocks.b1.dw.conv"]
    assert f'fillcolor="{R.KIND_COLOURS["conv"]}"' in conv and "conv 1×1, 16" in conv   # 8 * expand 2
    assert f'fillcolor="{R.KIND_COLOURS["dwconv"]}"' in dw and "dwconv 3×3" in dw
    assert R.KIND_COLOURS["conv"] != R.KIND_COLOURS["dwconv"]
    assert "shape=circle" in nodes["stages.0.blocks.b1.add"]
    assert "shape=invtrapezium" in nodes["stages.1.blocks.f1.cat"]
    roles = {(s, d): a for s, d, a in edges}
    # the block input skips the block's six ops into the add: dashed, residual colour
    skip = roles[("stem.conv.act", "stages.0.blocks.b1.add")]
    assert "dashed" in skip and "#d62728" in skip
    assert "dashed" not in roles[("stages.0.blocks.b1.project.bn", "stages.0.blocks.b1.add")]
    for branch in ("expand1x1.act", "expand3x3.act"):
        assert R.EDGE_STYLES["concat"]["color"] in roles[(f"stages.1.blocks.f1.{branch}", "stages.1.blocks.f1.cat")]


def test_aux_head_is_a_dashed_side_branch(G):
    nodes, edges, _ = parse(R.render(G, level="block"))
    to_aux = [a for s, d, a in edges if d == "aux.aux1.pool"]
    assert len(to_aux) == 1 and "dashed" in to_aux[0] and "weight=0" in to_aux[0]
    assert "dashed" in nodes["aux.aux1.pool"] and "dashed" not in nodes["head.pool"]


def test_title_and_legend(G):
    dot = R.render(G, level="op")
    params, aux = costs.total_params(G), costs.total_params(G, include_aux=True) - costs.total_params(G)
    assert f"tiny  —  {params:,} params (+{aux:,} aux)" in dot
    assert "input 3×32×32" in dot and "op level" in dot
    assert "depthwise conv" in dot and "residual (skip into add)" in dot and "branch into concat" in dot
    assert "depthwise conv" not in R.render(G, level="stage")  # stage nodes are not coloured by kind
    assert "depthwise conv" not in R.render(G, level="op", legend=False)


def test_stage_and_network_summaries(G):
    nodes, _, _ = parse(R.render(G, level="stage"))
    s0 = nodes["stages.0"]
    # b1 and b2 differ only in stride: one run of two, the stride on the second
    assert "stage 0  (2 blocks)" in s0 and "2 × mbconv k3 e2 relu6 /1,2" in s0 and "→ 16×8×8" in s0
    body = parse(R.render(G, level="network"))[0]["body"]
    assert "2 stages · 3 blocks" in body and "2 × mbconv" in body and "1 × fire" in body


def test_expand_opens_one_scope_to_ops(G):
    nodes, edges, clusters = parse(R.render(G, level="block", expand=("stages.0.blocks.b1",)))
    # the 9 block-level nodes with b1 replaced by its 9 ops
    assert len(nodes) == 9 - 1 + 9
    assert "stages.0.blocks.b1" not in nodes and "stages.0.blocks.b2" in nodes
    assert "mbconv b1" in clusters and "conv_bn_act dw" in clusters
    # block level: 8 edges; b1's 8 internal edges appear, stem -> b1 becomes two (expand conv, add)
    assert len(edges) == 8 - 1 + 8 + 2
    # at stage level the stage holding the expanded block is drawn block by block around it
    nodes, edges, _ = parse(R.render(G, level="stage", expand=("stages.0.blocks.b1",)))
    assert "stages.0" not in nodes and "stages.0.blocks.b2" in nodes and "stages.1" in nodes


def test_annotations(G):
    nodes, edges, _ = parse(R.render(G, level="block", annotate=("params", "macs")))
    stem = nodes["stem.conv"]
    # conv 3->8 3x3 no bias: 8*3*9 = 216 weights, BN 2*8 = 16: 232; MACs 8*16*16 * 3*9 = 55,296
    assert "params 232" in stem and "MACs 55.3K" in stem
    assert not any("label=" in a for _, _, a in edges)  # no shapes asked for
    pytest.importorskip("netspec.analysis.receptive")
    stem = parse(R.render(G, level="block", annotate=("rf",)))[0]["stem.conv"]
    assert "RF 3 (jump 2)" in stem  # one 3x3 stride-2 conv


def test_same_spec_gives_byte_identical_dot_without_torch(tiny):
    """Fresh processes with different hash seeds: no set-order or id() leaks, and no torch import."""
    code = ("import sys; from netspec.cli import main; main(['render', sys.argv[1], '--level', 'op']); "
            "assert 'torch' not in sys.modules, 'render imported torch'")
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code, str(tiny)], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1] and outs[0].startswith("digraph tiny {")
    assert "0x" not in outs[0]  # no memory addresses


def test_every_shipped_spec_renders_at_every_level():
    for path in sorted(SPECS.glob("*.yaml")):
        G = lower(load_spec(path))
        counts = []
        for level in R.LEVELS:
            nodes, edges, _ = parse(R.render(G, level=level))
            counts.append(len(nodes))
            assert len(edges) >= len(nodes) - 1, (path.name, level)  # connected
        assert counts == sorted(counts), (path.name, counts)  # coarser levels draw fewer nodes
        assert counts[-1] == len(G), path.name  # op level: one node per IR node


def test_efficientnet_b7_stays_readable_at_stage_and_block_level():
    G = lower(_load_variant(SPECS / "efficientnet.yaml", "b7"))
    assert len(G) > 800  # hundreds of ops
    stage = parse(R.render(G, level="stage"))[0]
    assert len(stage) == 1 + 1 + len(G.graph["stages"]) + 1  # input, stem, stages, head
    dot = R.render(G, level="block")
    blocks = sum(1 for s in G.graph["scopes"].values() if s["kind"] == "block" and s["parent"].endswith(".blocks"))
    assert len(parse(dot)[0]) < 80 and blocks >= 55
    assert "rank=same" not in dot  # one column top to bottom, however long


def _layout(dot_source: str) -> tuple[dict, list]:
    """Graphviz's own layout (`dot -Tjson`): node centres {name: (x, y)} (y grows up the page) and
    the edges as (tail, head)."""
    out = json.loads(subprocess.run(["dot", "-Tjson"], input=dot_source.encode(), capture_output=True,
                                    check=True).stdout)
    objects = out.get("objects", [])
    pos = {o["name"]: tuple(float(c) for c in o["pos"].split(",")) for o in objects if "pos" in o}
    names = {o["_gvid"]: o["name"] for o in objects}
    return pos, [(names[e["tail"]], names[e["head"]]) for e in out.get("edges", [])]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
@pytest.mark.parametrize("level", ["stage", "block"])
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_diagrams_read_top_to_bottom(path, level):
    """Every edge but an aux head's points down the page in dot's layout, and aux heads sit beside
    the trunk (above its last node), not below the network."""
    G = lower(load_spec(path))
    view = R.collapse(G, level)
    pos, edges = _layout(R.to_dot(G, view))
    roles = {(e.src, e.dst): e.role for e in view.edges}
    assert sorted(edges) == sorted(roles)
    up = [(u, v) for u, v in edges if roles[(u, v)] != "aux" and pos[u][1] <= pos[v][1]]
    assert not up, f"{path.name} {level}: edges pointing up or sideways: {up[:5]}"
    aux = [v.id for v in view.nodes if v.aux]
    if aux:
        bottom = min(pos[v.id][1] for v in view.nodes if not v.aux)
        assert all(pos[a][1] > bottom for a in aux), f"{path.name} {level}: an aux head below the network"


def test_flow_is_top_to_bottom_in_a_long_inception_network():
    """GoogLeNet's stage clusters used to stand side by side with edges running back up the page."""
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` not installed")
    G = lower(load_spec(SPECS / "googlenet.yaml"))
    pos, _ = _layout(R.render(G, level="block"))
    trunk = ["input", "stem.conv1", "stages.inception3.blocks.inception3a", "stages.inception4.blocks.inception4e",
             "stages.inception5.blocks.inception5b", "head.fc"]
    ys = [pos[n][1] for n in trunk]
    assert ys == sorted(ys, reverse=True)


def _load_variant(path, variant):
    from netspec.scale import apply_scaling
    return apply_scaling(load_spec(path), variant=variant)


# --------------------------------------------------------------------------- the command and its files

def test_render_prints_dot_to_stdout(tiny, capsys):
    assert main(["render", str(tiny), "--level", "stage", "--direction", "LR"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph tiny {") and "rankdir=LR" in out


def test_render_variant_and_set_flow_through(capsys):
    assert main(["render", str(SPECS / "lenet5.yaml"), "--set", "num_classes=20", "--level", "op"]) == 0
    assert "linear 20" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--expand", "stages.9"], "no scope 'stages.9'"),
    (["--annotate", "shapes,flops"], "unknown annotation 'flops'"),
    (["-o", "x.jpg"], "unknown file type '.jpg'"),
])
def test_render_errors_exit_2(tiny, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(tiny), *argv]) == 2
    assert message in capsys.readouterr().err


def test_expand_hint_names_a_close_scope(G):
    with pytest.raises(SpecError) as info:
        R.render(G, expand=("stages.0.block.b1",))
    assert "did you mean 'stages.0.blocks.b1'" in str(info.value)


def test_without_dot_binary_dot_files_work_and_images_fail_clearly(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` anywhere
    assert R.find_dot() is None
    out = tmp_path / "tiny.dot"
    assert main(["render", str(tiny), "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph tiny {")
    svg = tmp_path / "tiny.svg"
    assert main(["render", str(tiny), "-o", str(svg)]) == 2
    err = capsys.readouterr().err
    assert "Graphviz 'dot' program is not installed" in err and "apt-get install graphviz" in err
    assert not svg.exists()


def test_never_overwrites_without_force(tiny, tmp_path, capsys):
    out = tmp_path / "mine.dot"
    out.write_text("a user's file")
    assert main(["render", str(tiny), "-o", str(out)]) == 2
    assert "exists; not overwriting" in capsys.readouterr().err
    assert out.read_text() == "a user's file"
    assert main(["render", str(tiny), "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("digraph tiny {")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF")])
def test_images_are_produced_with_dot(tiny, tmp_path, suffix, magic):
    out = tmp_path / f"tiny{suffix}"
    assert main(["render", str(tiny), "-o", str(out), "--level", "op"]) == 0
    data = out.read_bytes()
    assert len(data) > 1000
    assert data.startswith(magic) if suffix != ".svg" else magic in data[:400]
    if suffix == ".svg":  # the labels made it through Graphviz
        assert b"dwconv 3" in data and b"aux head aux1" in data


def test_rf_annotation_without_the_analysis_says_so(tiny, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "netspec.analysis.receptive", None)  # the analysis is absent
    assert R.receptive_fields(lower(load_spec(tiny))) is None
    assert main(["render", str(tiny), "--annotate", "shapes,rf"]) == 0
    captured = capsys.readouterr()
    assert "receptive-field analysis is not available" in captured.err
    assert "RF " not in captured.out and captured.out.startswith("digraph tiny {")


def test_network_level_resolution_path_ignores_aux_heads_inside_stages():
    # Inception v3's AuxLogits lives inside stage mixed6 (torchvision's registration order);
    # the body's resolution path must still read the stages' own outputs
    import netspec
    from netspec.render import render as render_dot

    G = netspec.lower(netspec.load(SPECS / "inception_v3.yaml"))
    dot_source = render_dot(G, level="network")
    assert "resolution 35 → 17 → 8" in dot_source


RESNETISH = """
name: resnetish
input: {channels: 3, size: 16}
num_classes: 10
blocks:
  basic:
    doc: ResNet basic block; a 1x1 conv + BN projection when the shape changes, else an identity.
    params:
      out: {type: int}
      stride: {type: int, default: 1}
    vars:
      project: $stride != 1 or $in != $out
    body:
      - {type: conv_bn_act, name: conv1, out: $out, kernel: 3, stride: $stride}
      - {type: conv_bn_act, name: conv2, out: $out, kernel: 3, act: none}
      - {type: conv_bn_act, name: down, inputs: input, out: $out, kernel: 1, stride: $stride, act: none,
         when: $project}
      - {type: add, name: add, inputs: [conv2, "'down' if $project else 'input'"]}
      - {type: relu, name: relu}
  pooled:
    doc: a shortcut through a max-pool, no conv
    body:
      - {type: conv_bn_act, name: conv, out: $in, kernel: 3, stride: 2}
      - {type: maxpool, name: pool, inputs: input, kernel: 2, stride: 2}
      - {type: add, name: add, inputs: [conv, pool]}
stem:
  - {type: conv_bn_act, name: conv, out: 8, kernel: 3}
stages:
  - blocks:
      - {type: basic, name: same, out: 8}
      - {type: basic, name: down, out: 16, stride: 2}
      - {type: pooled, name: pooled}
head:
  - {type: global_avgpool, name: pool, keepdim: false}
  - {type: linear, name: fc, out: $num_classes}
"""


def test_residual_blocks_say_which_shortcut(tmp_path):
    """An identity shortcut and a projection shortcut (the add's other input goes through a conv)
    read differently; a shortcut through other ops names them."""
    path = tmp_path / "resnetish.yaml"
    path.write_text(RESNETISH)
    nodes, _, _ = parse(R.render(lower(load_spec(path)), level="block"))
    same, down, pooled = (nodes[f"stages.0.blocks.{b}"] for b in ("same", "down", "pooled"))
    assert "+ identity shortcut" in same and "projection" not in same
    assert "+ projection shortcut" in down and "identity" not in down
    assert "+ maxpool shortcut" in pooled
    assert all('color="#d62728"' in n for n in (same, down, pooled))  # all three are residual blocks


def test_dense_gathers_are_folded_and_parallel_branches_are_not():
    """DenseNet's layers read every earlier output of their block: drawn with the nearest input and a
    count (the full fan-in made Graphviz take minutes); Inception's parallel branches keep every edge."""
    import netspec
    from netspec.render import DENSE_FAN_IN, collapse

    dense = collapse(netspec.lower(netspec.load(SPECS / "densenet.yaml")), "block")
    fan_in: dict = {}
    for e in dense.edges:
        fan_in[e.dst] = fan_in.get(e.dst, 0) + 1
    assert max(fan_in.values()) <= DENSE_FAN_IN
    # denseblock3 of DenseNet-121 has 24 layers; the transition after it reads the block input and all
    # 24 layers: all but the nearest folded into its edge
    assert max(e.also for e in dense.edges) == 24
    op_level = collapse(netspec.lower(netspec.load(SPECS / "inception_v3.yaml")), "op")
    assert not any(e.also for e in op_level.edges)
    widest = max(len(G_in) for G_in in [[e for e in op_level.edges if e.dst == n.id] for n in op_level.nodes])
    assert widest == 4  # Inception B-E's concat: every branch drawn (E's 3x3 branches are concats of two)
