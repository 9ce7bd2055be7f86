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
    `within`: nodes that hold every path between two members (a block's nodes), in a topological
    order; default all of G."""
    if not members:
        return 0
    # `within` comes in graph order, which is the lowering order: topological
    order = within if within is not None else list(nx.topological_sort(G))
    inside = set(order)
    # descendants of every node as a bit set over the members, sweeping the order backwards
    # (a block has tens of nodes: this is far cheaper than a transitive closure graph)
    bit = {m: 1 << k for k, m in enumerate(members)}
    below: dict[str, int] = {}
    for n in reversed(order):
        mask = 0
        for s in G.successors(n):
            if s in inside:
                mask |= bit.get(s, 0) | below[s]
        below[n] = mask
    reaches = {u: [v for v in members if below[u] & bit[v]] for u in members}
    if all(len(reaches[u]) + sum(u in reaches[v] for v in members) == len(members) - 1 for u in members):
        return 1  # every pair is ordered: a chain (most blocks)
    bip = nx.Graph()
    left = [("l", u) for u in members]
    bip.add_nodes_from(left)
    bip.add_nodes_from(("r", v) for v in members)
    bip.add_edges_from((("l", u), ("r", v)) for u in members for v in reaches[u])
    matching = nx.bipartite.hopcroft_karp_matching(bip, top_nodes=left)
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
