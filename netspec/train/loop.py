"""The training loop: one process, or many under torchrun (DistributedDataParallel).

Determinism: every epoch starts by seeding torch's, Python's and NumPy's generators from (recipe seed, epoch,
rank), and the sampler shuffles with (seed, epoch). An epoch therefore depends only on the weights and
optimizer state it starts from, which the checkpoint holds, so a run resumed after a kill ends with the same
weights, bit for bit, as one that never stopped (single process, CPU).
"""
from __future__ import annotations

import gc
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..errors import SourceLoc, SpecError
from ..analysis.budget import check_run_memory
from ..recipe import Recipe, stage_settings
from . import data as D
from . import rundir
from .optim import LRSchedule, WeightEMA, base_lr, make_optimizer, recipe_loss


@dataclass
class Options:
    data: str
    out: Optional[Path]
    resume: bool = False
    force: bool = False
    device: Optional[str] = None        # None: cuda if available, else cpu
    workers: Optional[int] = None       # None: 0 for in-memory data, else min(4, cores)
    val_split: float = 0.2
    fake_images: int = 1024
    sync_bn: bool = False
    check_replicas: bool = False
    amp: bool = True                    # mixed precision on CUDA
    progress: Optional[bool] = None     # None: a bar on a terminal, plain lines otherwise
    spec_yaml: str = ""                 # the resolved spec, written to RUN_DIR/spec.yaml
    init: Any = None                    # fine-tuning (--weights): init(model) loads a checkpoint, returns a report
    log: Any = field(default=None)


# --------------------------------------------------------------------------- processes

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum(self, values: list[float], device) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()


def setup_processes(device: Optional[str]) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError("--device cuda: no CUDA device is available", SourceLoc("--device"), "use --device cpu")
    if world == 1:
        return Dist(), torch.device(want)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if want.startswith("cuda"):
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local), dev


def seed_everything(seed: int, epoch: int, rank: int) -> None:
    s = (seed * 1_000_003 + epoch * 1009 + rank) % (2**63)
    torch.manual_seed(s)
    random.seed(s)
    try:
        import numpy as np
        np.random.seed(s % (2**32))
    except ImportError:  # pragma: no cover
        pass


def set_dropout(model: nn.Module, p: float) -> None:
    """Progressive learning's stage dropout: the rate of every dropout layer of the compiled module."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p


def loader(ds, batch: int, *, shuffle: bool, seed: int, epoch: int, d: Dist, workers: int, device) -> DataLoader:
    if shuffle:
        sampler = DistributedSampler(ds, num_replicas=d.world, rank=d.rank, shuffle=True, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
        ds_ = ds
    else:  # validation: each process takes every world-th image, none twice (exact totals)
        ds_, sampler = Subset(ds, range(d.rank, len(ds), d.world)), None
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return DataLoader(ds_, batch_size=batch, sampler=sampler, num_workers=workers, generator=g,
                      drop_last=shuffle and len(ds) // d.world >= batch, pin_memory=device.type == "cuda",
                      persistent_workers=False)


# --------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model: nn.Module, dl: DataLoader, device, d: Dist, amp: bool = False) -> dict:
    """Loss (plain cross-entropy), top-1 and top-5 of the main head over this process's share, summed over all."""
    model.eval()
    loss_sum, top1, top5, n = 0.0, 0.0, 0.0, 0.0
    classes = 5
    for x, y in dl:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            logits = model(x)
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        classes = logits.shape[1]
        k = min(5, classes)  # top-5 is reported only with 5 classes or more (else it is always 100%)
        topk = logits.topk(k, dim=1).indices
        hit = topk.eq(y[:, None])
        top1 += hit[:, 0].sum().item()
        top5 += hit.any(dim=1).sum().item()
        n += len(y)
    loss_sum, top1, top5, n = d.sum([loss_sum, top1, top5, n], device)
    n = max(n, 1)
    return {"loss": loss_sum / n, "acc1": top1 / n, "acc5": top5 / n if classes >= 5 else None, "n": int(n)}


# --------------------------------------------------------------------------- the run

def _say(d: Dist, text: str) -> None:
    if d.main:
        print(text, flush=True)


def _progress(opts: Options, d: Dist):
    if not d.main:
        return None
    if opts.progress is False or (opts.progress is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
        return tqdm
    except ImportError:  # pragma: no cover
        return None


def train(graph, recipe: Recipe, opts: Options) -> dict:
    """Train the compiled network of `graph` with `recipe`; returns the last epoch's metrics."""
    from ..api import compile

    d, device = setup_processes(opts.device)
    try:
        last = _train(graph, recipe, opts, d, device, compile)
        d.barrier()                            # every rank done before any tears the group down
        return last
    finally:
        if d.world > 1 and dist.is_initialized():
            # The DDP wrapper and its reducer hold the process group, and reference cycles kept them
            # until interpreter exit: gloo's threads were then destroyed while still joinable and a
            # rank aborted after a successful run ("terminate called without an active exception",
            # SIGABRT, exit 1 from torchrun). Free them while the interpreter is whole, then destroy.
            gc.collect()
            dist.destroy_process_group()


def _train(graph, recipe: Recipe, opts: Options, d: Dist, device, compile_fn) -> dict:
    c, h, w = graph.graph["input_shape"]
    num_classes = graph.graph["num_classes"]
    check_run_memory(graph, recipe.batch_size, training=True)  # before any folder, data or weights
    run = rundir.RunDir(opts.out) if opts.out else None
    state = run.prepare(resume=opts.resume, force=opts.force, main=d.main) if run else None
    d.barrier()

    data = D.load_data(opts.data, channels=c, size=(h, w), num_classes=num_classes, seed=recipe.seed,
                       val_fraction=opts.val_split, fake_images=opts.fake_images)
    workers = opts.workers if opts.workers is not None else (0 if data.in_memory else min(4, os.cpu_count() or 1))

    model = compile_fn(graph, seed=recipe.seed)
    if opts.init is not None and state is None:  # start from a checkpoint (a resumed run has its own)
        _say(d, opts.init(model))
    output_names = list(model.output_names)
    if opts.sync_bn and d.world > 1:
        from ..backends.pytorch import NetspecModule
        model = NetspecModule(graph, nn.SyncBatchNorm.convert_sync_batchnorm(model))  # re-trace over the new BNs
    model.to(device)
    optimizer = make_optimizer(model, recipe.optimizer)
    global_batch = recipe.batch_size * d.world
    schedule = LRSchedule(recipe.schedule, base_lr(recipe.optimizer, global_batch), recipe.epochs)
    ema = WeightEMA(model, recipe.ema) if recipe.ema else None
    best, start = -1.0, 0
    if state is not None:  # resume: everything the next epoch depends on
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["scheduler"])
            if ema and state.get("ema"):
                ema.load_state_dict(state["ema"])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise SpecError(f"--resume: the checkpoint does not match this run ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]})", SourceLoc(str(run.file("checkpoint.pt"))),
                            "the spec, its variant or the recipe changed since the checkpoint was written; "
                            "start over with --force or choose another --out") from None
        best, start = state["best_acc1"], state["epoch"]
        if start > recipe.epochs:
            raise SpecError(f"--resume: the checkpoint is after epoch {start}, the recipe has {recipe.epochs} epochs",
                            SourceLoc(str(run.file("checkpoint.pt"))), "raise train.epochs, or start over with --force")
        if state.get("world_size", 1) != d.world:
            _say(d, f"note: checkpoint was written by {state['world_size']} process(es), resuming with {d.world}")
        _say(d, f"resuming {opts.out} after epoch {start}")
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if d.world > 1 else model
    amp = opts.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    if run and d.main and opts.spec_yaml and start == 0:
        run.write_text("spec.yaml", opts.spec_yaml)
        run.write_text("classes.json", json.dumps(data.classes, indent=1) + "\n")  # netspec predict names them
    bar = _progress(opts, d)
    _say(d, f"training {graph.graph['name']} on {data.name}: {len(data.train)} train / {len(data.val)} val images, "
            f"{recipe.epochs} epochs, batch {recipe.batch_size} x {d.world} process(es) = {global_batch}, "
            f"peak lr {schedule.base_lr:.4g}, {device.type}")
    last: dict = {}
    mismatches, checked = 0, 0
    for epoch in range(start, recipe.epochs):
        t0 = time.perf_counter()
        st = stage_settings(recipe, epoch, (h, w))
        if st["dropout"] is not None:
            set_dropout(model, st["dropout"])
        data.train.transform = D.train_transform(recipe.augment, st["size"], c, st["randaugment"])
        data.val.transform = D.eval_transform(recipe.augment, st["size"], c)
        mixer = D.batch_mixer(recipe.augment, st["mixup"], num_classes)
        seed_everything(recipe.seed, epoch, d.rank)
        dl = loader(data.train, recipe.batch_size, shuffle=True, seed=recipe.seed, epoch=epoch, d=d,
                    workers=workers, device=device)
        steps = len(dl)
        if steps == 0:
            raise SpecError(f"train.batch_size {recipe.batch_size} is larger than the training set share "
                            f"({len(data.train) // d.world} images per process)", SourceLoc("<spec>", path="train.batch_size"),
                            "lower it with --set train.batch_size=N")
        net.train()
        loss_sum, seen = 0.0, 0
        lr = schedule.lr(epoch)
        it = bar(dl, desc=f"epoch {epoch + 1}/{recipe.epochs}", leave=False, unit="batch") if bar else dl
        t_train = time.perf_counter()
        for i, (x, y) in enumerate(it):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if mixer is not None:
                x, y = mixer(x, y)
            lr = schedule.apply(optimizer, epoch + i / steps)
            with torch.autocast(device.type, enabled=amp):
                out = net(x)
                loss = recipe_loss(out, y, output_names, recipe)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if recipe.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if ema:
                ema.update(model)
            if opts.check_replicas and d.world > 1:
                mismatches += _replicas_differ(model)
                checked += 1
            loss_sum += loss.item() * len(x)
            seen += len(x)
            if bar:
                it.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.3g}")
        train_seconds = time.perf_counter() - t_train
        loss_sum, seen = d.sum([loss_sum, float(seen)], device)
        val_model = ema.model if ema else model
        val = evaluate(val_model, loader(data.val, recipe.batch_size, shuffle=False, seed=recipe.seed, epoch=epoch,
                                         d=d, workers=workers, device=device), device, d, amp)
        schedule.end_epoch(val["acc1"])
        last = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / max(seen, 1), "val_loss": val["loss"],
                "val_acc1": val["acc1"], **({"val_acc5": val["acc5"]} if val["acc5"] is not None else {}),
                "images_per_s": seen / train_seconds if train_seconds > 0 else 0.0, "res": list(st["size"]),
                "seconds": time.perf_counter() - t0, "world_size": d.world, "stage": st["stage"]}
        if st["dropout"] is not None:
            last["dropout"] = st["dropout"]
        improved = val["acc1"] > best
        best = max(best, val["acc1"])
        if run and d.main:
            run.append_metrics(last)
            if improved:
                run.save_weights("best.pt", val_model.state_dict())
            run.save_checkpoint({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(), "ema": ema.state_dict() if ema else None,
                "epoch": epoch + 1, "best_acc1": best, "world_size": d.world, "recipe": recipe.model_dump(mode="json"),
                "rng": rundir.rng_states()})
            if epoch + 1 == recipe.epochs or run.curves_due():
                run.plot_curves()
        _say(d, f"epoch {epoch + 1:>3}/{recipe.epochs}  lr {lr:.4g}  train_loss {last['train_loss']:.4f}  "
                f"val_loss {val['loss']:.4f}  val_acc1 {val['acc1']:.2%}  "
                + (f"val_acc5 {val['acc5']:.2%}  " if val["acc5"] is not None else "") +
                f"res {st['size'][0]}  {last['images_per_s']:.0f} img/s  {last['seconds']:.1f}s")
        d.barrier()
    if opts.check_replicas and d.world > 1:
        mismatches = int(d.sum([float(mismatches)], device)[0])
        if mismatches:
            raise RuntimeError(f"replicas differed after {mismatches} of {checked} steps")
        _say(d, f"replicas: {d.world} processes held identical weights after each of {checked} steps")
    if run and d.main:
        _say(d, f"best val_acc1 {best:.2%}; wrote {run.path}/ (metrics.jsonl, checkpoint.pt, best.pt, curves.png, "
                "spec.yaml, classes.json)")
    return last


def _replicas_differ(model: nn.Module) -> int:
    """1 if this process's weights differ from rank 0's (exact comparison), else 0."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    return int(not torch.equal(flat, ref))
