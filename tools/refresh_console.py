"""Re-run the `$ netspec ...` commands of a Markdown page and paste what they print now.

    python tools/refresh_console.py docs/compare.md          # rewrite the page in place
    python tools/refresh_console.py docs/compare.md --check  # exit 1 if the page is stale

A ```console block holds one command (`$ netspec ARGS`, continued by trailing backslashes) and its
output. Commands run in-process from the repository root, so the page shows real output of this
checkout; tests/test_docs.py runs the check. Never imports torch unless a command does.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from netspec.cli import main as netspec_main  # noqa: E402

BLOCK = re.compile(r"```console\n(\$ netspec (?:[^\n]*\\\n)*[^\n]*\n)(.*?)```", re.S)


def run(command: str) -> str:
    """What `netspec ...` prints on stdout, run from the repository root."""
    argv = shlex.split(command.removeprefix("$ netspec ").replace("\\\n", " "))
    out = io.StringIO()
    cwd = Path.cwd()
    try:
        os.chdir(ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            rc = netspec_main(argv)
    finally:
        os.chdir(cwd)
    if rc != 0:
        raise SystemExit(f"`{command.strip()}` exited {rc}")
    return out.getvalue()


def refresh(text: str) -> str:
    return BLOCK.sub(lambda m: f"```console\n{m[1]}{run(m[1])}```", text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("page", type=Path, help="the Markdown page")
    p.add_argument("--check", action="store_true", help="only report whether the page is stale")
    args = p.parse_args(argv)
    text = args.page.read_text(encoding="utf-8")
    new = refresh(text)
    if args.check:
        if new != text:
            print(f"{args.page} is stale: run python tools/refresh_console.py {args.page}")
            return 1
        return 0
    args.page.write_text(new, encoding="utf-8")
    print(f"refreshed {len(BLOCK.findall(text))} commands in {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
