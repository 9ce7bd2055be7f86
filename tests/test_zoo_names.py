"""Zoo names: derived from the specs, every one loads, paths win, typos get 'did you mean', missing
extras are exit 2 with the pip line (no torch needed for the name part)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

import netspec
from netspec import zoo
from netspec.analysis.costs import total_params
from netspec.cli import main
from netspec.scale import apply_scaling

ROOT = Path(__file__).resolve().parents[1]


def test_torchvision_spellings_and_family_names():
    names = netspec.list_models()
    for n in ("mobilenet_v2", "efficientnet_b3", "efficientnet", "resnet50", "resnext50_32x4d", "wide_resnet50_2",
              "vgg16_bn", "densenet121", "shufflenet_v2_x1_0", "efficientnet_v2_s", "squeezenet1_1",
              "mobilenet_v1_0.5_160", "googlenet_paper", "vgg_a_lrn"):
        assert n in names, n
    assert netspec.list_models("efficientnet_b?") == [f"efficientnet_b{i}" for i in range(8)]
    assert netspec.list_models("nothing*") == []
    assert len(names) == len(set(names))


def test_every_listed_name_validates_and_lowers():
    for name in netspec.list_models():
        spec = apply_scaling(netspec.load(name))
        assert netspec.lower(spec, aux=False).number_of_nodes() > 1, name


def test_names_follow_the_specs_in_the_folder(tmp_path, monkeypatch):
    """A spec added to the zoo folder gets its names with no code change (issue 18 adds specs concurrently)."""
    for f in ("resnet.yaml",):
        shutil.copy(ROOT / "specs" / f, tmp_path)
    data = yaml.safe_load((ROOT / "specs" / "mobilenet_v2.yaml").read_text())
    data["name"] = "toynet"
    data["variants"] = {"tiny": {"width": 0.35}, "toynet_big": {"width": 1.4},
                        "b": {"width": 0.5, "set": {"reference_keys": "torchvision/toynet_b_ref"}}}
    (tmp_path / "toynet.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(zoo, "zoo_dir", lambda: tmp_path)
    assert netspec.list_models("toy*") == ["toynet", "toynet_b_ref", "toynet_big", "toynet_tiny"]
    path, variant = zoo.resolve("toynet_tiny")
    assert Path(path).name == "toynet.yaml" and variant == "tiny"
    assert "resnet18" in netspec.list_models()


def test_name_and_variant_agree():
    assert netspec.load("efficientnet_b3").name == netspec.load("efficientnet", variant="b3").name
    spec = apply_scaling(netspec.load("efficientnet", variant="b3"))
    assert total_params(netspec.lower(spec)) == 12_233_232
    with pytest.raises(netspec.SpecError, match="cannot also be variant b4"):
        netspec.load("efficientnet_b3", variant="b4")
    assert netspec.load("EfficientNet_B3").name == netspec.load("efficientnet_b3").name  # case folded


def test_an_existing_path_wins_over_a_name(tmp_path, monkeypatch):
    own = yaml.safe_load((ROOT / "specs" / "lenet5.yaml").read_text())
    own["name"] = "my_local_resnet50"
    (tmp_path / "resnet50").write_text(yaml.safe_dump(own))
    monkeypatch.chdir(tmp_path)
    assert netspec.load("resnet50").name == "my_local_resnet50"


def test_unknown_name_is_did_you_mean_exit_2(capsys):
    assert main(["validate", "mobilenet_v22"]) == 2
    err = capsys.readouterr().err
    assert "no such file or zoo model: 'mobilenet_v22'" in err and "did you mean 'mobilenet_v2'?" in err
    with pytest.raises(netspec.SpecError, match="did you mean 'resnet50'"):
        netspec.load("resnet500")


def test_list_json_and_text(capsys):
    assert main(["list", "resnet18", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row == {"name": "resnet18", "family": "resnet", "variant": "resnet18", "params": 11_689_512,
                   "macs": 1_814_073_344, "resolution": 224, "reference": row["reference"]}
    assert row["reference"].startswith("torchvision.models.resnet18")
    assert main(["list", "vgg16*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "family", "params", "MACs", "res", "reference"]
    assert [r.split()[0] for r in out[2:]] == ["vgg16", "vgg16_bn"]


@pytest.mark.parametrize("name", ["resnet50", "resnet18", "mobilenet_v2", "efficientnet_b3"])
def test_show_prints_a_spec_that_validates_where_it_is_saved(name, tmp_path, capsys):
    assert main(["show", name]) == 0
    text = capsys.readouterr().out
    first = text.splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=file://")
    assert Path(first.split("file://", 1)[1]).is_file()
    copy = tmp_path / "my.yaml"
    copy.write_text(text)
    mine, ref = apply_scaling(netspec.load(str(copy))), apply_scaling(netspec.load(name))
    assert total_params(netspec.lower(mine)) == total_params(netspec.lower(ref))
    assert main(["show", "resnet5O"]) == 2


def test_help_examples_use_names(capsys):
    from netspec.cli import COMMANDS, make_parser
    parser = make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in COMMANDS:
        assert "specs/" not in (sub.choices[name].epilog or ""), name


def test_missing_extra_is_exit_2_with_the_pip_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    assert main(["build", "lenet5", "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "needs onnx" in err and "pip install 'netspec[interop]'" in err and "bug" not in err
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert main(["train", "lenet5", "--data", "digits", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "needs scikit-learn" in err and "pip install 'netspec[train]'" in err
