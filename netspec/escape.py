"""One escaping function per generated-code target: Python (eject), DOT (render), HTML (reports).

Specs are untrusted: a spec's free strings (its name, `reference`, `doc`, block type names, the
spec file's own path) must never change the meaning of a file netspec writes. Every string that
reaches generated text goes through the function for that target here, and nowhere else:

* Python source - `py_text` for prose inside a docstring or a `#` comment (it cannot close either:
  quotes and backslashes are escaped, and so is every character that is not printable, newlines
  included), `py_literal` for values (`repr` for strings, `float('nan')` for non-finite floats;
  anything else is refused rather than guessed at), `module_key_problem` for the names a spec gives
  to modules (they become attributes: `self.<name>`);
* DOT - `dot_string` for a double-quoted DOT string (Graphviz escapes only `"` and `\\`);
* HTML - `html_text` for text and attribute values (Graphviz HTML-like labels and HTML reports).

Nothing here imports torch: the names of `nn.Module`'s own attributes are listed below, and a test
compares the list with the installed torch.
"""
from __future__ import annotations

import html
import json
import keyword
import math
from typing import Any, Optional

# --------------------------------------------------------------------------- Python

# Attributes of torch.nn.Module and of the containers netspec builds (Sequential, ModuleList,
# ModuleDict), dunders left out (every dunder is refused). A child module under one of these
# names cannot be registered (`add_module` raises "attribute ... already exists") or shadows a
# method the generated code calls (`self.forward`, `self.training`).
MODULE_ATTRIBUTES = frozenset("""
T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
_forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
_forward_pre_hooks_with_kwargs _get_abs_string_index _get_backward_hooks _get_backward_pre_hooks
_get_item_by_idx _get_name _is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks
_load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules _named_members
_non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook _register_state_dict_hook
_replicate_for_data_parallel _save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks
_version _wrapped_call_impl add_module append apply bfloat16 buffers call_super_init children clear
compile cpu cuda double dump_patches eval extend extra_repr float forward get_buffer get_extra_state
get_parameter get_submodule half insert ipu items keys load_state_dict modules mtia named_buffers
named_children named_modules named_parameters parameters pop register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook
register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook
requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train training type
update values xpu zero_grad
""".split())

# Attributes the compiled network (`netspec.backends.pytorch.NetspecModule`), its parts (`Part`) and a
# backbone (`OutputsModule`) have besides nn.Module's (tests/test_security.py checks the list is complete).
NETSPEC_MODULE_ATTRIBUTES = frozenset("""
graph code spec_name input_shape output_names output_nodes inplace fast_path_active
netspec_scope netspec_inputs netspec_outputs netspec_plan
_infer _train _infer_nograd _forward _forward_eval _forward_train _eval_code _train_code
_generate _snapshot _as_built _tree _below _tree_children
""".split())


def module_key_problem(name: str) -> Optional[str]:
    """Why `name` cannot name a module (a spec entry, stage or scope part), or None when it can.

    Module names become Python attributes of the compiled and the ejected module: an identifier
    (or a number, for `features.0`-style paths), not a keyword, not one of nn.Module's own attributes.
    """
    if name.isdecimal() and name.isascii():
        return None
    if not (name.isascii() and name.isidentifier()):
        return "is not a Python identifier (letters, digits and underscores, not starting with a digit) or a number"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name.startswith("__"):
        # dunders, names Python mangles in class bodies (ejected code), and the attributes torch's
        # tools add to nn.Module at run time (torch.compile sets `___needs_generation_tag_patch`)
        return "starts with a double underscore (Python's dunder and private names)"
    if name in MODULE_ATTRIBUTES or name in NETSPEC_MODULE_ATTRIBUTES:
        return "is an attribute of torch.nn.Module (a child module of that name cannot be registered)"
    return None


def is_py_identifier(name: str) -> bool:
    """A plain ASCII Python identifier that is not a keyword (usable as `self.<name>` or a variable)."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def py_text(text: Any) -> str:
    """`text` as prose that is safe inside a triple-quoted docstring *or* a `#` comment.

    Backslashes and both quote characters are escaped (so neither `\"\"\"` nor `'''` can close the
    string, and no backslash can start an escape), and every non-printable character - newlines,
    carriage returns, NUL, line and paragraph separators, lone surrogates - becomes its `\\x..`/
    `\\u....` escape, so the text stays on one line and never ends a comment. A lone surrogate
    (which no UTF-8 file can hold) is written as the text `\\udxxx`.
    """
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\"'":
            out.append("\\" + ch)
        elif "\ud800" <= ch <= "\udfff":  # a lone surrogate: not even a docstring may hold one (no UTF-8)
            out.append(f"\\\\u{ord(ch):04x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def py_float(value: float) -> str:
    """A float as Python source that parses back to the same value (`float('nan')` for NaN)."""
    if math.isnan(value):
        return "float('nan')"
    if math.isinf(value):
        return "float('inf')" if value > 0 else "-float('inf')"
    return repr(float(value))


def py_literal(value: Any) -> str:
    """A value (str, int, float, bool, None, or tuples/lists/dicts of them) as a Python literal.

    Strings go through `repr` (always a closed, escaped literal); any other type is refused
    (TypeError) rather than written through its own `repr`, which could be anything.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        return py_float(value)
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Python literal for a value of type {type(value).__name__}")


# --------------------------------------------------------------------------- DOT and HTML

def dot_string(text: Any) -> str:
    """The inside of a double-quoted DOT string: `\\` and `"` escaped, newlines as DOT's `\\n`."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return s.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n").replace("\0", "")


def html_text(text: Any) -> str:
    """Text for HTML (and Graphviz HTML-like labels): `& < > " '` escaped; NUL removed."""
    return html.escape(str(text), quote=True).replace("\0", "")


# In a <script> element the HTML parser ends the script at `</script` and changes state at
# `<!--` and `<script`, whatever JSON thinks of the text. Writing every `<`, `>` and `&` as a
# \\u escape keeps all three out while the JSON value stays the same; U+2028/U+2029 are
# escaped too, for JavaScript parsers older than ES2019.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                  "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: Any) -> str:
    """`value` as JSON that is safe to place between `<script type="application/json">` tags
    (no `</`, `<!--` or `<script` can occur in it) and parses back to the same value (the HTML report)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_SCRIPT_ESCAPES)
