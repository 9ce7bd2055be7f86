"""The restricted expression language used inside specs and block templates.

A string value containing `$name` is an expression: `$out`, `$in * $expand`,
`make_divisible($in * $expand, 8)`, `$stride == 1 and $in == $out`.
It is parsed with `ast.parse(mode="eval")` and evaluated by walking a small
whitelist of node types: numbers, strings, booleans, lists, arithmetic,
comparisons, `and`/`or`/`not`, `a if c else b`, and calls to the functions in
`FUNCTIONS`. No attribute access, subscripts, lambdas or names other than the
given variables are reachable, so a spec can never run code.
"""
from __future__ import annotations

import ast
import difflib
import math
from functools import lru_cache
import operator
import re
from typing import Any, Mapping

from .errors import did_you_mean
from .rounding import make_divisible

VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_PREFIX = "__v_"


class ExprError(ValueError):
    """An expression that cannot be parsed or evaluated; message is user-facing."""

    def __init__(self, message: str, hint: str = "", bare_name: str | None = None):
        super().__init__(message)
        self.hint = hint
        self.bare_name = bare_name  # a name written without `$` (the caller may know it as an entry name)


def _number(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{name}() takes a number, got {_short(x)}")
    return x


def _log(x: Any, base: Any = None) -> float:
    """Natural log, or log to `base` (RegNet: log(w / w0) / log(wm), or log(w / w0, wm))."""
    x = _number("log", x)
    if base is None:
        return math.log(x)
    return math.log(x, _number("log", base))


def _exp(x: Any) -> float:
    x = _number("exp", x)
    if x > math.log(_MAX_MAGNITUDE):  # decided before computing: exp(1e308) would overflow
        raise ValueError(f"exp({x:g}) is larger than {_MAX_MAGNITUDE:.0e}")
    return math.exp(x)


def _sum(values: Any) -> Any:
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"sum() takes a list, got {_short(values)}")
    return sum(values)


def _len(values: Any) -> int:
    if not isinstance(values, (list, tuple, str)):
        raise ValueError(f"len() takes a list or a string, got {_short(values)}")
    return len(values)


def _range(*args: Any) -> list:
    if not 1 <= len(args) <= 2 or any(isinstance(a, bool) or not isinstance(a, int) for a in args):
        raise ValueError("range() takes one or two integers: range(n) is 0 .. n-1, range(a, b) is a .. b-1")
    start, stop = (0, args[0]) if len(args) == 1 else args
    if stop - start > _MAX_LENGTH:  # decided before building the list
        raise ValueError(f"range of {stop - start:,} values is longer than {_MAX_LENGTH:,}")
    return list(range(start, stop))


def _runs(values: Any) -> list:
    """Run-length encoding: [a, a, b] -> [[a, 2], [b, 1]] (RegNet: per-block widths -> stages)."""
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"runs() takes a list, got {_short(values)}")
    out: list = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def _round(number, ndigits=None):
    """round(), with ndigits bounded: round(5, -10**8) computes 10**(10**8) before it answers."""
    if ndigits is not None and isinstance(ndigits, int) and abs(ndigits) > _MAX_NDIGITS:
        raise ValueError(f"round() to {ndigits:,} digits (at most {_MAX_NDIGITS} either way)")
    return round(number, ndigits)


FUNCTIONS = {
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "round": _round,
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "make_divisible": make_divisible,
    # for design spaces (RegNet's widths from w0, wa, wm): each bounded by _check on its result,
    # and exp() before it runs; a domain error (log(0), sqrt(-1)) is a located ExprError
    "log": _log,
    "log2": lambda x: math.log2(_number("log2", x)),
    "log10": lambda x: math.log10(_number("log10", x)),
    "exp": _exp,
    "sqrt": lambda x: math.sqrt(_number("sqrt", x)),
    "sum": _sum,
    "len": _len,
    "range": _range,
    "runs": _runs,
}

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_NAMED_CONSTANTS = {"true": True, "false": False, "True": True, "False": False, "none": None, "None": None}
_MAX_MAGNITUDE = 10**15  # no spec needs bigger numbers; this stops 9**9**9 style blow-ups
_MAX_LENGTH = 10_000     # nor longer strings or lists: 'a' * 10**9 is refused before it is built
_MAX_SOURCE = 1_000      # characters in one expression: Python's parser recurses per operator
_MAX_DEPTH = 50          # nesting levels of one expression's syntax tree
_MAX_NDIGITS = 30        # round(x, n): |n| (a float has 17 significant digits)
# printf-style conversions: the width and precision a `'%5.2f' % $x` may ask for (checked before
# formatting, which would allocate the padded string first); `*` (width from the arguments) is refused
_FORMAT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _depth(tree: ast.AST) -> int:
    """Depth of a syntax tree, without recursion."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def variables(text: str) -> list[str]:
    return VAR.findall(text)


@lru_cache(maxsize=4096)  # the same template expressions are evaluated for every block instance
def _parse(text: str) -> ast.Expression:
    if len(text) > _MAX_SOURCE:
        raise ExprError(f"expression is {len(text):,} characters long (at most {_MAX_SOURCE:,})",
                        "split it with `vars:`; a spec's arithmetic fits on a line")
    source = VAR.sub(lambda m: _PREFIX + m.group(1), text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except (RecursionError, MemoryError):
        tree = None
    except SyntaxError:
        raise ExprError(f"cannot parse expression '{text}'",
                        "expressions use $name variables, numbers, + - * / // % **, comparisons, "
                        "and/or/not, 'a if cond else b' and " + ", ".join(sorted(FUNCTIONS))) from None
    if tree is None or _depth(tree) > _MAX_DEPTH:  # the evaluator recurses once per level
        raise ExprError(f"expression '{_short(text)}' is nested too deeply (at most {_MAX_DEPTH} levels)",
                        "split it with `vars:`")
    return tree


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one expression string against the variables in `env`."""
    tree = _parse(text)
    return _Evaluator(text, env).visit(tree.body)


class _Evaluator:
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.text = text
        self.env = env

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"'{type(node).__name__}' is not allowed in expression '{self.text}'",
                            "only arithmetic, comparisons, conditionals and calls to "
                            + ", ".join(sorted(FUNCTIONS)) + " are allowed")
        return method(node)

    def _check(self, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > _MAX_MAGNITUDE:
            raise ExprError(f"expression '{self.text}' produced a number too large ({value:.3g})")
        if isinstance(value, (str, list, tuple)) and len(value) > _MAX_LENGTH:
            raise ExprError(f"expression '{self.text}' produced a value longer than {_MAX_LENGTH:,}")
        return value

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (int, float, str, bool)) or node.value is None:
            return node.value
        raise ExprError(f"constant {node.value!r} is not allowed in '{self.text}'")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id.startswith(_PREFIX):
            name = node.id[len(_PREFIX):]
            if name not in self.env:
                raise ExprError(f"unknown variable '${name}' in expression '{self.text}'",
                                did_you_mean(name, list(self.env), "variables"))
            return self.env[name]
        if node.id in _NAMED_CONSTANTS:
            return _NAMED_CONSTANTS[node.id]
        raise ExprError(f"bare name '{node.id}' in expression '{self.text}'",
                        bare_name_hint(node.id, self.env), bare_name=node.id)

    def visit_List(self, node: ast.List) -> list:
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ExprError(f"operator not allowed in '{self.text}'")
        if not isinstance(value, (int, float)):  # -'a', -[1], -None
            raise ExprError(f"type error in '{self.text}': unary {'-' if isinstance(node.op, ast.USub) else '+'} "
                            f"needs a number, got {type(value).__name__}")
        return -value if isinstance(node.op, ast.USub) else +value

    def _check_format(self, template: str) -> None:
        for m in _FORMAT.finditer(template):
            width, precision = m.group(1), m.group(2)
            if "*" in (width, precision):
                raise ExprError(f"'*' widths are not allowed in '{self.text}'", "write the width as a number")
            for n in (width, precision):
                if n is not None and (len(n) > 6 or int(n) > _MAX_LENGTH):
                    raise ExprError(f"format width {n} in '{self.text}' is larger than {_MAX_LENGTH:,}")

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExprError(f"operator not allowed in '{self.text}'")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
            raise ExprError(f"exponent too large in '{self.text}'")
        if isinstance(node.op, ast.Mod) and isinstance(left, str):  # printf-style: check widths first
            self._check_format(left)
        if isinstance(node.op, ast.Mult):  # sequence repetition: check the size before building it
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > _MAX_LENGTH:
                    raise ExprError(f"expression '{self.text}' would produce a value longer than {_MAX_LENGTH:,}")
        try:
            return self._check(op(left, right))
        except ZeroDivisionError:
            raise ExprError(f"division by zero in '{self.text}'") from None
        except (TypeError, OverflowError) as exc:
            raise ExprError(f"type error in '{self.text}': {exc}") from None

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            value = True
            for v in node.values:
                value = self.visit(v)
                if not value:
                    return value
            return value
        value = False
        for v in node.values:
            value = self.visit(v)
            if value:
                return value
        return value

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op_node, comp in zip(node.ops, node.comparators):
            op = _CMPOPS.get(type(op_node))
            if op is None:
                raise ExprError(f"comparison not allowed in '{self.text}'")
            right = self.visit(comp)
            try:
                if not op(left, right):
                    return False
            except TypeError as exc:
                raise ExprError(f"type error in '{self.text}': {exc}") from None
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name):
            raise ExprError(f"only calls to {', '.join(sorted(FUNCTIONS))} are allowed in '{self.text}'")
        if node.func.id not in FUNCTIONS:
            name = node.func.id
            raise ExprError(f"function '{name}' is not allowed in '{self.text}'",
                            did_you_mean(name, list(FUNCTIONS), "functions"))
        if any(k.arg is None for k in node.keywords):  # `**$a` would be dropped silently
            raise ExprError(f"'**' arguments are not allowed in '{self.text}'", "pass each argument by name")
        args = [self.visit(a) for a in node.args]
        kwargs = {k.arg: self.visit(k.value) for k in node.keywords}
        try:
            return self._check(FUNCTIONS[node.func.id](*args, **kwargs))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise ExprError(f"bad call in '{self.text}': {exc}") from None


def bare_name_hint(name: str, variables: Mapping[str, Any], entries: Any = ()) -> str:
    """What a name written without `$` inside an expression should have been: a variable (`$c2`),
    or an entry name, which inside an expression is a quoted string (`'c2'`)."""
    entries = [e for e in entries if e != "prev"]
    if name in entries and name in variables:
        return f"'{name}' is both an entry name and a variable here: write '{name}' for the entry, ${name} for the variable"
    if name in entries:
        return f"'{name}' is an entry name: inside an expression write it as a quoted string, '{name}'"
    if name in variables:
        return f"'{name}' is a variable: variables are written with a dollar sign, ${name}"
    close = difflib.get_close_matches(name, [*entries, *variables], n=1, cutoff=0.6)
    if close:
        spelled = f"'{close[0]}' (an entry name)" if close[0] in entries else f"${close[0]} (a variable)"
        return f"did you mean {spelled}? Variables are written $name, entry names as quoted strings"
    return "variables are written with a dollar sign ($name), entry names as quoted strings ('name')"


LIST_BUILDER = frozenset({"for", "in", "value"})


def is_list_builder(value: Any) -> bool:
    """`{for: j, in: "range($depth)", value: "$w0 + $j * $wa"}`: a list written as data."""
    return isinstance(value, dict) and set(value) == LIST_BUILDER


def _holds_list_builder(value: Any) -> bool:
    todo = [value]
    while todo:
        v = todo.pop()
        if is_list_builder(v):
            return True
        if isinstance(v, dict):
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return False


def build_list(spec: dict, env: Mapping[str, Any]) -> list:
    """The list `[value for <for> in <in>]`, each value evaluated with the loop variable bound (as
    `$<for>`). Bounded: the `in` list has at most _MAX_LENGTH items, each value one bounded expression."""
    if _holds_list_builder(spec["in"]) or _holds_list_builder(spec["value"]):
        raise ExprError("list builders do not nest (the work would multiply)",
                        "build the inner list as a variable of its own first")
    name = spec["for"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ExprError(f"list builder: `for` must be a variable name, got {_short(name)}",
                        "for example {for: j, in: 'range($depth)', value: '$w0 + $j * $wa'}")
    items = evaluate(spec["in"], env) if isinstance(spec["in"], str) else substitute(spec["in"], env)
    if not isinstance(items, list):
        raise ExprError(f"list builder: `in` must give a list, got {_short(items)}", "for example in: range($depth)")
    if len(items) > _MAX_LENGTH:
        raise ExprError(f"list builder: `in` has {len(items):,} items (at most {_MAX_LENGTH:,})")
    return [substitute(spec["value"], {**env, name: item}) for item in items]


def substitute(value: Any, env: Mapping[str, Any]) -> Any:
    """Evaluate every expression inside a (nested) value.

    A string that is exactly one `$name` keeps the variable's type (a list stays a list). A mapping
    with exactly the keys `for`, `in` and `value` builds a list (`build_list`).
    """
    if is_expression(value):
        return evaluate(value, env)
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if is_list_builder(value):
        return build_list(value, env)
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value
