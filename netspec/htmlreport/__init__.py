"""The interactive HTML report (`netspec report`, `netspec compare --html`): one self-contained page
over the graph IR and the analyses. No torch, no network: styles, script, data and diagrams are
inlined (docs/report.md describes the page).

    data.py      what the page shows, as JSON-able data (numbers straight from `analyze`)
    diagrams.py  the Graphviz SVGs of every view the page can click to
    escape.py    the escaping of spec strings for HTML text and for JSON inside <script>
    page.py      the templates (assets/) filled in
"""
from __future__ import annotations

from typing import Optional

import networkx as nx

from .. import __version__
from .. import render as R
from ..analysis.compare import Comparison
from .data import family_data, network_data, run_data
from .diagrams import diagram_data, packed, to_svgs
from .page import FAMILY_SECTION, RUN_SECTION, asset, fill

INITIAL_VIEWS = ("network", "stage", "block", "op")


def report_html(G: nx.DiGraph, *, family: Optional[dict] = None, run: Optional[dict] = None,
                initial: str = "stage", subtitle: str = "", batch: int = 1, profile: str = "reference") -> str:
    """The page for one lowered network. `family` is `data.family_data(...)`, `run` is `data.run_data(...)`."""
    if initial not in INITIAL_VIEWS:
        raise ValueError(f"initial view must be one of {', '.join(INITIAL_VIEWS)}")
    net = network_data(G, batch=batch, profile=profile)
    net.update(diagram_data(G))
    extra, toc = [], []
    if family is not None:
        extra.append(FAMILY_SECTION)
        toc.append('<a href="#family">family</a>')
    if run is not None:
        extra.append(RUN_SECTION)
        toc.append('<a href="#run">training</a>')
    name = G.graph["name"]
    return fill(asset("report.html"),
                text={"title": f"{name} · netspec report", "name": name, "subtitle": subtitle,
                      "version": __version__, "batch": batch, "dtype_bytes": net["summary"]["dtype_bytes"]},
                html={"extra_sections": "\n".join(extra), "toc_extra": "".join(toc)},
                data={"kind": "report", "initial_view": initial, "network": net, "family": family, "run": run},
                js="report.js")


def compare_html(c: Comparison, graphs: list[nx.DiGraph]) -> str:
    """The side-by-side page of `netspec compare --html`, in the report's style."""
    rows = [[s.scopes if s else [] for s in r.sides] for r in c.rows]
    svg = to_svgs([R.render_side_by_side(graphs, c.labels, rows)])[0]
    how = "by position (stem, i-th stage, head)" if c.align == "position" else "by output stride"
    title = " vs ".join(c.labels)
    return fill(asset("compare.html"),
                text={"title": f"{title} · netspec compare", "name": title,
                      "subtitle": f"batch {c.batch}, {c.profile} MACs", "version": __version__, "align": how},
                html={}, data={"kind": "compare", "compare": c.to_dict(), "diagram": packed(svg)}, js="compare.js")


__all__ = ["report_html", "compare_html", "family_data", "run_data"]
