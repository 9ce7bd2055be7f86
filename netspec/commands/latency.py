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
