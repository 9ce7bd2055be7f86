"""Fragmentation of each block (ShuffleNet V2, guideline G3).

* `fragments`: the paper's count, "the number of individual convolution or
  pooling operations in one building block" (NASNet-A 13, ResNet 2–3).
* `parallel`: the largest number of those operations that could run at the
  same time, i.e. the maximum antichain of the block's conv/pool nodes under
  reachability (no one depends on another). By Dilworth's theorem it is the
  node count minus a maximum matching in the bipartite "u reaches v" graph.

A block is an outermost block scope; bare ops in a stage are not blocks.
Every path between two nodes of a block stays inside it (a block reads only
its input), so reachability is computed on the block's subgraph.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .groups import block_of

FRAGMENT_KINDS = ("conv", "pool")


@dataclass
class Fragmentation:
    block: str
    type: str
    fragments: int
    parallel: int
    aux: bool


def max_parallel(G: nx.DiGraph, members: list[str], within: list[str] | None = None) -> int:
    """Width of `members` under reachability in G (the largest set of mutually independent nodes).
    `within`: nodes that hold every path between two members (a block's nodes); default all of G."""
    if not members:
        return 0
    closure = nx.transitive_closure_dag(G.subgraph(within) if within is not None else G)
    bip = nx.DiGraph()
    left = [("l", u) for u in members]
    bip.add_nodes_from(left)
    bip.add_nodes_from(("r", v) for v in members)
    bip.add_edges_from((("l", u), ("r", v)) for u in members for v in members
                       if u != v and closure.has_edge(u, v))
    matching = nx.bipartite.hopcroft_karp_matching(bip.to_undirected(), top_nodes=left)
    return len(members) - len(matching) // 2


def block_members(G: nx.DiGraph, include_aux: bool = True) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n, d in G.nodes(data=True):
        if d["blocks"] and (include_aux or not d["aux"]):
            out.setdefault(block_of(G, n), []).append(n)
    return out


def fragmentation(G: nx.DiGraph, include_aux: bool = True) -> list[Fragmentation]:
    rows = []
    for block, ns in block_members(G, include_aux).items():
        frags = [n for n in ns if G.nodes[n]["kind"] in FRAGMENT_KINDS]
        info = G.graph["scopes"][block]
        rows.append(Fragmentation(block, info["type"], len(frags), max_parallel(G, frags, ns),
                                  bool(G.nodes[ns[0]]["aux"])))
    return rows
