"""Optional dependencies by extra: a missing one is the user's set-up, not a netspec bug (exit 2).

    pip install 'netspec[train]'     torchvision, scikit-learn, matplotlib, tqdm (train, eval, predict)
    pip install 'netspec[interop]'   onnx, onnxruntime, safetensors (--out x.onnx, .safetensors files)
"""
from __future__ import annotations

import importlib

# import name -> (distribution, extra)
EXTRAS = {
    "torchvision": ("torchvision", "train"),
    "sklearn": ("scikit-learn", "train"),
    "matplotlib": ("matplotlib", "train"),
    "tqdm": ("tqdm", "train"),
    "PIL": ("pillow", "train"),  # comes with torchvision
    "onnx": ("onnx", "interop"),
    "onnxruntime": ("onnxruntime", "interop"),
    "safetensors": ("safetensors", "interop"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; `hint` is the pip line that installs it."""

    def __init__(self, module: str, purpose: str, cause: BaseException | None = None):
        dist, extra = EXTRAS.get(module.split(".")[0], (module, None))
        self.hint = f"pip install 'netspec[{extra}]'" if extra else f"pip install {dist}"
        detail = f" ({cause})" if cause is not None and str(cause) else ""
        super().__init__(f"{purpose} needs {dist}, which cannot be imported{detail}")


def require(module: str, purpose: str):
    """Import an optional dependency, or raise `MissingExtra` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(module, purpose, exc) from exc
