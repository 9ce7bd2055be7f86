"""`netspec calibrate`: measure this machine's per-op latency and write a device profile (imports torch).

The profile is what `analyze --latency`, `compare --latency`, `bench` and `scale --search
--latency-budget` predict from (netspec/latency/; the prediction itself needs no torch).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import SourceLoc, SpecError
from .common import positive_int

MAX_SPECS = 64
MAX_BATCH = 256


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "calibrate", help="measure this machine's per-op latency; write a device profile for --latency",
        description="Run the given specs' inference forward (default: the zoo, specs/*.yaml) node by node at "
                    "batch 1 and 8 on --threads threads, timing every op in context: conv by kernel, stride, "
                    "groups, channels and map size, depthwise, linear, pooling, norms, element-wise ops, concat "
                    "and data movement; each network's fastest forward over passes spread across the budget is kept. "
                    "Fit per cost class t = call + MACs x c_mac + elements x c_elem + spilled x c_spill "
                    "(non-negative least squares on relative error; spilled: the elements of a node whose "
                    "working set exceeds the effective cache, a size chosen from 1 to 64 MiB by how well it "
                    "predicts the calibration's networks) and write the JSON device profile. "
                    "About 2.5 minutes (--budget bounds the timing).",
        epilog="examples:\n  netspec calibrate                      # the per-user default profile\n"
               "  netspec calibrate --threads 2 --out cpu2.json\n"
               "  netspec calibrate mobilenet_v2 resnet50 --budget 60 --out mine.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("specs", nargs="*", help="zoo names or spec files whose op shapes to time (default: every zoo spec)")
    p.add_argument("--out", help="profile file to write (default: the per-user profile, "
                                 "$XDG_CONFIG_HOME/netspec/device.json or $NETSPEC_DEVICE_PROFILE)")
    p.add_argument("--force", action="store_true", help="overwrite an existing profile")
    p.add_argument("--threads", type=positive_int, help="torch threads to calibrate at (default: torch's current setting)")
    p.add_argument("--batches", default="1,8", help="batch sizes, comma-separated (default 1,8)")
    p.add_argument("--budget", type=float, default=150.0, help="seconds of timing at most (default 150)")
    p.add_argument("--rounds", type=positive_int, default=12,
                   help="timed passes over every network and batch, at most (default 12; --budget stops them sooner)")
    p.add_argument("--clock", choices=("wall", "cpu"),
                   help="wall: elapsed time; cpu: the thread's CPU time, the latency without other processes' "
                        "share of a loaded machine (one thread only). Default: cpu at 1 thread, else wall")
    return p


def _batches(text: str) -> list[int]:
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        values = []
    if not values or len(values) > 4 or not all(1 <= b <= MAX_BATCH for b in values):
        raise SpecError(f"--batches expects 1 to 4 batch sizes from 1 to {MAX_BATCH}, got '{text}'"[:200],
                        SourceLoc("--batches"), "for example --batches 1,8")
    return values


class ProgressBar:
    def __init__(self, stream=None, width: int = 30):
        self.stream, self.width, self.start = stream or sys.stderr, width, time.perf_counter()
        self.tty = self.stream.isatty()
        self.last = -1

    def __call__(self, i: int, n: int, what: str) -> None:
        frac = i / n if n else 1.0
        if self.tty:
            bar = "#" * round(frac * self.width)
            self.stream.write(f"\rcalibrate [{bar:<{self.width}}] {i}/{n} {time.perf_counter() - self.start:5.0f}s "
                              f"{what[:28]:<28}")
            if i == n:
                self.stream.write("\n")
        elif int(frac * 10) > self.last:   # a line per 10 % when not on a terminal
            self.last = int(frac * 10)
            self.stream.write(f"calibrate: {i}/{n} ({frac:.0%}) {time.perf_counter() - self.start:.0f}s\n")
        self.stream.flush()


def run(args) -> int:
    from ..latency.calibrate import calibrate, zoo_specs
    from ..latency.profile import default_profile_path, save_profile
    from .common import load_graph, output_file

    batches = _batches(args.batches)
    if not 1 <= args.budget <= 3600:
        raise SpecError(f"--budget must be 1 to 3600 seconds, got {args.budget:g}", SourceLoc("--budget"),
                        "the default, 150, keeps calibration under 3 minutes")
    if args.rounds > 100:
        raise SpecError(f"--rounds must be at most 100, got {args.rounds}", SourceLoc("--rounds"), "the default is 12")
    out = Path(args.out) if args.out else default_profile_path()
    if out.exists() and not args.force:
        raise SpecError(f"{out} exists; not overwriting it", SourceLoc(str(out)),
                        "pass --force to recalibrate into it, or --out another file")
    if args.out:
        output_file(str(out), force=True)   # the folder must exist (the default's is created)
    from ..zoo import resolve
    # zoo names or files, each with the variant a name stands for
    specs = [resolve(s, None) for s in args.specs] or [(str(s), None) for s in zoo_specs()]
    if not specs:
        raise SpecError("no specs to take op shapes from", SourceLoc("calibrate"),
                        "name some specs: netspec calibrate mobilenet_v2 ...")
    if len(specs) > MAX_SPECS:
        raise SpecError(f"{len(specs)} specs (at most {MAX_SPECS})", SourceLoc("calibrate"), "name fewer specs")
    graphs = [load_graph(argparse.Namespace(spec=str(s), overrides=[], variant=v, phi=None, res=None,
                                            no_aux=True)).graph for s, v in specs]
    import torch

    threads = args.threads or torch.get_num_threads()
    clock = args.clock or ("cpu" if threads == 1 else "wall")
    if clock == "cpu" and threads > 1:
        raise SpecError("--clock cpu measures one thread's CPU time: it cannot see torch's other threads",
                        SourceLoc("--clock"), "use --threads 1 with --clock cpu, or --clock wall")
    profile = calibrate(graphs, batches=batches, threads=threads, clock=clock, rounds=args.rounds,
                        budget_s=args.budget, progress=ProgressBar())
    profile.device["specs"] = ", ".join(sorted({g.graph["name"] for g in graphs}))[:500]
    save_profile(profile, out)
    d = profile.device
    print(f"wrote {out}: {d['samples']} node timings (each network's fastest of {d['passes']} passes), "
          f"{len(profile.batches[batches[0]].classes)} models in {d['seconds']:.0f} s; {profile.describe()}, "
          f"{clock} clock")
    if d.get("skipped"):
        print(f"  left out (over the MACs bound at that batch): {d['skipped']}")
    for b, m in sorted(profile.batches.items()):
        fits = [(c, m.classes[c].rel_error) for c in ("conv2d/1x1", "conv2d/kxk", "conv2d/depthwise",
                                                       "conv2d/grouped", "linear", "batchnorm") if c in m.classes]
        print(f"  batch {b}: effective cache {m.cache_bytes / (1 << 20):g} MiB, per-forward {m.forward_s * 1e6:.0f} µs; "
              "fit error (median |relative|): "
              + ", ".join(f"{c} {e:.0%}" for c, e in fits))
    return 0
