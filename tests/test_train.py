"""netspec train / eval: the recipe section, the loss, the schedules, the run folder, resume after a kill,
DDP with two CPU processes, and LeNet-5 learning the digits."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import netspec
from netspec.recipe import Recipe, interpolate, stage_of, stage_settings
from netspec.train.optim import LRSchedule, WeightEMA, recipe_loss

from conftest import ROOT, SPECS

LENET = str(SPECS / "lenet5.yaml")


def cli(*args, timeout=300, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


# --------------------------------------------------------------------------- the recipe section

def test_recipe_errors_are_located(write_spec):
    path = write_spec("""
        name: t
        input: {channels: 1, size: 8}
        num_classes: 10
        head: [{type: flatten}, {type: linear, out: $num_classes}]
        train:
          epochs: 3
          optimizer: {type: rmsprop, nesterov: true}
          schedule: {type: cosine, milestone: [3]}
          augment: {hflp: 0.5}
          label_smoothing: 1.5
        """)
    with pytest.raises(netspec.SpecError) as err:
        netspec.load(path)
    text = str(err.value)
    assert "spec.yaml:7:14: train.optimizer: nesterov does not apply to optimizer 'rmsprop'" in text
    assert "spec.yaml:8:28: train.schedule.milestone: unknown key 'milestone'" in text
    assert "did you mean 'milestones'?" in text
    assert "spec.yaml:9:13: train.augment.hflp: unknown key 'hflp'" in text and "did you mean 'hflip'?" in text
    assert "spec.yaml:10:20: train.label_smoothing: Input should be less than 1" in text


def test_recipe_overrides_and_aux_names(write_spec):
    spec = netspec.load(LENET, overrides=["train.epochs=30", "train.optimizer.lr=0.2"])
    assert spec.train.epochs == 30 and spec.train.optimizer.lr == 0.2
    with pytest.raises(netspec.SpecError) as err:
        netspec.load(SPECS / "googlenet.yaml", overrides=["train.aux_weights.aux3=0.3"])
    assert "no auxiliary head 'aux3'" in str(err.value) and "did you mean 'aux" in str(err.value)


def test_expand_and_schema_keep_the_recipe():
    r = cli("expand", LENET, "--set", "train.epochs=5")
    assert r.returncode == 0, r.stderr
    assert "train:" in r.stdout and "epochs: 5" in r.stdout
    from netspec.spec import json_schema
    assert "train" in json_schema()["properties"]
    assert json.loads((ROOT / "docs" / "netspec.schema.json").read_text())["properties"].get("train")


# --------------------------------------------------------------------------- loss, schedules

def test_loss_weights_aux_heads_and_smooths_labels_by_hand():
    recipe = Recipe(label_smoothing=0.1, aux_weights={"aux1": 0.3, "aux2": 0.3})
    g = torch.Generator().manual_seed(0)
    main, a1, a2 = (torch.randn(4, 5, generator=g) for _ in range(3))
    y = torch.tensor([0, 3, 1, 4])

    def smoothed_ce(logits):  # (1 - eps) * NLL + eps * mean over classes of -log p
        logp = logits.log_softmax(1)
        nll = -logp[torch.arange(4), y]
        return ((1 - 0.1) * nll + 0.1 * (-logp.mean(1))).mean()

    expected = smoothed_ce(main) + 0.3 * smoothed_ce(a1) + 0.3 * smoothed_ce(a2)
    got = recipe_loss((main, a1, a2), y, ["logits", "aux1", "aux2"], recipe)
    assert torch.allclose(got, expected, atol=1e-6)
    # a head without a weight does not count; eval output (a tensor) is the main loss alone
    only_main = recipe_loss((main, a1), y, ["logits", "other"], recipe)
    assert torch.allclose(only_main, smoothed_ce(main), atol=1e-6)
    assert torch.allclose(recipe_loss(main, y, ["logits"], recipe), smoothed_ce(main), atol=1e-6)


def test_progressive_schedule_interpolates_linearly():
    r = Recipe.model_validate({"epochs": 8, "augment": {"randaugment": {"magnitude": 9}},
                               "progressive": {"stages": 4, "size": [128, 300], "dropout": [0.1, 0.3],
                                               "randaugment": [5, 15], "mixup": [0, 0.4]}})
    stages = [stage_settings(r, e, (384, 384)) for e in range(8)]
    assert [s["stage"] for s in stages] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [s["size"][0] for s in stages[::2]] == [128, round(128 + 172 / 3), round(128 + 344 / 3), 300]
    for k, s in enumerate(stages[::2]):
        assert s["dropout"] == pytest.approx(0.1 + 0.2 * k / 3)
        assert s["randaugment"] == pytest.approx(5 + 10 * k / 3)
        assert s["mixup"] == pytest.approx(0.4 * k / 3)
    assert stage_of(349, 350, 4) == 3 and stage_of(87, 350, 4) == 0 and stage_of(88, 350, 4) == 1
    assert interpolate(1, 2, 0, 1) == 1
    with pytest.raises(ValueError, match="more than epochs"):
        Recipe.model_validate({"epochs": 2, "progressive": {"stages": 4}})


def test_learning_rate_schedules():
    def sched(**kw):
        return LRSchedule(Recipe.model_validate({"schedule": kw}).schedule, 1.0, 10)
    s = sched(type="step", milestones=[3, 6], gamma=0.1)
    assert [round(s.lr(t), 6) for t in (0, 2.9, 3, 6.5)] == [1, 1, 0.1, 0.01]
    s = sched(type="exponential", every=2.4, gamma=0.97, warmup_epochs=1)
    assert s.lr(0.5) == pytest.approx(0.5) and s.lr(2.3) == 1 and s.lr(2.4) == pytest.approx(0.97)
    assert s.lr(5) == pytest.approx(0.97 ** 2)
    s = sched(type="cosine")
    assert s.lr(5) == pytest.approx(0.5) and s.lr(10) == pytest.approx(0)
    s = sched(type="plateau", patience=1, gamma=0.1)
    for acc in (0.5, 0.6, 0.6, 0.6):
        s.end_epoch(acc)
    assert s.lr(4) == pytest.approx(0.1)


def test_ema_follows_the_weights():
    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(model, Recipe.model_validate({"ema": {"decay": 0.5, "warmup": False}}).ema)
    before = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(2.0)
    ema.update(model)
    assert torch.allclose(ema.model.weight, before + 1.0)


# --------------------------------------------------------------------------- the run

def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_resume_after_sigkill_is_bit_identical(tmp_path, capsys):
    from netspec.cli import main

    common = ["train", LENET, "--data", "digits", "--set", "train.epochs=2", "--no-progress"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): same kernels, same rounding
    try:
        assert main([*common, "--out", str(tmp_path / "full")]) == 0  # the uninterrupted run, in this process
    finally:
        torch.set_num_threads(threads)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "netspec", *common, "--out", str(killed)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.1)  # into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (killed / "checkpoint.pt").exists()
    done = len((killed / "metrics.jsonl").read_text().splitlines())
    assert done < 2, "the run finished before it was killed"
    capsys.readouterr()
    assert main([*common, "--out", str(killed)]) == 2  # no silent overwrite
    assert "--resume continues it" in capsys.readouterr().err
    resumed = cli(*common, "--out", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = _weights(tmp_path / "full" / "checkpoint.pt"), _weights(killed / "checkpoint.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    epochs = [json.loads(l)["epoch"] for l in (killed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    for name in ("best.pt", "curves.png", "spec.yaml"):
        assert (killed / name).exists()
    # the resolved spec reproduces the run; eval reads best.pt
    assert main(["eval", str(killed / "spec.yaml"), "--weights", str(killed / "best.pt"), "--data", "digits"]) == 0
    best = max(json.loads(l)["val_acc1"] for l in (killed / "metrics.jsonl").read_text().splitlines())
    assert f"top-1 {best:.2%}" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--data", "digitz"], "unknown dataset 'digitz'"),
    (["--data", "/no/such/folder"], "does not exist"),
    (["--data", "digits", "--set", "train.optimizer.betas=[0.9, 0.99]"], "betas does not apply to optimizer 'sgd'"),
    (["--data", "digits", "--set", "train.optimizr.lr=0.1"], "did you mean 'optimizer'?"),
])
def test_bad_input_exits_2(tmp_path, capsys, args, message):
    from netspec.cli import main

    assert main(["train", LENET, "--out", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_image_folder_with_wrong_channels_exits_2(tmp_path, capsys):
    from PIL import Image

    from netspec.cli import main

    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / "img" / split / cls).mkdir(parents=True)
            Image.new("RGB", (12, 12), (10, 200, 30)).save(tmp_path / "img" / split / cls / "0.png")
    assert main(["train", LENET, "--data", str(tmp_path / "img"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "images have 3 channel(s)" in err and "--set input.channels=3" in err
    # with the channels matching, the folder trains
    assert main(["train", LENET, "--data", str(tmp_path / "img"), "--out", str(tmp_path / "run"), "--set",
                 "input.channels=3", "--set", "train.epochs=1", "--set", "train.batch_size=2", "--workers", "0",
                 "--no-progress"]) == 0
    assert "2 train / 2 val images" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_ddp_two_processes_keep_identical_weights(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ddp"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "netspec", "train", LENET, "--data", "digits",
           "--out", str(out), "--set", "train.epochs=1", "--set", "train.batch_size=32", "--check-replicas"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = 1438 // 2 // 32
    assert f"replicas: 2 processes held identical weights after each of {steps} steps" in r.stdout
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1] and all(row["world_size"] == 2 for row in rows)
    # resume works the same way with two processes
    more = cmd[:cmd.index("train.epochs=1")] + ["train.epochs=2", "--set", "train.batch_size=32", "--check-replicas",
                                                "--resume"]
    r = subprocess.run(more, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming" in r.stdout and "identical weights after each of" in r.stdout
    assert [json.loads(l)["epoch"] for l in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_lenet5_learns_the_digits(tmp_path):
    """The shipped recipe reaches >= 97 % validation top-1 on the digits."""
    r = cli("train", LENET, "--data", "digits", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == netspec.load(LENET).train.epochs
    assert rows[-1]["val_acc1"] >= 0.97, rows[-1]
    for key in ("epoch", "lr", "train_loss", "val_loss", "val_acc1", "val_acc5", "images_per_s", "res", "seconds",
                "world_size"):
        assert key in rows[-1]
    assert 0 <= rows[-1]["val_acc5"] <= 1 and rows[-1]["val_acc5"] >= rows[-1]["val_acc1"]


# --------------------------------------------------------------------------- the zoo's recipes

ZOO_RECIPES = ["lenet5", "alexnet", "alexnet_2012", "googlenet", "inception_v3", "bn_inception", "efficientnet",
               "efficientnet_v2", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
               "shufflenet_v1", "shufflenet_v2", "squeezenet1_0", "squeezenet1_1"]


@pytest.mark.parametrize("name", ZOO_RECIPES)
def test_zoo_specs_ship_a_cited_recipe(name):
    train = netspec.load(SPECS / f"{name}.yaml").train
    assert train is not None and len(train.doc) > 80


def test_efficientnet_v2_variants_follow_table_6_and_the_command_line_wins():
    from netspec.scale import apply_scaling

    table6 = {"s": ((128, 300), (5, 15), (0, 0), (0.1, 0.3)), "m": ((128, 380), (5, 20), (0, 0.2), (0.1, 0.4)),
              "l": ((128, 380), (5, 25), (0, 0.4), (0.1, 0.5))}
    spec = netspec.load(SPECS / "efficientnet_v2.yaml")
    for variant, (size, ra, mixup, dropout) in table6.items():
        p = apply_scaling(spec, variant=variant).train.progressive
        assert (p.stages, p.size, p.randaugment, p.mixup, p.dropout) == (4, size, ra, mixup, dropout)
    spec = netspec.load(SPECS / "efficientnet_v2.yaml", overrides=["train.progressive.size=[32, 64]"])
    p = apply_scaling(spec, variant="l").train.progressive
    assert p.size == (32, 64) and p.dropout == (0.1, 0.5)


def test_aux_heads_train_with_their_weights(tmp_path):
    """GoogLeNet on fake data: the training forward returns three logits and the loss takes all three."""
    from netspec.scale import apply_scaling

    spec = apply_scaling(netspec.load(SPECS / "googlenet.yaml", overrides=["num_classes=4"]), resolution=64)
    model = netspec.compile(netspec.lower(spec)).train()
    out = model(torch.zeros(2, 3, 64, 64))
    assert isinstance(out, tuple) and len(out) == 3
    y = torch.tensor([0, 1])
    loss = recipe_loss(out, y, model.output_names, spec.train)
    assert torch.allclose(loss, F.cross_entropy(out[0], y) + 0.3 * F.cross_entropy(out[1], y)
                          + 0.3 * F.cross_entropy(out[2], y))
