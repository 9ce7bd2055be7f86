"""`netspec validate`: check a spec (schema, names, shapes) without importing torch."""
from __future__ import annotations

import argparse

import sys

from ..spec import shadowed_library_blocks
from .common import add_spec_args, load_graph, shape_str


def add_parser(sub):
    p = sub.add_parser("validate", help="check a spec without building it (no torch)",
                       description="Validate a spec: YAML syntax, schema, names, block parameters and shapes. "
                                   "Exit 0 when valid, 2 with located errors otherwise.",
                       epilog="example:\n  netspec validate googlenet",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    return p


def run(args) -> int:
    loaded = load_graph(args)
    G = loaded.graph
    for note in shadowed_library_blocks(loaded.spec):
        print(f"note: {note}", file=sys.stderr)
    out = G.nodes[G.graph["outputs"]["logits"]]["shape"]
    print(f"{args.spec}: ok - {G.graph['name']}, {G.number_of_nodes() - 1} ops, "
          f"input {shape_str(G.graph['input_shape'])} -> output {shape_str(out)}")
    return 0
