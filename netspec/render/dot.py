"""Step 2 of rendering: the view as DOT (python `graphviz`), side-by-side comparisons, and the `dot`
binary for svg/png/pdf (the only step that needs it). Strings reach DOT through `escape.dot_string`
or `escape.html_text`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Optional

import graphviz
import networkx as nx

from ..analysis import costs
from ..errors import SourceLoc, SpecError
from ..escape import dot_string, html_text

from .style import (
    AUX_FILL,
    BLOCK_FILL,
    EDGE_NAMES,
    EDGE_STYLES,
    FORMATS,
    KIND_COLOURS,
    KIND_NAMES,
    LEGEND_ROW,
    PART_FILL,
)
from .view import VEdge, VNode, View, receptive_fields
from .labels import shape_text, short, title_text
from .collapse import collapse


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
