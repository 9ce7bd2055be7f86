"""Hostile specs, arguments, checkpoints and data (issue 22): each reproducer ends in a located exit 2
within its bound, never a hang, a memory bomb or a traceback (exit 1). Commands run in-process."""
from __future__ import annotations

import copy
import time

import pytest
import yaml

from conftest import SPECS
from netspec.cli import main
from netspec.expr import ExprError, evaluate

LENET = str(SPECS / "lenet5.yaml")
LENET_DATA = yaml.safe_load((SPECS / "lenet5.yaml").read_text())


def rc(argv) -> int:
    """main()'s exit status; argparse's own errors exit 2 through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("text,message", [
    ("round($a, -100000000)", "at most 30"),
    ("'%01900000000d' % $a", "larger than 10,000"),
    ("'%.20000f' % $a", "larger than 10,000"),
    ("'%*d' % ($a, 1)", "'*' widths"),
    ("-$s", "unary - needs a number"),
    ("+[1]", "unary + needs a number"),
    ("min(1, 2, **$a)", "'**' arguments"),
])
def test_expression_work_is_bounded(text, message):
    start = time.perf_counter()
    with pytest.raises(ExprError, match=message.replace("*", r"\*").replace("+", r"\+")):
        evaluate(text, {"a": 3, "s": "x"})
    assert time.perf_counter() - start < 1.0


def test_bounded_expressions_still_work():
    assert evaluate("'%5.2f' % $a", {"a": 1.234}) == " 1.23"
    assert evaluate("round($a, 2) + -$a", {"a": 1.0}) == 0.0
    assert evaluate("min(1, $a)", {"a": 0}) == 0


def _write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_spec_file_size_bound(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("name: x\nreference: " + "a" * (2 << 20) + "\n")
    start = time.perf_counter()
    assert rc(["validate", str(path)]) == 2
    assert time.perf_counter() - start < 5
    assert f"{path}:1:1: the spec is larger than 1,048,576 bytes" in capsys.readouterr().err


def test_a_mapping_as_a_key_is_located(tmp_path, capsys):
    path = tmp_path / "key.yaml"
    path.write_text("name: x\n? [a, {b: 1}]\n: 3\n")
    assert rc(["validate", str(path)]) == 2
    assert f"{path}:2:3: a mapping or list cannot be a key" in capsys.readouterr().err


def test_set_values_go_through_the_spec_loader(capsys):
    assert rc(["validate", LENET, "--set", "num_classes=!!python/object/apply:os.system [echo]"]) == 2
    assert "unsupported YAML tag" in capsys.readouterr().err
    bomb = "vars.x=[" + ",".join(["[1,2,3,4,5,6,7,8,9,10]"] * 25_000) + "]"
    assert rc(["validate", LENET, "--set", bomb]) == 2
    assert "more than 200,000 values" in capsys.readouterr().err
    assert rc(["validate", LENET, "--set", "num_classes=12"]) == 0


@pytest.mark.parametrize("value", ["[relu]", "{type: relu}", "3"])
@pytest.mark.parametrize("command", ["validate", "build", "eject"])
def test_a_type_expression_must_evaluate_to_a_name(value, command, tmp_path, capsys):
    """Fuzz seeds 10060 / 12862: `type: $block` with the variable a list or mapping was a TypeError (exit 1)."""
    data = copy.deepcopy(LENET_DATA)
    data["vars"] = {**data.get("vars", {}), "act": yaml.safe_load(value)}
    data["stages"][0]["blocks"].insert(1, {"type": "$act"})
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    extra = ["-o", str(tmp_path / "out.py")] if command == "eject" else []
    assert rc([command, str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert "type must name an op or a block" in err and "t.yaml:" in err and ".type" in err


def test_expand_checks_repeats_before_unrolling(tmp_path, capsys):
    data = copy.deepcopy(LENET_DATA)
    data["stages"][0]["blocks"][2]["repeat"] = "$num_classes * 10**9"
    start = time.perf_counter()
    assert rc(["expand", _write(tmp_path, data)]) == 2
    assert time.perf_counter() - start < 5
    assert "repeat 10,000,000,000 is more than the limit" in capsys.readouterr().err


def test_a_network_without_ops_is_refused(tmp_path, capsys):
    data = {"name": "e", "input": {"channels": 3, "size": 8}, "stem": [], "stages": [{"name": "s", "blocks": []}],
            "head": []}
    path = _write(tmp_path, data)
    for command in ("validate", "analyze"):
        assert rc([command, path]) == 2
        assert "the network has no ops" in capsys.readouterr().err


@pytest.mark.parametrize("argv,option", [
    (["scale", LENET, "--search", "--target", "inf"], "--target"),
    (["scale", LENET, "--search", "--target", "nan"], "--target"),
    (["scale", LENET, "--search", "--tolerance", "inf"], "--tolerance"),
    (["scale", LENET, "--search", "--grid", "1e-30000000"], "--grid"),
    (["scale", LENET, "--top", "0"], "--top"),
    (["eval", LENET, "--weights", "x.pt", "--data", "fake", "--batch-size", "0"], "--batch-size"),
    (["eval", LENET, "--weights", "x.pt", "--data", "fake", "--batch-size", "-5"], "--batch-size"),
    (["train", LENET, "--data", "fake", "--workers", "-1", "--out", "r"], "--workers"),
    (["train", LENET, "--data", "fake", "--fake-images", "-3", "--out", "r"], "--fake-images"),
    (["train", LENET, "--data", "fake", "--val-split", "nan", "--out", "r"], "--val-split"),
    (["bench", LENET, "--batch", "0"], "--batch"),
])
def test_numeric_options_are_validated(argv, option, capsys):
    start = time.perf_counter()
    assert rc(argv) == 2
    assert time.perf_counter() - start < 5
    assert f"argument {option}" in capsys.readouterr().err


def test_phis_error_names_the_option(capsys):
    assert rc(["scale", LENET, "--phis", "nan"]) == 2
    assert "--phis: --phis expects numbers from 0 to 16" in capsys.readouterr().err


def test_scale_work_is_bounded_by_networks_times_ops(monkeypatch, capsys):
    from netspec.commands import scale
    monkeypatch.setattr(scale, "MAX_WORK", 30)  # LeNet-5 has 12 ops: three networks are 36
    assert rc(["scale", LENET, "--phis", "1,2"]) == 2
    err = capsys.readouterr().err
    assert "--phis would lower 3 networks of about 13 ops each" in err
    assert rc(["scale", str(SPECS / "efficientnet.yaml"), "--search", "--target", "2", "--grid", "0.1"]) == 2
    assert "--search would lower" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "-1", "lots"])
def test_max_params_environment_variable(monkeypatch, value):
    from netspec.errors import SpecError
    from netspec.limits import default_max_params
    monkeypatch.setenv("NETSPEC_MAX_PARAMS", value)
    with pytest.raises(SpecError, match="NETSPEC_MAX_PARAMS"):
        default_max_params()


def test_outputs_that_are_folders_or_dangling_links(tmp_path, capsys):
    folder = tmp_path / "model.py"
    folder.mkdir()
    assert rc(["eject", LENET, "-o", str(folder), "--force"]) == 2
    assert "it is a folder" in capsys.readouterr().err
    link = tmp_path / "link.py"
    link.symlink_to(tmp_path / "elsewhere" / "target.py")
    assert rc(["eject", LENET, "-o", str(link), "--force"]) == 2
    assert "dangling symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()
    dot_link = tmp_path / "link.dot"
    dot_link.symlink_to(tmp_path / "elsewhere" / "target.dot")
    assert rc(["render", LENET, "-o", str(dot_link), "--force"]) == 2
    assert "dangling symbolic link" in capsys.readouterr().err
    (tmp_path / "folder.dot").mkdir()
    assert rc(["render", LENET, "-o", str(tmp_path / "folder.dot"), "--force"]) == 2
    assert "is a folder" in capsys.readouterr().err
    pytest.importorskip("torch")
    (tmp_path / "model.pt").mkdir()
    assert rc(["build", LENET, "--out", str(tmp_path / "model.pt"), "--force"]) == 2
    assert "it is a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- checkpoints and data

def test_checkpoint_with_non_string_keys(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    for key in (3, (1, 2)):
        path = tmp_path / "bad.pt"
        torch.save({key: torch.zeros(2)}, path)
        assert rc(["build", LENET, "--weights", str(path)]) == 2
        assert "keys that are not names" in capsys.readouterr().err


def test_non_finite_weights_are_refused_unless_allowed(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    import netspec
    state = netspec.build(LENET).state_dict()
    key = next(iter(state))
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save(state, path)
    assert rc(["build", LENET, "--weights", str(path)]) == 2
    assert f"1 tensors of the checkpoint hold NaN or infinite values: {key}" in capsys.readouterr().err
    assert rc(["build", LENET, "--weights", str(path), "--allow-nonfinite"]) == 0
    assert "warning:" in capsys.readouterr().err


@pytest.mark.parametrize("change,message", [
    ({"epoch": -5}, "'epoch' is -5"),
    ({"epoch": "3"}, "'epoch' is '3'"),
    ({"epoch": None}, "'epoch' is None"),
    ({"best_acc1": float("nan")}, "'best_acc1'"),
    ({"optimizer": [1]}, "'optimizer' is missing"),
])
def test_tampered_resume_checkpoint(tmp_path, change, message):
    torch = pytest.importorskip("torch")
    from netspec.errors import SpecError
    from netspec.train.rundir import load_resume_checkpoint
    good = {"model": {}, "optimizer": {}, "scheduler": {}, "epoch": 2, "best_acc1": 50.0}
    path = tmp_path / "checkpoint.pt"
    torch.save(good, path)
    assert load_resume_checkpoint(path)["epoch"] == 2
    torch.save({**good, **change}, path)
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        load_resume_checkpoint(path)


def test_decompression_bomb_in_an_image_folder(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from PIL import Image
    from netspec.errors import SpecError
    from netspec.train.data import _Loader
    path = tmp_path / "bomb.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4,096 pixels is over twice the limit
    with pytest.raises(SpecError, match="image refused"):
        _Loader(3)(str(path))


def test_eval_with_a_foreign_state_dict(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    for bad in ({3: torch.zeros(2)}, [torch.zeros(2)], {"model": {"x": torch.zeros(2)}}):
        path = tmp_path / "best.pt"
        torch.save(bad, path)
        assert rc(["eval", LENET, "--weights", str(path), "--data", "fake", "--fake-images", "8"]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "Traceback" not in err


def test_resume_with_a_checkpoint_of_another_network(tmp_path, capsys):
    """The issue's reproducer: `train --resume` after the spec changed is exit 2 naming the checkpoint."""
    torch = pytest.importorskip("torch")
    run = tmp_path / "run"
    run.mkdir()
    state = {"model": {"other.weight": torch.zeros(3)}, "optimizer": {}, "scheduler": {}, "epoch": 1,
             "best_acc1": 10.0}
    torch.save(state, run / "checkpoint.pt")
    argv = ["train", LENET, "--data", "fake", "--fake-images", "8", "--out", str(run), "--resume", "--no-progress"]
    assert rc(argv) == 2
    err = capsys.readouterr().err
    assert f"{run / 'checkpoint.pt'}: --resume: the checkpoint does not match this run" in err
    torch.save({**state, "epoch": -5}, run / "checkpoint.pt")
    assert rc(argv) == 2
    assert "'epoch' is -5, not a count of epochs" in capsys.readouterr().err
