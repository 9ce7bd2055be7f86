"""`netspec compare`: two or more networks (or one spec's variants) side by side (no torch).

Each SPEC may be followed by its own spec options (`--variant`, `--set`, `--phi`, `--res`), which
apply to that spec only; the comparison options (`--json`, `--render`, `--align`, ...) may stand
anywhere. argparse cannot tie options to the positional before them, so the words after the
command are split here: a word that is neither an option nor an option's value starts a new spec.
"""
from __future__ import annotations

import argparse
import json
import re
import string
import sys

from .. import render as R
from ..analysis import analyze
from ..analysis.compare import ALIGNS, Comparison, compare
from ..analysis.costs import PROFILES
from ..errors import SourceLoc, SpecError
from .common import add_spec_args, human, load_graph, output_file, positive_int, shape_str, table

DESCRIPTION = """\
Compare networks side by side without building them: per aligned stage and for the whole network,
output shape, params, MACs, mem_access, receptive field, fragmentation (G3), element-wise share (G4)
and the ShuffleNet V2 guideline verdicts G1-G4, with differences and ratios to the first network
(the baseline). Stages are aligned by position (stem with stem, i-th stage with i-th stage, head
with head; each network keeps its own stage names) or, with --align stride, by output stride.
Auxiliary heads are left out. Definitions: docs/analysis.md; examples: docs/compare.md."""

EPILOG = """\
spec options, after the SPEC they apply to:
  --variant NAME        a named variant of that spec
  --set PATH=VALUE      override a value of that spec (repeatable)
  --phi PHI, --res N    compound-scaling coefficient, input resolution

examples:
  netspec compare mobilenet_v1 mobilenet_v2
  netspec compare mobilenet_v1 --variants 1.0_224,0.5_224 --align stride
  netspec compare shufflenet_v1 shufflenet_v1 --set vars.g=8 --set vars.c2=384 \\
      --set vars.c3=768 --set vars.c4=1536
  netspec compare resnet18 resnet34 --json
  netspec compare mobilenet_v1 mobilenet_v2 --render cmp.svg
  netspec compare mobilenet_v1 mobilenet_v2 --html cmp.html"""


def _compare_options(p: argparse.ArgumentParser, default=None) -> None:
    """Options of the comparison as a whole. `default=SUPPRESS` on the per-spec parser, so that one
    given after a spec is recognised there and passed up only when it was given."""
    d = (lambda v: v) if default is None else (lambda v: default)
    p.add_argument("--variants", metavar="LIST", default=d(None),
                   help="compare these comma-separated variants of the one SPEC given")
    p.add_argument("--align", choices=ALIGNS, default=d("position"),
                   help="line stages up by position (default) or by output stride")
    p.add_argument("--batch", type=positive_int, default=d(1), help="batch size (default 1)")
    p.add_argument("--profile", choices=PROFILES, default=d("reference"),
                   help="MAC profile: reference (conv + linear) or full (default reference)")
    p.add_argument("--json", action="store_true", default=d(False), help="print the comparison as JSON")
    p.add_argument("--render", metavar="FILE", default=d(None),
                   help="also draw the networks side by side at stage level (.svg/.png/.pdf/.dot)")
    p.add_argument("--html", metavar="FILE", default=d(None),
                   help="also write the comparison as one self-contained interactive HTML page (docs/report.md)")
    p.add_argument("--force", action="store_true", default=d(False), help="allow --render / --html to replace a file")
    p.add_argument("--latency", action="store_true", default=d(False),
                   help="predicted latency beside MACs, from the device profile (netspec calibrate; no torch)")
    p.add_argument("--device", metavar="PROFILE", default=d(None),
                   help="device profile JSON (implies --latency; default: the per-user profile)")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("compare", help="networks or variants side by side: per stage and in total (no torch)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       usage="netspec compare SPEC [spec options] SPEC [spec options] ... [options]\n"
                             "       netspec compare SPEC --variants A,B[,...] [options]")
    _compare_options(p)
    p.add_argument("items", nargs=argparse.REMAINDER, metavar="SPEC [spec options] ...", help="the specs")
    return p


def _spec_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netspec compare", add_help=False)
    add_spec_args(p, aux=False)
    _compare_options(p, default=argparse.SUPPRESS)
    return p


def _takes_value(p: argparse.ArgumentParser) -> dict[str, bool]:
    return {o: a.nargs != 0 for a in p._actions for o in a.option_strings}  # argparse has no public table


def split_items(items: list[str], p: argparse.ArgumentParser) -> list[list[str]]:
    """[SPEC, its options...] groups, in order. Options before the first spec form a group of their own."""
    takes = _takes_value(p)
    groups: list[list[str]] = [[]]
    expect_value = False
    for word in items:
        if expect_value:
            groups[-1].append(word)
            expect_value = False
        elif word.startswith("-") and word != "-":
            groups[-1].append(word)
            expect_value = "=" not in word and takes.get(word, False)
        else:
            groups.append([word])
    return [g for g in groups if g]


def parse_sides(args: argparse.Namespace) -> list[argparse.Namespace]:
    """One namespace per network to load; the comparison options are merged into `args`."""
    p = _spec_parser()
    sides = []
    for group in split_items(args.items, p):
        ns = p.parse_args(group)  # argparse itself takes the options before the first spec
        sides.append(ns)
        for k in ("variants", "align", "batch", "profile", "json", "render", "html", "force", "latency", "device"):
            if hasattr(ns, k):
                setattr(args, k, getattr(ns, k))
                delattr(ns, k)
    if args.variants is not None:
        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        if len(sides) != 1 or sides[0].variant:
            raise SpecError("--variants compares the variants of one spec: give exactly one SPEC, without --variant",
                            SourceLoc("<command line>"),
                            "netspec compare mobilenet_v1 --variants 1.0_224,0.5_224; or SPEC --variant X SPEC "
                            "--variant Y")
        if len(names) < 2:
            raise SpecError(f"--variants needs at least two names, got '{args.variants}'", SourceLoc("<command line>"),
                            "separate them by commas: --variants 1.0,0.5")
        sides = [argparse.Namespace(**{**vars(sides[0]), "variant": v}) for v in names]
    if len(sides) < 2:
        raise SpecError(f"compare needs at least two networks, got {len(sides)}", SourceLoc("<command line>"),
                        "give two or more specs, or one spec with --variants A,B")
    return sides


def side_label(ns: argparse.Namespace, name: str) -> str:
    """A network's name, and how it was set up when that was given on the command line."""
    # a variant usually renames the network (mobilenet_v1_0_5); say it only where it does not
    renamed = ns.variant and re.sub(r"\W", "_", ns.variant).strip("_") in name
    bits = [f"variant {ns.variant}"] if ns.variant and not renamed else []
    bits += [f"phi {ns.phi:g}"] if ns.phi is not None else []
    bits += [f"res {ns.res}"] if ns.res else []
    bits += ns.overrides
    return f"{name} ({', '.join(bits)})" if bits else name


# --------------------------------------------------------------------------- text

def num(n: float) -> str:
    """Three significant digits with a unit suffix: 10.8M, 3.5K, 120."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:g}"


def ratio(x) -> str:
    return "—" if x is None else f"{x:.3g}×"


def signed(n: float, fmt: str = ",") -> str:
    return ("+" if n > 0 else "−" if n < 0 else "±") + format(abs(n), fmt)


def pct(x: float) -> str:
    return f"{x:.1%}"


def render_text(c: Comparison, files: list[str], latency_ms: list[float] | None = None) -> str:
    letters = [string.ascii_uppercase[i] if i < 26 else f"N{i}" for i in range(len(c.labels))]
    base, others = letters[0], list(range(1, len(letters)))
    out = [table([[k, lab, f, shape_str(n.input_shape)] for k, lab, f, n in zip(letters, c.labels, files, c.networks)],
                 ["", "network", "spec", "input"], "llll")]
    out.append(f"batch {c.batch}, {c.profile} MACs; ratios are to {base} (the baseline)")
    out += [f"note: {n}" for n in c.notes]

    # the whole network: each metric a row, with differences and ratios to the baseline
    nets = c.networks
    header = ["network", *letters] + [h for i in others for h in (f"{letters[i]}−{base}", f"{letters[i]}/{base}")]

    def additive(title, key, fmt=lambda v: f"{v:,}", diff=lambda d: signed(d)):
        vals = [getattr(n, key) for n in nets]
        diffs = [h for i in others for h in (diff(vals[i] - vals[0]), ratio(c.ratio(key, i)))]
        return [title, *[fmt(v) for v in vals], *diffs]

    def plain(title, key, fmt, diff=None):
        vals = [getattr(n, key) for n in nets]
        diffs = [h for i in others for h in ((diff(vals[i], vals[0]) if diff else ""), "")]
        return [title, *[fmt(v) for v in vals], *diffs]

    pp = lambda a, b: signed(round(100 * (a - b), 1), "") + " pp"  # noqa: E731 - percentage points
    predicted = []
    if latency_ms:
        diffs = [h for i in others for h in (signed(round(latency_ms[i] - latency_ms[0], 3), ""),
                                             ratio(latency_ms[i] / latency_ms[0]))]
        predicted = [["predicted ms", *[f"{v:.3f}" for v in latency_ms], *diffs]]
    rows = [
        additive("params", "params"), additive("MACs", "macs"), *predicted, additive("mem_access", "mem_access"),
        plain("MACs/element", "intensity", lambda v: f"{v:.1f}", lambda a, b: signed(round(a - b, 1), "")),
        additive("activation peak", "activation_peak_bytes", lambda v: human(v, "B"),
                 lambda d: ("+" if d > 0 else "−" if d < 0 else "±") + human(abs(d), "B")),
        plain("RF (features)", "rf", str),
        plain("blocks", "blocks", str, lambda a, b: signed(a - b)),
        plain("fragments/block", "fragments_per_block", lambda v: f"{v:.1f}",
              lambda a, b: signed(round(a - b, 1), "")),
        plain("parallel (max)", "parallel", str, lambda a, b: signed(a - b)),
        plain("element-wise share", "elementwise_share", pct, pp),
        plain("depthwise share", "depthwise_share", pct, pp),
    ]
    out += ["", table(rows, header, "l" + "r" * (len(header) - 1))]

    # stages
    how = ("by position: stem, the i-th stage of each, head" if c.align == "position"
           else "by output stride (input size / output size); same-stride stages merged")
    out += ["", f"stages, aligned {how}"]

    def cells(row, f):
        return [f(s) if s is not None else "—" for s in row.sides]

    rows = [[r.key, *[x for s in r.sides for x in ((s.name, shape_str(s.shape), s.rf) if s else ("—", "", ""))]]
            for r in c.rows]
    head = ["row"] + [h for k in letters for h in (f"{k} stage", f"{k} output", f"{k} RF")]
    out.append(table(rows, head, "l" + "lrl" * len(letters)))
    out.append("")
    rows = []
    for r in c.rows:
        row = [r.key]
        for key in ("params", "macs", "mem_access"):
            row += cells(r, lambda s: num(getattr(s, key))) + [ratio(c.ratio(key, i, r)) for i in others]
        rows.append(row)
    ratios = [f"{letters[i]}/{base}" for i in others]
    head = ["row"] + [h for t in ("params", "MACs", "mem_acc") for h in (*[f"{t} {k}" for k in letters], *ratios)]
    out.append(table(rows, head, "l" + "r" * (len(head) - 1)))
    out.append("")
    rows = [[r.key, *cells(r, lambda s: f"{s.fragments}/{s.parallel}"),
             *cells(r, lambda s: pct(s.elementwise_share)), *cells(r, lambda s: pct(s.depthwise_share))]
            for r in c.rows]
    head = ["row"] + [f"frag/par {k}" for k in letters] + [f"elementwise {k}" for k in letters] \
        + [f"depthwise {k}" for k in letters]
    out.append(table(rows, head, "l" + "r" * (len(head) - 1)))
    out.append("(frag/par: conv/pool fragments in the row's blocks / the widest block's parallel ones; "
               "shares are of the row's mem_access)")

    out += ["", "ShuffleNet V2 guidelines"]
    for g in nets[0].guidelines:
        for k, n in zip(letters, nets):
            out.append(f"  {g} {k}: {n.guidelines[g].removeprefix(g).lstrip(': ')}")
    return "\n".join(out)


def run(args) -> int:
    sides = parse_sides(args)
    loaded = [load_graph(ns) for ns in sides]
    reports = [analyze(l.graph, batch=args.batch, profile=args.profile) for l in loaded]
    labels = [side_label(ns, l.graph.graph["name"]) for ns, l in zip(sides, loaded)]
    for i, lab in enumerate(labels):  # the same network twice still needs two names
        if labels.count(lab) > 1:
            labels[i] = f"{lab} #{labels[:i + 1].count(lab)}"
    out = None
    if args.render:  # refuse a bad --render before any work is printed
        out = output_file(args.render, args.force)
        if out.suffix.lower() not in R.FORMATS:
            raise SpecError(f"--render: unknown file type '{out.suffix or out.name}'", SourceLoc(str(out)),
                            "use .svg, .png, .pdf or .dot")
    html_out = None
    if args.html:
        html_out = output_file(args.html, args.force)
        if html_out.suffix.lower() not in (".html", ".htm"):
            raise SpecError(f"--html: a page is an HTML file, got '{html_out.suffix or html_out.name}'",
                            SourceLoc(str(html_out)), "name it .html")
    c = compare(reports, labels, align=args.align)
    latency_ms, profile = None, None
    if args.latency or args.device:
        from ..latency import load_profile, predict
        profile = load_profile(args.device)
        latency_ms = [predict(l.graph, profile, args.batch).network * 1e3 for l in loaded]
    if args.json:
        d = c.to_dict()
        d["specs"] = [ns.spec for ns in sides]
        if latency_ms:
            d["predicted_latency_ms"], d["device"] = latency_ms, profile.device
        print(json.dumps(d, indent=1, ensure_ascii=False))
    else:
        print(render_text(c, [ns.spec for ns in sides], latency_ms))
        if profile is not None:
            print(f"(predicted ms: batch {args.batch} on {profile.describe()}; netspec calibrate)")
    if out is not None:
        rows = [[s.scopes if s else [] for s in r.sides] for r in c.rows]
        R.write(R.render_side_by_side([l.graph for l in loaded], labels, rows), out, force=True)
        print(f"wrote {out}", file=sys.stderr)
    if html_out is not None:
        from ..htmlreport import compare_html
        html_out.write_text(compare_html(c, [l.graph for l in loaded]), encoding="utf-8")
        print(f"wrote {html_out}", file=sys.stderr)
    return 0
