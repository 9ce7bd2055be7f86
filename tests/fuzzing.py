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
# strings that could close a Python string or comment in an ejected file; their code creates the file
# CANARY in the folder the ejected file is imported from, which happens only if escaping failed
PAYLOADS = ['x""";open("CANARY","w").write("1");"""', "y\'\'\';open('CANARY','w').write('1');\'\'\'",
            "\\", "C:\\xnets\\", "a\nimport os;open('CANARY','w')\n#", "#\r\n;open('CANARY','w')", "\x00nul",
            "é☃𝔘 \u2028 \ufeff", "{CANARY}%s%(x)d", "-" * 150 + '\\"""', "\\\n\"\"\"\n"]
# values for numeric command-line options: each must parse or end in exit 2 naming the option
NUMBERS = ["0", "-1", "-5", "1", "2", "nan", "inf", "-inf", "1e400", "1e-30000000", "1e18", "abc", "", "0x10",
           "1_000", " 3", "3.5"]
OPTIONS = [["analyze", "--batch"], ["analyze", "--dtype-bytes"], ["validate", "--res"], ["validate", "--phi"],
           ["expand", "--res"], ["scale", "--search", "--target"], ["scale", "--search", "--grid"],
           ["scale", "--search", "--tolerance"], ["scale", "--phis"], ["build", "--max-params"],
           ["eval", "--weights", "none.pt", "--data", "fake", "--batch-size"],
           ["train", "--data", "fake", "--out", "run", "--fake-images"]]
# options whose valid values would start long work: only their invalid values are tried
_SLOW_WHEN_VALID = {"--target", "--grid", "--tolerance", "--phis", "--max-params", "--batch-size", "--fake-images"}
CHECKPOINTS = ["int_keys", "tuple_keys", "nan", "inf", "list", "scalar", "empty", "truncated", "garbage", "nested"]
IMPORT_EVERY = 10  # accepted cases with seed % 10 == 0 also import their ejected file in a fresh interpreter
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
OPTION_LOCATED = re.compile(r"^netspec \w+: error: argument --[\w-]+|^error: --[\w-]+: ", re.M)


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
    kind = rng.choice(["delete", "rename", "extreme", "extreme", "extreme", "retype", "duplicate", "swap", "number",
                       "payload"])
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
    elif kind == "payload":  # a free string of the spec (or this value) holds a string payload
        field_ = rng.choice(["reference", "doc", None])
        if field_:
            data[field_] = rng.choice(PAYLOADS)
            where = field_
        else:
            parent[key] = rng.choice(PAYLOADS)
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


def _check_option(argv: list[str], rc: int, err: str, defects: list[str]) -> None:
    if rc == 2 and not (OPTION_LOCATED.search(err) or LOCATED.search(err) or SET_LOCATED.search(err)):
        defects.append(f"{' '.join(argv[:1] + argv[2:])}: exit 2 without naming the option: {err.strip()[:300]}")
    elif rc not in (0, 2):
        defects.append(f"{' '.join(argv[:1] + argv[2:])}: exit {rc}: {err.strip()[:300]}")


def option_case(seed: int, spec: str, workdir: Path) -> list[str]:
    """One numeric option with a random value, for the case's spec (cheap when the value is valid)."""
    rng = random.Random(seed * 7919 + 1)
    command = rng.choice(OPTIONS)
    values = [v for v in NUMBERS if command[-1] not in _SLOW_WHEN_VALID or v not in ("1", "2", "1e18", "3.5", " 3", "",
                                                                                      "1_000", "0x10")]
    argv = [command[0], spec, *command[1:], rng.choice(values)]
    return [a if a != "run" else str(workdir / "run") for a in argv]


def write_checkpoint(kind: str, path: Path) -> None:
    """A hostile --weights file for specs/lenet5.yaml."""
    import torch
    good = {"stages.c1.blocks.conv1.weight": torch.zeros(6, 1, 5, 5)}
    payloads = {"int_keys": {3: torch.zeros(2)}, "tuple_keys": {(1, 2): torch.zeros(2)},
                "nan": {k: v.fill_(float("nan")) for k, v in good.items()},
                "inf": {k: v.fill_(float("inf")) for k, v in good.items()}, "list": [torch.zeros(2)],
                "scalar": 3, "empty": {}, "nested": {"model": {"model": {"x": torch.zeros(1)}}}}
    if kind in payloads:
        torch.save(payloads[kind], path)
    elif kind == "truncated":
        torch.save(good, path)
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.write_bytes(bytes(random.Random(len(kind)).randrange(256) for _ in range(512)))


def checkpoint_case(seed: int, workdir: Path, defects: list[str]) -> None:
    kind = CHECKPOINTS[seed % len(CHECKPOINTS)]
    ckpt = workdir / f"case_{seed}.pt"
    write_checkpoint(kind, ckpt)
    rc, err = _cli(["build", str(ROOT / "specs" / "lenet5.yaml"), "--weights", str(ckpt)])
    if rc != 2 or not err.startswith(f"error: {ckpt}"):
        defects.append(f"build --weights ({kind} checkpoint): exit {rc}: {err.strip()[:300]}")


def eject_and_import(spec: str, seed: int, workdir: Path, defects: list[str], *, subprocess_import: bool) -> None:
    """eject the spec; the file must parse, and (sampled) import and build in a fresh interpreter
    without creating the canary a payload's code would create."""
    import ast
    import subprocess
    import sys
    out = workdir / f"case_{seed}_ejected.py"
    rc, err = _cli(["eject", spec, "-o", str(out), "--force"])
    _check_exit("eject", rc, err, defects)
    if rc != 0:
        return
    try:
        ast.parse(out.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        defects.append(f"eject: the file does not parse: {exc}")
        return
    if subprocess_import:
        code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('m', sys.argv[1]); "
                "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
                "import torch\nwith torch.device('meta'): m.build_model()")
        proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=workdir, capture_output=True, text=True,
                              timeout=120, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode != 0:
            defects.append(f"eject: importing the file failed: {proc.stderr.strip()[-300:]}")
    if (workdir / "CANARY").exists():
        defects.append("eject: the ejected file ran spec content (the canary exists)")


def _built_params(path: str) -> tuple[int, int]:
    """(parameters of the module built on the meta device, parameters the analysis counts)."""
    import torch

    import netspec
    from netspec.analysis import costs
    G = netspec.lower(netspec.load(path))
    with torch.device("meta"):
        model = netspec.compile(G, seed=None)
    return sum(p.numel() for p in model.parameters()), costs.total_params(G, include_aux=True)


def _import_heavy_modules() -> None:
    """torch (and torchvision, for train/eval) imported outside any case's deadline: an import cut
    short by the alarm leaves torch half-registered, and every later case fails with its error."""
    import torch  # noqa: F401

    import netspec.backends.pytorch  # noqa: F401
    from netspec._torchvision import import_torchvision
    try:
        import_torchvision()
    except Exception:  # noqa: BLE001 - without torchvision, train/eval refuse with a located error
        pass


def run_case(case: Case, workdir: Path) -> Outcome:
    import time

    from netspec.errors import SpecError
    _import_heavy_modules()
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
                eject_and_import(str(path), case.seed, workdir, outcome.defects, subprocess_import=False)
            argv = option_case(case.seed, str(path), workdir)
            rc, err = _cli(argv)
            _check_option(argv, rc, err, outcome.defects)
            if outcome.accepted:
                try:
                    built, analysed = _built_params(str(path))
                    if built != analysed:
                        outcome.defects.append(f"build: module has {built:,} parameters, analysis {analysed:,}")
                except SpecError as exc:
                    if not exc.first.loc.line:
                        outcome.defects.append(f"build: unlocated error {exc}")
        # outside the case's deadline: a fresh interpreter imports torch (seconds on a loaded machine)
        if outcome.accepted and case.seed % IMPORT_EVERY == 0:
            eject_and_import(str(path), case.seed, workdir, outcome.defects, subprocess_import=True)
        if case.seed % 5 == 0:
            with _deadline(CASE_SECONDS * 3):  # the first one imports torch
                checkpoint_case(case.seed, workdir, outcome.defects)
    except _Hang:
        outcome.defects.append(f"hang: more than {CASE_SECONDS} s")
    except RecursionError:
        outcome.defects.append("RecursionError escaped")
    except Exception as exc:  # noqa: BLE001 - anything escaping is the defect we look for
        outcome.defects.append(f"{type(exc).__name__} escaped: {str(exc)[:300]}")
    finally:
        outcome.seconds = time.perf_counter() - t0
        for leftover in workdir.glob(f"case_{case.seed}[._]*"):
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
