"""`netspec list [PATTERN]`: the zoo's names with their family, size, cost and reference (no torch)."""
from __future__ import annotations

import argparse
import json

from ..analysis.costs import total_macs, total_params
from ..api import load
from ..lower import lower
from ..scale import apply_scaling
from ..zoo import index, list_models, zoo_dir
from .common import human, table


def add_parser(sub):
    p = sub.add_parser("list", help="list the zoo's models by name (every command takes a name)",
                       description="The zoo's models, one flat name per variant as torchvision spells it "
                                   "(efficientnet_b3, resnet50, vgg16_bn), with family, parameters, MACs, "
                                   "input resolution and reference. Any command takes these names in place "
                                   "of a spec file; `netspec show NAME` prints one to copy and edit.",
                       epilog="examples:\n  netspec list\n  netspec list 'efficientnet*'\n"
                              "  netspec list '*resnet*' --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pattern", nargs="?", default="*",
                   help="shell pattern on the name, as timm.list_models (default: all)")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.add_argument("--names", action="store_true", help="names only, one a line (no analysis: instant)")
    return p


def describe(name: str) -> dict:
    """One zoo name's row: what `netspec list --json` prints for it."""
    entry = index()[name]
    spec = apply_scaling(load(str(entry.path), variant=entry.variant))
    G = lower(spec, aux=False)
    size = spec.input.size
    return {"name": name, "family": entry.family, "variant": entry.variant,
            "params": total_params(G), "macs": total_macs(G),
            "resolution": size[0] if size[0] == size[1] else list(size),
            "reference": entry.doc}


def run(args) -> int:
    names = list_models(args.pattern)
    if args.names:
        print("\n".join(names))
        return 0
    rows = [describe(n) for n in names]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print(f"no zoo model matches '{args.pattern}' ({len(index())} models in {zoo_dir()}; `netspec list` shows all)")
        return 0
    body = [[r["name"], r["family"], human(r["params"]), human(r["macs"]), str(r["resolution"]),
             r["reference"] if len(r["reference"]) <= 60 else r["reference"][:57] + "..."] for r in rows]
    print(table(body, ["name", "family", "params", "MACs", "res", "reference"], "llrrrl"))
    return 0
