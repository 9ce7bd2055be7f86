"""The op base: the `Op` class every primitive op subclasses, its registry, and shared shape rules."""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ..limits import MAX_CHANNELS, MAX_SPATIAL

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """Receptive-field geometry of an op along one spatial axis.

    `extent` is the effective kernel d·(k−1)+1, `stride` the step between
    outputs (a Fraction for non-uniform adaptive pooling), `pad` the padding
    before the first input element (top or left).
    """

    extent: int
    stride: Union[int, Fraction] = 1
    pad: int = 0


IDENTITY_WINDOW = (Window(1), Window(1))
#: an op whose every output sees the whole input (global pooling, linear)
GLOBAL = "global"


class ShapeError(ValueError):
    """A shape rule failed; lowering turns it into a located SpecError."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class Kind(str, Enum):
    """Coarse op families: colours in diagrams, buckets in analyses."""

    INPUT = "input"
    CONV = "conv"
    NORM = "norm"
    ACT = "activation"
    POOL = "pool"
    ELEMENTWISE = "elementwise"   # add, mul
    DATA = "data"                 # concat, chunk, shuffle, flatten, identity: pure data movement
    LINEAR = "linear"
    REGULARIZER = "regularizer"   # dropout, drop path: identity at inference


def _pair(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return tuple(v)
    if isinstance(v, str):
        return v  # a padding rule ('same', ...), checked by the union's other member
    raise ValueError(f"expected an int or a list [h, w] of ints, got {v!r}")


def _pair_schema(minimum: int) -> WithJsonSchema:
    # what a spec may write (the stored form is always a tuple)
    item = {"type": "integer", "minimum": minimum, "maximum": MAX_SPATIAL}
    return WithJsonSchema({"anyOf": [item, {"type": "array", "items": item, "minItems": 2, "maxItems": 2}],
                           "description": "an int, or [h, w]"})


# An int or an [h, w] pair, stored as (h, w).
# Bounded (limits.MAX_SPATIAL) so that no size a spec writes makes later work grow without end.
_Size = Annotated[int, Field(ge=0, le=MAX_SPATIAL)]
_PosSize = Annotated[int, Field(ge=1, le=MAX_SPATIAL)]
Pair = Annotated[tuple[_Size, _Size], BeforeValidator(_pair), _pair_schema(0)]
PosPair = Annotated[tuple[_PosSize, _PosSize], BeforeValidator(_pair), _pair_schema(1)]
Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]


class Params(BaseModel):
    # strict: a bool is not an int and 3.0 is not 3 (a float field still takes an int);
    # no NaN or infinity: no layer parameter means anything non-finite (LRN alpha, tanh amplitude, ...)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class NoParams(Params):
    pass


OPS: dict[str, "Op"] = {}
ALIASES: dict[str, str] = {"swish": "silu", "bn": "batchnorm", "conv": "conv2d", "fc": "linear"}


def register(cls: type["Op"]) -> type["Op"]:
    if cls.name in OPS:
        raise KeyError(f"op '{cls.name}' is already registered")
    OPS[cls.name] = cls()
    return cls


def get_op(name: str) -> "Op":
    return OPS[ALIASES.get(name, name)]


def is_op(name: str) -> bool:
    return ALIASES.get(name, name) in OPS


REQUIRED = object()  # a `Source` argument without a default value


@dataclass(frozen=True)
class Source:
    """How `netspec eject` writes an op's module: `call(value, ..., name=value, ...)`.

    `args` are (name, value, default) triples, the first `positional` written without their name;
    a keyword argument whose value is its default in every use of a generated class is left out.
    A `call` that is not `nn.*` names a small class `netspec.eject` writes into the file."""

    call: str
    args: tuple = ()
    positional: int = 0


def _conv_source(a: dict, call: str = "nn.Conv2d") -> Source:
    t, b, l, r = a["pad"]
    args = [("in_channels", a["in_channels"], REQUIRED), ("out_channels", a["out"], REQUIRED),
            ("kernel_size", _one(a["kernel"]), REQUIRED), ("stride", _one(a["stride"]), 1)]
    if t == b and l == r:
        args.append(("padding", _one((t, l)), 0))
    else:
        call = "Conv2dSame"
        args.append(("pad", (t, b, l, r), REQUIRED))
    args += [("dilation", _one(a["dilation"]), 1), ("groups", a["groups"], 1), ("bias", a["bias"], True)]
    return Source(call, tuple(args), 3)


def _one(pair):
    """(3, 3) -> 3: PyTorch takes an int for a square window."""
    pair = tuple(pair)
    return pair[0] if len(pair) == 2 and pair[0] == pair[1] else pair


class Op:
    name: ClassVar[str]
    kind: ClassVar[Kind]
    Params: ClassVar[type[Params]] = NoParams
    #: number of inputs; None means any number from `min_inputs` up
    arity: ClassVar[Optional[int]] = 1
    min_inputs: ClassVar[int] = 2
    doc: ClassVar[str] = ""

    def resolve(self, p: Params, ins: list[Shape]) -> dict:
        return p.model_dump()

    def infer(self, a: dict, ins: list[Shape]) -> Shape:
        return ins[0]

    def weights(self, a: dict, ins: list[Shape], out: Shape) -> dict[str, Shape]:
        return {}

    def buffers(self, a: dict, ins: list[Shape], out: Shape) -> dict[str, Shape]:
        return {}

    def macs(self, a: dict, ins: list[Shape], out: Shape) -> int:
        return 0

    def torch(self, a: dict, ins: list[Shape], out: Shape):
        raise NotImplementedError(self.name)

    def source(self, a: dict, ins: list[Shape], out: Shape) -> Source:
        """The module constructor `netspec eject` writes for this op (text, no torch)."""
        raise NotImplementedError(self.name)

    def inline(self, a: dict, xs: list[str]) -> Optional[str]:
        """A parameter-free op's forward as an expression over the input variables `xs`
        (`netspec eject` writes it in the forward instead of a module), or None."""
        return None

    #: input positions whose storage the op can write its result into (an in-place form exists).
    #: The eval forward with gradients off uses it where `netspec.optimize.inference_inplace_nodes`
    #: finds the input dead afterwards.
    overwrites: ClassVar[tuple[int, ...]] = ()

    def torch_inplace(self, module, k: int):
        """A module computing what `module` (built by `torch`) computes, written into input k's
        storage; run only in eval mode with gradients off. Default: a copy with `inplace=True`
        (sharing nothing but the class)."""
        import copy
        twin = copy.copy(module)
        twin.inplace = True
        return twin

    # ---- analysis rules (docs/analysis.md); per sample, batch excluded
    #: the reference registers this op's tensors on the enclosing block itself, before the block's
    #: submodules (torchvision's CNBlock.layer_scale): the torch backend places its module first
    #: among its scope's children, so checkpoints line up by order
    registers_first: ClassVar[bool] = False

    #: True when the op moves no data at inference (a view or an identity in eval mode):
    #: its output aliases its input, it has no memory traffic and allocates nothing
    view: ClassVar[bool] = False
    #: G4 bucket of an element-wise op (add, mul, activation, norm, concat, split, shuffle), or None
    elementwise: ClassVar[Optional[str]] = None

    def full_macs(self, a: dict, ins: list[Shape], out: Shape) -> int:
        """MACs under the `full` profile: one fused multiply-add, and any other single arithmetic
        operation or comparison, counts 1. Default: the reference MACs (pure data movement is 0)."""
        return self.macs(a, ins, out)

    def mem_io(self, a: dict, ins: list[Shape], out: Shape) -> int:
        """Activation elements read + written (each input read once, output written once:
        the ShuffleNet V2 infinite-cache model). Weights are added by `weight_reads`."""
        if self.view:
            return 0
        return sum(math.prod(s) for s in ins) + math.prod(out)

    def weight_reads(self, a: dict, weights: dict[str, Shape], buffers: dict[str, Shape]) -> int:
        """Parameter and buffer elements read at inference (once per forward, not per sample)."""
        return sum(math.prod(s) for s in weights.values())

    def window(self, a: dict, ins: list[Shape], out: Shape):
        """Per-axis (H, W) `Window`s, or `GLOBAL`. Default: point-wise in space (k=1, s=1)."""
        return IDENTITY_WINDOW

    def connections(self, a: dict, ins: list[Shape], out: Shape) -> int:
        """Connections in LeCun et al. 1998's sense: for every output unit, one per input it reads
        through a weight, plus one for its bias. Default: none (an op without weights; LeCun counts
        the squashing function as part of the unit)."""
        return 0


def sliding_windows(a: dict) -> tuple[Window, Window]:
    """(H, W) receptive-field geometry of a conv or pool from its resolved kernel, stride, dilation and pad."""
    t, _, l, _ = a["pad"]
    return tuple(Window(d * (k - 1) + 1, s, p)  # type: ignore[return-value]
                 for k, s, d, p in zip(a["kernel"], a["stride"], a["dilation"], (t, l)))


def _feature_map(name: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{name} needs a feature map (C, H, W) but got shape {shape}",
                         "this op must come before flatten / global pooling without keepdim")
    return shape  # type: ignore[return-value]


def _window_out(size: int, k: int, s: int, pad_total: int, d: int = 1, ceil_mode: bool = False,
                pad_begin: int = 0) -> int:
    """PyTorch's output-size rule for conv/pool windows (ceil_mode as in pooling.h)."""
    span = size + pad_total - d * (k - 1) - 1
    if ceil_mode:
        out = -(-span // s) + 1
        # PyTorch: the last window must start inside the input or the left padding
        if (out - 1) * s >= size + pad_begin:
            out -= 1
    else:
        out = span // s + 1
    return out


# --------------------------------------------------------------------------- input

@register
class Input(Op):
    name = "input"
    kind = Kind.INPUT
    arity = 0
    doc = "The network input (added by lowering, not written in specs)."

    def mem_io(self, a, ins, out):
        return 0  # the caller writes the input; its reads are charged to the ops that consume it


