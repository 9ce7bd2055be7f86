"""Networks side by side: a pure function over analysis reports (`netspec compare`).

`compare(reports, labels, align=...)` lines up the stages of two or more
networks and gives, per aligned stage and for the whole network, the metrics
of each and their ratios to the first network (the baseline).

Stages of two networks rarely match one to one, so they are aligned:

* `position` (default): stem with stem, head with head, and the i-th stage of
  one network with the i-th stage of the others. A network with fewer stages
  leaves its last rows empty. Each row keeps every network's own stage name.
* `stride`: by output stride, the input size over the stage's output size
  rounded to a power of two (/2, /4, … /32). Consecutive stages of one network
  with the same output stride are merged into one row (costs summed, output and
  receptive field of the last). Networks with different stage cuts or input
  resolutions then compare where they compute at the same scale. Stages whose
  output is flat (no spatial map) share a `flat` row.

Auxiliary heads are left out: they do not run at inference, and the network
totals already exclude them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .report import Report

ALIGNS = ("position", "stride")
ADDITIVE = ("params", "macs", "mem_access")


@dataclass
class StageMetrics:
    """One network's side of an aligned row (several stages when merged by stride)."""

    names: list[str]
    scopes: list[str]       # the stage scopes (`stem`, `stages.0`, `head`): the nodes of a stage-level diagram
    shape: tuple
    params: int
    macs: int
    mem_access: int
    rf: str
    blocks: int
    fragments: int          # conv/pool ops in the stage's blocks (G3)
    parallel: int           # the widest block's parallel conv/pool ops (G3)
    elementwise_share: float  # element-wise ops' share of the stage's mem_access (G4)
    depthwise_share: float    # depthwise convs' share of the stage's mem_access

    @property
    def name(self) -> str:
        return " + ".join(self.names)

    @property
    def fragments_per_block(self) -> float:
        return self.fragments / self.blocks if self.blocks else 0.0

    @property
    def intensity(self) -> float:
        return self.macs / self.mem_access if self.mem_access else 0.0


@dataclass
class NetworkMetrics:
    name: str
    input_shape: tuple
    shape: tuple
    params: int
    macs: int
    mem_access: int
    intensity: float
    activation_peak_bytes: int
    rf: str                   # at torchvision's `.features` end point, SE gates ignored
    blocks: int
    fragments_per_block: float
    parallel: int
    elementwise_share: float
    depthwise_share: float
    guidelines: dict[str, str]  # G1..G4 verdicts


@dataclass
class Row:
    key: str                                  # "stem", "stage 0", "/16", "flat", "head"
    sides: list[Optional[StageMetrics]]       # one per network; None where it has no such stage


@dataclass
class Comparison:
    labels: list[str]
    align: str
    batch: int
    profile: str
    rows: list[Row]
    networks: list[NetworkMetrics]
    notes: list[str] = field(default_factory=list)

    def ratio(self, metric: str, i: int, row: Optional[Row] = None) -> Optional[float]:
        """Network i's `metric` over the baseline's (network 0), in `row` or for the whole network."""
        sides = row.sides if row is not None else self.networks
        a, b = sides[0], sides[i]
        if a is None or b is None:
            return None
        x, y = getattr(a, metric), getattr(b, metric)
        return y / x if x else None

    def to_dict(self) -> dict:
        def metrics(m) -> Optional[dict]:
            if m is None:
                return None
            out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(m).items()}
            for prop in ("name", "fragments_per_block", "intensity"):
                if hasattr(type(m), prop):
                    out[prop] = getattr(m, prop)
            return _rounded(out)

        def ratios(row: Optional[Row]) -> list[dict]:
            return [{k: _rounded(self.ratio(k, i, row)) for k in ADDITIVE} for i in range(1, len(self.labels))]

        return {
            "labels": self.labels, "align": self.align, "batch": self.batch, "profile": self.profile,
            "baseline": self.labels[0], "notes": self.notes,
            "network": {"networks": [metrics(m) for m in self.networks], "ratios": ratios(None)},
            "stages": [{"row": r.key, "networks": [metrics(s) for s in r.sides], "ratios": ratios(r)}
                       for r in self.rows],
        }


def _rounded(x):
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


# --------------------------------------------------------------------------- one network

def _stage_metrics(r: Report) -> dict[str, StageMetrics]:
    """Every inference stage of a report (stem, stages, head), keyed by its name, in order."""
    mem: dict[tuple[str, str], int] = {}
    block_stage = {}
    for n in r.nodes:
        block_stage.setdefault(n.block, n.stage)
        if n.elementwise is not None:
            key = (n.stage, "depthwise" if n.elementwise == "depthwise" else "elementwise")
            mem[key] = mem.get(key, 0) + n.costs.mem_access
    frags: dict[str, list] = {}
    for f in r.fragmentation:
        frags.setdefault(block_stage[f.block], []).append(f)
    out = {}
    for g in r.stages:
        if g.aux:
            continue
        fs, c = frags.get(g.scope, []), g.costs
        out[g.name] = StageMetrics(
            names=[g.name], scopes=[g.scope], shape=tuple(g.shape), params=c.params, macs=c.macs, mem_access=c.mem_access,
            rf=g.rf.describe(), blocks=len(fs), fragments=sum(f.fragments for f in fs),
            parallel=max((f.parallel for f in fs), default=0),
            elementwise_share=_share(mem.get((g.scope, "elementwise"), 0), c.mem_access),
            depthwise_share=_share(mem.get((g.scope, "depthwise"), 0), c.mem_access))
    return out


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def network_metrics(r: Report) -> NetworkMetrics:
    net = r.network.costs
    frags = [f for f in r.fragmentation if not f.aux]
    ew = r.elementwise
    return NetworkMetrics(
        name=r.name, input_shape=tuple(r.input_shape), shape=tuple(r.network.shape), params=net.params,
        macs=net.macs, mem_access=net.mem_access, intensity=net.intensity,
        activation_peak_bytes=r.memory.peak_bytes, rf=r.features_rf_spatial.describe(), blocks=len(frags),
        fragments_per_block=sum(f.fragments for f in frags) / len(frags) if frags else 0.0,
        parallel=max((f.parallel for f in frags), default=0),
        elementwise_share=ew.elementwise.mem_share, depthwise_share=ew.buckets["depthwise"].mem_share,
        guidelines={g.key: g.verdict for g in r.guidelines.all()})


# --------------------------------------------------------------------------- alignment

def output_stride(input_shape: tuple, shape: tuple) -> Optional[int]:
    """Input size over output size, rounded to a power of two; None for a flat output."""
    if len(shape) != 3 or len(input_shape) != 3 or shape[1] < 1:
        return None
    return 2 ** round(math.log2(input_shape[1] / shape[1]))


def _merge(ms: list[StageMetrics]) -> StageMetrics:
    if len(ms) == 1:
        return ms[0]
    mem = sum(m.mem_access for m in ms)
    last = ms[-1]
    return StageMetrics(
        names=[n for m in ms for n in m.names], scopes=[s for m in ms for s in m.scopes], shape=last.shape, params=sum(m.params for m in ms),
        macs=sum(m.macs for m in ms), mem_access=mem, rf=last.rf, blocks=sum(m.blocks for m in ms),
        fragments=sum(m.fragments for m in ms), parallel=max(m.parallel for m in ms),
        elementwise_share=_share(sum(m.elementwise_share * m.mem_access for m in ms), mem),
        depthwise_share=_share(sum(m.depthwise_share * m.mem_access for m in ms), mem))


def _keys_by_position(r: Report, stages: dict[str, StageMetrics]) -> list[tuple[str, str]]:
    keys, i = [], 0
    for g in r.stages:
        if g.aux:
            continue
        if g.type in ("stem", "head"):
            keys.append((g.type, g.name))
        else:
            keys.append((f"stage {i}", g.name))
            i += 1
    return keys


def _keys_by_stride(r: Report, stages: dict[str, StageMetrics]) -> list[tuple[str, str]]:
    keys = []
    for g in r.stages:
        if g.aux:
            continue
        s = output_stride(r.input_shape, tuple(g.shape))
        keys.append((g.type if g.type in ("stem", "head") else f"/{s}" if s else "flat", g.name))
    return keys


def _row_order(per_net: list[list[str]], align: str) -> list[str]:
    """Row keys in order: stem, then the stages (by index, or by stride), flat, head."""
    keys = list(dict.fromkeys(k for ks in per_net for k in ks))
    middle = [k for k in keys if k not in ("stem", "head", "flat")]
    if align == "position":
        middle.sort(key=lambda k: int(k.split()[1]))
    else:
        middle.sort(key=lambda k: int(k[1:]))
    return [k for k in ("stem",) if k in keys] + middle + [k for k in ("flat", "head") if k in keys]


def compare(reports: list[Report], labels: Optional[list[str]] = None, align: str = "position") -> Comparison:
    """The networks of `reports` side by side; the first is the baseline of every ratio."""
    if align not in ALIGNS:
        raise ValueError(f"unknown alignment {align!r}; use one of {', '.join(ALIGNS)}")
    if len(reports) < 2:
        raise ValueError("a comparison needs at least two reports")
    if len({(r.batch, r.profile) for r in reports}) > 1:
        raise ValueError("reports must share batch and MAC profile")
    labels = list(labels) if labels else [r.name for r in reports]
    stage_maps = [_stage_metrics(r) for r in reports]
    keyer = _keys_by_position if align == "position" else _keys_by_stride
    grouped: list[dict[str, list[StageMetrics]]] = []
    for r, stages in zip(reports, stage_maps):
        g: dict[str, list[StageMetrics]] = {}
        for key, name in keyer(r, stages):
            g.setdefault(key, []).append(stages[name])
        grouped.append(g)
    rows = [Row(k, [(_merge(g[k]) if k in g else None) for g in grouped])
            for k in _row_order([list(g) for g in grouped], align)]
    notes = []
    shapes = {tuple(r.input_shape) for r in reports}
    if len(shapes) > 1:
        notes.append("inputs differ: " + ", ".join(f"{l} {'×'.join(map(str, r.input_shape))}"
                                                   for l, r in zip(labels, reports)))
    if any(any(g.aux for g in r.stages) for r in reports):
        notes.append("auxiliary heads are left out (they do not run at inference)")
    return Comparison(labels, align, reports[0].batch, reports[0].profile, rows,
                      [network_metrics(r) for r in reports], notes)


__all__ = ["ALIGNS", "compare", "Comparison", "Row", "StageMetrics", "NetworkMetrics", "output_stride"]
