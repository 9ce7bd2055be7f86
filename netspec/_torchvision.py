"""Importing torchvision beside a CPU-only torch build.

torchvision's wheels on PyPI are built against torch's CUDA build. Beside the CPU build of the
same torch release (what netspec's set-up installs) their compiled extension cannot load, and
`import torchvision` fails while registering fake kernels for the extension's custom operators
(`RuntimeError: operator torchvision::nms does not exist`). Everything netspec uses from
torchvision (the model constructors it is checked against, `transforms.v2`, `datasets`) is
plain Python on top of torch and does not need those operators (nms, roi_align, deformable
convolution, video decoding).

`import_torchvision()` imports torchvision normally and, only when that specific failure
happens, retries with the fake-kernel registrations left out, so the pure-Python parts work.
A matching torchvision build imports untouched.
"""
from __future__ import annotations

import sys
import types


def import_torchvision():
    """Return the `torchvision` module, or raise ImportError with a hint."""
    try:
        import torchvision
        return torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise ImportError(f"torchvision cannot be imported: {exc}") from exc
    except ImportError as exc:  # not installed: the train extra (exit 2 with the pip line)
        from .extras import MissingExtra
        raise MissingExtra("torchvision", "this command", exc) from exc
    # Drop the half-imported package, stub the fake-kernel registrations of the custom ops
    # the CPU torch lacks, and import again.
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    import torchvision
    return torchvision


def meta_model(constructor: str, **kwargs):
    """torchvision's `constructor(**kwargs)` on the meta device (no memory, no initialisation).
    RegNet computes its block widths with torch ops at construction, which need real tensors: that
    part runs on the CPU."""
    import torch

    models = import_torchvision().models
    from torchvision.models import regnet

    original = regnet.BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kw):
        with torch.device("cpu"):
            return original(cls, *args, **kw)

    regnet.BlockParams.from_init_params = classmethod(on_cpu)
    try:
        with torch.device("meta"):
            return getattr(models, constructor)(**kwargs)
    finally:
        regnet.BlockParams.from_init_params = classmethod(original)
