"""`netspec build / validate / schema` as a user runs them."""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, SPECS
from netspec.cli import COMMANDS, main

pytest.importorskip("torch")


def test_build_prints_per_stage_table_and_totals(capsys):
    assert main(["build", str(SPECS / "lenet5.yaml")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("lenet5")
    assert lines[1] == "input 1×32×32"
    # c1: conv 1->6 5x5 on 32x32: 6*25+6 = 156 params, 6*28*28*25 = 117,600 MACs; pooled to 14x14
    assert any(line.split() == ["c1", "3", "6×14×14", "156", "117,600"] for line in lines)
    # head: 400*120+120 + 120*84+84 + 84*10+10 = 59,134 params; 48,000 + 10,080 + 840 MACs
    assert any(line.split() == ["head", "10", "59,134", "58,920"] for line in lines)
    assert "params 61,706" in out
    assert "MACs   416,520" in out


def test_build_json(capsys):
    assert main(["build", str(SPECS / "mobilenet_v2.yaml"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {"name", "params", "macs", "input_shape", "output_shape", "stages"} <= set(s)
    assert s["input_shape"] == [1, 3, 224, 224] and s["output_shape"] == [1, 1000]
    assert [st["name"] for st in s["stages"]][:2] == ["stem", "stage 0"]
    assert sum(st["params"] for st in s["stages"]) == s["params"]
    assert sum(st["macs"] for st in s["stages"]) == s["macs"]
    assert s["flops"] == 2 * s["macs"]


def test_build_set_changes_the_network(capsys):
    assert main(["build", str(SPECS / "lenet5.yaml"), "--json", "--set", "num_classes=20"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["output_shape"] == [1, 20]
    assert s["params"] == 61706 + 10 * 85  # ten more outputs of the 84-wide last layer


@pytest.mark.parametrize("suffix", [".pt", ".ts", ".onnx"])
def test_build_out_saves_and_never_overwrites(tmp_path, capsys, suffix):
    import torch

    out = tmp_path / f"lenet{suffix}"
    assert main(["build", str(SPECS / "lenet5.yaml"), "--out", str(out)]) == 0
    assert out.stat().st_size > 61706 * 4  # at least the float32 weights
    if suffix == ".pt":
        sd = torch.load(out)
        assert sd["head.fc3.weight"].shape == (10, 84)
    before = out.read_bytes()
    assert main(["build", str(SPECS / "lenet5.yaml"), "--out", str(out)]) == 2
    assert "exists; not overwriting" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_schema_command_matches_committed_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    committed = json.loads((ROOT / "docs" / "netspec.schema.json").read_text())
    assert printed == committed, "docs/netspec.schema.json is stale: run `netspec schema --out docs/netspec.schema.json --force`"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "example" in capsys.readouterr().out


def test_every_shipped_spec_is_valid_under_the_json_schema():
    """What an editor checks: the schema accepts the zoo and rejects a misspelt key."""
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from netspec.spec import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    specs = sorted(SPECS.rglob("*.yaml"))
    assert len(specs) >= 20
    for path in specs:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert errors == [], f"{path.name}: {errors[0].message[:200]}"
    data = yaml.safe_load((SPECS / "lenet5.yaml").read_text())
    data["stages"][0]["blocks"][0]["strides"] = 2
    assert list(validator.iter_errors(data)), "a misspelt key must not validate"
    data["stages"][0]["blocks"][0] = {"type": "my_block", "width": 3}  # a spec's own block: any params
    assert list(validator.iter_errors(data)) == []
