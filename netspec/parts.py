"""How the compiled module nests: which scope calls which, with which values (a pass over the IR; no torch).

The module tree mirrors the node ids (`stages.layer1.blocks.0.conv1`), so every proper
prefix of a node id is a container (`stem`, `stages`, `stages.layer1`, `stages.layer1.blocks`,
`stages.layer1.blocks.0`, ...). Each container computes its part of the graph by calling its
direct children in order, the way a hand-written model does; the network calls `stem`,
`stages`, `head` (and, in training, the aux heads). This module decides, for each container:

* its **members**: the IR nodes it computes (every node under its path, except an aux head's
  nodes, which only the aux head and the containers inside it compute);
* its **inputs**: the values its members read from outside, ordered by when they were
  computed (evaluation order); one input is passed as a tensor, several as positional arguments;
* its **outputs**: the member values read outside it (or returned by the network); one is
  returned as a tensor, several as a tuple whose first item is the part's last value (what the
  next part reads) and then the others in evaluation order (e.g. a stage that an aux head
  attaches to mid-way, or a dense block whose intermediate features a later layer reads);
* its **calls**: each direct child with the values it takes and returns, in an order that
  respects the dataflow and otherwise follows `optimize.evaluation_order` (aux heads run as soon
  as their input is ready, as the references run them).

An aux head's scope is called by the innermost container that holds no main-network node:
GoogLeNet's `stages.inception5.aux1` sits in `stages.inception5` in the module tree (its
checkpoint keys) but is called by the network itself, in training only.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import networkx as nx

from . import ops
from .optimize import evaluation_order


@dataclass(frozen=True)
class Call:
    """One call of a child module: `child` is its attribute path relative to the caller."""

    child: str
    inputs: tuple[str, ...]   # IR nodes passed, in order
    outputs: tuple[str, ...]  # IR nodes it returns (several: a tuple in this order)
    listed: bool = False      # the inputs go as one list (a leaf op of any arity: Concat, Add)


@dataclass(frozen=True)
class PartPlan:
    """What a container's forward does (the network's own plan has path "")."""

    path: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    calls: tuple[Call, ...]


def _prefixes(n: str) -> list[str]:
    parts = n.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _chains(G: nx.DiGraph, nodes) -> dict[str, list[str]]:
    """Node -> the containers that compute it, outermost first (the network "" excluded)."""
    main = {p for n in G.nodes if n != "input" and not G.nodes[n]["aux"] for p in _prefixes(n)}
    return {n: [p for p in _prefixes(n) if p not in G and (not G.nodes[n]["aux"] or p not in main)]
            for n in nodes}


def _needed(G: nx.DiGraph, outputs) -> set[str]:
    needed: set[str] = set()
    for out in outputs:
        needed |= nx.ancestors(G, out) | {out}
    return needed


def _unit(n: str, chain: list[str], path: str) -> str:
    """The child of container `path` (absolute path) through which it computes node n."""
    if path == "":
        return chain[0] if chain else n
    k = chain.index(path)
    return chain[k + 1] if k + 1 < len(chain) else n


def _rel(path: str, unit: str) -> str:
    return unit if path == "" else unit[len(path) + 1:]


def part_plans(G: nx.DiGraph) -> tuple[PartPlan, PartPlan, dict[str, PartPlan]]:
    """(the network's training plan, its eval plan, {container path: plan}) for every container
    that computes something. Raises ValueError for a container whose children feed each other
    both ways (no order of whole-child calls computes it; lowering cannot produce one: stem,
    stages and head run in sequence, and a block's inner values are not visible outside it)."""
    train_out = list(dict.fromkeys(G.graph["outputs"].values()))
    needed = _needed(G, train_out)
    order = evaluation_order(G, needed)
    pos = {n: i for i, n in enumerate(order)}
    chains = _chains(G, [n for n in order if n != "input"])
    members: dict[str, list[str]] = {}
    for n, chain in chains.items():
        for p in chain:
            members.setdefault(p, []).append(n)
    plans: dict[str, PartPlan] = {}

    def plan_of(path: str, nodes: list[str], outputs: list[str] | None = None) -> PartPlan:
        inside = set(nodes)
        unit_of = {n: _unit(n, chains[n], path) for n in nodes}
        first: dict[str, int] = {}
        for n in nodes:
            first.setdefault(unit_of[n], pos[n])
        deps: dict[str, set[str]] = {u: set() for u in first}
        for v in nodes:
            for u in G.nodes[v]["inputs"]:
                if u in inside and unit_of[u] != unit_of[v]:
                    deps[unit_of[v]].add(unit_of[u])
        users: dict[str, set[str]] = {u: set() for u in first}
        for v, ds in deps.items():
            for u in ds:
                users[u].add(v)
        waiting = {u: len(ds) for u, ds in deps.items()}
        ready = [(first[u], u) for u, k in waiting.items() if k == 0]
        heapq.heapify(ready)
        units: list[str] = []
        while ready:
            _, u = heapq.heappop(ready)
            units.append(u)
            for v in users[u]:
                waiting[v] -= 1
                if waiting[v] == 0:
                    heapq.heappush(ready, (first[v], v))
        if len(units) != len(first):
            stuck = sorted(u for u in first if u not in units)
            raise ValueError(f"part '{path or 'network'}': its children {stuck} read each other's values both "
                             "ways, so no order of whole-child calls computes it")
        calls = []
        for u in units:
            if u in G and unit_of.get(u) == u:  # a leaf: the op module
                data = G.nodes[u]
                listed = "op" in data and ops.get_op(data["op"]).arity is None
                calls.append(Call(_rel(path, u), tuple(data["inputs"]), (u,), listed))
            else:
                sub = plans[u] if u in plans else plan_of(u, members[u])
                calls.append(Call(_rel(path, u), sub.inputs, sub.outputs))
        inputs = tuple(sorted({u for v in nodes for u in G.nodes[v]["inputs"] if u not in inside}, key=pos.get))
        if outputs is None:
            wanted = set(train_out)
            read_outside = [v for v in nodes if v in wanted
                            or any(s in needed and s not in inside for s in G.successors(v))]
            read_outside.sort(key=pos.get)
            outputs = read_outside[-1:] + read_outside[:-1]
        plan = PartPlan(path, inputs, tuple(outputs), tuple(calls))
        if path:
            plans[path] = plan
        return plan

    every = [n for n in order if n != "input"]
    train = plan_of("", every, train_out)
    logits = G.graph["outputs"]["logits"]
    for path in sorted(members, key=lambda p: -p.count(".")):  # every container, innermost first
        if path not in plans:
            plan_of(path, members[path])
    eval_needed = _needed(G, [logits])
    keep = {c.child for c in train.calls
            if any(n in eval_needed for n in ([c.child] if c.child in G else members[c.child]))}
    evaluation = PartPlan("", train.inputs, (logits,), tuple(c for c in train.calls if c.child in keep))
    return train, evaluation, plans

