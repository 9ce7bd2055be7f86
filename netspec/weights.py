"""Checkpoints in and out of a compiled model (the torch side; the front end never imports this).

In: a `.pt`/`.pth` file (a state dict, or a dict holding one under `state_dict` or `model`) or
a `.safetensors` file. Its tensors are matched to the model's `state_dict()` keys:

1. by name, when the file's keys are the model's own (a netspec checkpoint);
2. by the reference's names, when the spec declares `reference_keys` and the file's keys are
   that list (a torchvision checkpoint): the i-th reference key is the i-th netspec key,
   whatever order the file itself stores them in;
3. otherwise by order: the file's i-th tensor is the model's i-th tensor. netspec's specs
   register their tensors in their reference's order, so a reference checkpoint lines up
   (a `.pt`/`.pth` file keeps that order; `.safetensors` files sort their keys by name).

Every match is checked by shape and every tensor of the file is used exactly once. BatchNorm's
`num_batches_tracked` counters are matched beside their layer's statistics, so old checkpoints
without them (saved before PyTorch 0.4.1) still load; the counters then stay 0. A mismatch is
a `SpecError` listing the first offending keys with both shapes.

Out: `reference_state_dict` renames the model's tensors to the reference's keys (`--save-as
torchvision`), so the reference constructor loads the file with `strict=True`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import sys
from pathlib import Path

import torch

from .errors import SourceLoc, SpecError
from .reference_keys import available, read_key_list

SHOW = 8  # offending keys listed in an error
COUNTER = "num_batches_tracked"


@dataclass(frozen=True)
class Match:
    ours: str
    theirs: str
    shape: tuple


@dataclass
class Report:
    """How a checkpoint was matched: `how` is "name", "reference names" or "order"."""

    how: str
    matches: list[Match]
    file: str
    # fine-tuning: model tensors left initialised because the file's differ in shape (the classifier
    # of another num_classes), as (model key, model shape, file key, file shape)
    skipped: list[tuple[str, tuple, str, tuple]] = field(default_factory=list)

    def text(self) -> str:
        width = max((len(m.ours) for m in self.matches), default=0)
        lines = [f"{self.file}: {len(self.matches)} tensors matched by {self.how}"]
        lines += [f"  {m.ours.ljust(width)}  <-  {m.theirs}  {tuple(m.shape)}" for m in self.matches]
        return "\n".join(lines + self.skipped_lines())

    def skipped_lines(self) -> list[str]:
        if not self.skipped:
            return []
        return [f"skipped {len(self.skipped)} tensors of the classifier (initialised, not loaded: the checkpoint "
                "has another number of classes):"] + \
               [f"  {o} {tuple(os)}  <-  {t} {tuple(ts)}" for o, os, t, ts in self.skipped]


# --------------------------------------------------------------------------- reading and writing files

def read_checkpoint(path: str | Path, *, allow_nonfinite: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, in the file's order. NaN or infinite values are an error
    (a warning with `allow_nonfinite`): a model holding them computes NaN whatever its input."""
    path = Path(path)
    where = SourceLoc(str(path))
    if not path.is_file():
        raise SpecError(f"checkpoint {path} does not exist", where, "give the path of a .pt, .pth or .safetensors file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from .extras import require
            load_file = require("safetensors.torch", "a .safetensors checkpoint").load_file
            state = load_file(str(path))
        elif suffix in (".pt", ".pth", ".bin", ".ckpt"):
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise SpecError(f"unknown checkpoint type '{suffix}'", where, "use .pt/.pth (torch.save) or .safetensors")
    except (SpecError, ImportError):  # ImportError: extras.MissingExtra, the interop extra
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file is the user's input, not a bug
        raise SpecError(f"cannot read checkpoint: {type(exc).__name__}: {str(exc)[:300]}", where,
                        "is it a state dict saved with torch.save (or safetensors)?") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SpecError("the checkpoint holds no state dict", where,
                        "expected {name: tensor}, or a dict with one under 'state_dict' or 'model'")
    bad_keys = [k for k in state if not isinstance(k, str)]
    if bad_keys:
        raise SpecError(f"the checkpoint's state dict has {len(bad_keys)} keys that are not names "
                        f"(first: {bad_keys[0]!r:.80} of type {type(bad_keys[0]).__name__})", where,
                        "a state dict maps tensor names (strings) to tensors")
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        message = (f"{len(nonfinite)} tensors of the checkpoint hold NaN or infinite values: "
                   + ", ".join(nonfinite[:5]) + (", ..." if len(nonfinite) > 5 else ""))
        if not allow_nonfinite:
            raise SpecError(message, where, "the file is damaged or came from a diverged run; "
                                            "--allow-nonfinite loads it anyway (with a warning)")
        print(f"warning: {where}: {message}", file=sys.stderr)
    keys = list(state)
    if all(k.startswith("module.") for k in keys):  # saved from nn.DataParallel / DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def write_checkpoint(state: dict[str, torch.Tensor], path: str | Path) -> None:
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from .extras import require
        save_file = require("safetensors.torch", "a .safetensors file").save_file
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)


def reference_keys(name: str | None, where: SourceLoc) -> list[str] | None:
    if not name:
        return None
    keys = read_key_list(name)
    if keys is None:
        raise SpecError(f"no reference key list '{name}'", where, f"available: {', '.join(available())}")
    return keys


# --------------------------------------------------------------------------- matching

def _shape(t) -> tuple:
    return tuple(t.shape)


def _split_counters(keys: list[str]) -> tuple[list[str], list[str]]:
    return [k for k in keys if not k.endswith(COUNTER)], [k for k in keys if k.endswith(COUNTER)]


def _counter_of(key: str) -> str:
    return key.rpartition(".")[0] + "." + COUNTER if "." in key else COUNTER


def _fail(message: str, lines: list[str], file: str, hint: str) -> None:
    shown = lines[:SHOW] + ([f"... and {len(lines) - SHOW} more"] if len(lines) > SHOW else [])
    raise SpecError(message + "\n      " + "\n      ".join(shown), SourceLoc(file), hint)


def match(model_shapes: dict[str, tuple], ckpt: dict[str, torch.Tensor], *, ref_keys: list[str] | None = None,
          file: str = "<checkpoint>", may_differ: frozenset[str] = frozenset()) -> Report:
    """Pair every model tensor with one checkpoint tensor (see the module docstring).

    A pair whose model key is in `may_differ` (fine-tuning: the classifier's tensors) and whose shapes
    differ is not an error: it goes to `Report.skipped` and the model keeps its own tensor."""
    ours = list(model_shapes)
    rank = {k: i for i, k in enumerate(ours)}
    if set(ckpt) == set(ours):
        pairs, how = [(k, k) for k in ours], "name"
    else:
        if ref_keys is not None and len(ref_keys) == len(ours) and set(ckpt) <= set(ref_keys) \
                and set(_split_counters(list(ckpt))[0]) == set(_split_counters(ref_keys)[0]):
            how = "reference names"
            position = dict(zip(ref_keys, ours))
            pairs = [(position[k], k) for k in ckpt]
            pairs.sort(key=lambda p: rank[p[0]])
        else:
            how = "order"
            mine, _ = _split_counters(ours)
            theirs, their_counters = _split_counters(list(ckpt))
            if len(mine) != len(theirs):
                extra = [f"checkpoint {k} {_shape(ckpt[k])}" for k in theirs[len(mine):]]
                missing = [f"model {k} {model_shapes[k]}" for k in mine[len(theirs):]]
                _fail(f"the checkpoint has {len(theirs)} tensors (besides BatchNorm counters), the model "
                      f"{len(mine)}; first unmatched:", extra or missing, file,
                      "is it a checkpoint of this spec's reference (same variant, same aux heads: --no-aux drops "
                      "them; same num_classes)?")
            pairs = list(zip(mine, theirs))
            counters = set(their_counters)
            for o, t in list(pairs):
                if _counter_of(o) in model_shapes and o.endswith("running_var") and _counter_of(t) in counters:
                    pairs.append((_counter_of(o), _counter_of(t)))
            pairs.sort(key=lambda p: rank[p[0]])
    skipped = [(o, model_shapes[o], t, _shape(ckpt[t])) for o, t in pairs
               if o in may_differ and model_shapes[o] != _shape(ckpt[t])]
    pairs = [(o, t) for o, t in pairs if not (o in may_differ and model_shapes[o] != _shape(ckpt[t]))]
    bad = [f"{o} {model_shapes[o]}  <-  {t} {_shape(ckpt[t])}" for o, t in pairs if model_shapes[o] != _shape(ckpt[t])]
    if bad:
        hint = "is it a checkpoint of this spec's reference (same variant, width and num_classes)?"
        if how == "order" and file.lower().endswith(".safetensors"):
            hint = ("safetensors files store their keys sorted by name, not in registration order: match by "
                    "name instead (a spec's `reference_keys`), or use the .pt/.pth file")
        _fail(f"{len(bad)} tensors of the checkpoint have another shape than the model's (matched by {how}; "
              "model key shape <- checkpoint key shape):", bad, file, hint)
    used = {t for _, t in pairs} | {t for _, _, t, _ in skipped}
    unused = [f"{k} {_shape(ckpt[k])}" for k in ckpt if k not in used]
    if unused:
        _fail(f"{len(unused)} tensors of the checkpoint match nothing in the model:", unused, file,
              "is it a checkpoint of this spec's reference?")
    return Report(how, [Match(o, t, model_shapes[o]) for o, t in pairs], file, skipped)


def load_weights(model: torch.nn.Module, path: str | Path, *, ref_keys: list[str] | None = None,
                 allow_nonfinite: bool = False) -> Report:
    """Load a checkpoint file into `model` (in place) and return how its tensors were matched."""
    ckpt = read_checkpoint(path, allow_nonfinite=allow_nonfinite)
    state = model.state_dict()
    report = match({k: _shape(v) for k, v in state.items()}, ckpt, ref_keys=ref_keys, file=str(path))
    assign(model, ckpt, report)
    return report


def assign(model: torch.nn.Module, ckpt: dict[str, torch.Tensor], report: Report) -> None:
    """Copy the matched tensors of `ckpt` into `model` (on the meta device: take them; skipped ones need a
    model that was initialised)."""
    state = model.state_dict()
    new = dict(state)  # counters the file lacks keep their value
    for m in report.matches:
        new[m.ours] = ckpt[m.theirs]
    if any(t.is_meta for t in state.values()):  # built without initialising: take the file's tensors
        matched = {m.ours for m in report.matches}
        # copies, never the file's own memory: safetensors tensors are views into one buffer at the file's
        # offsets, and with them as parameters CPU kernels ran another (unaligned) code path, so results
        # differed from a model holding the same values in the rounding (and with the heap's state)
        new = {k: v.to(state[k].dtype, memory_format=torch.contiguous_format, copy=True) if k in matched
               else torch.zeros(v.shape, dtype=v.dtype)
               for k, v in new.items()}
        model.load_state_dict(new, strict=True, assign=True)
    else:
        model.load_state_dict(new, strict=True)


def reference_state_dict(model: torch.nn.Module, ref_keys: list[str], *, where: SourceLoc) -> dict:
    """The model's tensors under the reference's key names (same order)."""
    state = model.state_dict()
    if len(state) != len(ref_keys):
        raise SpecError(f"the model has {len(state)} tensors, the reference key list {len(ref_keys)}", where,
                        "the key list fits the reference network (with its aux heads); --no-aux, --phi or "
                        "changed depths make another network")
    for ours, theirs in zip(state, ref_keys):
        last = theirs.rpartition(".")[2]
        # a bare nn.Parameter the reference registers on its block (CNBlock.layer_scale) is the
        # `weight` of the entry of that name in netspec (`....layer_scale.weight`)
        if ours.rpartition(".")[2] != last and not ours.endswith(f".{last}.weight"):
            raise SpecError(f"model tensor {ours} does not line up with reference key {theirs}", where,
                            "the spec no longer registers its tensors in the reference's order")
    return {theirs: t for theirs, t in zip(ref_keys, state.values())}
