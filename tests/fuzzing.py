"""A seeded mutation fuzzer over the zoo specs: the engine behind `tests/test_fuzz.py` (a few hundred
cases in the suite) and `bench/fuzz.py` (20,000 cases, recorded in docs/robustness.md).

Each case is one spec file: a zoo spec with one to three mutations (a key deleted, renamed or
retyped; a value replaced by an extreme number, a string, a list, NaN; an entry duplicated; two
subtrees swapped) or a hostile file (YAML tags, alias bombs, deep nesting, tabs, empty, bad bytes,
duplicate keys). Every command runs on it in-process, as the CLI does (`netspec.cli.main`):

* `validate` must exit 0 or 2; exit 2 must print `error: FILE:LINE:COL` (or the --set position);
* when `validate` accepts, `analyze`, `render` (DOT), `expand`, `build` and (on every SCALE_EVERY-th
  case, since it lowers every variant of the family) `scale` must also exit 0,
  or 2 with a located message, and the built module's parameter count must equal the analysis
  (built on torch's meta device: the same modules, no memory for their weights);
* nothing may take longer than `CASE_SECONDS` (a hang) or raise out of `main` (a traceback).

Anything else is a defect: the case is returned with its seed so it can be replayed.
"""
from __future__ import annotations

import contextlib
import io
import math
import random
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted((ROOT / "specs").glob("*.yaml"))
CASE_SECONDS = 20
SCALE_EVERY = 4  # `scale` builds the family table (up to 25 variants): run on every 4th accepted case
EXTREMES = [0, -1, 1, 2, 3, 7, 10**18, 2**63, -(10**9), 1.5, 1e-300, 1e308, float("nan"), float("inf"), True, False,
            None, "", "x", "relu", "$in * 1000000", "$undefined", "[", "'a' * 10", "make_divisible($in, 0)",
            "1/0", "$in // 0", [], [1, 2, 3], {}, {"type": "relu"}, "x" * 300, "prev", "input", "stages"]
TYPOS = ["typ", "kernal", "strides", "out_channels", "Repeat", "nmae", "inputs_", "blocks2"]
HOSTILE = {
    "python_tag": "name: !!python/object/apply:os.system ['true']\ninput: {size: 8}\n",
    "custom_tag": "name: x\ninput: !Input {size: 8}\nhead: [{type: linear, out: 2}]\n",
    "alias_bomb": "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)),
    "deep_nesting": "name: x\ninput: {size: 8}\nvars: {a: " + "[" * 5000 + "]" * 5000 + "}\n",
    "deep_mapping": "name: x\ninput: {size: 8}\nvars: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "tabs": "name: x\ninput:\n\tsize: 8\n",
    "empty": "",
    "only_comment": "# nothing here\n",
    "scalar": "42\n",
    "list_top": "- name: x\n",
    "duplicate_keys": "name: x\nname: y\ninput: {size: 8}\n",
    "bad_bytes": b"name: x\ninput: {size: 8}\n# \xff\xfe\n",
    "nul_byte": b"name: x\x00\ninput: {size: 8}\n",
    "utf16": "name: x\ninput: {size: 8}\n".encode("utf-16"),
    "huge_line": "name: " + "x" * 200_000 + "\ninput: {size: 8}\n",
    "list_builder_big": "name: x\ninput: {size: 8}\nvars: {w: {for: j, in: 'range(10000)', value: '$j * 2'}, "
                        "s: 'runs($w)'}\nstages: [{for: [a, b], in: $s, blocks: [{type: relu}]}]\n",
    "list_builder_nested": "name: x\ninput: {size: 8}\nvars: {w: {for: j, in: 'range(9999)', value: "
                           "{for: k, in: 'range(9999)', value: '$k'}}}\nhead: [{type: relu}]\n",
    "derived_stage_ops": "name: x\ninput: {size: 8}\nvars: {w: {for: j, in: 'range(999)', value: '[$j, 999]'}}\n"
                         "stages: [{for: [a, b], in: $w, blocks: [{type: relu, repeat: $b}]}]\n",
    "long_expression": "name: x\ninput: {size: 8}\nstem: [{type: conv2d, out: " + "+".join(["$in"] * 5000) +
                       ", kernel: 1}]\n",
}
LOCATED = re.compile(r"^error: (\d+ problems in spec:\n)?(?P<where>[^\n:]+):(?P<line>\d+):(?P<col>\d+):", re.M)
SET_LOCATED = re.compile(r"^error: (\d+ problems in spec:\n)?--set ", re.M)


@dataclass
class Case:
    seed: int
    name: str                       # seed spec + mutations, or hostile:<kind>
    content: bytes
    mutations: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    case: Case
    accepted: bool = False
    defects: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------- mutations

def _paths(data, path=()):
    """Every (path, value) in a nested structure."""
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, path + (i,))


def _get(data, path):
    for p in path:
        data = data[p]
    return data


def _mutate(data, rng: random.Random) -> str:
    """Apply one mutation in place; return its description."""
    paths = [p for p, _ in _paths(data) if p]
    path = rng.choice(paths)
    parent, key = _get(data, path[:-1]), path[-1]
    kind = rng.choice(["delete", "rename", "extreme", "extreme", "extreme", "retype", "duplicate", "swap", "number"])
    where = ".".join(map(str, path))
    if kind == "delete":
        if isinstance(parent, list) and parent:
            del parent[key]
        elif isinstance(parent, dict):
            del parent[key]
    elif kind == "rename" and isinstance(parent, dict):
        parent[rng.choice(TYPOS + [str(key) + "_", str(key)[:-1] or "k"])] = parent.pop(key)
    elif kind == "retype":
        value = parent[key]
        parent[key] = ([value] if not isinstance(value, list) else {"v": value}) if rng.random() < 0.5 else str(value)
    elif kind == "duplicate" and isinstance(parent, list):
        parent.insert(key, parent[key])
    elif kind == "swap":
        other = rng.choice(paths)
        oparent, okey = _get(data, other[:-1]), other[-1]
        if other[:len(path)] != path and path[:len(other)] != other:  # neither inside the other
            parent[key], oparent[okey] = oparent[okey], parent[key]
            where += f" <-> {'.'.join(map(str, other))}"
    elif kind == "number" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
        parent[key] = parent[key] * rng.choice([0, -1, 10, 1000, 10**6, 10**12, 0.5])
    else:
        parent[key] = rng.choice(EXTREMES)
    return f"{kind} {where}"


def make_case(seed: int) -> Case:
    rng = random.Random(seed)
    if rng.random() < 0.06:
        kind = rng.choice(sorted(HOSTILE))
        content = HOSTILE[kind]
        return Case(seed, f"hostile:{kind}", content if isinstance(content, bytes) else content.encode())
    source = rng.choice(SEEDS)
    data = yaml.safe_load(source.read_text())
    mutations = [_mutate(data, rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
    return Case(seed, f"{source.stem}: {'; '.join(mutations)}", text.encode(), mutations)


# --------------------------------------------------------------------------- running

class _Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int):
    def alarm(*_):
        raise _Hang()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _cli(argv: list[str]) -> tuple[int, str]:
    from netspec.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, err.getvalue()


def _check_exit(command: str, rc: int, err: str, defects: list[str]) -> None:
    if rc == 2 and not (LOCATED.search(err) or SET_LOCATED.search(err)):
        defects.append(f"{command}: exit 2 without a file:line:col location: {err.strip()[:300]}")
    elif rc not in (0, 2):
        defects.append(f"{command}: exit {rc}: {err.strip()[:300]}")


def _built_params(path: str) -> tuple[int, int]:
    """(parameters of the module built on the meta device, parameters the analysis counts)."""
    import torch

    import netspec
    from netspec.analysis import costs
    G = netspec.lower(netspec.load(path))
    with torch.device("meta"):
        model = netspec.compile(G, seed=None)
    return sum(p.numel() for p in model.parameters()), costs.total_params(G, include_aux=True)


def run_case(case: Case, workdir: Path) -> Outcome:
    import time

    from netspec.errors import SpecError
    path = workdir / f"case_{case.seed}.yaml"
    path.write_bytes(case.content)
    outcome = Outcome(case)
    t0 = time.perf_counter()
    try:
        with _deadline(CASE_SECONDS):
            rc, err = _cli(["validate", str(path)])
            _check_exit("validate", rc, err, outcome.defects)
            outcome.accepted = rc == 0
            if outcome.accepted:
                out = workdir / f"case_{case.seed}.dot"
                commands = [["analyze", str(path)], ["render", str(path), "--level", "block", "-o", str(out),
                                                     "--force"], ["expand", str(path)]]
                if case.seed % SCALE_EVERY == 0:  # `scale` lowers and analyses every variant: sampled
                    commands.append(["scale", str(path)])
                for argv in commands:
                    rc, err = _cli(argv)
                    _check_exit(argv[0], rc, err, outcome.defects)
                try:
                    built, analysed = _built_params(str(path))
                    if built != analysed:
                        outcome.defects.append(f"build: module has {built:,} parameters, analysis {analysed:,}")
                except SpecError as exc:
                    if not exc.first.loc.line:
                        outcome.defects.append(f"build: unlocated error {exc}")
    except _Hang:
        outcome.defects.append(f"hang: more than {CASE_SECONDS} s")
    except RecursionError:
        outcome.defects.append("RecursionError escaped")
    except Exception as exc:  # noqa: BLE001 - anything escaping is the defect we look for
        outcome.defects.append(f"{type(exc).__name__} escaped: {str(exc)[:300]}")
    finally:
        outcome.seconds = time.perf_counter() - t0
        for leftover in workdir.glob(f"case_{case.seed}.*"):
            leftover.unlink()
    return outcome


def fuzz(seeds, workdir: Path) -> list[Outcome]:
    return [run_case(make_case(s), workdir) for s in seeds]


def summarize(outcomes: list[Outcome]) -> dict:
    seconds = sorted(o.seconds for o in outcomes)
    return {
        "cases": len(outcomes),
        "accepted": sum(o.accepted for o in outcomes),
        "refused": sum(not o.accepted for o in outcomes),
        "hostile": sum(o.case.name.startswith("hostile:") for o in outcomes),
        "defects": sum(bool(o.defects) for o in outcomes),
        "median_case_s": seconds[len(seconds) // 2] if seconds else math.nan,
        "max_case_s": seconds[-1] if seconds else math.nan,
    }
