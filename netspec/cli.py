"""The `netspec` command line. Each subcommand lives in `netspec/commands/<name>.py`
and provides `add_parser(subparsers)` and `run(args) -> int`.

Errors in a spec print as `file:line:col: path: message` with a hint, exit code 2,
and no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import SpecError
from .extras import MissingExtra

COMMANDS = ("build", "validate", "analyze", "scale", "expand", "render", "compare", "bench", "schema",
            "train", "eval", "predict", "eject", "list", "show", "report", "calibrate")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netspec",
        description="netspec: a declarative network compiler for CNNs (YAML spec -> graph IR -> analysis, "
                    "diagrams, torch.nn.Module).",
        epilog="examples:\n  netspec list 'efficientnet*'\n  netspec build mobilenet_v2\n"
               "  netspec show resnet50 > my_resnet.yaml && netspec build my_resnet.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f".commands.{name}", __package__)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        if isinstance(getattr(args, "spec", None), str):  # a zoo name -> its spec file (and variant)
            from .zoo import resolve
            args.spec, variant = resolve(args.spec, getattr(args, "variant", None))
            if variant is not None:
                args.variant = variant
        return int(args._run(args) or 0)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MissingExtra as exc:
        print(f"error: {exc}\n    hint: {exc.hint}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a file that cannot be read or written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("NETSPEC_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:500]}\n"
              "    hint: this may be a resource limit (a huge input?) or a netspec bug; "
              "NETSPEC_DEBUG=1 shows the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
