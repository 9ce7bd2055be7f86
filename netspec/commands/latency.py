"""What the commands share for predicted latency: --latency / --device, and formatting (no torch)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Optional

import networkx as nx

from ..latency import LatencyPrediction, Profile, load_profile, predict


def add_latency_args(p: argparse.ArgumentParser, *, flag: bool = True) -> None:
    if flag:
        p.add_argument("--latency", action="store_true",
                       help="predict latency from the device profile (netspec calibrate; no torch)")
    p.add_argument("--device", metavar="PROFILE",
                   help="device profile JSON (default: the per-user profile netspec calibrate writes)")


@dataclass
class Predicted:
    profile: Profile
    prediction: LatencyPrediction


def predicted(args, G: nx.DiGraph, batch: int) -> Optional[Predicted]:
    """The prediction the arguments ask for (--latency, or --device alone), or None."""
    if not (getattr(args, "latency", False) or getattr(args, "device", None)):
        return None
    profile = load_profile(args.device)
    return Predicted(profile, predict(G, profile, batch))


def group_latency(p: LatencyPrediction, g, level: str) -> Optional[float]:
    """Seconds of one row of the analysis report (None for aux heads, which the forward does not run)."""
    if level == "network":
        return p.network
    if level == "node":
        return p.nodes.get(g.name)
    table = p.blocks if level == "block" else p.stages
    return table.get(g.scope)


def latency_line(lat: Predicted) -> str:
    p, prof = lat.prediction, lat.profile
    where = f"batch {p.batch}" + (f" (model of batch {p.calibrated_batch})" if p.calibrated_batch != p.batch else "")
    line = f"latency     {p.network * 1e3:.3f} ms predicted, {where}, {prof.threads} thread(s) on {prof.device.get('cpu', '?')}"
    if p.fallback:
        line += "\n            no model for " + ", ".join(f"{c} (used {f})" for c, f in sorted(p.fallback.items()))
    return line


# --------------------------------------------------------------------------- scale --search --latency-budget

def latency_budget(text: str) -> float:
    """'25ms', '0.025s', '25' (milliseconds) -> seconds."""
    t = text.strip().lower()
    unit = 1e-3
    for suffix, scale in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("s", 1.0)):
        if t.endswith(suffix):
            t, unit = t[: -len(suffix)].strip(), scale
            break
    try:
        value = float(t) * unit
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < 3600 and value == value):
        raise argparse.ArgumentTypeError(f"expected a positive latency like 25ms or 0.1s, got {text!r}")
    return value


def add_budget_args(group) -> None:
    group.add_argument("--latency-budget", type=latency_budget, metavar="TIME",
                       help="search (alpha, beta, gamma) under this predicted latency instead of a MACs ratio, "
                            "e.g. 25ms (needs a device profile: netspec calibrate)")
    group.add_argument("--objective", choices=("efficientnet", "mnasnet"), default="efficientnet",
                       help="with --latency-budget: efficientnet = most MACs within the budget (hard); mnasnet = "
                            "ln(MACs) x (latency/budget)^-0.07 (soft). Default efficientnet")
    group.add_argument("--batch", type=int, default=1, help="with --latency-budget: batch size (default 1)")
    group.add_argument("--no-measure", action="store_true",
                       help="with --latency-budget: do not compile and time the chosen network")
    add_latency_args(group, flag=False)


def run_budget_search(args, spec) -> int:
    import json
    import sys

    from ..errors import SourceLoc, SpecError
    from ..latency.search import measure_latency, search
    from ..rounding import exact
    from ..scale import resolve
    from ..spec import spec_from_data
    from .common import human, table

    if not args.search:
        raise SpecError("--latency-budget is an option of the search", SourceLoc("--latency-budget"),
                        "add --search: netspec scale SPEC --search --latency-budget 25ms")
    try:
        step = exact(args.grid)
    except (ValueError, ZeroDivisionError):
        step = 0
    if not step > 0 or not 1 <= args.batch <= 256:
        raise SpecError("--latency-budget needs --grid > 0 and --batch from 1 to 256", SourceLoc("--search"),
                        "for example --latency-budget 25ms --grid 0.1")
    profile = load_profile(args.device)
    if args.variant or args.res:
        data, _ = resolve(spec, variant=args.variant, resolution=args.res)
        spec = spec_from_data(data, spec.locs)

    def progress(k: int) -> None:
        if sys.stderr.isatty():
            print(f"\rpredicted {k} grid points", end="", file=sys.stderr, flush=True)
        elif k % 250 == 0:
            print(f"predicted {k} grid points", file=sys.stderr, flush=True)

    base, found = search(spec, profile, budget_s=args.latency_budget, step=step, objective=args.objective,
                         batch=args.batch, progress=progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    best = found[0] if found and found[0].score > float("-inf") else None
    measured = None
    if best is not None and not args.no_measure:
        measured = measure_latency(spec, best, profile, batch=args.batch)
    rows = found[:args.top]
    if args.json:
        print(json.dumps({"base": base.to_dict(), "budget_ms": args.latency_budget * 1e3, "objective": args.objective,
                          "device": profile.device, "evaluated": len(found),
                          "best": best and {**best.to_dict(), "measured_ms": measured and measured * 1e3},
                          "candidates": [c.to_dict() for c in rows]}, indent=1))
        return 0
    print(f"{spec.name}: base {base.params:,} params, {human(base.macs)} MACs at {base.resolution}, predicted "
          f"{base.latency_s * 1e3:.2f} ms; budget {args.latency_budget * 1e3:g} ms at batch {args.batch}, objective "
          f"{args.objective}, grid {args.grid}, phi = 1; {len(found)} grid points predicted on {profile.describe()}")
    body = [[c.label, str(c.resolution), f"{c.params:,}", human(c.macs), f"{c.latency_s * 1e3:.2f}",
             f"{c.score:.4f}" if c.score > float("-inf") else "over"] for c in rows]
    print(table(body, ["alpha, beta, gamma", "resolution", "params", "MACs", "predicted ms", "score"], "lrrrrr"))
    if best is None:
        print(f"no grid point is within {args.latency_budget * 1e3:g} ms: the base network alone is predicted "
              f"at {base.latency_s * 1e3:.2f} ms")
        return 0
    line = (f"chosen: alpha={float(best.alpha):g} beta={float(best.beta):g} gamma={float(best.gamma):g} "
            f"(resolution {best.resolution}), {best.params:,} params, {human(best.macs)} MACs, "
            f"predicted {best.latency_s * 1e3:.2f} ms")
    if measured is not None:
        line += f", measured {measured * 1e3:.2f} ms ({best.latency_s / measured - 1:+.1%})"
    print(line)
    return 0
