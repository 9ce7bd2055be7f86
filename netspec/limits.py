"""Bounds on every size a spec controls, checked before work or memory grows with it.

A spec is data that a user (or a typo) controls: `repeat: 1000000000000000000` or
`out: 1000000000` must end in a located `SpecError`, not in a run that hangs for minutes
or an allocator failure. The structural bounds below are far above any published CNN
(the zoo's largest graph, EfficientNetV2-L, has about 1,100 ops); the memory budget for
building a module is a share of the memory this machine has available and can be changed
with `--max-params` or the NETSPEC_MAX_PARAMS environment variable.

Nothing here imports torch, and nothing here imports the rest of netspec: the ops, the
lowering and the analyses all read these bounds, so this module is a leaf. The checks that
need the analyses (a model's size against the budget) are in `netspec.analysis.budget`.
"""
from __future__ import annotations

import math
import os

MAX_REPEAT = 1_000            # repeats of one entry (ResNet-152's longest stage has 36, DenseNet-264's 64)
MAX_GRAPH_NODES = 5_000       # primitive ops in one lowered network (4.6x EfficientNetV2-L, 7x DenseNet-201)
MAX_CHANNELS = 1 << 20        # channels / features / classes of one tensor (1,048,576)
MAX_SPATIAL = 65_536          # any spatial size, kernel, stride, padding, dilation, pooling window
MEMORY_SHARE = 0.5            # default budget for a built model: this share of the available memory
BYTES_PER_VALUE = 4           # float32 parameters and buffers
ENV_MAX_PARAMS = "NETSPEC_MAX_PARAMS"
MAX_PARAMS_SETTING = 1e15     # the largest NETSPEC_MAX_PARAMS / --max-params taken (4 PB of float32)


def available_memory() -> int:
    """Bytes of memory available to new allocations now (MemAvailable on Linux), or 8 GiB if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def default_max_params() -> int:
    """Parameters + buffers a built model may hold: NETSPEC_MAX_PARAMS, else a share of free memory."""
    text = os.environ.get(ENV_MAX_PARAMS)
    if text:
        try:
            number = float(text)
            value = int(number) if math.isfinite(number) and number <= MAX_PARAMS_SETTING else 0
        except ValueError:  # inf, nan and 1e400 are not counts either
            value = 0
        if value >= 1:
            return value
        from .errors import SourceLoc, SpecError
        raise SpecError(f"{ENV_MAX_PARAMS}={text!r} is not a positive number (a parameter count up to {MAX_PARAMS_SETTING:.0e})",
                        SourceLoc(ENV_MAX_PARAMS), "set it to a parameter count such as 2e9, or unset it")
    return int(available_memory() * MEMORY_SHARE) // BYTES_PER_VALUE


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"
