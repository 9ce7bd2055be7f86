"""`netspec analyze`: static costs, memory, fragmentation, receptive field and the G1–G4 audit (no torch)."""
from __future__ import annotations

import argparse
import json

from ..analysis import LEVELS, analyze
from ..analysis.costs import PROFILES
from .common import add_spec_args, human, load_graph, positive_int, shape_str, table
from .latency import add_latency_args, group_latency, latency_line, predicted


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "analyze", help="static analysis: params, MACs, memory access, RF, fragmentation, G1-G4 (no torch)",
        description="Analyse a spec without building it: params and buffers, MACs (reference or full profile; "
                    "FLOPs = 2 x MACs), memory access (ShuffleNet V2's MAC, here mem_access), arithmetic "
                    "intensity, peak activation memory, receptive field, fragmentation, element-wise ops and "
                    "the ShuffleNet V2 guideline audit. Definitions: docs/analysis.md.",
        epilog="examples:\n  netspec analyze mobilenet_v2\n"
               "  netspec analyze mobilenet_v2 --level block --profile full\n"
               "  netspec analyze lenet5 --batch 8 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    p.add_argument("--batch", type=positive_int, default=1, help="batch size for MACs, mem_access and memory (default 1)")
    p.add_argument("--dtype-bytes", type=positive_int, default=4, help="bytes per element for activation memory (default 4)")
    p.add_argument("--level", choices=LEVELS, default="stage", help="rows of the table (default stage)")
    p.add_argument("--profile", choices=PROFILES, default="reference",
                   help="reference: conv + linear MACs (torchvision's GFLOPS); full: + bias, BN, activations, "
                        "pooling, element-wise (default reference)")
    p.add_argument("--json", action="store_true", help="print the complete report as JSON")
    add_latency_args(p)
    return p


def render_rows(r, level: str, latency=None) -> str:
    frags = {f.block: f for f in r.fragmentation} if level == "block" else {}
    body = []
    for g in r.rows(level):
        c = g.costs
        kind = g.op if level == "node" else g.type
        row = [g.name + (" (aux)" if g.aux else ""), kind, shape_str(g.shape), f"{c.params:,}",
               f"{c.macs:,}", f"{c.mem_access:,}", f"{c.intensity:.1f}", g.rf.describe()]
        if level == "block":
            f = frags.get(g.name)
            row[-1:-1] = [f"{f.fragments}/{f.parallel}" if f else ""]
        if latency is not None:
            t = group_latency(latency, g, level)
            row[-1:-1] = ["" if t is None else f"{t * 1e3:.3f}"]
        body.append(row)
    header = [level, "type", "output", "params", "MACs", "mem_access", "MACs/elem", "RF"]
    align = "llrrrrrl"
    if level == "block":
        header[-1:-1], align = ["frag/par"], "llrrrrrrl"
    if latency is not None:
        header[-1:-1], align = ["pred ms"], align[:-1] + "rl"
    return table(body, header, align)


def render_report(r) -> str:
    net = r.network.costs
    mem = r.memory
    lines = [f"{r.name}: input {shape_str(r.input_shape)}, batch {r.batch}, profile {r.profile}", ""]
    lines.append(f"params      {net.params:,} ({human(net.params)})"
                 + (f", {r.params_with_aux:,} with aux heads" if r.params_with_aux != net.params else ""))
    lines.append(f"buffers     {net.buffers:,}")
    lines.append(f"MACs        {net.macs:,} ({human(net.macs)}, {r.profile}); FLOPs = 2 x MACs = {human(net.flops)}")
    other = "full" if r.profile == "reference" else "reference"
    lines.append(f"            {other} profile: {getattr(net, 'macs_' + other):,} MACs")
    lines.append(f"mem_access  {net.mem_access:,} elements ({human(net.mem_access)}); "
                 f"intensity {net.intensity:.2f} MACs/element")
    lines.append(f"activations peak {human(mem.peak_bytes, 'B')} at {mem.peak_at} "
                 f"({len(mem.live_at_peak)} live tensors; {human(mem.total_bytes, 'B')} without reuse)")
    spatial = ("" if r.features_rf_spatial.describe() == r.features_rf.describe()
               else f"; {r.features_rf_spatial.describe()} ignoring SE gates")
    lines.append(f"RF          {r.features}: {r.features_rf.describe()}{spatial}")
    return "\n".join(lines)


def render_audit(r) -> str:
    ew = r.elementwise
    rows = [[b.name, str(b.count), f"{b.mem_access:,}", f"{b.mem_share:.1%}", f"{b.time_share:.1%}"]
            for b in (*ew.buckets.values(), ew.elementwise, ew.with_depthwise) if b.count]
    lines = ["element-wise ops (bias: %d fused, %s MACs)" % (ew.bias_nodes, f"{ew.bias_macs:,}"),
             table(rows, ["bucket", "count", "mem_access", "share", "time share"], "lrrrr"), "",
             "ShuffleNet V2 guidelines"]
    for g in r.guidelines.all():
        lines.append(f"  {g.verdict}" if g.verdict.startswith(g.key) else f"  {g.key}: {g.verdict}")
    worst = r.guidelines.g1.worst[:3]
    if worst:
        lines.append("  G1 worst: " + "; ".join(f"{w.node} {w.ratio} +{w.excess:,.0f}" for w in worst))
    worst = r.guidelines.g2.worst[:3]
    if worst:
        lines.append("  G2 worst: " + "; ".join(f"{w.node} g={w.groups} +{w.penalty:,}" for w in worst))
    worst = r.guidelines.g3.worst[:3]
    if worst:
        lines.append("  G3 worst: " + "; ".join(f"{f.block} ({f.type}) {f.fragments} fragments, {f.parallel} parallel"
                                               for f in worst))
    worst = r.guidelines.g4.worst[:3]
    if worst:
        lines.append("  G4 worst: " + "; ".join(f"{n} ({b}) {m:,} ({s:.1%})" for n, b, m, s in worst))
    return "\n".join(lines)


def run(args) -> int:
    loaded = load_graph(args)
    r = analyze(loaded.graph, batch=args.batch, dtype_bytes=args.dtype_bytes, profile=args.profile)
    latency = predicted(args, loaded.graph, args.batch)
    if args.json:
        out = r.to_dict()
        if latency is not None:
            out["latency"] = {**latency.prediction.to_dict(), "device": latency.profile.device}
        print(json.dumps(out, indent=1))
        return 0
    print(render_report(r))
    if latency is not None:
        print(latency_line(latency))
    print()
    print(render_rows(r, args.level, latency and latency.prediction))
    print()
    print(render_audit(r))
    return 0
