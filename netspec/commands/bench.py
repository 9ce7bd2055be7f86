"""`netspec bench` (not implemented yet)."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("bench", help="(not implemented yet)")
    p.add_argument("spec", nargs="?")
    return p


def run(args) -> int:
    print("netspec bench: not implemented yet")
    return 1
