"""Escaping for the two places spec strings reach an HTML report: HTML text/attributes, and JSON
inside a `<script>` element. Every string from a spec (names, references, paths, labels) that
the report writes goes through one of these; nothing else builds HTML from data.

Kept in one place so that it can join `netspec/escape.py` (the project's escaping functions for
Python / DOT / HTML) unchanged.
"""
from __future__ import annotations

import html
import json
from typing import Any


def html_text(value: Any) -> str:
    """Text or a double- or single-quoted attribute value: `& < > " '` become entities."""
    return html.escape(str(value), quote=True)


# In a <script> element the HTML parser ends the script at `</script` and changes state at
# `<!--` and `<script`, whatever JSON thinks of the text. Writing every `<`, `>` and `&` as a
# \\u escape keeps all three out while the JSON value stays the same; U+2028/U+2029 are
# escaped too, for JavaScript parsers older than ES2019.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                  "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: Any) -> str:
    """`value` as JSON that is safe to place between `<script type="application/json">` tags
    (no `</`, `<!--` or `<script` can occur in it) and parses back to the same value."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_SCRIPT_ESCAPES)
