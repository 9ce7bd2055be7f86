"""The restricted expression evaluator: what it computes, and what it refuses."""
from __future__ import annotations

import pytest

from netspec.expr import ExprError, evaluate, is_expression, substitute


@pytest.mark.parametrize("text, env, expected", [
    ("$in * 2", {"in": 24}, 48),
    ("$in // 4", {"in": 30}, 7),
    ("make_divisible($in * $t, 8)", {"in": 24, "t": 6}, 144),
    ("make_divisible(32 * 0.75)", {}, 24),
    ("int(round($in * $t))", {"in": 16, "t": 6}, 96),
    ("max(1, $c // 4)", {"c": 3}, 1),
    ("$s == 1 and $i == $o", {"s": 1, "i": 8, "o": 8}, True),
    ("$s == 1 and $i == $o", {"s": 2, "i": 8, "o": 8}, False),
    ("'input' if $down else 'split'", {"down": True}, "input"),
    ("none if $f else $act", {"f": True, "act": "relu"}, None),
    ("$a in ('x', 'y')", {"a": "y"}, True),
    ("[1, $k]", {"k": 7}, [1, 7]),
    ("ceil(25 * 2.2)", {}, 56),  # float arithmetic, as written: scaling uses exact rules instead
    ("-$x ** 2", {"x": 3}, -9),
])
def test_evaluates(text, env, expected):
    assert evaluate(text, env) == expected


def test_single_variable_keeps_its_type():
    assert substitute("$k", {"k": [1, 7]}) == [1, 7]
    assert substitute({"a": "$x", "b": ["$x", 2]}, {"x": 3}) == {"a": 3, "b": [3, 2]}
    assert substitute("relu", {}) == "relu"  # no $: a plain string
    assert not is_expression("relu") and is_expression("$in")


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('echo hi')", "only calls to "),
    ("__import__('os')", "function '__import__' is not allowed"),
    ("$x.__class__", "'Attribute' is not allowed"),
    ("$x[0]", "'Subscript' is not allowed"),
    ("(lambda: 1)()", "only calls to "),
    ("lambda: 1", "'Lambda' is not allowed"),
    ("open('/etc/passwd')", "function 'open' is not allowed"),
    ("9 ** 9 ** 9", "exponent too large"),
    ("10 ** 20", "too large"),
    ("$x / 0", "division by zero"),
    ("$y + 1", "unknown variable '$y'"),
    ("$x +", "cannot parse"),
    ("[c for c in (1, 2)]", "'ListComp' is not allowed"),
])
def test_refuses(text, message):
    with pytest.raises(ExprError) as info:
        evaluate(text, {"x": 2})
    assert message in str(info.value)


def test_unknown_variable_hint():
    with pytest.raises(ExprError) as info:
        evaluate("$expnad * 2", {"expand": 6})
    assert info.value.hint == "did you mean 'expand'?"
