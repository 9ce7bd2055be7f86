"""Where a node belongs: inference vs auxiliary, its top-level block and its stage.

Aggregation levels of the report: node → block (the outermost block scope; a
bare op in a stage is a block of its own) → stage (stem, each stage, head, each
auxiliary head) → network (everything but auxiliary heads, which do not run
at inference).
"""
from __future__ import annotations

import networkx as nx


def ordered_nodes(G: nx.DiGraph, include_aux: bool = False) -> list[str]:
    """Nodes in lowering order (a topological order, the order the compiled module runs them)."""
    return [n for n, d in G.nodes(data=True) if include_aux or not d["aux"]]


def block_of(G: nx.DiGraph, n: str) -> str:
    blocks = G.nodes[n]["blocks"]
    return blocks[0] if blocks else n


def stage_of(G: nx.DiGraph, n: str) -> str:
    d = G.nodes[n]
    return "input" if d["op"] == "input" else d["part"]  # stem | a stage scope | head | an aux head scope


def stage_label(G: nx.DiGraph, scope: str) -> str:
    info = G.graph["scopes"].get(scope, {})
    return info.get("label", scope)


def stage_order(G: nx.DiGraph) -> list[str]:
    aux = [s for s, i in G.graph["scopes"].items() if i["kind"] == "aux"]
    return ["stem", *G.graph["stages"], "head", *aux]
