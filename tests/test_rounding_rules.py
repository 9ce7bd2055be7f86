"""Rounding rules of netspec.rounding against hand-computed values, float traps included."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest

from netspec.rounding import (ceil_depth, exact, make_divisible, round_depth, round_half_even, scale_stage_depth,
                              slim_depth)


def test_exact_reads_the_decimal_that_was_written():
    assert exact(2.2) == Fraction(11, 5)          # not 2.20000000000000017763568394002504646778106689453125
    assert exact(0.58) == Fraction(58, 100)
    assert exact("1.15") == Fraction(115, 100)
    assert exact(7) == 7
    with pytest.raises(TypeError):
        exact(True)
    with pytest.raises(ValueError):
        exact(float("inf"))


@pytest.mark.parametrize("v, kwargs, expected", [
    # 32 * 1.1 = 35.2: int(35.2 + 4) = 39, 39 // 8 * 8 = 32; 32 >= 0.9 * 35.2 = 31.68 -> 32
    (Fraction(352, 10), {}, 32),
    # 1280 * 1.1 = 1408: int(1412) // 8 * 8 = 1408
    (Fraction(1408), {}, 1408),
    # 16 * 0.35 = 5.6: int(9.6) // 8 * 8 = 8 = min_value (default divisor)
    (Fraction(56, 10), {}, 8),
    # 10 % guard: 11 -> int(15) // 8 * 8 = 8, 8 < 0.9 * 11 = 9.9 -> 8 + 8 = 16
    (11, {}, 16),
    # ... switched off with round_limit 0 (timm EfficientNetV2 base)
    (11, {"round_limit": 0.0}, 8),
    # min_value: 3 would round to 0, clamped to 16
    (3, {"min_value": 16}, 16),
    # divisor 4: 13 -> int(15) // 4 * 4 = 12, 12 >= 11.7
    (13, {"divisor": 4}, 12),
    # half rounds up: 20 -> int(24) // 8 * 8 = 24
    (20, {}, 24),
])
def test_make_divisible(v, kwargs, expected):
    assert make_divisible(v, **kwargs) == expected
    assert make_divisible(float(v), **kwargs) == expected  # the same for floats that are exact


def test_make_divisible_float_trap():
    # 200 * 0.58 is 116 exactly (-> int(120) // 8 * 8 = 120) but 115.99999999999999 in floats (-> 112)
    assert 200 * 0.58 < 116
    assert make_divisible(200 * 0.58) == 112
    assert make_divisible(exact(200) * exact(0.58)) == 120
    # the guard is compared exactly too: 0.9 * 116 = 104.4 < 112 either way, so no bump
    assert make_divisible(Fraction(116), round_limit=0.9) == 120


def test_slim_depth_truncates():
    # TF-slim max(int(d * alpha), 8): 0.75 * 1024 = 768; 0.25 * 32 = 8; 0.25 * 24 = 6 -> 8
    assert slim_depth(exact(1024) * exact(0.75)) == 768
    assert slim_depth(exact(32) * exact(0.25)) == 8
    assert slim_depth(exact(24) * exact(0.25)) == 8
    assert slim_depth(Fraction(99, 10)) == 9          # truncation, not rounding
    assert slim_depth(3, min_depth=4) == 4
    # float trap: 100 * 0.29 = 28.999999999999996 truncates to 28; the decimal value is 29
    assert int(100 * 0.29) == 28
    assert slim_depth(exact(100) * exact(0.29)) == 29


def test_round_half_even():
    assert round_half_even(Fraction(5, 2)) == 2
    assert round_half_even(Fraction(7, 2)) == 4
    assert round_half_even(Fraction(27, 10)) == 3


def test_ceil_depth_is_exact():
    assert math.ceil(25 * 2.2) == 56               # the float trap (25 * 2.2 == 55.00000000000001)
    assert ceil_depth(25, 2.2) == 55
    assert ceil_depth(3, 1.1) == 4                 # 3.3 -> 4
    assert ceil_depth(4, 3.1) == 13                # 12.4 -> 13 (B7 stage 6)
    assert ceil_depth(2, 1.0) == 2


def test_round_depth_ties_to_even_and_keeps_one():
    assert round_depth(5, 0.5) == 2                # round(2.5) = 2
    assert round_depth(3, 0.5) == 2                # round(1.5) = 2
    assert round_depth(1, 0.4) == 1                # round(0.4) = 0 -> at least 1
    assert round_depth(4, 3.1) == 12               # 12.4 -> 12 (timm 'round' B7 stage 6)


@pytest.mark.parametrize("d, expected", [
    # declarative.md §2.3, timm _scale_stage_depth(['a','b','c'], [1, 1, 2], d, 'ceil'):
    # 0.5: target ceil(4 * 0.5) = 2; reverse: c = max(1, round(2/4 * 2)) = 1, b = max(1, round(1/2 * 1)) = 1
    #      (round(0.5) = 0), a = max(1, round(1/1 * 0)) = 1 -> 3 blocks, over the target
    (0.5, [1, 1, 1]),
    # 1.2: target ceil(4.8) = 5; c = round(2/4 * 5) = round(2.5) = 2, b = round(1/2 * 3) = round(1.5) = 2, a = 1
    (1.2, [1, 2, 2]),
    # 1.5: target 6; c = 3, b = round(1/2 * 3) = 2, a = 1
    (1.5, [1, 2, 3]),
    # 2.0: target 8; c = 4, b = 2, a = 2
    (2.0, [2, 2, 4]),
])
def test_scale_stage_depth_matches_timm(d, expected):
    assert scale_stage_depth([1, 1, 2], d, "ceil") == expected


def test_scale_stage_depth_single_entry_and_round_rule():
    assert scale_stage_depth([25], 2.2) == [55]
    assert scale_stage_depth([4], 3.1, "round") == [12]
    assert scale_stage_depth([2, 3], 1.0) == [2, 3]
    assert scale_stage_depth([0, 2], 2.0) == [0, 4]   # an entry switched off stays off
