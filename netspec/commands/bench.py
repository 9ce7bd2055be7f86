"""`netspec bench`: measured latency of the compiled module beside its MACs and mem_access.

FLOPs are not speed (ShuffleNet V2 §2): this command times the real forward
pass (eval mode, no grad, a fixed input), after warm-up runs, and reports the
median and spread of the repeats next to the static counts. torch is imported
here, never by the analysis.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..analysis import analyze
from .common import add_spec_args, human, load_graph, non_negative_int, positive_int, shape_str
from .latency import add_latency_args


@dataclass
class Timing:
    """Wall-clock seconds of `repeat` forward passes (after warm-up)."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[2] - q[0]

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return self.iqr / self.median if self.median else 0.0


def progress_printer(label: str, stream=None) -> Callable[[str, int, int], None]:
    stream = stream or sys.stderr
    tty = stream.isatty()

    def show(phase: str, i: int, n: int) -> None:
        if tty:
            stream.write(f"\r{label}: {phase} {i}/{n}   ")
            if phase == "run" and i == n:
                stream.write("\n")
        elif i == n:
            stream.write(f"{label}: {phase} {n}/{n} done\n")
        stream.flush()

    return show


def measure(model, x, *, warmup: int = 3, repeat: int = 20, min_time: float = 0.0,
            progress: Optional[Callable[[str, int, int], None]] = None) -> Timing:
    """Time `model(x)`: `warmup` untimed runs, then `repeat` timed ones (more, if they have not yet
    taken `min_time` seconds in all). The caller sets eval mode and thread count."""
    import torch

    samples: list[float] = []
    with torch.inference_mode():
        for i in range(warmup):
            model(x)
            if progress:
                progress("warm-up", i + 1, warmup)
        while len(samples) < repeat or sum(samples) < min_time:
            t0 = time.perf_counter()
            model(x)
            samples.append(time.perf_counter() - t0)
            if progress:
                progress("run", min(len(samples), repeat), repeat)
    return Timing(samples)


def bench_graph(G, *, batch: int = 1, threads: Optional[int] = None, warmup: int = 3, repeat: int = 20,
                min_time: float = 0.0, seed: int = 0, label: str = "", quiet: bool = False) -> dict:
    """Compile, time and analyse one graph; a flat dict of results."""
    import torch

    from ..api import compile
    from ..analysis.budget import check_run_memory

    check_run_memory(G, batch)
    model = compile(G, seed=seed).eval()
    x = torch.randn(batch, *G.graph["input_shape"], generator=torch.Generator().manual_seed(seed))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        used = torch.get_num_threads()
        timing = measure(model, x, warmup=warmup, repeat=repeat, min_time=min_time,
                         progress=None if quiet else progress_printer(label or G.graph["name"]))
    finally:
        torch.set_num_threads(previous)  # leave the process as we found it
    r = analyze(G, batch=batch)
    net = r.network.costs
    return {
        "name": G.graph["name"], "input_shape": [batch, *G.graph["input_shape"]], "batch": batch,
        "threads": used, "repeat": len(timing.samples), "warmup": warmup,
        "median_ms": timing.median * 1e3, "iqr_ms": timing.iqr * 1e3, "min_ms": min(timing.samples) * 1e3,
        "max_ms": max(timing.samples) * 1e3, "images_per_s": batch / timing.median,
        "params": net.params, "macs": net.macs_reference, "macs_full": net.macs_full, "flops": net.flops,
        "mem_access": net.mem_access, "gmacs_per_s": net.macs_reference / timing.median / 1e9,
        "torch": torch.__version__,
    }


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench", help="measure the compiled module's latency beside its MACs and mem_access",
        description="Compile a spec and time its forward pass on this machine (eval mode, no grad): warm-up "
                    "runs, then repeats; prints the median and spread beside MACs and mem_access. FLOPs are "
                    "not speed: see docs/guidelines.md.",
        epilog="examples:\n  netspec bench mobilenet_v2 --threads 1 --repeat 10\n"
               "  netspec bench efficientnet_b0 --batch 8 --threads 2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    p.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--repeat", type=positive_int, default=20, help="timed runs (default 20)")
    p.add_argument("--warmup", type=non_negative_int, default=3, help="untimed warm-up runs (default 3)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_latency_args(p, flag=False)
    return p


def predicted_beside(res: dict, G, device: Optional[str]) -> Optional[dict]:
    """The profile's prediction for the same graph and batch, beside the fastest measured run (what a
    profile models: calibration keeps each op's fastest time, as time other processes take only ever
    adds). None without a profile: --device, or the per-user default when it exists."""
    from ..latency import default_profile_path, load_profile, predict

    if not device and not default_profile_path().is_file():
        return None
    profile = load_profile(device)
    ms = predict(G, profile, res["batch"]).network * 1e3
    return {"predicted_ms": ms, "error": ms / res["min_ms"] - 1, "profile": profile.path,
            "profile_threads": profile.threads}


def run(args) -> int:
    if args.batch < 1 or args.repeat < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        print("error: --batch, --repeat and --threads must be positive, --warmup non-negative", file=sys.stderr)
        return 2
    loaded = load_graph(args)
    res = bench_graph(loaded.graph, batch=args.batch, threads=args.threads, warmup=args.warmup,
                      repeat=args.repeat)
    pred = predicted_beside(res, loaded.graph, args.device)
    if pred:
        res.update(pred)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"{res['name']}: input {shape_str(res['input_shape'])}, {res['threads']} thread(s), "
          f"{res['repeat']} runs after {res['warmup']} warm-up (torch {res['torch']})")
    print(f"latency     median {res['median_ms']:.3f} ms, IQR {res['iqr_ms']:.3f} ms "
          f"({res['iqr_ms'] / res['median_ms']:.1%}), min {res['min_ms']:.3f} ms, max {res['max_ms']:.3f} ms")
    if pred:
        note = ("" if pred["profile_threads"] == res["threads"] else
                f"; the profile was calibrated at {pred['profile_threads']} thread(s), not {res['threads']}")
        print(f"predicted   {pred['predicted_ms']:.3f} ms ({pred['error']:+.1%} against the fastest run) "
              f"from {pred['profile']}{note}")
    print(f"throughput  {res['images_per_s']:.1f} images/s, {res['gmacs_per_s']:.2f} GMACs/s")
    print(f"MACs        {res['macs']:,} ({human(res['macs'])}); FLOPs = 2 x MACs = {human(res['flops'])}")
    print(f"mem_access  {res['mem_access']:,} elements ({human(res['mem_access'])})")
    return 0
