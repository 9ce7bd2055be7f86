"""`netspec render`: a Graphviz diagram of a spec at network / stage / block / op level."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import render as R
from .common import add_spec_args, load_graph


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "render", help="draw a spec as a Graphviz diagram (DOT, SVG, PNG, PDF)",
        description="Draw the lowered network with Graphviz. Without -o the DOT source is printed; "
                    "-o FILE.svg/.png/.pdf runs the Graphviz `dot` program, -o FILE.dot does not need it.",
        epilog="examples:\n  netspec render mobilenet_v2 -o mnv2.svg\n"
               "  netspec render efficientnet_b7 --level stage -o b7.png\n"
               "  netspec render mobilenet_v2 --level block --expand stages.3.blocks.1 -o x.svg\n"
               "  netspec render lenet5 --level op --annotate shapes,params,macs",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    p.add_argument("-o", "--out", help="output file: .svg, .png, .pdf (need Graphviz `dot`) or .dot")
    p.add_argument("--force", action="store_true", help="allow -o to replace an existing file")
    p.add_argument("--level", default="block", choices=R.LEVELS,
                   help="detail: network (overview), stage (one node per stage), block (one node per block, "
                        "default) or op (every primitive op)")
    p.add_argument("--expand", nargs="+", action="extend", default=[], metavar="SCOPE",
                   help="draw these scopes op by op whatever the level, e.g. stages.3 or stages.1.blocks.0")
    p.add_argument("--annotate", default="shapes", metavar="LIST",
                   help=f"comma-separated, from {','.join(R.ANNOTATIONS)} (default shapes; '' for none)")
    p.add_argument("--direction", default="TB", choices=("TB", "LR"), help="layout top-bottom or left-right")
    p.add_argument("--no-legend", action="store_true", help="leave out the legend")
    return p


def run(args) -> int:
    annotate = R.parse_annotate(args.annotate)
    G = load_graph(args).graph
    if "rf" in annotate and R.receptive_fields(G) is None:
        print("note: receptive-field analysis is not available in this netspec; --annotate rf ignored",
              file=sys.stderr)
    source = R.render(G, level=args.level, expand=tuple(args.expand), annotate=annotate,
                      direction=args.direction, legend=not args.no_legend)
    if args.out:
        R.write(source, Path(args.out), force=args.force)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(source)
    return 0
