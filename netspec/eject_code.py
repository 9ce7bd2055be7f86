"""The expressions an ejected file is written from, and their Python text (no torch).

A module's constructor call is a `Call` whose arguments are literals, `Sym`bols (a name such as
`num_classes`) or nested calls and `Container`s (nn.Sequential / ModuleList / ModuleDict).
`_slots` reduces an expression to its skeleton, so instances of one block type with equal
skeletons share a class and differ only in their slot values (`_values`); `render` writes the
expression back as source, one line when it fits in 88 columns. Every literal goes through
`escape.py_literal`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .escape import is_py_identifier, py_literal


@dataclass(frozen=True)
class Sym:
    """A value written as a name (`num_classes`), not a literal."""
    name: str


@dataclass
class Call:
    """`call(args)`; args are (name, value, default, positional) with value a literal, Sym or Call."""
    call: str
    args: list = field(default_factory=list)


@dataclass
class Container:
    """nn.Sequential / nn.ModuleList / nn.ModuleDict of (key, expression) items."""
    kind: str
    items: list


def _slots(expr, path: tuple, out: list) -> str:
    """The expression's skeleton (literals replaced by slots) and its slots, in order."""
    if isinstance(expr, Call):
        parts = []
        for name, value, default, positional in expr.args:
            if isinstance(value, (Call, Container)):
                parts.append(f"{name}=" + _slots(value, path, out))
            else:
                out.append((path, name, default, positional))
                parts.append(f"{name}=#")
        return f"{expr.call}({', '.join(parts)})"
    return f"{expr.kind}[" + ", ".join(f"{k}:" + _slots(v, path + (k,), out) for k, v in expr.items) + "]"


def _values(expr, out: list) -> None:
    if isinstance(expr, Call):
        for _, value, _, _ in expr.args:
            if isinstance(value, (Call, Container)):
                _values(value, out)
            else:
                out.append(value)
    else:
        for _, v in expr.items:
            _values(v, out)


def literal(value) -> str:
    if isinstance(value, Sym):
        return value.name
    return py_literal(value)


def render(expr, texts: list, indent: int) -> str:
    """Python source of an expression; `texts` gives each slot's text (None: leave the keyword out)."""
    pad = " " * indent
    if isinstance(expr, Call):
        parts = []
        for name, value, default, positional in expr.args:
            if isinstance(value, (Call, Container)):
                text = render(value, texts, indent)
            else:
                text = texts.pop(0)
                if text is None:
                    continue
            parts.append(text if positional else f"{name}={text}")
        one_line = f"{expr.call}({', '.join(parts)})"
        if indent + len(one_line) <= 88 or "\n" in one_line:
            return one_line
        return f"{expr.call}(\n" + "".join(f"{pad}    {p},\n" for p in parts) + f"{pad})"
    inner = pad + "    "
    items = [(k, render(v, texts, indent + 4)) for k, v in expr.items]
    numbered = [k for k, _ in expr.items] == [str(i) for i in range(len(expr.items))]
    if expr.kind == "ModuleDict" or not numbered:
        body = "".join(f"{inner}({k!r}, {t}),\n" for k, t in items)
        if expr.kind == "ModuleDict":
            return "nn.ModuleDict({\n" + "".join(f"{inner}{k!r}: {t},\n" for k, t in items) + pad + "})"
        return f"nn.Sequential(OrderedDict([\n{body}{pad}]))"
    body = "".join(f"{inner}{t},\n" for _, t in items)
    if expr.kind == "ModuleList":
        return f"nn.ModuleList([\n{body}{pad}])"
    return f"nn.Sequential(\n{body}{pad})"


def camel(name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", name)
    out = "".join(w[:1].upper() + w[1:] for w in words if w)
    return out if out and not out[0].isdigit() else "Net" + out


def _identifier(name: str) -> bool:
    return is_py_identifier(name)
