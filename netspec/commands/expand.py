"""`netspec expand`: the fully resolved spec - scaled, variant applied, repeats unrolled - as YAML.

The output is itself a spec netspec accepts, and it lowers to the same graph:
same node ids, ops, attributes and shapes. Unrolling mirrors the lowering
exactly: copy k > 0 of a repeated entry gets `stride: 1` when its type has a
stride (only the first repeat keeps it). Entries whose unrolling could change
the graph stay rolled: named ones (their repeats are numbered `name.k`, which
no written name can be), and those whose `repeat`, `when` or `type` needs the
entry's input (`$in`).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

import yaml

from .. import ops
from ..expr import ExprError, is_expression, substitute, variables
from ..lower import global_env
from ..scale import resolve
from ..spec import Spec, load_spec
from .common import add_spec_args, load_graph, output_file


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "expand", help="print the fully resolved spec (scaled, repeats unrolled) as YAML",
        description="Apply a variant / --phi / --res and the spec's scaling policies, unroll every repeat and "
                    "print the result as a spec netspec accepts (it builds to the same graph).",
        epilog="examples:\n  netspec expand efficientnet_b3\n"
               "  netspec expand mobilenet_v2 --set scaling.width=0.5 -o mnv2_050.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p, aux=False)
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.add_argument("--keep-repeats", action="store_true", help="scale only; leave `repeat:` rolled")
    p.add_argument("-o", "--out", help="write to this file instead of stdout")
    p.add_argument("--force", action="store_true", help="allow -o to replace an existing file")
    return p


# --------------------------------------------------------------------------- unrolling

def _constant(value: Any, env: dict) -> Optional[Any]:
    """The value if it does not depend on the entry's input, else None."""
    if not is_expression(value):
        return value
    try:
        return substitute(value, env)
    except ExprError:
        return None  # needs $in (or is wrong: the lowering reports it)


def _has_stride(type_name: str, templates: dict) -> bool:
    if ops.is_op(type_name):
        return "stride" in ops.get_op(type_name).Params.model_fields
    return type_name in templates and "stride" in templates[type_name].params


def _type_first(e: dict) -> dict:
    return {**{k: e[k] for k in ("type", "name") if k in e}, **e}


def _uses_repeat_variables(e: dict, env: dict) -> bool:
    """Does the entry read `$i` / `$n` (the repeat's index and count, unless a var has the name)? Unrolled
    copies would each be repeat 0 of 1, so such an entry stays rolled."""
    names = {v for value in e.values() if isinstance(value, str) for v in variables(value)}
    return bool({"i", "n"} & names - set(env))


def unroll_entries(entries: list[dict], env: dict, templates: dict) -> list[dict]:
    out: list[dict] = []
    for e in map(_type_first, entries):
        repeat = _constant(e.get("repeat", 1), env)
        type_name = _constant(e.get("type"), env)
        when = e.get("when", True)
        rolled = (e.get("name") or repeat is None or type_name is None or not isinstance(repeat, int)
                  or (is_expression(when) and repeat > 1) or _uses_repeat_variables(e, env))
        if rolled:
            out.append(e)
            continue
        if repeat == 1:
            out.append({key: v for key, v in e.items() if key != "repeat"})
            continue
        type_name = ops.ALIASES.get(type_name, type_name)
        for k in range(repeat):
            copy_ = {key: v for key, v in e.items() if key != "repeat"}
            if k > 0 and _has_stride(type_name, templates):
                copy_["stride"] = 1
            out.append(copy_)
    return out


def unroll(data: dict, spec: Spec) -> dict:
    env = global_env(data.get("num_classes", 1000), data.get("vars", {}), spec.locs)
    templates = spec.templates()
    data = dict(data)
    for key in ("stem", "head"):
        if key in data:
            data[key] = unroll_entries(data[key], env, templates)
    data["stages"] = [{**st, "blocks": unroll_entries(st.get("blocks", []), env, templates)}
                      for st in data.get("stages", [])]
    data["aux_heads"] = [{**a, "layers": unroll_entries(a.get("layers", []), env, templates)}
                         for a in data.get("aux_heads", [])]
    if not data["aux_heads"]:
        del data["aux_heads"]
    return data


# --------------------------------------------------------------------------- output

def plain(value: Any) -> Any:
    """Tuples to lists, recursively, so safe_dump and JSON can write the data."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def expanded(spec: Spec, *, variant=None, phi=None, resolution=None, unroll_repeats: bool = True) -> dict:
    """The resolved spec as data."""
    data, _ = resolve(spec, variant=variant, phi=phi, resolution=resolution)
    if unroll_repeats:
        data = unroll(data, spec)
    return plain(data)


def to_yaml(data: dict, header: str = "") -> str:
    # default_flow_style=None writes each entry (a mapping of scalars) on one line, as specs are written
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    return header + text


def run(args) -> int:
    # the lowering's checks first (repeat and graph-size bounds among them): unrolling a repeat of
    # 10**9 would otherwise build a list of 10**9 entries before anything looks at it
    load_graph(args)
    spec = load_spec(args.spec, overrides=args.overrides)
    data = expanded(spec, variant=args.variant, phi=args.phi, resolution=args.res,
                    unroll_repeats=not args.keep_repeats)
    if args.json:
        text = json.dumps(data, indent=2) + "\n"
    else:
        how = " ".join(f"{flag} {value}" for flag, value in
                       (("--variant", args.variant), ("--phi", args.phi), ("--res", args.res)) if value is not None)
        sets = " ".join(f"--set {s}" for s in args.overrides)
        header = f"# expanded by netspec from {args.spec} {how} {sets}".rstrip() + "\n"
        text = to_yaml(data, header)
    if args.out:
        output_file(args.out, args.force).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
