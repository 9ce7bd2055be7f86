"""The ShuffleNet V2 guideline audit (G1–G4), with the paper's formulas.

G1  equal channel width minimises memory access. For a 1×1 conv with c1 input
    and c2 output channels on an h×w map, mem_access = hw(c1 + c2) + c1·c2 and,
    for its MACs B = hw·c1·c2, mem_access ≥ 2√(hw·B) + B/(hw) (Eq. 1), with
    equality when c1 = c2. The excess over that bound is what the ratio costs.
G2  excessive group convolution increases memory access. A g-group conv costs
    hw·c2·(1 − 1/g) more elements than a dense conv with the same input and
    MACs (c2/g outputs): Eq. 2's B·(g − 1)/c1 for a 1×1 conv. Depthwise convs
    are left to G4, as in the paper.
G3  network fragmentation reduces parallelism (see fragmentation.py).
G4  element-wise operations are non-negligible (see elementwise.py).

Formulas count one sample (the paper's setting); `hw` is the output map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx

from . import costs
from .elementwise import ElementwiseSummary
from .fragmentation import Fragmentation
from .groups import ordered_nodes


@dataclass
class PointwiseConv:
    node: str
    c1: int
    c2: int
    hw: int
    mem_access: int
    lower_bound: float

    @property
    def excess(self) -> float:
        return self.mem_access - self.lower_bound

    @property
    def excess_ratio(self) -> float:
        return self.mem_access / self.lower_bound - 1

    @property
    def ratio(self) -> str:
        return ratio_str(self.c1, self.c2)


@dataclass
class GroupConv:
    node: str
    groups: int
    c1: int
    c2: int
    mem_access: int
    penalty: int          # elements over the dense conv of equal MACs

    @property
    def penalty_ratio(self) -> float:
        return self.penalty / self.mem_access


@dataclass
class Guideline:
    key: str
    title: str
    verdict: str
    worst: list = field(default_factory=list)


@dataclass
class GuidelineAudit:
    g1: Guideline
    g2: Guideline
    g3: Guideline
    g4: Guideline

    def all(self) -> list[Guideline]:
        return [self.g1, self.g2, self.g3, self.g4]


def count(n: int, noun: str, plural: str = "") -> str:
    """`1 block`, `2 blocks`: verdicts read as sentences."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def ratio_str(c1: int, c2: int) -> str:
    return f"1:{c2 / c1:.3g}" if c2 >= c1 else f"{c1 / c2:.3g}:1"


def g1_lower_bound(hw: int, macs: int) -> float:
    return 2 * math.sqrt(hw * macs) + macs / hw


def pointwise_convs(G: nx.DiGraph) -> list[PointwiseConv]:
    rows = []
    for n in ordered_nodes(G):
        d = G.nodes[n]
        if d["op"] != "conv2d" or tuple(d["attrs"]["kernel"]) != (1, 1) or d["attrs"]["groups"] != 1:
            continue
        c1, (c2, h, w) = d["attrs"]["in_channels"], d["shape"]
        hw = h * w
        rows.append(PointwiseConv(n, c1, c2, hw, hw * (c1 + c2) + c1 * c2, g1_lower_bound(hw, hw * c1 * c2)))
    return rows


def group_convs(G: nx.DiGraph) -> list[GroupConv]:
    rows = []
    for n in ordered_nodes(G):
        d = G.nodes[n]
        if d["op"] != "conv2d" or d["attrs"]["groups"] == 1 or costs.is_depthwise(G, n):
            continue
        g, c1, (c2, h, w) = d["attrs"]["groups"], d["attrs"]["in_channels"], d["shape"]
        penalty = h * w * c2 * (g - 1) // g
        rows.append(GroupConv(n, g, c1, c2, costs.node_mem_access(G, n), penalty))
    return rows


def audit(G: nx.DiGraph, frags: list[Fragmentation], ew: ElementwiseSummary, top: int = 5) -> GuidelineAudit:
    total_mem = sum(costs.node_mem_access(G, n) for n in ordered_nodes(G))
    return GuidelineAudit(_g1(G, top), _g2(G, total_mem, top), _g3(frags, top), _g4(ew))


def _g1(G, top) -> Guideline:
    pw = pointwise_convs(G)
    title = "G1 equal channel width minimises memory access"
    if not pw:
        return Guideline("G1", title, "no dense 1×1 convs")
    worst = sorted(pw, key=lambda r: -r.excess)[:top]
    unequal = [r for r in pw if max(r.c1, r.c2) > 2 * min(r.c1, r.c2)]
    excess = sum(r.excess for r in pw) / sum(r.lower_bound for r in pw)
    w = worst[0]
    verdict = (f"{count(len(pw), 'dense 1×1 conv')}, {len(unequal)} with c1:c2 beyond 1:2; together "
               f"{excess:.1%} above the equal-width bound; worst {w.node} ({w.ratio}, +{w.excess_ratio:.0%})")
    return Guideline("G1", title, verdict, worst)


def _g2(G, total_mem, top) -> Guideline:
    gc = group_convs(G)
    title = "G2 excessive group convolution increases memory access"
    if not gc:
        return Guideline("G2", title, "no group convs (depthwise convs are counted under G4)")
    worst = sorted(gc, key=lambda r: -r.penalty)[:top]
    penalty = sum(r.penalty for r in gc)
    groups = sorted({r.groups for r in gc})
    verdict = (f"{count(len(gc), 'group conv')} (g = {', '.join(map(str, groups))}) cost {penalty:,} extra elements, "
               f"{penalty / total_mem:.1%} of the network's mem_access; worst {worst[0].node} "
               f"(g={worst[0].groups}, +{worst[0].penalty:,})")
    return Guideline("G2", title, verdict, worst)


def _g3(frags, top) -> Guideline:
    rows = [f for f in frags if not f.aux]
    title = "G3 network fragmentation reduces parallelism"
    if not rows:
        return Guideline("G3", title, "no blocks")
    worst = sorted(rows, key=lambda f: (-f.parallel, -f.fragments))[:top]
    mean = sum(f.fragments for f in rows) / len(rows)
    most = max(rows, key=lambda f: f.fragments)
    widest = worst[0]
    parallel = (f"up to {widest.parallel} parallel branches ({widest.block})" if widest.parallel > 1
                else "no parallel branches (each block is one chain of ops)")
    verdict = (f"{count(len(rows), 'block')}, {mean:.1f} conv/pool fragments per block on average (max {most.fragments} "
               f"in {most.block}); {parallel}")
    return Guideline("G3", title, verdict, worst)


def _g4(ew: ElementwiseSummary) -> Guideline:
    title = "G4 element-wise operations are non-negligible"
    e, d = ew.elementwise, ew.buckets["depthwise"]
    verdict = (f"{count(e.count, 'element-wise op')}: {e.mem_share:.1%} of mem_access, {e.time_share:.1%} of the "
               f"time proxy (+{count(d.count, 'depthwise conv')}: {d.mem_share:.1%} / {d.time_share:.1%})")
    return Guideline("G4", title, verdict, ew.worst)
