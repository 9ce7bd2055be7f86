"""Fine-tuning: a checkpoint for another number of classes loads all but the classifier (API, build, train),
the image folder decides num_classes, class names travel with the run, predict names the classes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import netspec
from netspec.cli import main
from netspec.finetune import classifier_nodes


def test_classifier_nodes_are_the_last_parametrised_ops_before_each_output():
    assert classifier_nodes(netspec.lower(netspec.load("googlenet"))) == [
        "head.fc", "stages.inception5.aux1.head.fc2", "stages.inception5.aux2.head.fc2"]
    assert classifier_nodes(netspec.lower(netspec.load("squeezenet1_1"))) == ["head.final_conv.conv"]
    (mnv3,) = classifier_nodes(netspec.lower(netspec.load("mobilenet_v3_small")))
    assert mnv3.startswith("head.")


def test_reference_checkpoint_with_1000_classes_fine_tunes_to_3(tmp_path):
    from netspec._torchvision import import_torchvision
    tv = import_torchvision()
    torch.manual_seed(1)
    ref = tv.models.squeezenet1_1()
    path = tmp_path / "squeezenet1_1.pth"
    torch.save(ref.state_dict(), path)
    model = netspec.build("squeezenet1_1", num_classes=3, weights=path)
    report = model.weights_report
    assert [(o, t) for o, _, t, _ in report.skipped] == [("head.final_conv.conv.weight", "classifier.1.weight"),
                                                         ("head.final_conv.conv.bias", "classifier.1.bias")]
    assert report.how == "reference names" and len(report.matches) == len(ref.state_dict()) - 2
    ours, theirs = model.state_dict(), ref.state_dict()
    for m in report.matches:
        assert torch.equal(ours[m.ours], theirs[m.theirs]), m
    head = ours["head.final_conv.conv.weight"]
    assert head.shape == (3, 512, 1, 1) and not head.is_meta and head.abs().sum() > 0  # initialised
    assert model(torch.randn(1, 3, 96, 96)).shape == (1, 3)
    with pytest.raises(netspec.SpecError, match="another shape"):
        netspec.build("squeezenet1_1", num_classes=3, weights=path, strict=True)
    # the same number of classes: nothing skipped, every tensor from the file
    same = netspec.build("squeezenet1_1", weights=path)
    assert same.weights_report.skipped == [] and torch.equal(same.state_dict()["head.final_conv.conv.bias"],
                                                             theirs["classifier.1.bias"])


def test_a_non_classifier_mismatch_is_still_an_error(tmp_path):
    path = tmp_path / "lenet.pt"
    assert main(["build", "lenet5", "--set", "stages[0].blocks[0].out=8", "--out", str(path)]) == 0
    with pytest.raises(netspec.SpecError, match="another shape"):
        netspec.build("lenet5", num_classes=3, weights=path)


def _image_folder(root: Path) -> None:
    """Three easy classes of 32x32 grey images (a disc, a cross, stripes) with noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    shapes = {"disc": ((xx - 16) ** 2 + (yy - 16) ** 2 < 100), "cross": (abs(xx - 16) < 3) | (abs(yy - 16) < 3),
              "stripes": (xx // 4) % 2 == 1}
    for name, mask in shapes.items():
        (root / name).mkdir(parents=True)
        for i in range(10):
            img = np.clip(mask * 200.0 + rng.normal(0, 30, mask.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img, "L").save(root / name / f"{i}.png")


def test_train_from_weights_on_an_image_folder_then_predict(tmp_path, capsys):
    _image_folder(tmp_path / "shapes")
    pretrained = tmp_path / "lenet10.pt"
    assert main(["build", "lenet5", "--out", str(pretrained)]) == 0  # a 10-class checkpoint
    capsys.readouterr()
    run = tmp_path / "run"
    common = ["--data", str(tmp_path / "shapes"), "--set", "train.epochs=2", "--set", "train.batch_size=8",
              "--no-progress"]
    assert main(["train", "lenet5", "--weights", str(pretrained), "--out", str(run), *common]) == 0
    out, err = capsys.readouterr()
    assert "num_classes 3 from the classes of" in err and "(cross, disc, stripes); the spec's head had 10" in err
    assert "fine-tuning from" in out and "8 tensors loaded" in out
    assert "head.fc3.weight (3, 84)  <-  head.fc3.weight (10, 84)" in out
    assert "val_acc5" not in out  # 3 classes: top-5 would always read 100 %
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "val_acc5" not in rows[-1] and "val_acc1" in rows[-1]
    assert json.loads((run / "classes.json").read_text()) == ["cross", "disc", "stripes"]
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["head.fc3.weight"].shape == (3, 84)
    start = torch.load(pretrained, weights_only=True)
    key = next(k for k in start if k.endswith("conv1.weight"))
    assert not torch.equal(best[key], start[key])  # it trained from there...
    assert (best[key] - start[key]).abs().max() < 0.5 * start[key].abs().max()  # ...not from a new initialisation

    images = [str(tmp_path / "shapes" / c / "0.png") for c in ("disc", "stripes")]
    assert main(["predict", "lenet5", "--weights", str(run / "best.pt"), *images, "--top", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(images[0] + ": ")
    assert sorted(w for w in lines[0].split()[1::2]) == ["cross", "disc", "stripes"]  # top-5 capped at 3
    assert main(["predict", "lenet5", "--weights", str(run / "best.pt"), images[0], "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert abs(sum(t["probability"] for t in result["top"]) - 1) < 1e-5

    assert main(["eval", "lenet5", "--weights", str(run / "best.pt"), "--data", str(tmp_path / "shapes")]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "top-5" not in out

    # disagreements are errors, not a silent head
    assert main(["train", "lenet5", "--out", str(tmp_path / "r2"), *common, "--set", "num_classes=5"]) == 2
    assert "disagrees with the 3 classes" in capsys.readouterr().err
    assert main(["train", "lenet5", "--weights", str(pretrained), "--resume", "--out", str(run), *common]) == 2
    assert main(["predict", "lenet5", "--weights", str(run / "best.pt"), str(tmp_path / "missing.png")]) == 2
    assert main(["build", "lenet5", "--set", "num_classes=3", "--weights", str(pretrained), "--strict"]) == 2
