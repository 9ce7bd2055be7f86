"""Bounds on every size a spec controls, checked before work or memory grows with it.

A spec is data that a user (or a typo) controls: `repeat: 1000000000000000000` or
`out: 1000000000` must end in a located `SpecError`, not in a run that hangs for minutes
or an allocator failure. The structural bounds below are far above any published CNN
(the zoo's largest graph, EfficientNetV2-L, has about 1,100 ops); the memory budget for
building a module is a share of the memory this machine has available and can be changed
with `--max-params` or the NETSPEC_MAX_PARAMS environment variable.

Nothing here imports torch.
"""
from __future__ import annotations

import os

MAX_REPEAT = 1_000            # repeats of one entry (ResNet-152's longest stage has 36, DenseNet-264's 64)
MAX_GRAPH_NODES = 5_000       # primitive ops in one lowered network (4.6x EfficientNetV2-L, 7x DenseNet-201)
MAX_CHANNELS = 1 << 20        # channels / features / classes of one tensor (1,048,576)
MAX_SPATIAL = 65_536          # any spatial size, kernel, stride, padding, dilation, pooling window
MEMORY_SHARE = 0.5            # default budget for a built model: this share of the available memory
BYTES_PER_VALUE = 4           # float32 parameters and buffers
ENV_MAX_PARAMS = "NETSPEC_MAX_PARAMS"


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
            value = int(float(text))
        except ValueError:
            value = 0
        if value >= 1:
            return value
        from .errors import SourceLoc, SpecError
        raise SpecError(f"{ENV_MAX_PARAMS}={text!r} is not a positive number", SourceLoc(ENV_MAX_PARAMS),
                        "set it to a parameter count such as 2e9, or unset it")
    return int(available_memory() * MEMORY_SHARE) // BYTES_PER_VALUE


def check_model_size(G, max_params: int | None = None) -> None:
    """Refuse, before any allocation, a graph whose parameters and buffers exceed the budget.

    The error points at the spec entry holding the largest share (usually the one a typo made huge).
    """
    from .analysis import costs  # the analysis package is torch-free too; imported here to keep this module light
    from .errors import Issue, SpecError

    budget = max_params if max_params is not None else default_max_params()
    every = [n for n in G if n != "input"]
    held = {n: costs.node_params(G, n) + costs.node_buffers(G, n) for n in every}
    total = sum(held.values())
    if total <= budget:
        return
    biggest = max(held, key=held.get)
    source = (f"--max-params / {ENV_MAX_PARAMS}" if max_params is not None or os.environ.get(ENV_MAX_PARAMS)
              else f"{MEMORY_SHARE:.0%} of the {available_memory() / (1 << 30):.1f} GiB available")
    raise SpecError(Issue(
        G.nodes[biggest]["loc"],
        f"the model would hold {total:,} parameters and buffers ({_bytes(total * BYTES_PER_VALUE)} as float32), more than the "
        f"limit {budget:,} ({source}); '{biggest}' ({G.nodes[biggest]['op']}) alone holds {held[biggest]:,}",
        f"check the sizes of this entry; to build it anyway raise the limit with --max-params or {ENV_MAX_PARAMS}"))


def check_run_memory(G, batch: int, *, training: bool = False) -> None:
    """Refuse, before allocating, running a forward (or training step) that cannot fit in memory.

    Inference needs the weights plus the peak of live activations; training keeps every activation
    for the backward pass and holds gradients and optimizer state (counted as 4 x the weights).
    """
    from .analysis import costs
    from .analysis.memory import activation_memory
    from .errors import Issue, SpecError

    # inference: the no-grad in-place plan the compiled module runs; training: every output kept
    act = activation_memory(G, batch=batch, dtype_bytes=BYTES_PER_VALUE, inplace=not training)
    weights = BYTES_PER_VALUE * (costs.total_params(G, include_aux=True) + costs.total_buffers(G, include_aux=True))
    need = (4 * weights + act.total_bytes) if training else (weights + act.peak_bytes)
    budget = int(available_memory() * MEMORY_SHARE)
    if need <= budget:
        return
    what = "a training step" if training else "a forward pass"
    raise SpecError(Issue(
        G.nodes["input"]["loc"],
        f"{what} at batch {batch} and input {'x'.join(map(str, G.graph['input_shape']))} needs about "
        f"{_bytes(need)} (activations peak at '{act.peak_at}'), more than {_bytes(budget)} "
        f"({MEMORY_SHARE:.0%} of the memory available)",
        "use a smaller batch or input size (--res)"))


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"
