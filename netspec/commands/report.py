"""`netspec report`: one self-contained interactive HTML page for a network (no torch)."""
from __future__ import annotations

import argparse
import sys

from ..api import load
from ..analysis.costs import PROFILES
from ..errors import SourceLoc, SpecError
from .. import htmlreport
from .common import add_spec_args, load_graph, output_file, positive_int


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report", help="one interactive, self-contained HTML page: diagram, details, charts, audit (no torch)",
        description="Write one HTML file that works offline: the Graphviz diagram with pan and zoom and "
                    "click-to-expand stages and blocks, each node's shapes, params, MACs, memory access, "
                    "receptive field and activation memory (as `netspec analyze --json`), a search box, "
                    "per-stage charts, the G1-G4 audit, the fragmentation and element-wise tables, the family "
                    "of variants and, with --run, a training run's curves. The page: docs/report.md.",
        epilog="examples:\n  netspec report mobilenet_v2 -o mnv2.html\n"
               "  netspec report efficientnet_b3 -o b3.html\n"
               "  netspec report lenet5 --run runs/lenet5 -o lenet5.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    p.add_argument("-o", "--out", required=True, help="the HTML file to write")
    p.add_argument("--force", action="store_true", help="allow -o to replace an existing file")
    p.add_argument("--run", metavar="RUN_DIR", help="a `netspec train` run directory: plot its metrics.jsonl")
    p.add_argument("--level", choices=htmlreport.INITIAL_VIEWS, default="stage",
                   help="the diagram the page opens with (default stage; all four are in the page)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size for MACs, mem_access and memory (default 1)")
    p.add_argument("--profile", choices=PROFILES, default="reference", help="MAC profile (default reference)")
    return p


def subtitle(args) -> str:
    bits = [f"variant {args.variant}"] if args.variant else []
    bits += [f"phi {args.phi:g}"] if args.phi is not None else []
    bits += [f"res {args.res}"] if args.res else []
    bits += list(args.overrides)
    return " · ".join(["netspec report", *bits])


def run(args) -> int:
    out = output_file(args.out, args.force)  # refuse before any work
    if out.suffix.lower() not in (".html", ".htm"):
        raise SpecError(f"-o: a report is an HTML file, got '{out.suffix or out.name}'", SourceLoc(str(out)),
                        "name it .html")
    run_info = htmlreport.run_data(args.run) if args.run else None
    loaded = load_graph(args)
    family = htmlreport.family_data(load(args.spec, overrides=args.overrides), resolution=args.res,
                                    current=args.variant or "(base)") if args.phi is None else None
    page = htmlreport.report_html(loaded.graph, family=family, run=run_info, initial=args.level,
                                  subtitle=subtitle(args), batch=args.batch, profile=args.profile)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(page.encode('utf-8')) / 2 ** 20:.2f} MB)", file=sys.stderr)
    return 0
