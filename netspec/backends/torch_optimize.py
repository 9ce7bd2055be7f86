"""The inference-optimised build: `netspec.optimize.inference_graph` applied to a built module.

Takes a (possibly trained) `NetspecModule`, builds the module of its inference IR
(batch norm folded into the conv / linear before it, dropout / stochastic depth /
identity gone, parallel conv branches merged into one conv, every element-wise op that may run
in place does) and copies the
weights across, folding each BN's statistics into its conv:

    scale = gamma / sqrt(running_var + eps)
    W' = W * scale (per output channel),  b' = (b - running_mean) * scale + beta

computed in float64, so the result equals the eval-mode module to rounding. It runs in
channels-last memory format unless told not to; optional: `torch.jit` freezing, `torch.compile`. The result is
for inference only: it has no training mode.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..optimize import inference_graph
from .pytorch import NetspecModule, build_tree, eval_forward, generated_forward, nograd_forward  # noqa: F401


def _bn_affine(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as y = x * scale + shift per channel (float64)."""
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    shift = -bn.running_mean.double() * scale
    if bn.affine:
        scale, shift = scale * bn.weight.detach().double(), shift * bn.weight.detach().double() + bn.bias.detach().double()
    return scale, shift


def _folded(conv: nn.Module, bn: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of conv ∘ bn (eval), in float64."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is None:
        return w, b
    scale, shift = _bn_affine(bn)
    return w * scale.view(-1, *[1] * (w.dim() - 1)), b * scale + shift


def _fold(conv: nn.Module, bn: nn.Module, folded: nn.Module) -> None:
    """Write conv ∘ bn (eval) into `folded` (a conv / linear with a bias)."""
    w, b = _folded(conv, bn)
    with torch.no_grad():
        folded.weight.copy_(w)
        folded.bias.copy_(b)


def _reparameterize(branches: list, own: dict, merged: nn.Module) -> None:
    """Write the sum of parallel branches (centred convs with their folded BN, and an eval batch norm
    of the input: the identity branch) into one conv (RepVGG's structural re-parameterisation)."""
    out, per_group, kh, kw = merged.weight.shape
    weight = torch.zeros(out, per_group, kh, kw, dtype=torch.float64)
    bias = torch.zeros(out, dtype=torch.float64)
    for node, bn in branches:
        module = own[node]
        if isinstance(module, nn.modules.batchnorm._BatchNorm):  # x * scale + shift: a centred identity kernel
            scale, shift = _bn_affine(module)
            channels = torch.arange(out)
            weight[channels, channels % per_group, kh // 2, kw // 2] += scale
            bias += shift
            continue
        w, b = _folded(module, own[bn] if bn is not None else None)
        top, left = (kh - w.shape[2]) // 2, (kw - w.shape[3]) // 2
        weight[:, :, top:top + w.shape[2], left:left + w.shape[3]] += w
        bias += b
    with torch.no_grad():
        merged.weight.copy_(weight)
        merged.bias.copy_(bias)


class InferenceModule(nn.Module):
    """An inference-only compiled network (see `optimize_module`). `.train()` is refused."""

    def __init__(self, H, tree: nn.Module, channels_last: bool):
        super().__init__()
        for name, child in tree.named_children():
            self.add_module(name, child)
        self.spec_name = H.graph["name"]
        self.input_shape = tuple(H.graph["input_shape"])
        self.channels_last = channels_last
        object.__setattr__(self, "graph", H)
        object.__setattr__(self, "_infer", generated_forward(self, H, [H.graph["outputs"]["logits"]],
                                                             "OptimizedInference"))
        object.__setattr__(self, "_infer_nograd", nograd_forward(self, H, "OptimizedInferenceNoGrad"))
        super().train(False)

    @property
    def code(self) -> str:
        return self._infer.code

    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError("an optimised netspec module is inference-only (batch norm is folded, dropout "
                               "removed); train the module from netspec.build(...) and optimise it afterwards")
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return eval_forward(self, x)(x)


def optimize_module(model: NetspecModule, *, channels_last: bool = True, freeze: bool = False,
                    compile: bool = False) -> nn.Module:
    """The inference-optimised counterpart of `model` (its weights copied, BN folded; `model` is left
    untouched). `channels_last` (default): weights and input in channels-last memory format, which
    CPU convolutions run faster (docs/performance.md); `freeze`: trace, `torch.jit.freeze` and
    `optimize_for_inference` it; `compile`: wrap it in `torch.compile`."""
    G = model.graph
    H = inference_graph(G)
    with torch.device("meta"):  # no initialisation: every tensor is copied or folded below
        tree = build_tree(H, seed=None)
    tree.to_empty(device=next(model.parameters()).device)
    own = dict(model.named_modules())
    with torch.no_grad():
        for name, module in tree.named_modules():
            if name not in H.nodes:
                continue
            src = own[name]
            bn = H.nodes[name].get("folded_bn")
            if H.nodes[name].get("reparam"):
                _reparameterize(H.nodes[name]["reparam"], own, module)
            elif bn is not None:
                _fold(src, own[bn], module)
            else:
                module.load_state_dict(src.state_dict())
    for p in tree.parameters():
        p.requires_grad_(False)
    out: nn.Module = InferenceModule(H, tree, channels_last)
    if channels_last:
        out = out.to(memory_format=torch.channels_last)
    if freeze:
        example = torch.zeros(1, *out.input_shape)
        with torch.no_grad():
            out = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(out, example).eval()))
    if compile:
        out = torch.compile(out)
    return out
