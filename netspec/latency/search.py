"""Compound scaling under a latency budget: (alpha, beta, gamma) on a grid, judged by predicted latency.

EfficientNet (Tan & Le 2019, eq. 2) maximises accuracy subject to a resource bound; MnasNet (Tan
et al. 2019, eq. 2) folds measured latency into the reward, ACC(m) x [LAT(m) / T]^w with w = -0.07
on both sides of the target T (its soft constraint). Without training, the accuracy is a proxy:
ln(MACs), since accuracy grows roughly linearly in log FLOPs along EfficientNet's own family
(B0 -> B7). So:

* `efficientnet`: the largest ln(MACs) whose predicted latency is within the budget (hard bound);
* `mnasnet`: the largest ln(MACs) x (LAT / T)^-0.07 (soft: may land a little over the budget).

Latency grows with each coefficient (depth, width and resolution only round up), so for each
(beta, gamma) the search walks alpha up from 1 until the prediction passes the bound, and stops a
row of gamma (and the whole beta) once alpha = 1 is already over: it evaluates the feasible region's
boundary, not the cube. Every point evaluated is a scaled, lowered graph and a prediction (no torch);
The MACs formula bounds the walk as well (`FORMULA_SLACK`), and `MAX_EVALUATIONS` the work. Ties break by fewer params, then smaller coefficients, so the
result is deterministic for a given profile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

from ..analysis import costs
from ..errors import SourceLoc, SpecError
from ..lower import lower
from ..scale import apply_scaling, spec_data
from ..spec import Spec, spec_from_data
from .predict import predict
from .profile import Profile

OBJECTIVES = ("efficientnet", "mnasnet")
MNASNET_W = -0.07
MAX_EVALUATIONS = 1500     # scaled graphs lowered and predicted (EfficientNet-B0: about 0.1 s each)
MAX_COEFFICIENT = 4        # alpha, beta, gamma each at most this (the grid's edge)
MNASNET_REACH = 2.0        # the soft objective also looks at points up to this x the budget
FORMULA_SLACK = 3.0        # walk no further than alpha*beta^2*gamma^2 = 3 x (budget / base latency)


@dataclass
class Candidate:
    alpha: Fraction
    beta: Fraction
    gamma: Fraction
    resolution: int
    params: int
    macs: int
    latency_s: float
    score: float = 0.0
    within_budget: bool = True

    @property
    def label(self) -> str:
        return "a={} b={} g={}".format(*(f"{float(x):.3f}".rstrip("0").rstrip(".") for x in
                                        (self.alpha, self.beta, self.gamma)))

    def to_dict(self) -> dict:
        return {"alpha": float(self.alpha), "beta": float(self.beta), "gamma": float(self.gamma),
                "resolution": self.resolution, "params": self.params, "macs": self.macs,
                "predicted_ms": self.latency_s * 1e3, "score": self.score, "within_budget": self.within_budget}


def scaled_spec(base: Spec, a: Fraction, b: Fraction, g: Fraction) -> Spec:
    """The base at phi = 1 with these coefficients, scaled by the spec's own width/depth rounding rules."""
    data = spec_data(base)
    data["scaling"] = {**data.get("scaling", {}),
                       "compound": {"phi": 1, "alpha": float(a), "beta": float(b), "gamma": float(g)}}
    return apply_scaling(spec_from_data(data, base.locs))


def score(c: Candidate, budget_s: float, objective: str) -> float:
    acc = math.log(max(c.macs, 2))
    if objective == "efficientnet":
        return acc if c.latency_s <= budget_s else -math.inf
    return acc * (c.latency_s / budget_s) ** MNASNET_W


def search(base: Spec, profile: Profile, *, budget_s: float, step: Fraction, objective: str = "efficientnet",
           batch: int = 1, progress: Optional[Callable[[int], None]] = None) -> tuple[Candidate, list[Candidate]]:
    """The base network and every evaluated grid point, best first (by the objective)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
    if not (budget_s > 0 and math.isfinite(budget_s)) or step <= 0:
        raise ValueError("budget and step must be positive")
    reach = budget_s * (MNASNET_REACH if objective == "mnasnet" else 1.0)
    seen: dict[tuple, Candidate] = {}

    def evaluate(a: Fraction, b: Fraction, g: Fraction) -> Candidate:
        key = (a, b, g)
        if key not in seen:
            if len(seen) >= MAX_EVALUATIONS:
                raise SpecError(f"the latency-budget search would evaluate more than {MAX_EVALUATIONS:,} grid points",
                                SourceLoc("--latency-budget"), "use a coarser --grid or a smaller budget")
            G = lower(scaled_spec(base, a, b, g))
            lat = predict(G, profile, batch).network
            seen[key] = Candidate(a, b, g, G.graph["input_shape"][-1], costs.total_params(G),
                                  costs.total_macs(G), lat, within_budget=lat <= budget_s)
            if progress:
                progress(len(seen))
        return seen[key]

    one = Fraction(1)
    grid = [one + k * step for k in range(int((MAX_COEFFICIENT - 1) / step) + 1)]
    base_point = evaluate(one, one, one)
    # a coefficient the spec cannot scale (no depth policy, say) never moves the latency: the MACs
    # formula alpha * beta^2 * gamma^2 bounds the walk too, at a generous multiple of the budget
    bound = FORMULA_SLACK * max(1.0, reach / base_point.latency_s)
    for b in grid:
        if b * b > bound or evaluate(one, b, one).latency_s > reach:
            break
        for g in grid:
            if b * b * g * g > bound or evaluate(one, b, g).latency_s > reach:
                break
            for a in grid[1:]:
                if a * b * b * g * g > bound or evaluate(a, b, g).latency_s > reach:
                    break
    found = list(seen.values())
    for c in found:
        c.score = score(c, budget_s, objective)
    found.sort(key=lambda c: (-c.score, c.params, c.alpha, c.beta, c.gamma))
    return base_point, found


def measure_latency(base: Spec, c: Candidate, profile: Profile, *, batch: int = 1, rounds: int = 10) -> float:
    """Seconds of the candidate's compiled no-grad forward at the profile's threads and clock, the fastest
    of `rounds` (what calibration records: time other processes take only ever adds) (torch)."""
    import torch

    from ..api import compile
    from .calibrate import CLOCKS

    G = lower(scaled_spec(base, c.alpha, c.beta, c.gamma))
    now = CLOCKS.get(profile.device.get("clock", "wall"), CLOCKS["wall"])
    previous = torch.get_num_threads()
    torch.set_num_threads(profile.threads or previous)
    try:
        model = compile(G, seed=0).eval()
        x = torch.randn(batch, *G.graph["input_shape"], generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            model(x)
            ts = []
            for _ in range(rounds):
                t0 = now()
                model(x)
                ts.append(now() - t0)
    finally:
        torch.set_num_threads(previous)
    return min(ts)
