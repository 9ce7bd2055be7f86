"""`netspec calibrate`'s measuring and fitting: time real ops on this machine, fit a profile (imports torch).

The shapes are data-driven: every distinct node the inference forward of the given specs runs
(by default the zoo, `specs/*.yaml`) is a candidate, grouped by cost class (`features.py`); each
class gets up to `per_class` of its nodes, spread evenly over their size, so that the fit sees the
small and the large ones. Each sample is the op's own module (`Op.torch`, or its in-place twin for
a node the no-grad forward runs in place) timed on random inputs of the node's shapes, the inputs
refreshed (untimed) before every call so that in-place ops never feed on their own output and the
input is in cache, as in a forward. The cost is bounded: samples are taken round-robin over the
classes until the time budget is spent, and no sample's MACs exceed `max_macs`.
"""
from __future__ import annotations

import datetime
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import networkx as nx

from .. import ops
from ..optimize import inference_inplace_nodes
from .features import FEATURES, INPLACE, classify, node_features
from .fit import fit_class
from .profile import BatchModel, ClassModel, Profile

ZOO = Path(__file__).resolve().parent.parent.parent / "specs"


@dataclass
class Candidate:
    cls: str
    graph: nx.DiGraph
    node: str
    inplace: Optional[int]   # the input the no-grad forward overwrites, or None
    size: float              # MACs + elements of one sample: the spread key

    def key(self) -> tuple:
        d = self.graph.nodes[self.node]
        return (self.cls, d["op"], repr(sorted(d["attrs"].items())), repr(d["in_shapes"]), self.inplace)


def zoo_specs() -> list[Path]:
    return sorted(ZOO.glob("*.yaml"))


def candidates(graphs: list[nx.DiGraph]) -> dict[str, list[Candidate]]:
    """Distinct forward nodes of the graphs by cost class, each class sorted by size."""
    seen: dict[tuple, Candidate] = {}
    for G in graphs:
        inplace = inference_inplace_nodes(G)
        for n, cls in classify(G).items():
            _, macs, elems = node_features(G, n, 1)
            c = Candidate(cls, G, n, inplace.get(n), macs + elems)
            seen.setdefault(c.key(), c)
    by_class: dict[str, list[Candidate]] = {}
    for c in seen.values():
        by_class.setdefault(c.cls, []).append(c)
    for cs in by_class.values():
        cs.sort(key=lambda c: c.size)
    return by_class


def spread(cs: list[Candidate], k: int) -> list[Candidate]:
    """k of the sorted candidates, evenly spaced from the smallest to the largest."""
    if len(cs) <= k:
        return list(cs)
    idx = sorted({round(i * (len(cs) - 1) / (k - 1)) for i in range(k)}) if k > 1 else [len(cs) // 2]
    return [cs[i] for i in idx]


def plan(by_class: dict[str, list[Candidate]], batches: list[int], per_class: int,
         max_macs: float) -> list[tuple[int, Candidate]]:
    """(batch, candidate) in round-robin order over classes and batches: a cut-short run keeps coverage."""
    queues = []
    for b in batches:
        for cls, cs in sorted(by_class.items()):
            fits = [c for c in cs if node_features(c.graph, c.node, b)[1] <= max_macs] or cs[:1]
            queues.append([(b, c) for c in spread(fits, per_class)])
    order = []
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    return order


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_call(fn: Callable[[], object], refresh: Callable[[], None], *, min_runs: int = 5,
              min_time: float = 0.01, max_runs: int = 50, warmup: int = 2) -> float:
    """Median seconds of fn(), refreshing its inputs (untimed) before each call."""
    for _ in range(warmup):
        refresh()
        fn()
    samples: list[float] = []
    while len(samples) < min_runs or (sum(samples) < min_time and len(samples) < max_runs):
        refresh()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def time_node(c: Candidate, batch: int, seed: int = 0) -> float:
    import torch

    d = c.graph.nodes[c.node]
    op = ops.get_op(d["op"])
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = op.torch(d["attrs"], d["in_shapes"], d["shape"]).eval()
    if c.inplace is not None:
        module = op.torch_inplace(module, c.inplace)
    sources = [torch.randn(batch, *s, generator=g) for s in d["in_shapes"]]
    xs = [s.clone() for s in sources]

    def refresh():
        if c.inplace is not None:
            xs[c.inplace].copy_(sources[c.inplace])
        else:
            for x, s in zip(xs, sources):
                x.copy_(s)

    with torch.inference_mode():
        return time_call(lambda: module(*xs), refresh)


PROBE_SPEC = """\
name: probe
input: {channels: 1, size: 1}
stages:
  - name: s
    blocks:
      - {type: flatten, name: flat}
"""


def time_forward_overhead(batch: int, tmp: Path) -> float:
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
        whole = min(time_call(lambda: model(x), lambda: None, min_runs=50) for _ in range(3))
        part = min(time_call(lambda: module(x), lambda: None, min_runs=50) for _ in range(3))
    return max(0.0, whole - part)


def fit(samples: dict[int, list[tuple[str, tuple, float]]], op_of: dict[str, tuple[str, str]]) -> dict[int, BatchModel]:
    """Per batch: a model per cost class, per op (its classes pooled), per kind, and '*' (everything)."""
    out = {}
    for b, rows in samples.items():
        groups: dict[str, list[tuple[tuple, float]]] = {}
        for cls, x, t in rows:
            op, kind = op_of[cls]
            for g in dict.fromkeys((cls, op, kind, "*")):
                groups.setdefault(g, []).append((x, t))
        classes = {}
        for g, pts in groups.items():
            coef, err = fit_class([x for x, _ in pts], [t for _, t in pts])
            classes[g] = ClassModel(tuple(coef), len(pts), round(err, 4))
        out[b] = BatchModel(classes)
    return out


def calibrate(graphs: list[nx.DiGraph], *, batches=(1, 8), threads: int, per_class: int = 12,
              budget_s: float = 150.0, max_macs: float = 3e9,
              progress: Optional[Callable[[int, int, str], None]] = None, tmp: Optional[Path] = None) -> Profile:
    import tempfile

    import torch

    torch.set_num_threads(threads)
    by_class = candidates(graphs)
    op_of = {}
    for cls, cs in by_class.items():
        op = ops.get_op(cs[0].graph.nodes[cs[0].node]["op"])
        op_of[cls] = (op.name, op.kind.value)
    order = plan(by_class, list(batches), per_class, max_macs)
    start = time.perf_counter()
    samples: dict[int, list[tuple[str, tuple, float]]] = {b: [] for b in batches}
    done = 0
    for i, (b, c) in enumerate(order):
        if time.perf_counter() - start > budget_s:
            break
        t = time_node(c, b, seed=i)
        samples[b].append((c.cls, node_features(c.graph, c.node, b), t))
        done += 1
        if progress:
            progress(done, len(order), f"{c.cls} batch {b}")
    models = fit(samples, op_of)
    with tempfile.TemporaryDirectory() as d:
        for b in batches:
            models[b].forward_s = time_forward_overhead(b, Path(tmp or d))
    device = {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version(),
              "torch": torch.__version__, "threads": threads,
              "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "samples": done, "planned": len(order), "seconds": round(time.perf_counter() - start, 1)}
    return Profile(device, models)
