"""`netspec calibrate`'s measuring and fitting: time ops on this machine, fit a profile (imports torch).

The shapes are data-driven and the timings in context: each given spec (by default the zoo,
`specs/*.yaml`) is compiled and its no-grad forward (the in-place plan `netspec bench` times) is
run node by node, each module call timed, with the real activations flowing from node to node.
An op timed alone, over and over, finds its weights and input in cache and its output buffer
reused; inside a network it does not (MobileNet V2's first stride-2 depthwise conv takes 6x as
long in the forward as alone), so timing ops alone under-predicts networks. Every node timed is
a sample of its cost class (`features.py`); a class, an op, a kind and '*' are each fitted over
their samples (`fit.py`), once per candidate cache size, and the cache size whose models predict
the calibration's own networks best is kept. The cost is bounded: a network whose forward at a
batch would exceed `max_macs` is left out at that batch (its shapes are still timed at the
others), and passes stop when the time budget is spent.

`clock="cpu"` times with the thread's CPU clock: at one thread, the latency with the time other
processes take left out - on a shared machine the only stable figure (the wall clock of a forward
that spans several scheduler slices grows with the load; a 20 us op rarely does).
"""
from __future__ import annotations

import datetime
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

import networkx as nx

from .. import ops
from .features import classify, lineage, node_features, spilled
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


class NodeTimer:
    """One compiled network's no-grad forward (the in-place plan `netspec bench` times), run node by
    node with the real activations flowing, each module call timed."""

    def __init__(self, G: nx.DiGraph):
        from ..api import compile
        from ..backends.pytorch import _flat_names

        self.G = G
        gm = compile(G, seed=0).eval()._infer_nograd
        self.modules = dict(gm.named_modules())
        self.node_of = {flat: n for n, flat in _flat_names(G).items()}
        self.steps = [(node.name, node.target, node.args) for node in gm.graph.nodes if node.op == "call_module"]
        self.placeholder = next(node.name for node in gm.graph.nodes if node.op == "placeholder")
        self.inputs: dict[int, object] = {}

    def forward(self, batch: int, clock: str) -> dict[str, float]:
        """{IR node: seconds} of one forward at `batch`."""
        import torch
        from torch import fx

        if batch not in self.inputs:
            self.inputs[batch] = torch.randn(batch, *self.G.graph["input_shape"],
                                             generator=torch.Generator().manual_seed(0))
        now = CLOCKS[clock]
        times: dict[str, float] = {}
        with torch.inference_mode():
            env = {self.placeholder: self.inputs[batch].clone()}
            for name, target, args in self.steps:
                inputs = fx.node.map_arg(args, lambda a: env[a.name])  # Concat / Add: one list
                module = self.modules[target]
                t0 = now()
                env[name] = module(*inputs)
                times[self.node_of[target]] = now() - t0
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


# effective cache sizes the spill term is fitted for (bytes); the one whose fit predicts the
# calibration's own networks best is kept. Wide, because what a core can keep is not what lscpu
# says: the L3 is shared with other cores (and, in a VM, other tenants) and holds weights too.
CACHE_CANDIDATES = tuple(int(m * (1 << 20)) for m in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64))


def fit_classes(rows: list[tuple[str, tuple, float]], op_of: dict[str, tuple[str, str]]) -> dict[str, ClassModel]:
    """A model per cost class and per wider class of its lineage (conv2d/depthwise pools the strided
    and unstrided ones, relu its in-place and out-of-place forms), per op, kind and '*'."""
    groups: dict[str, list[tuple[tuple, float]]] = {}
    for cls, x, t in rows:
        for g in lineage(cls, *op_of[cls]):
            groups.setdefault(g, []).append((x, t))
    classes = {}
    for g, pts in groups.items():
        pts = [(x, t) for x, t in pts if t > 0] or [(x, 1e-9) for x, _ in pts]
        coef, err = fit_class([x for x, _ in pts], [t for _, t in pts])
        classes[g] = ClassModel(tuple(coef), len(pts), round(err, 4))
    return classes


def network_error(rows: list[tuple[str, tuple, float]], features: list[tuple], classes: dict[str, ClassModel]) -> float:
    """Mean squared relative error of the calibration's networks (sums of their nodes' times), each
    predicted from the class models: what the choice of cache size is judged by."""
    measured: dict[tuple, float] = {}
    predicted: dict[tuple, float] = {}
    for (cls, (G, _, batch), t), x in zip(rows, features):
        key = (id(G), batch)
        measured[key] = measured.get(key, 0.0) + t
        predicted[key] = predicted.get(key, 0.0) + classes[cls].time(x)
    return statistics.fmean((predicted[k] / measured[k] - 1) ** 2 for k in measured if measured[k] > 0)


def fit_with_cache(rows: list[tuple[str, tuple, float]], op_of: dict[str, tuple[str, str]],
                   candidates: tuple[int, ...] = CACHE_CANDIDATES) -> BatchModel:
    """A batch's model: the class models fitted at each candidate cache size, the size whose models
    predict the calibration's networks best kept. Rows are (class, (graph, node, batch), seconds)."""
    best: Optional[tuple[float, int, dict]] = None
    base = [node_features(G, n, batch) for _, (G, n, batch), _ in rows]
    for cache in candidates:
        features = [(*x[:3], spilled(x[2], cache)) for x in base]
        fitted = [(cls, x, t) for (cls, _, t), x in zip(rows, features)]
        classes = fit_classes(fitted, op_of)
        score = network_error(rows, features, classes)
        if best is None or score < best[0] - 1e-12:
            best = (score, cache, classes)
    _, cache, classes = best
    return BatchModel(classes, cache_bytes=float(cache))


def network_macs(G: nx.DiGraph, batch: int) -> float:
    return sum(node_features(G, n, batch)[1] for n in classify(G))


VISIT_S = 0.01   # seconds of timed forwards per visit of a small network
MAX_REPS = 10


def forwards_per_visit(forward_s: float) -> int:
    """How many forwards a visit times, from one forward's seconds: a small network several (about
    VISIT_S of them, at most MAX_REPS), so its fastest is not one forward's luck - LeNet-5 takes
    0.4 ms, ResNet-50 at batch 8 a second. `bench/latency.py` visits networks the same way."""
    return max(1, min(MAX_REPS, math.ceil(VISIT_S / max(forward_s, 1e-6))))


def calibrate(graphs: list[nx.DiGraph], *, batches=(1, 8), threads: int, clock: str = "wall",
              rounds: int = 8, budget_s: float = 150.0, max_macs: float = 40e9,
              progress: Optional[Callable[[int, int, str], None]] = None,
              on_pass: Optional[Callable[[int], None]] = None) -> Profile:
    """Time every graph's forward node by node at each batch and fit the profile.

    The timing runs in passes: a warm-up pass, then up to `rounds` passes, each visiting every
    (network, batch) once, until the budget is spent (at least one timed pass). A network's node times are
    those of its fastest forward over the passes. On a shared host the time other tenants take from us (the cache
    and memory bandwidth they use, which the CPU clock still sees) only ever adds, and comes and
    goes over minutes: the fastest of forwards spread over the whole calibration is the figure
    that repeats, and `bench/latency.py` measures networks the same way. (Each node's own fastest
    would not do: summed, they are 4-7 % below any one forward.) Each visit runs one
    untimed forward first: what is modelled is a network run over and over, and the forward
    just after another network finds its weights evicted and oneDNN's primitive cache (1,024
    kernels; the zoo has more) holding the other network's kernels (LeNet-5 then takes 4x as long).

    `on_pass(r)` runs after each pass (0: the warm-up), outside the budget: `bench/latency.py`
    measures its networks there, so calibration and check see the host in the same state.
    """
    import tempfile

    import torch

    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    deadline = start + budget_s
    jobs = [(b, G) for b in batches for G in sorted(graphs, key=lambda G: network_macs(G, 1))
            if network_macs(G, b) <= max_macs]
    skipped = sorted({f"{G.graph['name']}@{b}" for b in batches for G in graphs if network_macs(G, b) > max_macs})
    timers: dict[int, NodeTimer] = {}
    best: list[dict[str, float]] = [{} for _ in jobs]     # per job: the node times of its fastest forward
    best_total = [math.inf] * len(jobs)
    total_steps = len(jobs) * (rounds + 1)
    step = 0
    passes = 0
    outside = 0.0                              # seconds spent in on_pass: not calibration's
    for r in range(rounds + 1):                # pass 0 warms up (allocator, oneDNN primitives, compile)
        if r > 1 and time.perf_counter() > deadline:
            break
        for j, (b, G) in enumerate(jobs):
            if r > 1 and time.perf_counter() > deadline:
                break                          # a pass cut short: its networks keep their earlier passes
            timer = timers.get(id(G)) or timers.setdefault(id(G), NodeTimer(G))
            t0 = time.perf_counter()
            timer.forward(b, clock)            # a warm-up forward on every visit (below)
            for _ in range(forwards_per_visit(time.perf_counter() - t0) if r else 0):
                times = timer.forward(b, clock)
                total = sum(times.values())
                if total < best_total[j]:
                    best[j], best_total[j] = times, total
            step += 1
            if progress:
                progress(step, total_steps, f"pass {r}: {G.graph['name']} batch {b}")
        passes = r
        if on_pass:
            t0 = time.perf_counter()
            on_pass(r)
            outside += time.perf_counter() - t0
            deadline += time.perf_counter() - t0
    timers.clear()
    if progress and step < total_steps:
        progress(total_steps, total_steps, "budget spent")
    samples: dict[int, list[tuple[str, tuple, float]]] = {b: [] for b in batches}
    op_of: dict[str, tuple[str, str]] = {}
    for (b, G), times in zip(jobs, best):
        classes = classify(G)
        for n, t in times.items():
            cls = classes[n]
            op = ops.get_op(G.nodes[n]["op"])
            op_of[cls] = (op.name, op.kind.value)
            samples[b].append((cls, (G, n, b), t))
    models = {b: fit_with_cache(samples[b], op_of) for b in batches}
    with tempfile.TemporaryDirectory() as d:
        for b in batches:
            models[b].forward_s = time_forward_overhead(b, Path(d), clock)
    device = {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version(),
              "torch": torch.__version__, "threads": threads, "clock": clock,
              "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "samples": sum(len(v) for v in samples.values()), "passes": passes,
              "skipped": ", ".join(skipped)[:500], "seconds": round(time.perf_counter() - start - outside, 1)}
    return Profile(device, models)
