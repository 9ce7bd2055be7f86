"""Recipe -> optimizer, learning-rate schedule, loss and weight EMA (torch objects, no I/O)."""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..recipe import Ema, Optimizer, Recipe, Schedule


def param_groups(model: nn.Module, opt: Optimizer) -> list[dict]:
    """One group, or two when BN weights and biases are exempt from weight decay."""
    if not opt.no_decay_bn_bias or opt.weight_decay == 0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": opt.weight_decay}]
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            bn = isinstance(module, nn.modules.batchnorm._NormBase)
            (no_decay if bn or name == "bias" else decay).append(p)
    return [{"params": decay, "weight_decay": opt.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, opt: Optimizer) -> torch.optim.Optimizer:
    groups = param_groups(model, opt)
    if opt.type == "sgd":
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov)
    if opt.type == "rmsprop":
        # TF's RMSProp (the Inception / EfficientNet papers) adds eps inside the square root and starts the
        # squared-gradient average at 1; torch adds it outside and starts at 0. With the papers' large eps
        # (1.0, 0.001) the step sizes are close; the exact TF update is not reproduced.
        return torch.optim.RMSprop(groups, lr=opt.lr, alpha=opt.decay, eps=opt.eps, momentum=opt.momentum)
    return torch.optim.AdamW(groups, lr=opt.lr, betas=opt.betas, eps=opt.eps)


class LRSchedule:
    """lr as a function of fractional epoch, set on the optimizer before every step; `plateau` keeps a factor
    that `end_epoch` lowers. Its whole state is `state_dict()` (saved in checkpoints)."""

    def __init__(self, sched: Schedule, base_lr: float, epochs: int):
        self.s, self.base_lr, self.epochs = sched, base_lr, epochs
        self.scale = 1.0             # plateau: the product of the reductions so far
        self.best = -math.inf
        self.bad_epochs = 0

    def lr(self, t: float) -> float:
        """Learning rate at fractional epoch `t` (0 = start)."""
        s, lr = self.s, self.base_lr
        if s.type == "step":
            lr *= s.gamma ** sum(t >= m for m in s.milestones)
        elif s.type == "cosine":
            lr = s.min_lr + (lr - s.min_lr) * 0.5 * (1 + math.cos(math.pi * min(t, self.epochs) / self.epochs))
        elif s.type == "linear":
            lr = s.min_lr + (lr - s.min_lr) * max(0.0, 1 - t / self.epochs)
        elif s.type == "exponential":
            lr *= s.gamma ** math.floor(t / s.every)
        elif s.type == "plateau":
            lr = max(s.min_lr, lr * self.scale)
        if s.warmup_epochs and t < s.warmup_epochs:
            lr *= s.warmup_start + (1 - s.warmup_start) * t / s.warmup_epochs
        return lr

    def apply(self, optimizer: torch.optim.Optimizer, t: float) -> float:
        lr = self.lr(t)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def end_epoch(self, val_acc1: float) -> None:
        if self.s.type != "plateau":
            return
        if val_acc1 > self.best:
            self.best, self.bad_epochs = val_acc1, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.s.patience:
                self.scale *= self.s.gamma
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad_epochs = state["scale"], state["best"], state["bad_epochs"]


def base_lr(opt: Optimizer, global_batch: int) -> float:
    """The recipe's lr, scaled linearly from `lr_for_batch` to this run's global batch when that is given."""
    return opt.lr * global_batch / opt.lr_for_batch if opt.lr_for_batch else opt.lr


def recipe_loss(outputs, target: torch.Tensor, output_names: list[str], recipe: Recipe) -> torch.Tensor:
    """Main head's cross-entropy plus each auxiliary head's times its weight (label smoothing on all).

    `outputs` is the logits tensor, or the training tuple (logits, aux...) in `output_names` order.
    `target` is class indices or, after mixup / cutmix, class probabilities."""
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    ls = recipe.label_smoothing
    loss = F.cross_entropy(outputs[0], target, label_smoothing=ls)
    for name, logits in zip(output_names[1:], outputs[1:]):
        w = recipe.aux_weights.get(name, 0.0)
        if w:
            loss = loss + w * F.cross_entropy(logits, target, label_smoothing=ls)
    return loss


class WeightEMA:
    """Exponential moving average of parameters (buffers are copied), as TF's ExponentialMovingAverage."""

    def __init__(self, model: nn.Module, ema: Ema):
        self.cfg = ema
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.cfg.decay
        if self.cfg.warmup:
            d = min(d, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]
