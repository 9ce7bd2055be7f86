"""Resource guards (netspec.limits): every size a spec controls is refused, located, before work or
memory grows with it - in the front end, in `build` (a parameter budget) and in `bench` (activations)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import netspec
from conftest import SPECS
from netspec import limits
from netspec.analysis import budget
from netspec.cli import main
from netspec.errors import SpecError


# A hang guard, not a timing claim: a refused spec takes well under a second on a quiet machine (CI); the
# bound leaves room for a loaded one. docs/robustness.md records measured times.
HANG = 20


def cli(*args, env=None, timeout=60):
    """Run the real CLI in a subprocess: exit code, stderr, wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "netspec", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    return proc.returncode, proc.stderr, time.perf_counter() - t0


def test_undecodable_byte_is_located(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: x\ninput: {size: 8}\n# caf\xc3\xa9 \xff here\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:8:" in err and "0xff is not valid UTF-8" in err and "hint:" in err


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (SPECS / "lenet5.yaml").read_bytes())
    assert netspec.load(path).name == "lenet5"


def test_huge_repeat_in_a_zoo_stage_is_refused_fast(tmp_path):
    text = (SPECS / "efficientnet_v2.yaml").read_text()
    first = text.index("repeat: ") + len("repeat: ")
    end = first + len(text[first:].split(",")[0].split("}")[0])
    path = tmp_path / "v2.yaml"
    path.write_text(text[:first] + "1000000000000000000" + text[end:])
    line = text[:first].count("\n") + 1
    for command in ("validate", "analyze", "render", "build"):
        rc, err, seconds = cli(command, path)
        assert rc == 2 and seconds < HANG, (command, rc, err)
        assert f"{path}:{line}:" in err and "repeat" in err and "1000" in err


@pytest.mark.parametrize("spec, override, limit", [
    ("lenet5", "num_classes=2000000000", "1048576"),
    ("mobilenet_v2", "stem[0].out=1000000000", "1048576"),
])
def test_huge_sizes_on_the_command_line_are_refused_before_torch(spec, override, limit):
    rc, err, seconds = cli("build", SPECS / f"{spec}.yaml", "--set", override)
    assert rc == 2 and seconds < HANG and limit in err and "Traceback" not in err
    assert "unexpected" not in err


def test_a_size_reached_through_expressions_is_located_at_the_entry(write_spec):
    path = write_spec("""
        name: wide
        input: {size: 8}
        vars: {w: 100000}
        stem:
          - {type: conv2d, out: $w * $w, kernel: 3}
        """)
    with pytest.raises(SpecError) as info:
        netspec.lower(netspec.load(path))
    issue = info.value.first
    assert (issue.loc.line, issue.loc.path) == (5, "stem[0].out") and "1048576" in issue.message


def test_graph_size_limit_names_the_entry_that_drives_it(write_spec):
    path = write_spec("""
        name: deep
        input: {size: 8}
        blocks:
          six: {body: [{type: conv2d, out: 4, kernel: 1}, {type: relu}, {type: relu}, {type: relu}, {type: relu}, {type: relu}]}
        stem:
          - {type: conv2d, out: 4, kernel: 1}
          - {type: six, repeat: 450}
          - {type: six, name: many, repeat: 450}
        """)
    with pytest.raises(SpecError) as info:
        netspec.lower(netspec.load(path))
    issue = info.value.first
    assert issue.loc.line == 8 and issue.loc.path == "stem[2].repeat"
    assert f"{limits.MAX_GRAPH_NODES:,}" in issue.message and "repeat 450" in issue.message


def test_depth_scaling_that_overflows_repeat_is_located(tmp_path):
    rc, err, _ = cli("validate", SPECS / "efficientnet.yaml", "--set", "scaling.depth=100000")
    assert rc == 2 and "repeat" in err and f"{limits.MAX_REPEAT}" in err and "specs/efficientnet.yaml:" in err
    assert "depth multiplier" in err  # the hint says where a scaled repeat comes from


def test_parameter_budget_is_checked_before_allocation(capsys, monkeypatch):
    assert main(["build", str(SPECS / "lenet5.yaml"), "--max-params", "10000"]) == 2
    err = capsys.readouterr().err
    # the entry holding the most parameters is named, with the total and the limit
    assert "lenet5.yaml:" in err and "head.fc1" in err and "61,706" in err and "10,000" in err
    monkeypatch.setenv(limits.ENV_MAX_PARAMS, "1e4")
    with pytest.raises(SpecError, match="61,706 parameters"):
        netspec.build(SPECS / "lenet5.yaml")
    monkeypatch.setenv(limits.ENV_MAX_PARAMS, "lots")
    with pytest.raises(SpecError, match="not a positive number"):
        netspec.build(SPECS / "lenet5.yaml")
    monkeypatch.setenv(limits.ENV_MAX_PARAMS, "61706")
    assert sum(p.numel() for p in netspec.build(SPECS / "lenet5.yaml").parameters()) == 61706


def test_default_budget_is_a_share_of_available_memory(monkeypatch):
    monkeypatch.delenv(limits.ENV_MAX_PARAMS, raising=False)
    monkeypatch.setattr(limits, "available_memory", lambda: 4 << 30)
    assert limits.default_max_params() == int((4 << 30) * limits.MEMORY_SHARE) // 4
    G = netspec.lower(netspec.load(SPECS / "vgg.yaml", variant="vgg16"))  # 138 M parameters = 553 MB
    monkeypatch.setattr(limits, "available_memory", lambda: 1 << 30)
    with pytest.raises(SpecError, match=r"of the 1\.0 GiB available"):
        budget.check_model_size(G)


def test_bench_refuses_a_forward_that_cannot_fit(capsys):
    assert main(["bench", str(SPECS / "mobilenet_v2.yaml"), "--batch", "100000", "--repeat", "1"]) == 2
    err = capsys.readouterr().err
    assert "mobilenet_v2.yaml:" in err and "forward pass at batch 100000" in err and "GiB" in err


def test_python_api_takes_the_cli_scaling_choices(figures):
    spec = netspec.load(SPECS / "efficientnet.yaml", variant="b3")
    G = netspec.lower(spec)
    from netspec.analysis import costs
    ref = figures["torchvision"]["efficientnet_b3"]
    assert costs.total_params(G) == ref["params"]
    g1 = netspec.lower(netspec.load(SPECS / "efficientnet.yaml", phi=1))  # gamma^1 = 1.15: 224 -> 258
    assert g1.graph["input_shape"][1] == round(224 * 1.15)
    assert figures["torchvision"]["efficientnet_b0"]["params"] < costs.total_params(g1) < ref["params"]
    assert netspec.lower(netspec.load(SPECS / "mobilenet_v2.yaml", res=160)).graph["input_shape"] == (3, 160, 160)
    with pytest.raises(SpecError, match="unknown variant 'b9'"):
        netspec.load(SPECS / "efficientnet.yaml", variant="b9")
    for bad in (dict(phi=float("nan")), dict(phi=99), dict(res=0), dict(res=1.5)):
        with pytest.raises(SpecError):
            netspec.load(SPECS / "efficientnet.yaml", **bad)


@pytest.mark.parametrize("override, message", [
    ("scaling.depth=inf", "finite number"), ("scaling.width=nan", "finite number"),
    ("scaling.compound.phi=1e300", "less than or equal to 16"),
])
def test_scaling_numbers_are_finite_and_bounded(override, message, capsys):
    assert main(["validate", str(SPECS / "efficientnet.yaml"), "--set", override]) == 2
    err = capsys.readouterr().err
    assert f"--set {override}" in err and message in err
