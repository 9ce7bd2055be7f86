"""The view model a diagram is drawn from (`View` of `VNode`s and `VEdge`s), and reading the IR
for it: op kinds, parts, depths, edge roles, and which drawn node (group) an IR node belongs to at
a level. The checks of a level, a scope and an annotation list live here too (no DOT, no labels)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Optional

import networkx as nx

from ..errors import SourceLoc, SpecError, did_you_mean

from .style import ANNOTATIONS, LEVELS


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
        receptive = importlib.import_module("..analysis.receptive", __package__)
    except ImportError:
        return None
    fields = receptive.receptive_fields(G, ignore_gates=True)
    return {n: rf.describe() for n, rf in fields.items()}
