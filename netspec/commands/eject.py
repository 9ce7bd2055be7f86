"""`netspec eject`: write the network as one standalone PyTorch file (needs only torch).

The file's module tree and forward order are the compiled module's, so `state_dict()` keys match
(`load_state_dict(strict=True)` works both ways) and outputs agree in eval and train mode. netspec
never runs the file; see `netspec.eject` for how it is written.
"""
from __future__ import annotations

import argparse
import re

from .. import __version__
from ..analysis import costs
from ..eject import eject
from .common import add_spec_args, load_graph, output_file


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eject", help="write the network as one standalone PyTorch source file",
        description="Write one readable Python file that needs only torch: an nn.Module class per block type, "
                    "a top-level class named after the spec and build_model(num_classes=...). Its state_dict() "
                    "keys are those of the compiled module (netspec build), so weights move with strict=True.",
        epilog="examples:\n  netspec eject mobilenet_v2 -o mobilenet_v2.py\n"
               "  netspec eject efficientnet_b0 -o effnet_b0.py --force",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    p.add_argument("-o", "--out", required=True, help="the .py file to write")
    p.add_argument("--force", action="store_true", help="allow -o to replace an existing file")
    return p


def run(args) -> int:
    path = output_file(args.out, args.force)  # refuse before doing any work
    loaded = load_graph(args)
    G = loaded.graph
    text = eject(G, version=__version__, source=args.spec + (f" --variant {args.variant}" if args.variant else ""))
    path.write_text(text, encoding="utf-8")
    classes = re.findall(r"^class (\w+)\(nn\.Module\)", text, flags=re.M)
    print(f"{G.graph['name']} -> {path}: {len(text.splitlines())} lines, {len(classes)} classes "
          f"({', '.join(classes)}), {costs.total_params(G, include_aux=True):,} parameters")
    print(f"    from {path.stem} import build_model; model = build_model()   # needs only torch")
    return 0
