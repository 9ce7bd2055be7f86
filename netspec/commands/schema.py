"""`netspec schema`: the JSON Schema of the spec format, for editors."""
from __future__ import annotations

import argparse
import json

from ..spec import json_schema
from .common import output_file


def add_parser(sub):
    p = sub.add_parser("schema", help="print the JSON Schema of the spec format",
                       description="Print the JSON Schema of netspec specs. Save it and point your editor at it, "
                                   "e.g. with the YAML language server: put\n"
                                   "  # yaml-language-server: $schema=path/to/netspec.schema.json\n"
                                   "on the first line of a spec.",
                       epilog="example:\n  netspec schema > netspec.schema.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write to this file instead of stdout")
    p.add_argument("--force", action="store_true", help="allow --out to replace an existing file")
    return p


def run(args) -> int:
    text = json.dumps(json_schema(), indent=1, sort_keys=True)
    if args.out:
        output_file(args.out, args.force).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0
