"""What a report page shows, as plain JSON-able data: every diagram node's details, the per-stage
series of the charts, the G1–G4 audit, the fragmentation and element-wise tables, the family of
variants and a training run's metrics. Numbers come from `netspec.analysis.analyze` unchanged, so
the page agrees with `netspec analyze --json` (tested).

Item ids are the node ids of the diagrams (`netspec.render`): an IR node name for an op, a scope
for a block or a stage (stem / stages.N / head / an aux head), `body` for all stages together
(network level).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import networkx as nx

from .. import render as R
from ..analysis import analyze
from ..analysis.groups import stage_order
from ..analysis.memory import live_bytes
from ..analysis.report import Costs, Report, node_costs
from ..errors import SourceLoc, SpecError

# A metrics.jsonl bigger than this is not a netspec run (a year of epochs is a few hundred KB).
MAX_METRICS_BYTES = 16 * 2 ** 20
MAX_METRICS_LINES = 100_000
METRIC_KEYS = ("epoch", "lr", "train_loss", "val_loss", "val_acc1", "val_acc5", "images_per_s", "seconds")


def _where(loc: Optional[SourceLoc]) -> str:
    """`mobilenet_v2.yaml:36:14 stages[1].blocks[0]`: the spec entry a node comes from (file name only)."""
    if loc is None:
        return ""
    where = f"{os.path.basename(loc.file)}:{loc.line}:{loc.col}" if loc.line else os.path.basename(loc.file)
    return f"{where} {loc.path}".strip()


def _shape(shape) -> list[int]:
    return [int(s) for s in shape]


def _costs(c: Costs) -> dict:
    return {"params": c.params, "macs": c.macs, "mem_access": c.mem_access, "buffers": c.buffers}


def members_of(G: nx.DiGraph) -> dict[str, list[str]]:
    """IR nodes under every scope (parts, blocks at any depth) and under `body`, in IR order."""
    scopes = G.graph["scopes"]
    stages = set(G.graph["stages"])
    out: dict[str, list[str]] = {}
    for n, d in G.nodes(data=True):
        if d["part"] is None:
            continue
        for s in (d["part"], *d["blocks"]):
            out.setdefault(s, []).append(n)
        if d["part"] in stages:
            out.setdefault("body", []).append(n)
    return {s: ms for s, ms in out.items() if s == "body" or s in scopes}


def _group_inputs(G: nx.DiGraph, members: list[str]) -> list[list[int]]:
    inside = set(members)
    seen: list[list[int]] = []
    for n in members:
        for u in G.nodes[n]["inputs"]:
            if u not in inside and _shape(G.nodes[u]["shape"]) not in seen:
                seen.append(_shape(G.nodes[u]["shape"]))
    return seen


def items(G: nx.DiGraph, r: Report) -> dict[str, dict]:
    """Details of every node a diagram can draw: op, block, stage, body, input."""
    node_rows = {n.name: n for n in r.nodes}
    live = live_bytes(G, r.batch, r.dtype_bytes)
    bytes_per = r.batch * r.dtype_bytes
    out: dict[str, dict] = {}
    for n, d in G.nodes(data=True):
        shape = _shape(d["shape"])
        item = {"id": n, "level": "op", "type": d["op"], "label": R.op_text(G, n), "colour": R.op_kind(G, n),
                "where": _where(d.get("loc")), "inputs": [_shape(s) for s in d["in_shapes"]], "output": shape,
                "aux": bool(d["aux"]), "act_bytes": bytes_per * math.prod(shape), "live_bytes": live.get(n)}
        row = node_rows.get(n)
        if row is not None:
            item.update(_costs(row.costs), rf=row.rf.describe(), ops=1)
        else:  # the input: no costs
            item.update(params=0, macs=0, mem_access=0, buffers=0, rf="1", ops=0)
        out[n] = item
    groups = {g.scope: g for g in (*r.blocks, *r.stages)}
    scopes = G.graph["scopes"]
    for s, ms in members_of(G).items():
        info = scopes.get(s, {"kind": "body", "type": "body", "name": "body"})
        total = Costs(profile=r.profile)
        for n in ms:
            total += node_rows[n].costs if n in node_rows else node_costs(G, n, r.batch, r.profile)
        row = groups.get(s)
        if row is not None:  # the analysis' own block / stage row: the very numbers of analyze --json
            total = row.costs
        runs = [live[n] for n in ms if n in live]
        level = "block" if info["kind"] == "block" else "body" if s == "body" else "stage"
        out[s] = {"id": s, "level": level, "type": info["type"], "label": info.get("label", info["name"]),
                  "colour": level, "where": _where(info.get("loc")), "inputs": _group_inputs(G, ms),
                  "output": _shape(G.nodes[ms[-1]]["shape"]), "aux": bool(G.nodes[ms[-1]]["aux"]),
                  **_costs(total), "rf": node_rows[ms[-1]].rf.describe() if ms[-1] in node_rows else "",
                  "ops": len(ms), "act_bytes": sum(out[n]["act_bytes"] for n in ms),
                  "live_bytes": max(runs) if runs else None}
    return out


def stage_series(G: nx.DiGraph, r: Report, details: dict[str, dict]) -> list[dict]:
    """One entry per stage of `analyze` (stem, stages, head, aux heads): the charts' bars."""
    return [{"id": s.scope, "label": s.name, "params": s.costs.params, "macs": s.costs.macs,
             "mem_access": s.costs.mem_access, "live_bytes": details[s.scope]["live_bytes"] or 0,
             "aux": s.aux} for s in r.stages]


def audit(r: Report) -> list[dict]:
    """The G1–G4 verdicts with their worst offenders, as `netspec analyze` prints them."""
    g = r.guidelines
    worst = {
        "G1": [f"{w.node} {w.ratio} +{w.excess:,.0f}" for w in g.g1.worst[:5]],
        "G2": [f"{w.node} g={w.groups} +{w.penalty:,}" for w in g.g2.worst[:5]],
        "G3": [f"{f.block} ({f.type}) {f.fragments} fragments, {f.parallel} parallel" for f in g.g3.worst[:5]],
        "G4": [f"{n} ({b}) {m:,} ({s:.1%})" for n, b, m, s in g.g4.worst[:5]],
    }
    return [{"key": x.key, "verdict": x.verdict, "worst": worst.get(x.key, [])} for x in g.all()]


def tables(r: Report) -> dict:
    ew = r.elementwise
    return {
        "fragmentation": [{"block": f.block, "type": f.type, "fragments": f.fragments, "parallel": f.parallel}
                          for f in r.fragmentation],
        "elementwise": [{"bucket": b.name, "count": b.count, "mem_access": b.mem_access,
                         "mem_share": round(b.mem_share, 6), "time_share": round(b.time_share, 6)}
                        for b in (*ew.buckets.values(), ew.elementwise, ew.with_depthwise) if b.count],
        "bias": {"nodes": ew.bias_nodes, "macs": ew.bias_macs},
    }


def summary(G: nx.DiGraph, r: Report) -> dict:
    net, mem = r.network.costs, r.memory
    return {"name": r.name, "input_shape": _shape(r.input_shape), "batch": r.batch, "dtype_bytes": r.dtype_bytes,
            "profile": r.profile, "params": net.params, "params_with_aux": r.params_with_aux,
            "buffers": net.buffers, "macs": net.macs, "mem_access": net.mem_access,
            "intensity": round(net.intensity, 4), "peak_bytes": mem.peak_bytes, "peak_at": mem.peak_at,
            "total_bytes": mem.total_bytes, "features": r.features, "rf": r.features_rf.describe(),
            "rf_spatial": r.features_rf_spatial.describe(), "reference": str(G.graph.get("reference") or "")}


def network_data(G: nx.DiGraph, *, batch: int = 1, dtype_bytes: int = 4, profile: str = "reference") -> dict:
    """Everything about one network the page shows, except diagrams, family and run."""
    r = analyze(G, batch=batch, dtype_bytes=dtype_bytes, profile=profile)
    details = items(G, r)
    return {"summary": summary(G, r), "items": details, "stages": stage_series(G, r, details),
            "stage_order": [s for s in stage_order(G) if s in details], "audit": audit(r), "tables": tables(r),
            "colours": {**R.KIND_COLOURS, "block": R.BLOCK_FILL, "stage": R.PART_FILL, "body": R.PART_FILL},
            "kind_names": {k: R.KIND_NAMES.get(k, k) for k in R.KIND_COLOURS}}


def family_data(spec, *, resolution: Optional[int] = None, current: Optional[str] = None) -> Optional[dict]:
    """The family table of a spec with variants (`netspec scale`'s rows), or None.

    Each row has a `latency_ms` slot, left None: where a latency predictor exists, it fills that
    slot and the page plots MACs against predicted latency as well (the documented extension point,
    docs/report.md); the page never invents a value for it."""
    if not spec.variants:
        return None
    from ..commands.scale import family  # the family table is defined once, by `netspec scale`
    rows = family(spec, resolution=resolution)
    return {"current": current, "rows": [{"name": x.name, "width": x.width, "depth": x.depth,
                                          "resolution": x.resolution, "params": x.params, "macs": x.macs,
                                          "ratio": round(x.ratio, 6), "latency_ms": None} for x in rows]}


def _number(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return v


def run_data(run_dir: str | Path) -> dict:
    """The training curves and final metrics of a run directory's metrics.jsonl (`netspec train`).

    The file is untrusted: bounded in size, each line parsed as JSON, only known numeric keys kept."""
    path = Path(run_dir) / "metrics.jsonl"
    loc = SourceLoc(str(path))
    if not path.is_file():
        raise SpecError(f"--run: no metrics.jsonl in {run_dir}", loc,
                        "give the run directory `netspec train --out DIR` wrote")
    if path.stat().st_size > MAX_METRICS_BYTES:
        raise SpecError(f"--run: {path} is larger than {MAX_METRICS_BYTES // 2 ** 20} MB", loc,
                        "this is not a netspec metrics file")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        if len(rows) >= MAX_METRICS_LINES:
            raise SpecError(f"--run: {path} has more than {MAX_METRICS_LINES:,} lines", loc, "")
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise SpecError(f"--run: line {i} is not JSON ({exc.msg})", SourceLoc(str(path), i, 1),
                            "metrics.jsonl holds one JSON object per line") from None
        if not isinstance(record, dict):
            raise SpecError(f"--run: line {i} is not a JSON object", SourceLoc(str(path), i, 1), "")
        row = {k: _number(record.get(k)) for k in METRIC_KEYS}
        if row["epoch"] is None:
            raise SpecError(f"--run: line {i} has no numeric 'epoch'", SourceLoc(str(path), i, 1), "")
        rows.append(row)
    if not rows:
        raise SpecError(f"--run: {path} holds no epochs yet", loc, "run at least one epoch first")
    accs = [x["val_acc1"] for x in rows if x["val_acc1"] is not None]
    return {"dir": str(run_dir), "rows": rows, "final": rows[-1], "best_acc1": max(accs) if accs else None}
