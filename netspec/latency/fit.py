"""Fitting a cost class: non-negative least squares on relative error, in plain Python (no numpy).

With three features, exact NNLS is cheap: solve the weighted normal equations on every subset of
features and keep the best solution whose coefficients are all >= 0. Relative error (each sample
weighted by 1/t) keeps a 20 µs op as important as a 20 ms one, so the call overhead of small ops
and the throughput of large ones are both fitted.
"""
from __future__ import annotations

import itertools
import statistics


def _solve(A: list[list[float]], b: list[float]) -> list[float] | None:
    """Gaussian elimination with partial pivoting; None when (nearly) singular."""
    n = len(b)
    M = [row[:] + [b[i]] for i, row in enumerate(A)]
    scale = max((abs(v) for row in A for v in row), default=0.0) or 1.0
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        if abs(M[p][c]) <= 1e-12 * scale:
            return None
        M[c], M[p] = M[p], M[c]
        for r in range(c + 1, n):
            f = M[r][c] / M[c][c]
            for k in range(c, n + 1):
                M[r][k] -= f * M[c][k]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (M[r][n] - sum(M[r][k] * x[k] for k in range(r + 1, n))) / M[r][r]
    return x


def fit_class(X: list[tuple[float, ...]], t: list[float]) -> tuple[tuple[float, ...], float]:
    """Coefficients c >= 0 minimising sum(((x.c - t) / t)^2), and the median |relative error|."""
    if not X or len(X) != len(t) or any(v <= 0 for v in t):
        raise ValueError("fit_class needs samples with positive times")
    d = len(X[0])
    # normalise columns so the normal equations are well conditioned (MACs ~1e9, calls ~1)
    norm = [max(abs(x[j]) for x in X) or 1.0 for j in range(d)]
    rows = [[x[j] / norm[j] / ti for j in range(d)] for x, ti in zip(X, t)]   # weighted by 1/t
    target = [1.0] * len(t)
    best, best_loss = None, float("inf")
    for k in range(1, d + 1):
        for cols in itertools.combinations(range(d), k):
            A = [[sum(r[i] * r[j] for r in rows) for j in cols] for i in cols]
            b = [sum(r[i] * y for r, y in zip(rows, target)) for i in cols]
            sol = _solve(A, b)
            if sol is None or any(v < 0 for v in sol):
                continue
            coef = [0.0] * d
            for j, v in zip(cols, sol):
                coef[j] = v
            loss = sum((sum(r[j] * coef[j] for j in range(d)) - 1.0) ** 2 for r in rows)
            if loss < best_loss - 1e-15:
                best, best_loss = coef, loss
    if best is None:   # every subset singular (e.g. all-zero features): a constant at the median time
        best = [0.0] * d
        best[0] = statistics.median(t) / norm[0]
    coef = tuple(c / norm[j] for j, c in enumerate(best))
    err = statistics.median(abs(sum(c * v for c, v in zip(coef, x)) / ti - 1) for x, ti in zip(X, t))
    return coef, err
