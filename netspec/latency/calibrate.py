"""`netspec calibrate`'s measuring and fitting: time ops on this machine, fit a profile (imports torch).

The shapes are data-driven and the timings in context: each given spec (by default the zoo,
`specs/*.yaml`) is compiled and its no-grad forward (the in-place plan `netspec bench` times) is
run node by node, each module call timed, with the real activations flowing from node to node.
An op timed alone, over and over, finds its weights and input in cache and its output buffer
reused; inside a network it does not (MobileNet V2's first stride-2 depthwise conv takes 6x as
long in the forward as alone), so timing ops alone under-predicts networks. Every node timed is
a sample of its cost class (`features.py`); a class, an op, a kind and '*' are each fitted over
their samples (`fit.py`). The cost is bounded: a network whose forward at a batch would exceed
`max_macs` is left out at that batch (its shapes are still timed at the others), and rounds stop
when the time budget is spent.

`clock="cpu"` times with the thread's CPU clock: at one thread, the latency with the time other
processes take left out - on a shared machine the only stable figure (the wall clock of a forward
that spans several scheduler slices grows with the load; a 20 us op rarely does).
"""
from __future__ import annotations

import datetime
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

import networkx as nx

from .. import ops
from .features import classify, lineage, node_features
from .fit import fit_class
from ..zoo import zoo_dir
from .profile import BatchModel, ClassModel, Profile


def zoo_specs() -> list[Path]:
    return sorted(zoo_dir().glob("*.yaml"))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def time_call(fn: Callable[[], object], refresh: Callable[[], None], *, min_runs: int = 5,
              min_time: float = 0.01, max_runs: int = 50, warmup: int = 2, clock: str = "wall") -> float:
    """Median seconds of fn(), refreshing its inputs (untimed) before each call. The `cpu` clock is the
    calling thread's CPU time: at one thread it is the latency without the time other processes take
    (a shared machine), and it cannot see intra-op worker threads."""
    now = CLOCKS[clock]
    for _ in range(warmup):
        refresh()
        fn()
    samples: list[float] = []
    while len(samples) < min_runs or (sum(samples) < min_time and len(samples) < max_runs):
        refresh()
        t0 = now()
        fn()
        samples.append(now() - t0)
    return statistics.median(samples)


def timed_forward(G: nx.DiGraph, batch: int, rounds: int, clock: str, deadline: float,
                  tick: Callable[[], None]) -> dict[str, list[float]]:
    """{IR node: per-round seconds}: the compiled no-grad forward run node by node, `rounds` times."""
    import torch
    from torch import fx

    from ..api import compile
    from ..backends.pytorch import _flat_names

    model = compile(G, seed=0).eval()
    gm = model._infer_nograd
    modules = dict(gm.named_modules())
    node_of = {flat: n for n, flat in _flat_names(G).items()}
    x = torch.randn(batch, *G.graph["input_shape"], generator=torch.Generator().manual_seed(0))
    now = CLOCKS[clock]
    times: dict[str, list[float]] = {}
    steps = [(node.name, node.target, node.args) for node in gm.graph.nodes if node.op == "call_module"]
    placeholder = next(node.name for node in gm.graph.nodes if node.op == "placeholder")
    with torch.inference_mode():
        for r in range(rounds + 1):            # round 0 warms up (allocator, oneDNN primitives)
            if r > 1 and time.perf_counter() > deadline:
                break
            env = {placeholder: x.clone()}
            for name, target, args in steps:
                inputs = fx.node.map_arg(args, lambda a: env[a.name])  # Concat / Add: one list
                module = modules[target]
                t0 = now()
                env[name] = module(*inputs)
                dt = now() - t0
                if r:
                    times.setdefault(node_of[target], []).append(dt)
            env.clear()
            tick()
    return times


PROBE_SPEC = """\
name: probe
input: {channels: 1, size: 1}
stages:
  - name: s
    blocks:
      - {type: flatten, name: flat}
"""


def time_forward_overhead(batch: int, tmp: Path, clock: str = "wall") -> float:
    """A compiled network's own per-forward time: a one-flatten network minus the flatten's call."""
    import torch

    from ..api import compile, load, lower

    path = tmp / "probe.yaml"
    path.write_text(PROBE_SPEC)
    G = lower(load(str(path)))
    model = compile(G).eval()
    x = torch.zeros(batch, *G.graph["input_shape"])
    flat = next(n for n in G.nodes if G.nodes[n]["op"] == "flatten")
    module = ops.get_op("flatten").torch(G.nodes[flat]["attrs"], G.nodes[flat]["in_shapes"], G.nodes[flat]["shape"])
    with torch.inference_mode():
        whole = min(time_call(lambda: model(x), lambda: None, min_runs=50, clock=clock) for _ in range(3))
        part = min(time_call(lambda: module(x), lambda: None, min_runs=50, clock=clock) for _ in range(3))
    return max(0.0, whole - part)


def fit(samples: dict[int, list[tuple[str, tuple, float]]], op_of: dict[str, tuple[str, str]]) -> dict[int, BatchModel]:
    """Per batch: a model per cost class and per wider class of its lineage (conv2d/depthwise pools
    the strided and unstrided ones, relu its in-place and out-of-place forms), per op, kind and '*'."""
    out = {}
    for b, rows in samples.items():
        groups: dict[str, list[tuple[tuple, float]]] = {}
        for cls, x, t in rows:
            for g in lineage(cls, *op_of[cls]):
                groups.setdefault(g, []).append((x, t))
        classes = {}
        for g, pts in groups.items():
            pts = [(x, t) for x, t in pts if t > 0] or [(x, 1e-9) for x, _ in pts]
            coef, err = fit_class([x for x, _ in pts], [t for _, t in pts])
            classes[g] = ClassModel(tuple(coef), len(pts), round(err, 4))
        out[b] = BatchModel(classes)
    return out


def network_macs(G: nx.DiGraph, batch: int) -> float:
    return sum(node_features(G, n, batch)[1] for n in classify(G))


def calibrate(graphs: list[nx.DiGraph], *, batches=(1, 8), threads: int, clock: str = "wall",
              rounds: int = 5, budget_s: float = 150.0, max_macs: float = 40e9,
              progress: Optional[Callable[[int, int, str], None]] = None) -> Profile:
    """Time every graph's forward node by node at each batch and fit the profile."""
    import tempfile

    import torch

    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    jobs = [(b, G) for b in batches for G in sorted(graphs, key=lambda G: network_macs(G, 1))
            if network_macs(G, b) <= max_macs]
    # the time budget is shared out in proportion to each job's MACs (a floor for small networks)
    weight = [network_macs(G, b) + 2e8 for b, G in jobs]
    total_steps = len(jobs) * (rounds + 1)
    done = [0]
    samples: dict[int, list[tuple[str, tuple, float]]] = {b: [] for b in batches}
    op_of: dict[str, tuple[str, str]] = {}
    skipped = sorted({f"{G.graph['name']}@{b}" for b in batches for G in graphs if network_macs(G, b) > max_macs})
    spent_weight = 0.0
    for (b, G), w in zip(jobs, weight):
        spent_weight += w
        deadline = start + budget_s * spent_weight / sum(weight)

        def tick(label=f"{G.graph['name']} batch {b}"):
            done[0] += 1
            if progress:
                progress(min(done[0], total_steps), total_steps, label)

        before = done[0]
        times = timed_forward(G, b, rounds, clock, deadline, tick)
        done[0] = before + rounds + 1
        if progress:
            progress(done[0], total_steps, f"{G.graph['name']} batch {b}")
        classes = classify(G)
        for n, ts in times.items():
            cls = classes[n]
            op = ops.get_op(G.nodes[n]["op"])
            op_of[cls] = (op.name, op.kind.value)
            samples[b].append((cls, node_features(G, n, b), statistics.median(ts)))
    models = fit(samples, op_of)
    with tempfile.TemporaryDirectory() as d:
        for b in batches:
            models[b].forward_s = time_forward_overhead(b, Path(d), clock)
    device = {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version(),
              "torch": torch.__version__, "threads": threads, "clock": clock,
              "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "samples": sum(len(v) for v in samples.values()), "skipped": ", ".join(skipped)[:500],
              "seconds": round(time.perf_counter() - start, 1)}
    return Profile(device, models)
