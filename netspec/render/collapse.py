"""Step 1 of rendering: `collapse` groups the IR for drawing at a level (see `view.group_of`),
labels every drawn node and merges IR edges between groups into view edges."""
from __future__ import annotations

from typing import Optional

import networkx as nx

from .style import DENSE_FAN_IN, KIND_COLOURS, ROLE_RANK
from .view import VEdge, View, check_level, check_scope, depths, edge_role, framing, group_of, op_kind
from .labels import Ctx, block_node, body_node, cluster_label, op_node, part_node


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
