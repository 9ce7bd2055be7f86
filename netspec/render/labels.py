"""The text of a diagram: Graphviz HTML-like labels of ops, blocks, stages and the network body,
built from the IR and escaped with `escape.html_text` (every string a spec wrote passes through it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import networkx as nx

from ..analysis import costs
from ..escape import html_text

from .style import KIND_COLOURS, MAX_RUNS, MAX_STRIP, OP_SHAPES
from .view import VNode, depths, op_kind, shortcut_kind


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


def cluster_label(G: nx.DiGraph, scope: str) -> str:
    info = G.graph["scopes"][scope]
    if info["kind"] == "block":
        return f"{info['type']} {scope.split('.', 1)[-1] if info['name'].isdigit() else info['name']}"
    if info["kind"] == "aux":
        return info.get("label", info["name"])
    return info.get("label", scope)


def title_text(G: nx.DiGraph, level: str) -> str:
    params, macs = costs.total_params(G), costs.total_macs(G)
    aux = costs.total_params(G, include_aux=True) - params
    aux_text = f" (+{aux:,} aux)" if aux else ""
    return (f"{G.graph['name']}  —  {params:,} params{aux_text} · {short(macs)} MACs · "
            f"input {shape_text(G.graph['input_shape'])} · {level} level")
