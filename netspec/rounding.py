"""Channel and depth rounding rules of the reference implementations.

Each function reproduces one reference's formula. Scaling (`netspec.scale`)
calls them with exact values: multipliers are read as the decimal the user
wrote (`exact(2.2) == Fraction(11, 5)`), so `ceil_depth(25, 2.2)` is 55 where
the references' float arithmetic (`math.ceil(25 * 2.2)`) gives 56. With plain
ints and floats (`make_divisible($in * $expand, 8)` in block templates) they
behave exactly like the reference code.
"""
from __future__ import annotations

import math
from fractions import Fraction
from numbers import Rational


def exact(x) -> Fraction:
    """The exact value of a number as written: floats through their shortest repr (2.2 -> 11/5)."""
    if isinstance(x, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(x, Rational):
        return Fraction(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"not a finite number: {x}")
        return Fraction(repr(x))
    if isinstance(x, str):
        return Fraction(x.strip())
    raise TypeError(f"not a number: {x!r}")


def _limit(round_limit, v):
    # keep the guard exact when v is exact (0.9 * Fraction would silently become a float)
    return exact(round_limit) if isinstance(v, Fraction) else round_limit


def make_divisible(v, divisor: int = 8, min_value=None, round_limit: float = 0.9) -> int:
    """torchvision `_make_divisible` / timm `make_divisible` / TF `round_filters`.

    Round half up to a multiple of `divisor`, never below `min_value`
    (default: `divisor`), and add one `divisor` if rounding lost more than
    `1 - round_limit` (10 % by default). `round_limit=0` disables that guard
    (timm's EfficientNetV2 base).
    """
    min_value = min_value or divisor
    half = Fraction(divisor, 2) if isinstance(v, Fraction) else divisor / 2
    new_v = max(min_value, int(v + half) // divisor * divisor)
    if new_v < _limit(round_limit, v) * v:
        new_v += divisor
    return int(new_v)


def slim_depth(v, min_depth: int = 8) -> int:
    """TF-slim MobileNet v1 `depth(d) = max(int(d * depth_multiplier), min_depth)`: truncation, not rounding."""
    return max(int(v), min_depth)


def round_half_even(v) -> int:
    """Python's `round` (ties to even), as in `int(round(x))` of the references; exact for Fractions."""
    return int(round(v))


def ceil_depth(repeats: int, multiplier) -> int:
    """TF `round_repeats` / torchvision `adjust_depth`: ceil(n * d), computed exactly."""
    return math.ceil(exact(repeats) * exact(multiplier))


def round_depth(repeats: int, multiplier) -> int:
    """timm `depth_trunc='round'`: max(1, round(n * d)), ties to even, computed exactly."""
    return max(1, round(exact(repeats) * exact(multiplier)))


DEPTH_RULES = {"ceil": ceil_depth, "round": round_depth}


def scale_stage_depth(repeats: list[int], multiplier, rule: str = "ceil") -> list[int]:
    """timm `_scale_stage_depth`: scale a stage's total repeats, then share it among its block entries.

    The scaled total is `rule(sum(repeats), multiplier)`; it is handed out in
    reverse order, each entry getting `max(1, round(r / remaining * remaining_scaled))`
    (ties to even), so the first entry is the least likely to grow. Because
    every entry keeps at least one block the result can exceed the target:
    0.5 x [1, 1, 2] gives [1, 1, 1]. timm computes the shares in floats; here
    they are exact.
    """
    remaining = sum(repeats)
    remaining_scaled = DEPTH_RULES[rule](remaining, multiplier) if remaining else 0
    out = []
    for r in reversed(repeats):
        # an entry written with repeat 0 is switched off, not scaled up to one block
        rs = max(1, round(Fraction(r, remaining) * remaining_scaled)) if r else 0
        out.append(rs)
        remaining -= r
        remaining_scaled -= rs
    return out[::-1]
