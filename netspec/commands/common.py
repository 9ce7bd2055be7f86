"""What the subcommands share: the spec arguments, loading a spec into a graph, number formatting."""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from ..errors import SourceLoc, SpecError
from ..api import load
from ..scale import apply_scaling
from ..lower import lower
from ..spec import Spec


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def bounded_float(low: float, high: float, *, low_open: bool = False):
    """An argparse type: a finite number in [low, high] ((low, high] with low_open); never inf or nan."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be a finite number {'above' if low_open else 'from'} {low:g} "
                                             f"{'and at most' if low_open else 'to'} {high:g}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def phi_value(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= 16:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 16 (B7 is about 7), got {text}")
    return value


def output_file(text: str, force: bool) -> Path:
    """Where a command may write: never over an existing file without --force, never into a missing folder."""
    path = Path(text)
    if path.is_dir():
        raise SpecError(f"cannot write {path}: it is a folder", SourceLoc(str(path)), "give a file name inside it")
    if path.is_symlink() and not path.exists():  # writing would create whatever the link points to
        raise SpecError(f"cannot write {path}: it is a dangling symbolic link", SourceLoc(str(path)),
                        "remove the link or choose another file name")
    if path.exists() and not force:
        raise SpecError(f"{path} exists; not overwriting it", SourceLoc(str(path)),
                        "choose another file name or pass --force")
    if not path.parent.is_dir():
        raise SpecError(f"cannot write {path}: folder {path.parent} does not exist", SourceLoc(str(path)),
                        "create the folder first")
    return path


def add_spec_args(p: argparse.ArgumentParser, *, aux: bool = True) -> None:
    p.add_argument("spec", help="a zoo name (mobilenet_v2, efficientnet_b3: netspec list) or a YAML spec file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a value before validation, e.g. --set num_classes=10 "
                        "--set 'stages[1].blocks[0].stride=1' (repeatable)")
    p.add_argument("--variant", help="a named variant of the spec's `variants:` table (e.g. b3)")
    p.add_argument("--phi", type=phi_value, help="compound-scaling coefficient (EfficientNet style)")
    p.add_argument("--res", type=positive_int, help="input resolution (overrides the spec and variant)")
    if aux:
        p.add_argument("--no-aux", action="store_true", help="leave out auxiliary heads (torchvision aux_logits=False)")


@dataclass
class Loaded:
    spec: Spec
    graph: nx.DiGraph


def load_graph(args: argparse.Namespace) -> Loaded:
    spec = apply_scaling(load(args.spec, overrides=args.overrides, variant=getattr(args, "variant", None),
                              phi=getattr(args, "phi", None), res=getattr(args, "res", None)))
    G = lower(spec, aux=not getattr(args, "no_aux", False))
    for n in G.graph["unused"]:
        loc = G.nodes[n]["loc"]
        print(f"warning: {loc}: '{n}' ({G.nodes[n]['op']}) is computed but never used", file=sys.stderr)
    return Loaded(spec, G)


def human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {suffix}{unit}".rstrip()
    return f"{n:g} {unit}".rstrip()


def shape_str(shape) -> str:
    return "×".join(str(s) for s in shape)


def table(rows: list[list[str]], header: list[str], align: str) -> str:
    """A plain text table; `align` has one of 'l'/'r' per column."""
    cols = list(zip(*([header] + rows))) if rows else [[h] for h in header]
    widths = [max(len(str(c)) for c in col) for col in cols]

    def fmt(row):
        cells = [str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(row, widths, align)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("─" * w for w in widths)
    return "\n".join([fmt(header), rule] + [fmt(r) for r in rows])
