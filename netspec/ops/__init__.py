"""Primitive operations: the only Python-defined building blocks of a network.

Each op is one class holding everything about it in one place:

* `Params`   - a pydantic model of its attributes (validated, with defaults);
* `resolve`  - attributes made explicit for the IR (input channels, padding);
* `infer`    - the shape rule (input shapes -> output shape, batch excluded);
* `weights` / `buffers` - the shapes of its trainable tensors and buffers;
* `macs`     - multiply-accumulates under the `reference` profile
               (conv and linear only, as torch's FlopCounterMode / torchvision);
* `torch`    - the factory of its `torch.nn.Module` (torch imported lazily);
* `source` / `inline` - how `netspec eject` writes it as PyTorch source: the module's
               constructor (`Source`), or a forward expression for a parameter-free op;
* analysis rules (used by `netspec.analysis`, defaults on `Op`):
  `full_macs` (the `full` MAC profile), `mem_io` (activation elements read +
  written, ShuffleNet V2's memory access cost without the weights),
  `weight_reads` (parameter/buffer elements read at inference), `view` (moves
  no data at inference), `window` (per-axis receptive-field geometry),
  `elementwise` (the G4 bucket of element-wise ops) and `connections`
  (LeCun et al. 1998's connection count).

Composite blocks (conv-bn-act, MBConv, Inception, ...) are *not* here: they
are YAML templates in `netspec/blocks/`. Adding an op means adding one class
to the module of its family; nothing else in the pipeline needs to change.

Shapes are tuples without the batch dimension: (C, H, W) for feature maps,
(F,) for flat features.
"""
from __future__ import annotations

from .activation import ACTIVATIONS  # noqa: F401
from .base import (  # noqa: F401
    ALIASES,
    GLOBAL,
    IDENTITY_WINDOW,
    OPS,
    REQUIRED,
    Channels,
    Input,
    Kind,
    NoParams,
    Op,
    Pair,
    Params,
    PosPair,
    Shape,
    ShapeError,
    Source,
    Window,
    get_op,
    is_op,
    register,
    sliding_windows,
)

# importing a family registers its ops (registration order is the docs' order)
from .conv import Conv2d, Conv2dParams, conv_padding  # noqa: F401
from .lenet1998 import (  # noqa: F401
    RBF,
    RBFParams,
    ScaledTanh,
    ScaledTanhParams,
    Subsample,
    SubsampleParams,
    TableConv2d,
    TableConv2dParams,
)
from .linear import ChannelLinear, ChannelLinearParams, LayerScale, LayerScaleParams, Linear, LinearParams  # noqa: F401
from .norm import (  # noqa: F401
    BatchNorm,
    BatchNormParams,
    GroupNorm,
    GroupNormParams,
    LayerNorm,
    LayerNormParams,
    LocalResponseNorm,
    LRNParams,
)
from .pool import (  # noqa: F401
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AdaptivePoolParams,
    AvgPool,
    AvgPoolParams,
    GlobalAvgPool,
    GlobalPoolParams,
    MaxPool,
    MaxPoolParams,
)
from .regularizer import Dropout, DropoutParams, DropPath, DropPathParams  # noqa: F401
from .tensor import (  # noqa: F401
    Add,
    ChannelShuffle,
    Chunk,
    ChunkParams,
    Concat,
    Flatten,
    Identity,
    Mul,
    ShuffleParams,
)
