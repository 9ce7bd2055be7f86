"""The run directory: metrics.jsonl, checkpoint.pt (atomic), best.pt, curves.png, spec.yaml.

Nothing in an existing run is replaced unless the user asked: `--resume` continues from checkpoint.pt
(dropping metric lines of epochs after it, so each epoch is logged once), `--force` starts over.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import torch

from ..errors import SourceLoc, SpecError

FILES = ("metrics.jsonl", "checkpoint.pt", "best.pt", "curves.png", "spec.yaml")


def rng_states() -> dict:
    out: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: a kill leaves the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a run folder is shared like any output
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file
        raise SpecError(f"cannot read this checkpoint ({type(exc).__name__}: {str(exc)[:200]})",
                        SourceLoc(str(path)), "start over with --force") from None


def load_resume_checkpoint(path: Path) -> dict:
    """A run's checkpoint.pt for --resume, its structure checked."""
    state = load_checkpoint(path)
    problem = checkpoint_problem(state)
    if problem:
        raise SpecError(f"--resume: this is not a netspec training checkpoint: {problem}", SourceLoc(str(path)),
                        "the file is damaged or was written by something else; start over with --force")
    return state


def checkpoint_problem(state) -> Optional[str]:
    """What is wrong with the structure of a resumed checkpoint (a tampered `epoch: -5` would train
    with a negative learning rate), or None."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a dict"
    for key in ("model", "optimizer", "scheduler"):
        if not isinstance(state.get(key), dict):
            return f"'{key}' is missing or not a dict"
    epoch, best = state.get("epoch"), state.get("best_acc1")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= 1_000_000:
        return f"'epoch' is {epoch!r}, not a count of epochs"
    if not isinstance(best, (int, float)) or isinstance(best, bool) or not -1.0 <= best <= 100.0:
        return f"'best_acc1' is {best!r}, not an accuracy"
    return None


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._last_plot = time.monotonic()

    def file(self, name: str) -> Path:
        return self.path / name

    def prepare(self, *, resume: bool, force: bool, main: bool) -> Optional[dict]:
        """Check (every process) and set up (main process) the folder; the checkpoint to resume from, if any."""
        where = SourceLoc(str(self.path))
        if self.path.exists() and not self.path.is_dir():
            raise SpecError("is a file, not a folder", where, "choose another --out")
        ours = [n for n in FILES if self.file(n).exists()]
        if resume and not self.path.is_dir():
            raise SpecError("--resume: the run folder does not exist", where, "drop --resume to start a new run")
        if ours and not (resume or force):
            raise SpecError(f"holds a run ({', '.join(ours)}); not overwriting it", where,
                            "--resume continues it, --force starts over, or choose another --out")
        state = None
        if resume and self.file("checkpoint.pt").exists():
            state = load_resume_checkpoint(self.file("checkpoint.pt"))
        if main:
            self.path.mkdir(parents=True, exist_ok=True)
            if force and not resume:
                for n in ours:
                    self.file(n).unlink()
            else:
                self.truncate_metrics(state["epoch"] if state else 0)
        return state

    def truncate_metrics(self, epochs: int) -> None:
        """Keep the lines of epochs 1..`epochs` (a killed run may have logged one past its checkpoint)."""
        path = self.file("metrics.jsonl")
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["epoch"] <= epochs:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                break  # a line cut by the kill: nothing after it is complete
        self.write_text("metrics.jsonl", "".join(k + "\n" for k in kept))

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.file(name), lambda f: f.write(text.encode("utf-8")))

    def append_metrics(self, record: dict) -> None:
        with open(self.file("metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def save_checkpoint(self, state: dict) -> None:
        atomic_write(self.file("checkpoint.pt"), lambda f: torch.save(state, f))

    def save_weights(self, name: str, state_dict: dict) -> None:
        atomic_write(self.file(name), lambda f: torch.save(state_dict, f))

    def read_metrics(self) -> list[dict]:
        path = self.file("metrics.jsonl")
        return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()] \
            if path.exists() else []

    def curves_due(self) -> bool:
        return time.monotonic() - self._last_plot > 60

    def plot_curves(self) -> None:
        """Loss and accuracy against epoch (matplotlib, no display needed)."""
        rows = self.read_metrics()
        if not rows:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ep = [r["epoch"] for r in rows]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        a.plot(ep, [r["train_loss"] for r in rows], label="train")
        a.plot(ep, [r["val_loss"] for r in rows], label="val")
        a.set(xlabel="epoch", ylabel="loss", title="loss")
        a.legend()
        b.plot(ep, [r["val_acc1"] for r in rows], label="val top-1")
        if all("val_acc5" in r for r in rows):  # not with fewer than 5 classes
            b.plot(ep, [r["val_acc5"] for r in rows], label="val top-5")
        b.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
        b.legend()
        fig.tight_layout()
        atomic_write(self.file("curves.png"), lambda f: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)
        self._last_plot = time.monotonic()
