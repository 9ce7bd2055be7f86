"""The report's diagrams: Graphviz SVGs from `netspec.render`, one per view the page can show.

A page cannot run Graphviz, so every state the user can click to is laid out here:

* the four levels of `render` (network, stage, block, op), the whole network each;
* `open:<stage>`: the stage level with that stage (stem, a stage, head, an aux head) drawn as its blocks;
* `open:<block>`: the same with one of its blocks drawn op by op.

Clicking a stage opens it, clicking one of its blocks opens that, clicking a frame closes it
again: one path open at a time, which keeps the number of diagrams linear in the number of
blocks (EfficientNet-B7: 64 diagrams). Every DOT source goes to one `dot` process; each SVG is
stored gzip-compressed (the page inflates it with the browser's DecompressionStream), which is
what keeps B7's report under its size bound.
"""
from __future__ import annotations

import base64
import gzip
import re
from dataclasses import dataclass

import networkx as nx

from .. import render as R

ANNOTATE = ("shapes",)
# Graphviz writes this before each graph; several graphs in one input give several documents.
_SVG_START = re.compile(rb"<\?xml[^>]*\?>\s*(?:<!DOCTYPE[^>]*>\s*)?")
# Graphviz's comments repeat every node and edge name (and the graph's): a third of the bytes, no use.
_COMMENT = re.compile(rb"<!--.*?-->\s*", re.S)


@dataclass
class ViewSpec:
    id: str
    title: str
    level: str
    parent: str                # the view shown when this one is closed ("" for the four levels)
    expand: tuple = ()
    opened: tuple = ()


def views(G: nx.DiGraph) -> list[ViewSpec]:
    """Every diagram of the page, the four levels first."""
    out = [ViewSpec(level, f"{level} level", level, "") for level in R.LEVELS]
    scopes = G.graph["scopes"]
    parts = [p for p in ("stem", *G.graph["stages"], "head", *[s for s, i in scopes.items() if i["kind"] == "aux"])
             if p in scopes]
    outer: dict[str, list[str]] = {}
    for n, d in G.nodes(data=True):
        if d["part"] is not None and d["blocks"]:
            blocks = outer.setdefault(d["part"], [])
            if d["blocks"][0] not in blocks:
                blocks.append(d["blocks"][0])
    for p in parts:
        label = scopes[p].get("label", p)
        out.append(ViewSpec(f"open:{p}", f"{label} opened", "stage", "stage", (), (p,)))
        for b in outer.get(p, []):
            out.append(ViewSpec(f"open:{b}", f"{b} opened", "stage", f"open:{p}", (b,), (p,)))
    return out


def members(G: nx.DiGraph, v: ViewSpec) -> list[str]:
    """The node ids drawn in a view, in IR order (what `render.collapse` groups the IR into)."""
    return list(dict.fromkeys(R.group_of(G, n, v.level, v.expand, v.opened) for n in G.nodes))


def dot_sources(G: nx.DiGraph, specs: list[ViewSpec]) -> list[str]:
    return [R.render(G, level=v.level, expand=v.expand, opened=v.opened, annotate=ANNOTATE) for v in specs]


def to_svgs(sources: list[str]) -> list[bytes]:
    """Lay out several DOT graphs with one `dot -Tsvg` run; one SVG document each."""
    if not sources:
        return []
    out = R.dot_to("\n".join(sources), "svg")
    starts = [m.start() for m in _SVG_START.finditer(out)]
    if len(starts) != len(sources):
        raise RuntimeError(f"dot returned {len(starts)} SVG documents for {len(sources)} graphs")
    docs = [out[a:b] for a, b in zip(starts, [*starts[1:], len(out)])]
    return [_COMMENT.sub(b"", _SVG_START.sub(b"", d, count=1)).strip() for d in docs]


def packed(svg: bytes) -> str:
    """gzip (no timestamp: the same spec gives the same file) then base64, for the page's JSON."""
    return base64.b64encode(gzip.compress(svg, compresslevel=9, mtime=0)).decode("ascii")


def homes(G: nx.DiGraph, specs: list[ViewSpec]) -> dict[str, str]:
    """For every node id, the view a search goes to: the coarsest drawing that shows it as a node
    (a stage: the stage level; a block: its stage opened; an op: its block opened). A nested
    block, never a node of its own, goes where its ops are (framed by its cluster)."""
    order = [v for v in specs if v.id == "stage"] + [v for v in specs if v.id == "network"] \
        + [v for v in specs if v.id.startswith("open:")] + [v for v in specs if v.id in ("block", "op")]
    home: dict[str, str] = {}
    for v in order:
        for n in members(G, v):
            home.setdefault(n, v.id)
    for n, d in G.nodes(data=True):
        for b in d["blocks"]:
            home.setdefault(b, home[n])
    return home


def diagram_data(G: nx.DiGraph) -> dict:
    specs = views(G)
    svgs = to_svgs(dot_sources(G, specs))
    return {"views": [{"id": v.id, "title": v.title, "level": v.level, "parent": v.parent, "svg": packed(svg)}
                      for v, svg in zip(specs, svgs)],
            "home": homes(G, specs)}
