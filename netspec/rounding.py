"""Channel and depth rounding rules of the reference implementations.

Each function reproduces one reference's arithmetic exactly, including its
float behaviour, because a different rounding changes parameter counts.
"""
from __future__ import annotations


def make_divisible(v, divisor: int = 8, min_value=None, round_limit: float = 0.9) -> int:
    """torchvision `_make_divisible` / timm `make_divisible` / TF `round_filters`.

    Round half up to a multiple of `divisor`, never below `min_value`
    (default: `divisor`), and add one `divisor` if rounding lost more than
    `1 - round_limit` (10 % by default). `round_limit=0` disables that guard
    (timm's EfficientNetV2 base).
    """
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return int(new_v)
