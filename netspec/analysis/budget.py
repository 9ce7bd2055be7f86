"""The memory budget: refuse, before any allocation, a model or a run that cannot fit.

These checks read the analyses (parameters, activation memory), so they live here rather than in
`netspec.limits`, which the ops themselves import. Nothing here imports torch.
"""
from __future__ import annotations

import os

from ..errors import Issue, SpecError
from .. import limits
from ..limits import BYTES_PER_VALUE, ENV_MAX_PARAMS, MEMORY_SHARE, _bytes
from . import costs
from .memory import activation_memory


def check_model_size(G, max_params: int | None = None) -> None:
    """Refuse, before any allocation, a graph whose parameters and buffers exceed the budget.

    The error points at the spec entry holding the largest share (usually the one a typo made huge).
    """

    budget = max_params if max_params is not None else limits.default_max_params()
    every = [n for n in G if n != "input"]
    held = {n: costs.node_params(G, n) + costs.node_buffers(G, n) for n in every}
    total = sum(held.values())
    if total <= budget:
        return
    biggest = max(held, key=held.get)
    source = (f"--max-params / {ENV_MAX_PARAMS}" if max_params is not None or os.environ.get(ENV_MAX_PARAMS)
              else f"{MEMORY_SHARE:.0%} of the {limits.available_memory() / (1 << 30):.1f} GiB available")
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

    # inference: the no-grad in-place plan the compiled module runs; training: every output kept
    act = activation_memory(G, batch=batch, dtype_bytes=BYTES_PER_VALUE, inplace=not training)
    weights = BYTES_PER_VALUE * (costs.total_params(G, include_aux=True) + costs.total_buffers(G, include_aux=True))
    need = (4 * weights + act.total_bytes) if training else (weights + act.peak_bytes)
    budget = int(limits.available_memory() * MEMORY_SHARE)
    if need <= budget:
        return
    what = "a training step" if training else "a forward pass"
    raise SpecError(Issue(
        G.nodes["input"]["loc"],
        f"{what} at batch {batch} and input {'x'.join(map(str, G.graph['input_shape']))} needs about "
        f"{_bytes(need)} (activations peak at '{act.peak_at}'), more than {_bytes(budget)} "
        f"({MEMORY_SHARE:.0%} of the memory available)",
        "use a smaller batch or input size (--res)"))
