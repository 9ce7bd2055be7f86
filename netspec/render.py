"""Diagrams: the graph IR → Graphviz DOT, at four levels of detail.

Rendering reads the IR only (never torch). It is two pure steps:

1. `collapse(G, level, expand)` maps every IR node to the *group* it is drawn
   in - itself (op level), its outermost block scope (block level), its part
   (stem / a stage / head / an aux head: stage level) or a coarser part
   (network level) - and turns IR edges between different groups into view
   edges carrying the tensor shape. `--expand SCOPE` draws the nodes under
   SCOPE one by one whatever the level; scopes around it open one level
   further so that every group stays contiguous.
2. `to_dot(view, ...)` writes the view as DOT with the python `graphviz`
   package: colours by op kind, clusters framing the scopes a drawn node sits
   inside, residual / gating / concat edges styled apart, a legend and a title.

Only turning DOT into svg/png/pdf needs the `dot` binary (`write`).
Everything is emitted in IR order (the lowering order, a topological order),
so the same spec always gives byte-identical DOT.
"""
from __future__ import annotations

import importlib
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import graphviz
import networkx as nx

from .analysis import costs
from .errors import SourceLoc, SpecError, did_you_mean
from .escape import dot_string, html_text

LEVELS = ("network", "stage", "block", "op")
ANNOTATIONS = ("shapes", "params", "macs", "rf")
FORMATS = (".dot", ".gv", ".svg", ".png", ".pdf")

# Fill colours by op kind (node attr `kind`, with depthwise convs split from dense ones).
KIND_COLOURS = {
    "input": "#eeeeee",
    "conv": "#9ecae1",
    "dwconv": "#c6b3e6",
    "norm": "#fdd49e",
    "activation": "#c7e9c0",
    "pool": "#fcbba1",
    "elementwise": "#fff7a8",
    "data": "#cfcfcf",
    "linear": "#f4a6c9",
    "regularizer": "#dfe6ee",
}
KIND_NAMES = {"dwconv": "depthwise conv", "elementwise": "element-wise", "data": "data (concat, split, ...)",
              "regularizer": "dropout / drop path"}
# How edges look by role; `role` is decided on IR edges (see `edge_role`).
EDGE_STYLES = {
    "data": {"color": "#555555"},
    "residual": {"color": "#d62728", "style": "dashed", "penwidth": "1.8"},
    "gate": {"color": "#8e44ad", "style": "dotted", "penwidth": "1.5"},
    "concat": {"color": "#1f77b4", "penwidth": "1.8"},
    "aux": {"color": "#888888", "style": "dashed"},
}
EDGE_NAMES = {"residual": "residual (skip into add)", "gate": "scaled input (into mul, e.g. SE)",
              "concat": "branch into concat", "aux": "to auxiliary head"}
# A node with more inputs than this whose inputs lie on one chain (each an ancestor of the nearest
# one) is a dense gather (DenseNet: each layer reads every earlier output of its block). It is
# drawn with its nearest input, that edge saying how many more it reads: every edge would make the
# drawing quadratic in the block's length (Graphviz takes minutes at DenseNet-169's 1,250 edges).
# Parallel branches (Inception's concats) are no chain and keep all their edges.
DENSE_FAN_IN = 3
ROLE_RANK = {"data": 0, "aux": 1, "concat": 2, "gate": 3, "residual": 4}
# Op-level node shapes for joins and splits, so they read as such.
OP_SHAPES = {"add": ("circle", "+"), "mul": ("circle", "×"), "concat": ("invtrapezium", None),
             "chunk": ("trapezium", None)}
BLOCK_FILL = "#f7fbff"
PART_FILL = "#deebf7"
AUX_FILL = "#f2f2f2"
MAX_STRIP = 28       # op cells drawn in a block's composition strip
LEGEND_ROW = 6       # legend entries per row
MAX_RUNS = 4         # block runs listed in a stage node


# --------------------------------------------------------------------------- view model

@dataclass
class VNode:
    id: str
    label: str              # a Graphviz HTML label (without the outer <>)
    kind: str               # colour key: an op kind, or "block" / "part"
    shape: str = "box"
    aux: bool = False
    clusters: tuple = ()    # enclosing framed scopes, outermost first
    residual: bool = False  # a collapsed block whose output is a residual sum


@dataclass
class VEdge:
    src: str
    dst: str
    shapes: tuple           # distinct tensor shapes on the IR edges it stands for
    role: str
    also: int = 0           # further inputs of a dense gather folded into this edge (see DENSE_FAN_IN)


@dataclass
class View:
    level: str
    nodes: list[VNode]
    edges: list[VEdge]
    clusters: dict[str, str] = field(default_factory=dict)  # scope -> label, outer scopes first
    kinds: list[str] = field(default_factory=list)          # op kinds drawn (legend)


# --------------------------------------------------------------------------- reading the IR

def op_kind(G: nx.DiGraph, n: str) -> str:
    """The colour key of an op: its kind, with depthwise convs apart from dense ones."""
    d = G.nodes[n]
    a = d["attrs"]
    if d["kind"] == "conv" and a.get("groups", 1) > 1 and a.get("groups") == a.get("in_channels"):
        return "dwconv"
    return d["kind"]


def part_of(G: nx.DiGraph, n: str) -> Optional[str]:
    """The top-level scope a node belongs to: stem, a stage, head or an aux head (None for the input)."""
    return G.nodes[n]["part"]  # recorded by lowering; None for the input


def network_group(G: nx.DiGraph, part: str) -> str:
    """Network level: all stages become one `body`; stem, head and aux heads stay."""
    return "body" if G.graph["scopes"][part]["kind"] == "stage" else part


def depths(G: nx.DiGraph) -> dict[str, int]:
    """Longest-path depth (in ops) of every node from the input; IR order is topological."""
    depth: dict[str, int] = {}
    for n in G.nodes:
        depth[n] = max((depth[u] + 1 for u in G.nodes[n]["inputs"]), default=0)
    return depth


def edge_role(G: nx.DiGraph, u: str, v: str, depth: dict[str, int]) -> str:
    """Why an edge exists, for styling. An input of an add / mul that is shallower than the
    op's deepest input bypasses the branch computing that one: a residual (add) or a
    scaled input (mul, e.g. squeeze-excitation)."""
    dv, du = G.nodes[v], G.nodes[u]
    if dv["aux"] and not du["aux"]:
        return "aux"
    if dv["op"] in ("add", "mul"):
        deepest = max(depth[i] for i in dv["inputs"])
        if depth[u] < deepest:
            return "residual" if dv["op"] == "add" else "gate"
    if dv["op"] == "concat":
        return "concat"
    return "data"


# --------------------------------------------------------------------------- labels

def _pair(v) -> str:
    if isinstance(v, (list, tuple)):
        return str(v[0]) if v[0] == v[1] else f"{v[0]}×{v[1]}"
    return str(v)


def _kernel(v) -> str:
    """Kernels read as 3×3 / 1×7 (a bare 3 could be anything)."""
    kh, kw = v if isinstance(v, (list, tuple)) else (v, v)
    return f"{kh}×{kw}"


def shape_text(shape) -> str:
    return "×".join(str(s) for s in shape)


def short(n: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:g}"


def op_text(G: nx.DiGraph, n: str) -> str:
    """One line naming an op and its few telling attributes (kernel/stride/channels)."""
    d = G.nodes[n]
    a, op = d["attrs"], d["op"]
    if op == "conv2d":
        name = "dwconv" if op_kind(G, n) == "dwconv" else "conv"
        s = f" /{_pair(a['stride'])}" if tuple(a["stride"]) != (1, 1) else ""
        g = f" g{a['groups']}" if 1 < a["groups"] != a["in_channels"] else ""
        out = "" if name == "dwconv" else f", {a['out']}"
        return f"{name} {_kernel(a['kernel'])}{s}{g}{out}"
    if op in ("maxpool", "avgpool"):
        s = f" /{_pair(a['stride'])}" if a.get("stride") and _pair(a["stride"]) != "1" else ""
        return f"{op} {_kernel(a['kernel'])}{s}"
    if op == "linear":
        return f"linear {a['out']}"
    if op == "chunk":
        return f"split {a['index'] + 1}/{a['chunks']}"
    if op == "channel_shuffle":
        return f"shuffle g{a['groups']}"
    if op in ("dropout", "drop_path") and "p" in a:
        return f"{op} {a['p']:.3g}"
    return op


# Block parameters worth a glance, in display order, with how to write them.
def _block_params(params: dict) -> list[str]:
    bits = []
    if "kernel" in params:
        bits.append(f"k{_pair(params['kernel'])}")
    if params.get("stride", 1) not in (1, (1, 1), [1, 1]):
        bits.append(f"s{_pair(params['stride'])}")
    if "expand" in params and not params.get("mid"):  # an explicit hidden width overrides the ratio
        bits.append(f"e{params['expand']:g}" if isinstance(params["expand"], (int, float)) else f"e{params['expand']}")
    if params.get("mid"):
        bits.append(f"mid {params['mid']}")
    if params.get("groups") == "depthwise":
        bits.append("dw")
    elif isinstance(params.get("groups"), int) and params["groups"] > 1:
        bits.append(f"g{params['groups']}")
    if isinstance(params.get("se"), (int, float)) and params["se"] > 0:
        bits.append(f"SE {params['se']:g}")
    if isinstance(params.get("act"), str) and params["act"] != "none":
        bits.append(params["act"])
    # remaining integer widths (out, Inception branch widths, ...); flags, rules and defaults are noise
    shown = {"kernel", "stride", "expand", "mid", "groups", "se", "act", "dilation", "padding"}
    for k, v in params.items():
        if k not in shown and isinstance(v, int) and not isinstance(v, bool):
            bits.append(f"{k} {v}")
    return bits


def _wrap(bits: list[str], width: int = 30) -> list[str]:
    lines, line = [], ""
    for b in bits:
        if line and len(line) + len(b) + 3 > width:
            lines.append(line)
            line = b
        else:
            line = f"{line} · {b}" if line else b
    return lines + ([line] if line else [])


def _strip(kinds: list[str]) -> str:
    """A row of small cells, one per op in IR order, coloured by kind: the block's anatomy at a glance."""
    cells = kinds[:MAX_STRIP]
    tds = "".join(f'<TD BGCOLOR="{KIND_COLOURS.get(k, "#ffffff")}" WIDTH="8" HEIGHT="8" FIXEDSIZE="TRUE"></TD>'
                  for k in cells)
    more = f'<TD><FONT POINT-SIZE="8">+{len(kinds) - MAX_STRIP}</FONT></TD>' if len(kinds) > MAX_STRIP else ""
    return f'<TR><TD><TABLE BORDER="0" CELLBORDER="1" CELLSPACING="1" CELLPADDING="0" COLOR="#777777"><TR>{tds}{more}</TR></TABLE></TD></TR>'


def _table(title: str, lines: list[str], extra_rows: str = "") -> str:
    rows = f'<TR><TD><B>{html_text(title)}</B></TD></TR>'
    rows += "".join(f'<TR><TD><FONT POINT-SIZE="10">{html_text(t)}</FONT></TD></TR>' for t in lines)
    return f'<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}{extra_rows}</TABLE>'


# --------------------------------------------------------------------------- collapsing

@dataclass
class Ctx:
    """What labelling needs, computed once per graph."""

    G: nx.DiGraph
    annotate: tuple
    rf: Optional[dict] = None
    depth: dict = field(default_factory=dict)  # depths(G), filled on first use

    def depths(self) -> dict[str, int]:
        if not self.depth:
            self.depth.update(depths(self.G))
        return self.depth

    def stats(self, nodes: list[str]) -> list[str]:
        out = []
        if "params" in self.annotate:
            out.append(f"params {short(sum(costs.node_params(self.G, n) for n in nodes))}")
        if "macs" in self.annotate:
            out.append(f"MACs {short(sum(costs.node_macs(self.G, n) for n in nodes))}")
        if "rf" in self.annotate and self.rf is not None and nodes:
            rf = self.rf.get(nodes[-1])
            if rf is not None:
                out.append(f"RF {rf}")
        return [" · ".join(out)] if out else []


def group_of(G: nx.DiGraph, n: str, level: str, expand: tuple, opened: tuple = ()) -> str:
    """The drawn node an IR node belongs to: its coarsest enclosing scope allowed by `level` that
    does not hold an expanded scope. So a stage holding an expanded block is drawn block by block
    around it (groups stay contiguous, no cycles), and the expanded scope itself op by op.
    An `opened` scope is drawn one level finer than `level` (a stage as its blocks, a block as its
    inner blocks or ops): the interactive report's click-to-expand (netspec/report)."""
    if n == "input" or level == "op" or any(n == s or n.startswith(s + ".") for s in expand):
        return n
    part = part_of(G, n)
    chain = [network_group(G, part), part, *G.nodes[n]["blocks"]]
    for scope in chain[LEVELS.index(level):]:
        if scope not in opened and not any(_holds(G, scope, s) for s in expand):
            return scope
    return n


def _holds(G: nx.DiGraph, scope: str, inner: str) -> bool:
    if scope == "body":
        return any(inner == s or inner.startswith(s + ".") for s in G.graph["stages"])
    return inner.startswith(scope + ".")


def framing(G: nx.DiGraph, group: str, first: str) -> tuple:
    """Scopes framed around a drawn group: those strictly enclosing it (its part, then blocks)."""
    part = part_of(G, first)
    if part is None or group in (part, "body"):
        return ()
    chain = [part] + list(G.nodes[first]["blocks"])
    return tuple(s for s in chain if group.startswith(s + "."))


def shortcut_kind(G: nx.DiGraph, add: str, members: list[str], depth: Optional[dict] = None) -> str:
    """What a block's residual sum adds to its main branch: `identity` (the skip input reaches the add
    untouched), `projection` (it goes through a conv, e.g. ResNet's 1×1 conv + BN when the shape
    changes) or the ops it goes through (`maxpool`). The skip is the add's shallowest input.
    `depth` is `depths(G)` when the caller has it (it costs a pass over the whole graph)."""
    depth = depth if depth is not None else depths(G)
    skip = min(G.nodes[add]["inputs"], key=lambda u: depth[u])
    inside, path, todo = set(members), [], [skip]
    while todo:  # the skip path inside the block, back to where it leaves the block input
        u = todo.pop()
        if u in inside and u not in path:
            path.append(u)
            todo.extend(G.nodes[u]["inputs"])
    if any(G.nodes[u]["kind"] == "conv" for u in path):
        return "projection"
    ops_ = [G.nodes[u]["op"] for u in reversed(path) if G.nodes[u]["kind"] not in ("norm", "regularizer")]
    return " + ".join(dict.fromkeys(ops_)) if ops_ else "identity"


def block_node(ctx: Ctx, scope: str, members: list[str]) -> VNode:
    G = ctx.G
    info = G.graph["scopes"][scope]
    kinds = [op_kind(G, n) for n in members]
    # a sum computed directly in the block body is the block's residual join
    adds = [n for n in members if G.nodes[n]["op"] == "add" and G.nodes[n]["scope"] == scope]
    residual = bool(adds)
    concat = [n for n in members if G.nodes[n]["op"] == "concat" and G.nodes[n]["scope"] == scope]
    lines = _wrap(_block_params(info["params"]))
    if concat:
        n = len(G.nodes[concat[-1]]["inputs"])
        lines.append(f"concat of {n} branch{'es' if n != 1 else ''}")
    if residual:
        lines.append(f"+ {shortcut_kind(G, adds[-1], members, ctx.depths())} shortcut")
    if any(G.nodes[n]["op"] == "channel_shuffle" and G.nodes[n]["scope"] == scope for n in members):
        lines.append("channel shuffle")
    lines += ctx.stats(members)
    title = f"{info['type']}  {info['name']}" if not info["name"].isdigit() else info["type"]
    return VNode(scope, _table(title, lines, _strip(kinds)), "block", aux=info.get("aux", False),
                 residual=residual)


def op_node(ctx: Ctx, n: str) -> VNode:
    G = ctx.G
    d = G.nodes[n]
    shape, glyph = OP_SHAPES.get(d["op"], ("box", None))
    if glyph:  # join glyph in a small circle; stats would not fit
        return VNode(n, html_text(glyph), op_kind(G, n), shape, aux=d["aux"])
    lines = ctx.stats([n])
    if d["op"] == "input":
        lines = [shape_text(d["shape"])]
    return VNode(n, _table(op_text(G, n), lines), op_kind(G, n), shape, aux=d["aux"])


def _unit_text(ctx: Ctx, unit: str) -> tuple[str, str]:
    """A stage's unit (a block scope or a bare op) in one line without its stride, and the stride."""
    G = ctx.G
    if unit in G.graph["scopes"]:
        info = G.graph["scopes"][unit]
        stride = info["params"].get("stride", 1)
        bits = [b for b in _block_params({k: v for k, v in info["params"].items() if k != "stride"})
                if not b.startswith("out ")]
        return " ".join([info["type"]] + bits[:4]), "" if _pair(stride) == "1" else _pair(stride)
    return op_text(G, unit), ""


def _runs(items: list) -> list[tuple]:
    """Consecutive equal items as (item, count)."""
    runs: list[tuple] = []
    for t in items:
        if runs and runs[-1][0] == t:
            runs[-1] = (t, runs[-1][1] + 1)
        else:
            runs.append((t, 1))
    return runs


def _run_lines(units: list[tuple[str, str]]) -> list[str]:
    """`3 × mbconv k3 e6, first /2`: runs of equal units; a stride usually sits on a run's first unit."""
    texts = [t for t, _ in units]
    lines, i = [], 0
    for text, k in _runs(texts):
        strides = [s for _, s in units[i:i + k]]
        i += k
        line = f"{k} × {text}" if k > 1 else text
        if strides[0] and not any(strides[1:]):
            line += f", first /{strides[0]}" if k > 1 else f" /{strides[0]}"
        elif any(strides):
            line += " /" + ",".join(s or "1" for s in strides)
        lines.append(line)
    return lines


def part_node(ctx: Ctx, part: str, members: list[str]) -> VNode:
    """A stem / stage / head / aux head as one node: its units summarised as runs (`3 × mbconv k3 e6`)."""
    G = ctx.G
    info = G.graph["scopes"][part]
    units = list(dict.fromkeys((G.nodes[n]["blocks"][0] if G.nodes[n]["blocks"] else n) for n in members))
    n_blocks = sum(1 for u in units if u in G.graph["scopes"])
    title = {"stem": "stem", "head": "head", "aux": info.get("label", info["name"])}.get(
        info["kind"], info.get("label", part))
    if info["kind"] == "stage" and n_blocks:
        title += f"  ({n_blocks} block{'s' if n_blocks > 1 else ''})"
    runs = _run_lines([_unit_text(ctx, u) for u in units])
    lines = runs[:MAX_RUNS] + ([f"… {len(runs) - MAX_RUNS} more"] if len(runs) > MAX_RUNS else [])
    lines.append(f"→ {shape_text(G.nodes[members[-1]]['shape'])}")
    lines += ctx.stats(members)
    return VNode(part, _table(title, lines), "part", aux=info["kind"] == "aux")


def body_node(ctx: Ctx, members: list[str]) -> VNode:
    """Network level: every stage in one node - stage count, block types, the resolution path."""
    G = ctx.G
    stages = G.graph["stages"]
    blocks = list(dict.fromkeys(G.nodes[n]["blocks"][0] for n in members if G.nodes[n]["blocks"]))
    types = _runs(sorted(G.graph["scopes"][b]["type"] for b in blocks))
    # spatial size entering the body, then after each stage
    last = {G.nodes[n]["part"]: n for n in G.nodes if G.nodes[n]["part"]}  # each part's last node, aux heads apart
    shapes = [G.nodes[members[0]]["in_shapes"][0]] + [G.nodes[last[s]]["shape"] for s in stages if s in last]
    sizes = list(dict.fromkeys(s[1] for s in shapes if len(s) == 3))
    lines = [f"{len(stages)} stages · {len(blocks)} blocks"]
    lines += [f"{k} × {t}" for t, k in types]
    if sizes:
        lines.append("resolution " + " → ".join(str(s) for s in sizes))
    lines.append(f"→ {shape_text(G.nodes[members[-1]]['shape'])}")
    lines += ctx.stats(members)
    return VNode("body", _table("body", lines), "part")


def collapse(G: nx.DiGraph, level: str = "block", expand: tuple = (), annotate: tuple = ("shapes",),
             rf: Optional[dict] = None, opened: tuple = ()) -> View:
    """The IR grouped for drawing at `level`, with `expand` scopes drawn op by op and `opened`
    scopes one level finer (see `group_of`)."""
    check_level(level)
    expand = tuple(check_scope(G, s) for s in expand)
    opened = tuple(check_scope(G, s) for s in opened)
    ctx = Ctx(G, tuple(annotate), rf)
    groups: dict[str, list[str]] = {}
    for n in G.nodes:
        groups.setdefault(group_of(G, n, level, expand, opened), []).append(n)
    nodes = []
    for g, members in groups.items():
        if g in G:
            v = op_node(ctx, g)
        elif g == "body":
            v = body_node(ctx, members)
        elif G.graph["scopes"][g]["kind"] == "block":
            v = block_node(ctx, g, members)
        else:
            v = part_node(ctx, g, members)
        v.clusters = framing(G, g, members[0])
        nodes.append(v)
    group = {n: g for g, ms in groups.items() for n in ms}
    depth = depths(G)
    merged: dict[tuple, VEdge] = {}
    for v in G.nodes:  # IR order, then input order: deterministic
        for u in G.nodes[v]["inputs"]:
            gu, gv = group[u], group[v]
            if gu == gv:
                continue
            # a skip into a collapsed block is drawn by the block itself (its "+ residual" line)
            role = edge_role(G, u, v, depth) if gv == v or G.nodes[v]["aux"] else "data"
            shape = tuple(G.nodes[u]["shape"])
            e = merged.get((gu, gv))
            if e is None:
                merged[(gu, gv)] = VEdge(gu, gv, (shape,), role)
            else:
                e.shapes = e.shapes if shape in e.shapes else e.shapes + (shape,)
                e.role = max(e.role, role, key=ROLE_RANK.get)
    clusters: dict[str, str] = {}
    edges = _fold_dense_gathers(list(merged.values()), [v.id for v in nodes])
    for v in nodes:
        for s in v.clusters:
            clusters.setdefault(s, cluster_label(G, s))
    # legend: the kinds that appear in colour - op nodes, and the ops in block strips
    drawn_ops = [op_kind(G, n) for g, ms in groups.items() if g in G or g in G.graph["scopes"]
                 and G.graph["scopes"][g]["kind"] == "block" for n in ms]
    kinds = [k for k in KIND_COLOURS if k in drawn_ops and k != "input"]
    return View(level, nodes, edges, clusters, kinds)


def _fold_dense_gathers(edges: list[VEdge], order: list[str]) -> list[VEdge]:
    """Fold the inputs of a dense gather into its nearest input's edge (see DENSE_FAN_IN)."""
    position = {n: i for i, n in enumerate(order)}
    into: dict[str, list[VEdge]] = {}
    for e in edges:
        into.setdefault(e.dst, []).append(e)
    flow = nx.DiGraph((e.src, e.dst) for e in edges)
    dropped: set[int] = set()
    for ins in into.values():
        if len(ins) <= DENSE_FAN_IN:
            continue
        nearest = max(ins, key=lambda e: position[e.src])
        upstream = nx.ancestors(flow, nearest.src)
        far = [e for e in ins if e.src in upstream]
        if len(far) >= DENSE_FAN_IN:
            dropped |= {id(e) for e in far}
            nearest.also = len(far)
    return [e for e in edges if id(e) not in dropped]


def cluster_label(G: nx.DiGraph, scope: str) -> str:
    info = G.graph["scopes"][scope]
    if info["kind"] == "block":
        return f"{info['type']} {scope.split('.', 1)[-1] if info['name'].isdigit() else info['name']}"
    if info["kind"] == "aux":
        return info.get("label", info["name"])
    return info.get("label", scope)


# --------------------------------------------------------------------------- checks

def check_level(level: str) -> None:
    if level not in LEVELS:
        raise SpecError(f"unknown --level '{level}'", SourceLoc("<command line>"), did_you_mean(level, LEVELS, "levels"))


def check_scope(G: nx.DiGraph, scope: str) -> str:
    if scope in G.graph["scopes"] or scope in G:
        return scope
    known = sorted(s for s in G.graph["scopes"] if s.count(".") <= 3)
    raise SpecError(f"--expand: no scope '{scope}' in {G.graph['name']}", SourceLoc("<command line>"),
                    did_you_mean(scope, known, "scopes"))


def parse_annotate(text: str) -> tuple:
    items = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    for t in items:
        if t not in ANNOTATIONS:
            raise SpecError(f"--annotate: unknown annotation '{t}'", SourceLoc("<command line>"),
                            did_you_mean(t, ANNOTATIONS, "annotations"))
    return items


def receptive_fields(G: nx.DiGraph) -> Optional[dict[str, str]]:
    """Each node's spatial receptive field as text, from `netspec.analysis.receptive` when that
    analysis is installed (None otherwise). SE gates are ignored, so a field stays spatial."""
    try:  # optional: rendering does not depend on it
        receptive = importlib.import_module(".analysis.receptive", __package__)
    except ImportError:
        return None
    fields = receptive.receptive_fields(G, ignore_gates=True)
    return {n: rf.describe() for n, rf in fields.items()}


# --------------------------------------------------------------------------- DOT

def title_text(G: nx.DiGraph, level: str) -> str:
    params, macs = costs.total_params(G), costs.total_macs(G)
    aux = costs.total_params(G, include_aux=True) - params
    aux_text = f" (+{aux:,} aux)" if aux else ""
    return (f"{G.graph['name']}  —  {params:,} params{aux_text} · {short(macs)} MACs · "
            f"input {shape_text(G.graph['input_shape'])} · {level} level")


def _edge_glyph(role: str) -> str:
    style = EDGE_STYLES[role].get("style")
    return "- - -" if style == "dashed" else "· · ·" if style == "dotted" else "───"


def legend_entries(view: View) -> list[str]:
    """Legend entries as inline text: op-kind swatches (a coloured ■), then the edge styles that occur.
    Plain text lines, not table cells: cells would be stretched to the title's width."""
    entries = [f'<FONT COLOR="{KIND_COLOURS[k]}" POINT-SIZE="16">■</FONT> {html_text(KIND_NAMES.get(k, k))}'
               for k in view.kinds]
    roles = [r for r in EDGE_NAMES if any(e.role == r for e in view.edges)]
    entries += [f'<FONT COLOR="{EDGE_STYLES[r]["color"]}"><B>{_edge_glyph(r)}</B></FONT> {html_text(EDGE_NAMES[r])}'
                for r in roles]
    if any(v.kind == "block" for v in view.nodes):
        entries.append("block strip: its ops in order")
    return entries


def graph_label(G: nx.DiGraph, view: View, legend: bool) -> str:
    """The title, with the legend under it: kept out of the layout so it never pushes nodes around."""
    title = f'<TR><TD><FONT POINT-SIZE="18">{html_text(title_text(G, view.level))}</FONT></TD></TR>'
    entries = legend_entries(view) if legend else []
    gap = "&nbsp;" * 4
    lines = "".join(f"<TR><TD>{gap.join(entries[i:i + LEGEND_ROW])}</TD></TR>"
                    for i in range(0, len(entries), LEGEND_ROW))
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">{title}{lines}</TABLE>>'


def _node_attrs(v: VNode) -> dict:
    if v.kind == "block":
        a = {"shape": "box", "style": "rounded,filled", "fillcolor": BLOCK_FILL}
        if v.residual:
            a.update(color=EDGE_STYLES["residual"]["color"], penwidth="1.8")
    elif v.kind == "part":
        a = {"shape": "box", "style": "rounded,filled", "fillcolor": PART_FILL}
    else:
        a = {"shape": v.shape, "style": "filled" if v.shape != "box" else "rounded,filled",
             "fillcolor": KIND_COLOURS.get(v.kind, "#ffffff")}
        if v.shape == "circle":
            a.update(width="0.3", height="0.3", fixedsize="true", fontsize="12")
    if v.aux:
        a["style"] += ",dashed"
        if v.kind in ("block", "part"):
            a["fillcolor"] = AUX_FILL
    return a


def _cluster_attrs(info: dict) -> dict:
    dashed = ",dashed" if info.get("aux") or info["kind"] == "aux" else ""
    fill = "#fbfbfb" if info["kind"] == "block" else "#f3f8fc"
    return {"style": f"rounded,filled{dashed}", "fillcolor": fill, "color": "#aaaaaa", "fontsize": "10",
            "labeljust": "l"}


def _edge_attrs(e: VEdge, annotate: tuple) -> dict:
    a = dict(EDGE_STYLES[e.role])
    if "shapes" in annotate:
        a["label"] = " " + " | ".join(shape_text(s) for s in e.shapes)
    if e.also:
        a["label"] = a.get("label", "") + f" (+{e.also} earlier inputs)"
    # a heavy main trunk keeps the backbone straight; skips and aux heads bend around it
    a["weight"] = "0" if e.role == "aux" else "1" if e.role in ("residual", "gate") else "4"
    return a


def to_dot(G: nx.DiGraph, view: View, *, direction: str = "TB", annotate: tuple = ("shapes",),
           legend: bool = True) -> str:
    """DOT for a view. The flow reads in one direction (`TB`: top to bottom): each part below the one
    it follows, parallel branches side by side, aux heads beside the point they leave from. Every
    edge but the aux ones constrains the ranks, so none points back up the page (tests/test_render.py
    checks this on dot's own layout for every zoo spec); a long network makes a tall diagram."""
    if direction not in ("TB", "LR"):
        raise SpecError(f"unknown --direction '{direction}'", SourceLoc("<command line>"), "use TB or LR")
    dot = graphviz.Digraph(name=G.graph["name"])
    dot.attr(rankdir=direction, label=graph_label(G, view, legend), labelloc="t", fontsize="11",
             fontname="Helvetica", newrank="true", nodesep="0.25", ranksep="0.3")
    dot.attr("node", fontname="Helvetica", fontsize="11", margin="0.08,0.04", height="0.3")
    dot.attr("edge", fontname="Helvetica", fontsize="9", arrowsize="0.6")
    # clusters nest; the python graphviz package copies a subgraph when it is added, so each
    # cluster is filled (its nodes, then its child clusters) before it goes into its parent
    children: dict[Optional[str], list] = {}
    for v in view.nodes:
        for depth_, scope in enumerate(v.clusters):
            outer = v.clusters[depth_ - 1] if depth_ else None
            if scope not in children.get(outer, []):
                children.setdefault(outer, []).append(scope)
    placed: dict[Optional[str], list[VNode]] = {}
    for v in view.nodes:
        placed.setdefault(v.clusters[-1] if v.clusters else None, []).append(v)

    def fill(graph: graphviz.Digraph, scope: Optional[str]) -> None:
        for v in placed.get(scope, []):
            graph.node(v.id, label=f"<{v.label}>", **_node_attrs(v))
        for inner in children.get(scope, []):
            sub = graphviz.Digraph(name=f"cluster_{inner}")
            sub.attr(label=dot_string(view.clusters[inner]), **_cluster_attrs(G.graph["scopes"][inner]))
            fill(sub, inner)
            graph.subgraph(sub)

    fill(dot, None)
    for e in view.edges:
        dot.edge(e.src, e.dst, **_edge_attrs(e, annotate))
    return dot.source


def render(G: nx.DiGraph, *, level: str = "block", expand: tuple = (), annotate: tuple = ("shapes",),
           direction: str = "TB", legend: bool = True, opened: tuple = ()) -> str:
    """The DOT source of a diagram of `G` (pure; no files, no `dot`). The network level is an
    overview, so its nodes always carry their params and MACs. `opened` scopes are drawn one
    level finer than `level` (see `group_of`)."""
    if level == "network":
        annotate = tuple(dict.fromkeys((*annotate, "params", "macs")))
    rf = receptive_fields(G) if "rf" in annotate else None
    view = collapse(G, level, expand, annotate, rf, opened)
    return to_dot(G, view, direction=direction, annotate=annotate, legend=legend)


def render_side_by_side(graphs: list[nx.DiGraph], labels: list[str], rows: list[list[list[str]]], *,
                        annotate: tuple = ("shapes", "params", "macs")) -> str:
    """Stage-level diagrams of several networks side by side (`netspec compare --render`): one cluster
    per network, each reading top to bottom. `rows` are the comparison's aligned rows, each holding
    every network's stage scopes in that row; the first stage of each network in a row shares a rank,
    so aligned stages stand level with each other."""
    dot = graphviz.Digraph(name="compare")
    title = " vs ".join(labels) + "  —  stage level"
    dot.attr(rankdir="TB", label=f'<<FONT POINT-SIZE="18">{html_text(title)}</FONT>>', labelloc="t",
             fontname="Helvetica", newrank="true", nodesep="0.4", ranksep="0.3")
    dot.attr("node", fontname="Helvetica", fontsize="11", margin="0.08,0.04", height="0.3")
    dot.attr("edge", fontname="Helvetica", fontsize="9", arrowsize="0.6")

    def nid(i: int, n: str) -> str:
        return f"net{i}.{n}"

    for i, (G, label) in enumerate(zip(graphs, labels)):
        view = collapse(G, "stage", (), annotate)
        sub = graphviz.Digraph(name=f"cluster_net{i}")
        sub.attr(label=f"{dot_string(label)}\n{costs.total_params(G):,} params · {short(costs.total_macs(G))} MACs",
                 style="rounded,filled", fillcolor="#fbfbfb", color="#aaaaaa", fontsize="12", labeljust="c")
        for v in view.nodes:
            sub.node(nid(i, v.id), label=f"<{v.label}>", **_node_attrs(v))
        for e in view.edges:
            sub.edge(nid(i, e.src), nid(i, e.dst), **_edge_attrs(e, annotate))
        dot.subgraph(sub)
    for row in [[["input"]] * len(graphs), *rows]:
        firsts = [nid(i, scopes[0]) for i, scopes in enumerate(row) if scopes]
        if len(firsts) > 1:
            with dot.subgraph() as same:
                same.attr(rank="same")
                for n in firsts:
                    same.node(n)
    return dot.source


# --------------------------------------------------------------------------- files

DOT_SECONDS = 120  # layout of the zoo's largest op-level diagram takes about a second


def find_dot() -> Optional[str]:
    """Path of the Graphviz `dot` binary, or None."""
    return shutil.which("dot")


def dot_to(source: str, fmt: str) -> bytes:
    """Run `dot -T<fmt>` on DOT source; a clear SpecError when Graphviz is not installed."""
    exe = find_dot()
    if exe is None:
        raise SpecError(f"cannot write .{fmt}: the Graphviz 'dot' program is not installed (not on PATH)",
                        SourceLoc("<command line>"),
                        "install Graphviz (apt-get install graphviz, brew install graphviz, conda install graphviz), "
                        "or write DOT source with -o FILE.dot")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, check=False,
                              timeout=DOT_SECONDS)
    except subprocess.TimeoutExpired:
        raise SpecError(f"Graphviz took more than {DOT_SECONDS} s to lay out this diagram", SourceLoc("<command line>"),
                        "draw less detail (--level block or stage), or write DOT source with -o FILE.dot") from None
    if proc.returncode != 0:
        raise SpecError(f"dot -T{fmt} failed: {proc.stderr.decode(errors='replace').strip()}",
                        SourceLoc("<command line>"), "this is a netspec bug if the DOT came from netspec render")
    return proc.stdout


def write(source: str, path: Path, *, force: bool = False) -> None:
    """Write DOT source (or, by suffix, svg/png/pdf through `dot`) to `path`; never overwrite without force."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SpecError(f"-o: unknown file type '{suffix or path.name}'", SourceLoc(str(path)),
                        "use .svg, .png, .pdf or .dot")
    if path.is_dir() or (path.is_symlink() and not path.exists()):  # a folder; a link to nothing yet
        raise SpecError(f"-o {path} is a {'folder' if path.is_dir() else 'dangling symbolic link'}; not writing it",
                        SourceLoc(str(path)), "choose another file name")
    if path.exists() and not force:
        raise SpecError(f"-o {path} exists; not overwriting it", SourceLoc(str(path)),
                        "choose another file name or pass --force")
    if not path.parent.is_dir():
        raise SpecError(f"cannot write {path}: folder {path.parent} does not exist", SourceLoc(str(path)),
                        "create the folder first")
    data = source.encode("utf-8") if suffix in (".dot", ".gv") else dot_to(source, suffix[1:])
    path.write_bytes(data)


__all__ = ["LEVELS", "ANNOTATIONS", "collapse", "to_dot", "render", "write", "find_dot",
           "parse_annotate", "receptive_fields", "render_side_by_side", "View", "VNode", "VEdge", "op_kind", "part_of", "edge_role"]
