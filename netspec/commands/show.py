"""`netspec show NAME`: a zoo spec as YAML to copy and edit (no torch)."""
from __future__ import annotations

import argparse
import sys

from ..errors import SourceLoc, SpecError, did_you_mean
from ..spec import load_spec
from ..zoo import index, lookup, schema_line, spec_text_for_copy
from .common import output_file
from .expand import expanded, to_yaml


def add_parser(sub):
    p = sub.add_parser("show", help="print a zoo spec as YAML to copy and edit",
                       description="Print a zoo model's spec. A family name (resnet, efficientnet, mobilenet_v2) "
                                   "prints its file as written, comments and `variants:` table included; a "
                                   "variant's name (resnet18, efficientnet_b3) prints that variant resolved "
                                   "(scaled, repeats kept). Either validates as it is; its `$schema` line "
                                   "points at the installed JSON Schema, so an editor completes it anywhere.",
                       epilog="examples:\n  netspec show resnet50 > my_resnet.yaml && netspec build my_resnet.yaml\n"
                              "  netspec show efficientnet -o efficientnet.yaml",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="a zoo name (netspec list)")
    p.add_argument("-o", "--out", help="write to this file instead of stdout")
    p.add_argument("--force", action="store_true", help="allow -o to replace an existing file")
    return p


def spec_text(name: str) -> str:
    entry = lookup(name)
    if entry is None:
        raise SpecError(f"no zoo model named '{name}'", SourceLoc(name),
                        did_you_mean(name, list(index()), "names (netspec list shows them)"))
    if entry.variant is None:
        return spec_text_for_copy(entry)
    data = expanded(load_spec(str(entry.path)), variant=entry.variant, unroll_repeats=False)
    header = (f"{schema_line()}\n# {entry.name}: variant {entry.variant} of the zoo's {entry.family}.yaml, "
              f"resolved by netspec show\n# (`netspec show {entry.family}` prints the family with its comments)\n")
    return to_yaml(data, header)


def run(args) -> int:
    text = spec_text(args.name)
    if args.out:
        output_file(args.out, args.force).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
