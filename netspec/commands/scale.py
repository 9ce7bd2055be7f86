"""`netspec scale`: the family table of a spec's variants, and the compound-scaling grid search.

Everything is measured on the scaled graph by the analyser (no torch), except
`--bench`, which compiles each candidate and times it.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Optional

from ..analysis import costs
from ..errors import SourceLoc, SpecError
from ..lower import lower
from ..rounding import exact
from ..scale import resolve, spec_data
from ..spec import Spec, load_spec, spec_from_data
from .common import bounded_float, human, phi_value, positive_int, table
from .latency import add_budget_args, run_budget_search


def grid_step(text: str) -> str:
    """--grid: a finite step from 0.001 to 1, checked before it becomes an exact fraction
    (Fraction('1e-30000000') builds a 30-million-digit denominator)."""
    bounded_float(0.001, 1)(text)
    if len(text) > 32:
        raise argparse.ArgumentTypeError(f"must be a short number such as 0.05, got {len(text)} characters")
    return text


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "scale", help="family table of a spec's variants; compound-scaling grid search",
        description="Print every variant of a spec (width, depth, resolution, params, MACs and MACs relative to "
                    "the base network), or with --search run the EfficientNet paper's step 1 on the analyser: "
                    "enumerate (alpha, beta, gamma) >= 1 on a grid and keep those whose scaled graph has MACs "
                    "within --tolerance of --target times the base.",
        epilog="examples:\n  netspec scale efficientnet\n"
               "  netspec scale efficientnet --res 224 --phis 1,2,3\n"
               "  netspec scale efficientnet --search --target 2 --grid 0.05",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="path of the YAML spec")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value before scaling (repeatable)")
    p.add_argument("--variant", help="base for --search (default: the spec as written)")
    p.add_argument("--res", type=positive_int, help="evaluate every row at this input size")
    p.add_argument("--phis", help="add compound-scaling rows for these phi values, e.g. 1,2,3")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    s = p.add_argument_group("search")
    s.add_argument("--search", action="store_true", help="grid search for (alpha, beta, gamma)")
    s.add_argument("--target", type=bounded_float(1, 1000), default=2.0, help="MACs ratio to reach (default 2.0)")
    s.add_argument("--grid", type=grid_step, default="0.05", help="grid step (default 0.05)")
    s.add_argument("--tolerance", type=bounded_float(0, 1, low_open=True), default=0.05,
                   help="relative tolerance on the measured MACs ratio (default 0.05)")
    s.add_argument("--top", type=positive_int, default=20, help="candidates to list (default 20)")
    s.add_argument("--bench", action="store_true", help="also time each listed candidate (imports torch)")
    add_budget_args(s)
    return p


# --------------------------------------------------------------------------- measuring

@dataclass
class Row:
    name: str
    width: str
    depth: str
    resolution: int
    params: int
    macs: int
    ratio: float = 1.0
    phi: Optional[float] = None
    formula: Optional[float] = None   # search: alpha * beta^2 * gamma^2, beside the measured ratio
    latency_ms: Optional[float] = None
    coefficients: Optional[tuple] = None  # search: the exact (alpha, beta, gamma) of the row


def measure(spec: Spec, name: str, **how) -> tuple[Row, Spec]:
    data, plan = resolve(spec, **how)
    scaled = spec_from_data(data, spec.locs)
    G = lower(scaled)
    return Row(name, _fmt(plan.width), plan.depth_label, plan.resolution[0], costs.total_params(G),
               costs.total_macs(G), phi=plan.phi), scaled


def _fmt(x: Fraction) -> str:
    return f"{float(x):.3f}".rstrip("0").rstrip(".")


def family(spec: Spec, *, resolution: Optional[int] = None, phis: list[float] = ()) -> list[Row]:
    """The base network, every variant and the requested compound-scaling rows, with MACs relative to the base."""
    base, scaled = measure(spec, "(base)", resolution=resolution)
    check_work(1 + len(spec.variants) + len(phis), lower(scaled).number_of_nodes(),
               "--phis" if phis else "scale", "list fewer --phis values, or fewer variants in the spec")
    rows = [base]
    for name in spec.variants:
        rows.append(measure(spec, name, variant=name, resolution=resolution)[0])
    for phi in phis:
        rows.append(measure(spec, f"phi={phi:g}", phi=phi, resolution=resolution)[0])
    for r in rows:
        r.ratio = r.macs / base.macs
    return rows


# --------------------------------------------------------------------------- search

def grid_values(step: Fraction, upper: float) -> list[Fraction]:
    out, v = [], Fraction(1)
    while v <= Fraction(upper) + Fraction(1, 10**9):
        out.append(v)
        v += step
    return out


def compound_candidates(target: float, step: Fraction, tolerance: float) -> list[tuple[Fraction, Fraction, Fraction]]:
    """Grid points (alpha, beta, gamma) >= 1 whose alpha*beta^2*gamma^2 is within twice the tolerance of the target.

    The wider window is only a prefilter: the search keeps the points whose
    *measured* ratio is within the tolerance, and rounding moves it from the formula.
    """
    t = exact(target)
    window = 2 * exact(tolerance)
    top = float(t * (1 + window))
    points = ((top - 1) / float(step) + 1) * ((math.sqrt(top) - 1) / float(step) + 1) ** 2
    if points > MAX_GRID:
        raise SpecError(f"the (alpha, beta, gamma) grid has about {points:,.0f} points (at most {MAX_GRID:,})",
                        SourceLoc("--search"), "use a coarser --grid or a smaller --target")
    alphas = grid_values(step, top)
    betas = grid_values(step, math.sqrt(top))
    out = []
    for a in alphas:
        for b in betas:
            for g in betas:
                if abs(a * b * b * g * g - t) <= window * t:
                    out.append((a, b, g))
    return out


MAX_GRID = 200_000      # grid points tried against the formula (cheap)
MAX_CANDIDATES = 2000  # each is a scaled, lowered graph: about a minute for 2,000 EfficientNet-B0s
MAX_WORK = 400_000     # networks x ops lowered by one command: about 40 s (1,600 EfficientNet-B0s of 250 ops)


def check_work(networks: int, ops: int, option: str, hint: str) -> None:
    """The total lowering work of a table or a search, before any of it is done."""
    if networks * ops > MAX_WORK:
        raise SpecError(f"{option} would lower {networks:,} networks of about {ops:,} ops each "
                        f"({networks * ops:,} op lowerings, at most {MAX_WORK:,})", SourceLoc(option), hint)


def search(spec: Spec, *, target: float, step: Fraction, tolerance: float) -> tuple[Row, list[Row]]:
    """Measure every prefiltered grid point at phi = 1 on the base spec; keep those within the tolerance."""
    base, base_spec = measure(spec, "(base)")
    found = []
    candidates = compound_candidates(target, step, tolerance)
    if len(candidates) > MAX_CANDIDATES:
        raise SpecError(f"--search would measure {len(candidates):,} grid points (at most {MAX_CANDIDATES:,})",
                        SourceLoc("--search"), "use a coarser --grid, a smaller --target or a tighter --tolerance")
    # depth grows with alpha (at most the target): the candidates' ops, not only their number, bound the work
    check_work(len(candidates), math.ceil(lower(base_spec).number_of_nodes() * max([a for a, _, _ in candidates] or [1])),
               "--search", "use a coarser --grid, a smaller --target or a tighter --tolerance")
    for k, (a, b, g) in enumerate(candidates, 1):
        if sys.stderr.isatty() or k % 50 == 0:
            print(f"\rmeasured {k}/{len(candidates)} grid points", end="", file=sys.stderr, flush=True)
        data = spec_data(base_spec)
        data["scaling"] = {"compound": {"phi": 1, "alpha": float(a), "beta": float(b), "gamma": float(g)}}
        row, _ = measure(spec_from_data(data, base_spec.locs), f"a={_fmt(a)} b={_fmt(b)} g={_fmt(g)}")
        row.ratio = row.macs / base.macs
        row.formula = float(a * b * b * g * g)
        row.coefficients = (a, b, g)
        if abs(row.ratio - target) <= tolerance * target:
            found.append(row)
    if candidates:
        print(file=sys.stderr)
    found.sort(key=lambda r: (abs(r.ratio - target), r.params))
    return base, found


def bench(spec: Spec, row: Row, runs: int = 5) -> float:
    """Median CPU latency (ms, batch 1) of the candidate: compiles the module, so imports torch."""
    import torch

    from ..api import compile

    a, b, g = (float(x) for x in row.coefficients)  # exact, not the rounded label
    data = spec_data(spec)
    data["scaling"] = {"compound": {"phi": 1, "alpha": a, "beta": b, "gamma": g}}
    _, scaled = measure(spec_from_data(data, spec.locs), row.name)
    G = lower(scaled)
    model = compile(G).eval()
    x = torch.zeros(1, *G.graph["input_shape"])
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(runs):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000)
    return sorted(times)[len(times) // 2]


# --------------------------------------------------------------------------- output

def render(rows: list[Row], *, search_mode: bool = False) -> str:
    if search_mode:
        header = ["alpha, beta, gamma", "a*b^2*g^2", "resolution", "params", "MACs", "MACs ratio"]
        body = [[r.name, f"{r.formula:.3f}", str(r.resolution), f"{r.params:,}", human(r.macs), f"{r.ratio:.3f}"]
                for r in rows]
        if any(r.latency_ms is not None for r in rows):
            header.append("latency ms")
            for line, r in zip(body, rows):
                line.append(f"{r.latency_ms:.1f}" if r.latency_ms is not None else "")
        return table(body, header, "lrrrrrr"[:len(header)])
    header = ["variant", "width", "depth", "resolution", "params", "MACs", "MACs ratio", "log2 ratio"]
    body = [[r.name, r.width, r.depth, str(r.resolution), f"{r.params:,}", f"{r.macs:,}", f"{r.ratio:.3f}",
             f"{math.log2(r.ratio):.2f}"] for r in rows]
    return table(body, header, "lllrrrrr")


def _phis(text: Optional[str]) -> list[float]:
    if not text:
        return []
    try:
        return [phi_value(x) for x in text.split(",") if x.strip()]
    except (ValueError, argparse.ArgumentTypeError):
        raise SpecError(f"--phis expects numbers from 0 to 16 separated by commas, got '{text}'",
                        SourceLoc("--phis"), "for example --phis 1,2,3") from None


def run(args) -> int:
    spec = load_spec(args.spec, overrides=args.overrides)
    if args.latency_budget is not None:
        return run_budget_search(args, spec)
    if args.search:
        try:
            step = exact(args.grid)
        except (ValueError, ZeroDivisionError):
            step = Fraction(0)
        if step <= 0 or args.target < 1 or args.tolerance <= 0:
            raise SpecError("--search needs --grid > 0, --target >= 1 and --tolerance > 0", SourceLoc("--search"),
                            "for example --target 2 --grid 0.05")
        # the base network, resolved once: candidates and --bench both scale this
        data, _ = resolve(spec, variant=args.variant, resolution=args.res)
        spec = spec_from_data(data, spec.locs)
        base, rows = search(spec, target=args.target, step=step, tolerance=args.tolerance)
        rows = rows[:args.top]
        if args.bench:
            for r in rows:
                r.latency_ms = bench(spec, r)
        if args.json:
            print(json.dumps({"base": asdict(base), "candidates": [asdict(r) for r in rows]}, indent=2))
        else:
            print(f"{spec.name}: base {base.params:,} params, {human(base.macs)} MACs at {base.resolution}; "
                  f"target MACs ratio {args.target:g} ± {args.tolerance:.0%}, grid {args.grid}, phi = 1")
            print(render(rows, search_mode=True) if rows else "no grid point is within the tolerance")
        return 0
    rows = family(spec, resolution=args.res, phis=_phis(args.phis))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(render(rows))
    return 0
