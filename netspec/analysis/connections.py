"""Connections, LeCun et al. 1998's measure of a layer's size: for every output unit, one per
input it reads through a weight, plus one for its bias (C1: 6 x 28 x 28 x (25 + 1) = 122,304).

Unlike parameters, connections count weight sharing once per use: a convolution's kernel is
one set of parameters but a connection at every output position. Each op says how many it
has (`Op.connections`); ops without weights (activations, pooling, data movement) have none.
"""
from __future__ import annotations

import networkx as nx

from .. import ops


def node_connections(G: nx.DiGraph, n: str) -> int:
    d = G.nodes[n]
    return ops.get_op(d["op"]).connections(d["attrs"], d["in_shapes"], d["shape"])


def connections(G: nx.DiGraph, include_aux: bool = False) -> dict[str, int]:
    """Connections of every node that has any, in network order."""
    counts = {n: node_connections(G, n) for n, d in G.nodes(data=True) if include_aux or not d["aux"]}
    return {n: c for n, c in counts.items() if c}


def total_connections(G: nx.DiGraph, include_aux: bool = False) -> int:
    return sum(connections(G, include_aux).values())
