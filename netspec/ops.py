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
below; nothing else in the pipeline needs to change.

Shapes are tuples without the batch dimension: (C, H, W) for feature maps,
(F,) for flat features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from .limits import MAX_CHANNELS, MAX_SPATIAL

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
    # strict: a bool is not an int and 3.0 is not 3 (a float field still takes an int)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


# --------------------------------------------------------------------------- convolution

PaddingRule = Literal["same", "valid", "tf_same"]


class Conv2dParams(Params):
    out: Annotated[Channels, Field(description="output channels")]
    kernel: Annotated[PosPair, Field(description="kernel size, int or [kh, kw]")]
    stride: Annotated[PosPair, Field(description="stride, int or [sh, sw]")] = (1, 1)
    padding: Annotated[Union[Pair, PaddingRule], Field(
        description="int, [ph, pw], 'same' (symmetric (k-1)//2*dilation, as torchvision), "
                    "'tf_same' (TensorFlow SAME: asymmetric, depends on input size) or 'valid' (0)")] = (0, 0)
    dilation: PosPair = (1, 1)
    groups: Annotated[Union[Channels, Literal["depthwise"]], Field(
        description="groups, or 'depthwise' for groups = input channels")] = 1
    bias: bool = True


def conv_padding(kernel, stride, dilation, padding, size) -> tuple[int, int, int, int]:
    """Resolved (top, bottom, left, right) padding."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        ph, pw = ((kernel[0] - 1) // 2 * dilation[0], (kernel[1] - 1) // 2 * dilation[1])
        return (ph, ph, pw, pw)
    if padding == "tf_same":
        pads = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)  # type: ignore[return-value]
    ph, pw = padding
    return (ph, ph, pw, pw)


@register
class Conv2d(Op):
    name = "conv2d"
    kind = Kind.CONV
    Params = Conv2dParams
    doc = "2-D convolution (groups, dilation, per-axis kernel/stride/padding)."

    def resolve(self, p, ins):
        c, h, w = _feature_map(self.name, ins[0])
        a = p.model_dump()
        a["in_channels"] = c
        if a["groups"] == "depthwise":
            a["groups"] = c
        a["pad"] = conv_padding(p.kernel, p.stride, p.dilation, p.padding, (h, w))
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        g = a["groups"]
        if g < 1 or c % g or a["out"] % g:
            raise ShapeError(f"channels not divisible by groups: in {c}, out {a['out']}, groups {g}",
                             "both input and output channels must be multiples of groups")
        t, b, l, r = a["pad"]
        (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a["dilation"]
        ho = _window_out(h, kh, sh, t + b, dh)
        wo = _window_out(w, kw, sw, l + r, dw)
        if ho < 1 or wo < 1:
            dilated = f", dilation {dh}x{dw}" if (dh, dw) != (1, 1) else ""
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw}{dilated})",
                             "the input is too small here: raise the input size, or reduce stride/kernel/dilation")
        return (a["out"], ho, wo)

    def weights(self, a, ins, out):
        kh, kw = a["kernel"]
        w = {"weight": (a["out"], a["in_channels"] // a["groups"], kh, kw)}
        if a["bias"]:
            w["bias"] = (a["out"],)
        return w

    def macs(self, a, ins, out):
        cout, ho, wo = out
        kh, kw = a["kernel"]
        return cout * ho * wo * (a["in_channels"] // a["groups"]) * kh * kw

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (math.prod(out) if a["bias"] else 0)  # bias: one add per output

    def window(self, a, ins, out):
        return sliding_windows(a)

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)  # every multiply, plus the bias of each output

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.conv2d(a)

    def source(self, a, ins, out):
        return _conv_source(a)


class TableConv2dParams(Params):
    table: Annotated[list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]], Field(
        min_length=1, description="for each output map, the input maps it reads (LeNet-5's Table I); "
                                  "the number of output maps is its length")]
    kernel: PosPair
    stride: PosPair = (1, 1)
    padding: Pair = (0, 0)
    bias: bool = True


@register
class TableConv2d(Op):
    name = "table_conv2d"
    kind = Kind.CONV
    Params = TableConv2dParams
    doc = ("2-D convolution through a connection table: output map i sums the convolutions of the input "
           "maps `table[i]` only, one kernel per connection (LeNet-5's C3).")

    def resolve(self, p, ins):
        c, h, w = _feature_map(self.name, ins[0])
        a = p.model_dump()
        a["in_channels"] = c
        a["out"] = len(p.table)
        a["dilation"] = (1, 1)
        ph, pw = p.padding
        a["pad"] = (ph, ph, pw, pw)
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        for i, maps in enumerate(a["table"]):
            bad = [m for m in maps if m >= c]
            if bad:
                raise ShapeError(f"table[{i}] reads input map {bad[0]} but the input has {c} maps (0..{c - 1})",
                                 "every entry of the table names an input map, counted from 0")
            if len(set(maps)) != len(maps):
                raise ShapeError(f"table[{i}] lists an input map twice: {maps}", "list each input map once")
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        t, b, l, r = a["pad"]
        ho, wo = _window_out(h, kh, sh, t + b), _window_out(w, kw, sw, l + r)
        if ho < 1 or wo < 1:
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw})",
                             "the input is too small here: raise the input size, or reduce stride/kernel")
        return (a["out"], ho, wo)

    def weights(self, a, ins, out):
        w = {"weight": (sum(len(m) for m in a["table"]), *a["kernel"])}  # one kernel per connection
        if a["bias"]:
            w["bias"] = (a["out"],)
        return w

    def buffers(self, a, ins, out):
        # the gather of each connection's input map and the order the outputs are put back in
        return {"in_index": (sum(len(m) for m in a["table"]),), "out_index": (a["out"],)}

    def macs(self, a, ins, out):
        _, ho, wo = out
        return sum(len(m) for m in a["table"]) * math.prod(a["kernel"]) * ho * wo

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (math.prod(out) if a["bias"] else 0)

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)

    def weight_reads(self, a, weights, buffers):
        return sum(math.prod(s) for s in weights.values())

    def window(self, a, ins, out):
        return sliding_windows(a)

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.TableConv2d(a["in_channels"], a["table"], a["kernel"], a["stride"], a["padding"], a["bias"])

    def source(self, a, ins, out):
        return Source("TableConv2d", (("in_channels", a["in_channels"], REQUIRED), ("table", a["table"], REQUIRED),
                                      ("kernel", tuple(a["kernel"]), REQUIRED), ("stride", tuple(a["stride"]), (1, 1)),
                                      ("padding", tuple(a["padding"]), (0, 0)), ("bias", a["bias"], True)), 2)


# --------------------------------------------------------------------------- normalisation

class BatchNormParams(Params):
    eps: Annotated[float, Field(gt=0)] = 1e-5
    momentum: Optional[Annotated[float, Field(ge=0, le=1)]] = 0.1
    affine: bool = True
    zero_init: bool = Field(False, description=(
        "start the scale (gamma) at 0 instead of 1, so a residual branch ending here starts as the "
        "identity (Goyal et al. 2017; torchvision's zero_init_residual)"))


@register
class BatchNorm(Op):
    name = "batchnorm"
    kind = Kind.NORM
    Params = BatchNormParams
    doc = "BatchNorm2d (or BatchNorm1d on flat features)."

    def resolve(self, p, ins):
        return {**p.model_dump(), "channels": ins[0][0]}

    def weights(self, a, ins, out):
        return {"weight": (a["channels"],), "bias": (a["channels"],)} if a["affine"] else {}

    def buffers(self, a, ins, out):
        c = a["channels"]
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}

    elementwise = "norm"

    def full_macs(self, a, ins, out):
        return math.prod(out)  # eval: y = x·scale + shift, one multiply-add per element

    def weight_reads(self, a, weights, buffers):
        # eval reads weight, bias, running mean and running variance (not the step counter)
        return sum(math.prod(s) for s in weights.values()) + 2 * a["channels"]

    overwrites = (0,)  # eval: y = x·scale + shift per element (with running statistics)

    def torch_inplace(self, module, k):
        from .backends import torch_layers as L
        return L.BatchNormInPlace(module)

    def torch(self, a, ins, out):
        import torch.nn as nn
        cls = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
        bn = cls(a["channels"], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])
        if a["zero_init"] and a["affine"]:
            nn.init.zeros_(bn.weight)
        return bn

    def source(self, a, ins, out):
        call = "nn.BatchNorm2d" if len(ins[0]) == 3 else "nn.BatchNorm1d"
        return Source(call, (("num_features", a["channels"], REQUIRED), ("eps", a["eps"], 1e-5),
                             ("momentum", a["momentum"], 0.1), ("affine", a["affine"], True)), 1)


class LRNParams(Params):
    size: Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


@register
class LocalResponseNorm(Op):
    name = "lrn"
    kind = Kind.NORM
    Params = LRNParams
    doc = "Local response normalisation, PyTorch convention: b = a / (k + alpha/n * sum a^2)^beta."

    def infer(self, a, ins):
        return _feature_map(self.name, ins[0])

    def full_macs(self, a, ins, out):
        # per element: `size` multiply-adds for the sum of squares, then scale-shift, power, divide
        return math.prod(out) * (a["size"] + 3)

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.LocalResponseNorm(a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])

    def source(self, a, ins, out):
        return Source("nn.LocalResponseNorm", (("size", a["size"], REQUIRED), ("alpha", a["alpha"], 1e-4),
                                               ("beta", a["beta"], 0.75), ("k", a["k"], 1.0)), 1)


# --------------------------------------------------------------------------- activations

def _activation(op_name: str, torch_name: str, doc: str, inplace: bool = False, **torch_kwargs):
    class Activation(Op):
        name = op_name
        kind = Kind.ACT
        elementwise = "activation"
        overwrites = (0,) if inplace else ()  # the torch module has an `inplace` switch

        def full_macs(self, a, ins, out):
            return math.prod(out)  # one operation per element, whatever the function

        def torch(self, a, ins, out):
            import torch.nn as nn
            return getattr(nn, torch_name)(**torch_kwargs)

        def source(self, a, ins, out):
            return Source(f"nn.{torch_name}", tuple((k, v, REQUIRED) for k, v in torch_kwargs.items()))

    Activation.doc = doc
    Activation.__name__ = Activation.__qualname__ = torch_name
    return register(Activation)


ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "hardsigmoid", "hardswish", "silu", "gelu")
_activation("relu", "ReLU", "max(0, x)", inplace=True)
_activation("relu6", "ReLU6", "min(max(0, x), 6)", inplace=True)
_activation("sigmoid", "Sigmoid", "1 / (1 + exp(-x))")
_activation("tanh", "Tanh", "tanh(x)")
_activation("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6", inplace=True)
_activation("hardswish", "Hardswish", "x * relu6(x + 3) / 6", inplace=True)
_activation("silu", "SiLU", "x * sigmoid(x) (swish)", inplace=True)
_activation("gelu", "GELU", "x * Phi(x)")


class ScaledTanhParams(Params):
    amplitude: float = Field(1.7159, description="A in A * tanh(S * x)")
    slope: float = Field(2 / 3, description="S in A * tanh(S * x)")


@register
class ScaledTanh(Op):
    name = "scaled_tanh"
    kind = Kind.ACT
    Params = ScaledTanhParams
    elementwise = "activation"
    doc = ("LeCun's squashing function A * tanh(S * x); the defaults A = 1.7159, S = 2/3 give f(1) = 1, "
           "f(-1) = -1 (LeCun et al. 1998, Appendix A).")

    def full_macs(self, a, ins, out):
        return math.prod(out)

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.ScaledTanh(a["amplitude"], a["slope"])

    def source(self, a, ins, out):
        return Source("ScaledTanh", (("amplitude", a["amplitude"], REQUIRED), ("slope", a["slope"], REQUIRED)), 2)


# --------------------------------------------------------------------------- pooling

class MaxPoolParams(Params):
    kernel: PosPair
    stride: Optional[PosPair] = Field(None, description="defaults to kernel")
    padding: Pair = (0, 0)
    dilation: PosPair = (1, 1)
    ceil_mode: bool = False


class AvgPoolParams(Params):
    kernel: PosPair
    stride: Optional[PosPair] = Field(None, description="defaults to kernel")
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True


class _Pool(Op):
    kind = Kind.POOL

    def resolve(self, p, ins):
        _feature_map(self.name, ins[0])
        a = p.model_dump()
        if a["stride"] is None:
            a["stride"] = a["kernel"]
        a.setdefault("dilation", (1, 1))
        ph, pw = a["padding"]
        a["pad"] = (ph, ph, pw, pw)
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["padding"], a["dilation"]
        if ph > kh // 2 or pw > kw // 2:
            raise ShapeError(f"padding {a['padding']} is more than half the kernel {a['kernel']}",
                             "PyTorch pooling requires padding <= kernel // 2")
        ho = _window_out(h, kh, sh, 2 * ph, dh, a["ceil_mode"], ph)
        wo = _window_out(w, kw, sw, 2 * pw, dw, a["ceil_mode"], pw)
        if ho < 1 or wo < 1:
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw})",
                             "the input is too small here: raise the input size, or reduce stride/kernel")
        return (c, ho, wo)

    def full_macs(self, a, ins, out):
        return math.prod(out) * math.prod(a["kernel"])  # each window element compared / accumulated once

    def window(self, a, ins, out):
        return sliding_windows(a)


@register
class MaxPool(_Pool):
    name = "maxpool"
    Params = MaxPoolParams
    doc = "Max pooling (ceil_mode, padding, dilation)."

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.MaxPool2d(a["kernel"], a["stride"], a["padding"], a["dilation"], ceil_mode=a["ceil_mode"])

    def source(self, a, ins, out):
        return Source("nn.MaxPool2d", (("kernel_size", _one(a["kernel"]), REQUIRED), ("stride", _one(a["stride"]), None),
                                       ("padding", _one(a["padding"]), 0), ("dilation", _one(a["dilation"]), 1),
                                       ("ceil_mode", a["ceil_mode"], False)), 2)


@register
class AvgPool(_Pool):
    name = "avgpool"
    Params = AvgPoolParams
    doc = "Average pooling (ceil_mode, count_include_pad)."

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.AvgPool2d(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"],
                            count_include_pad=a["count_include_pad"])

    def source(self, a, ins, out):
        return Source("nn.AvgPool2d", (("kernel_size", _one(a["kernel"]), REQUIRED), ("stride", _one(a["stride"]), None),
                                       ("padding", _one(a["padding"]), 0), ("ceil_mode", a["ceil_mode"], False),
                                       ("count_include_pad", a["count_include_pad"], True)), 2)


class SubsampleParams(Params):
    kernel: PosPair = (2, 2)
    stride: Optional[PosPair] = Field(None, description="defaults to kernel")
    bias: bool = True


@register
class Subsample(Op):
    name = "subsample"
    kind = Kind.POOL
    Params = SubsampleParams
    doc = ("LeNet-5's trainable subsampling (S2, S4): per map, the sum of each window times a trainable "
           "coefficient plus a trainable bias (the squashing function is a separate op). Computed as a "
           "depthwise conv whose kernel is the map's coefficient repeated.")

    def resolve(self, p, ins):
        c, _, _ = _feature_map(self.name, ins[0])
        a = p.model_dump()
        if a["stride"] is None:
            a["stride"] = a["kernel"]
        a["channels"] = c
        a["dilation"] = (1, 1)
        a["pad"] = (0, 0, 0, 0)
        return a

    def infer(self, a, ins):
        c, h, w = ins[0]
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        ho, wo = _window_out(h, kh, sh, 0), _window_out(w, kw, sw, 0)
        if ho < 1 or wo < 1:
            raise ShapeError(f"output size {ho}x{wo} is not positive (input {h}x{w}, kernel {kh}x{kw})",
                             "the input is too small here: raise the input size, or reduce the kernel")
        return (c, ho, wo)

    def weights(self, a, ins, out):
        w = {"weight": (a["channels"],)}
        if a["bias"]:
            w["bias"] = (a["channels"],)
        return w

    def macs(self, a, ins, out):
        return math.prod(out) * math.prod(a["kernel"])  # as the depthwise conv it runs as

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (math.prod(out) if a["bias"] else 0)

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)  # LeCun: S2 has 6 x 14 x 14 x (4 + 1) = 5,880

    def window(self, a, ins, out):
        return sliding_windows(a)

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.Subsample(a["channels"], a["kernel"], a["stride"], a["bias"])

    def source(self, a, ins, out):
        return Source("Subsample", (("channels", a["channels"], REQUIRED), ("kernel", tuple(a["kernel"]), REQUIRED),
                                    ("stride", tuple(a["stride"]), REQUIRED), ("bias", a["bias"], True)), 3)


class AdaptivePoolParams(Params):
    output: PosPair = (1, 1)


def _adaptive_window(n: int, m: int) -> Window:
    """PyTorch's adaptive windows [floor(i·n/m), ceil((i+1)·n/m)) along one axis. Uniform when m
    divides n; otherwise the widest window and the mean stride n/m (an approximation)."""
    if n % m == 0:
        return Window(n // m, n // m, 0)
    widest = max(-(-(i + 1) * n // m) - (i * n // m) for i in range(m))
    return Window(widest, Fraction(n, m), 0)


class _AdaptivePool(Op):
    kind = Kind.POOL
    Params = AdaptivePoolParams
    torch_name: ClassVar[str]

    def infer(self, a, ins):
        c, _, _ = _feature_map(self.name, ins[0])
        return (c, *a["output"])

    def full_macs(self, a, ins, out):
        return math.prod(ins[0])  # each input element accumulated once

    def window(self, a, ins, out):
        if tuple(a["output"]) == (1, 1):
            return GLOBAL
        return tuple(_adaptive_window(n, m) for n, m in zip(ins[0][1:], a["output"]))

    def torch(self, a, ins, out):
        import torch.nn as nn
        return getattr(nn, self.torch_name)(a["output"])

    def source(self, a, ins, out):
        return Source(f"nn.{self.torch_name}", (("output_size", _one(a["output"]), REQUIRED),), 1)


@register
class AdaptiveAvgPool(_AdaptivePool):
    name = "adaptive_avgpool"
    torch_name = "AdaptiveAvgPool2d"
    doc = "Adaptive average pooling to a fixed output size."


@register
class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive_maxpool"
    torch_name = "AdaptiveMaxPool2d"
    doc = "Adaptive max pooling to a fixed output size."


class GlobalPoolParams(Params):
    keepdim: bool = Field(True, description="keep (C, 1, 1); false gives flat (C,) like x.mean([2, 3])")


@register
class GlobalAvgPool(Op):
    name = "global_avgpool"
    kind = Kind.POOL
    Params = GlobalPoolParams
    doc = "Mean over H and W."

    def infer(self, a, ins):
        c, _, _ = _feature_map(self.name, ins[0])
        return (c, 1, 1) if a["keepdim"] else (c,)

    def full_macs(self, a, ins, out):
        return math.prod(ins[0])

    def window(self, a, ins, out):
        return GLOBAL

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.GlobalAvgPool(a["keepdim"])

    def source(self, a, ins, out):
        return Source("GlobalAvgPool", (("keepdim", a["keepdim"], True),))

    def inline(self, a, xs):
        return f"{xs[0]}.mean([2, 3], keepdim={a['keepdim']})"


# --------------------------------------------------------------------------- regularisers

class DropoutParams(Params):
    p: Annotated[float, Field(ge=0, lt=1)] = 0.5


@register
class Dropout(Op):
    name = "dropout"
    kind = Kind.REGULARIZER
    Params = DropoutParams
    doc = "Dropout (identity in eval mode)."
    view = True

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Dropout(a["p"])

    def source(self, a, ins, out):
        return Source("nn.Dropout", (("p", a["p"], 0.5),), 1)


class DropPathParams(Params):
    p: Annotated[float, Field(ge=0, lt=1)] = 0.0
    mode: Literal["row", "batch"] = "row"


@register
class DropPath(Op):
    name = "drop_path"
    kind = Kind.REGULARIZER
    Params = DropPathParams
    doc = "Stochastic depth on a residual branch (torchvision StochasticDepth semantics)."
    view = True

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.StochasticDepth(a["p"], a["mode"])

    def source(self, a, ins, out):
        return Source("StochasticDepth", (("p", a["p"], REQUIRED), ("mode", a["mode"], "row")), 1)


# --------------------------------------------------------------------------- linear

class LinearParams(Params):
    out: Channels
    bias: bool = True


@register
class Linear(Op):
    name = "linear"
    kind = Kind.LINEAR
    Params = LinearParams
    doc = "Fully connected layer on flat features."

    def resolve(self, p, ins):
        if len(ins[0]) != 1:
            raise ShapeError(f"linear needs flat features (F,) but got {ins[0]}",
                             "add a `flatten` (or `global_avgpool` with keepdim: false) before it")
        return {**p.model_dump(), "in_features": ins[0][0]}

    def infer(self, a, ins):
        return (a["out"],)

    def weights(self, a, ins, out):
        w = {"weight": (a["out"], a["in_features"])}
        if a["bias"]:
            w["bias"] = (a["out"],)
        return w

    def macs(self, a, ins, out):
        return a["in_features"] * a["out"]

    def full_macs(self, a, ins, out):
        return self.macs(a, ins, out) + (a["out"] if a["bias"] else 0)

    def window(self, a, ins, out):
        return GLOBAL  # every output mixes every input feature

    def connections(self, a, ins, out):
        return self.full_macs(a, ins, out)

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Linear(a["in_features"], a["out"], bias=a["bias"])

    def source(self, a, ins, out):
        return Source("nn.Linear", (("in_features", a["in_features"], REQUIRED), ("out_features", a["out"], REQUIRED),
                                    ("bias", a["bias"], True)), 2)


class RBFParams(Params):
    out: Annotated[int, Field(ge=1, description="output units (classes)")]


@register
class RBF(Op):
    name = "rbf"
    kind = Kind.LINEAR
    Params = RBFParams
    doc = ("Euclidean radial basis function units (LeNet-5's output layer): y_i = sum_j (x_j - c_ij)^2 "
           "over fixed +-1 centres c (a buffer, not trained). The paper drew them as 7x12 bitmaps of "
           "the characters and notes random +-1 codes would do; here they are random +-1 from the "
           "build seed. Smaller is more likely: the outputs are penalties, not logits.")

    def resolve(self, p, ins):
        if len(ins[0]) != 1:
            raise ShapeError(f"rbf needs flat features (F,) but got {ins[0]}",
                             "add a `flatten` (or a `linear` layer) before it")
        return {**p.model_dump(), "in_features": ins[0][0]}

    def infer(self, a, ins):
        return (a["out"],)

    def buffers(self, a, ins, out):
        return {"centers": (a["out"], a["in_features"])}

    def macs(self, a, ins, out):
        # computed as |x|^2 - 2 x.c + |c|^2: the x.c product is the multiply-accumulates
        return a["in_features"] * a["out"]

    def full_macs(self, a, ins, out):
        return 2 * a["in_features"] * a["out"]  # per term: a subtraction and a multiply-add

    def weight_reads(self, a, weights, buffers):
        return math.prod(buffers["centers"])

    def connections(self, a, ins, out):
        return a["in_features"] * a["out"]  # one per centre component (no bias)

    def window(self, a, ins, out):
        return GLOBAL

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.RBF(a["in_features"], a["out"])

    def source(self, a, ins, out):
        return Source("RBF", (("in_features", a["in_features"], REQUIRED), ("out_features", a["out"], REQUIRED)), 2)


# --------------------------------------------------------------------------- data movement

@register
class Flatten(Op):
    name = "flatten"
    kind = Kind.DATA
    doc = "(C, H, W) -> (C*H*W,)."
    view = True

    def infer(self, a, ins):
        return (math.prod(ins[0]),)

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Flatten(1)

    def source(self, a, ins, out):
        return Source("nn.Flatten", (("start_dim", 1, REQUIRED),), 1)

    def inline(self, a, xs):
        return f"torch.flatten({xs[0]}, 1)"


@register
class Identity(Op):
    name = "identity"
    kind = Kind.DATA
    doc = "Passes its input through (a named tap point)."
    view = True

    def torch(self, a, ins, out):
        import torch.nn as nn
        return nn.Identity()

    def source(self, a, ins, out):
        return Source("nn.Identity")

    def inline(self, a, xs):
        return xs[0]


@register
class Concat(Op):
    name = "concat"
    kind = Kind.DATA
    arity = None
    min_inputs = 1  # one input is the identity (torch.cat of one tensor; DenseNet's first layer reads [x])
    doc = "Concatenate along channels; spatial sizes must agree."
    elementwise = "concat"

    def infer(self, a, ins):
        first = ins[0]
        for s in ins[1:]:
            if len(s) != len(first) or s[1:] != first[1:]:
                raise ShapeError(f"concat of unequal spatial sizes: {', '.join(map(str, ins))}",
                                 "every input must have the same H and W; check strides, padding and ceil_mode "
                                 "in the branches")
        return (sum(s[0] for s in ins), *first[1:])

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.Concat()

    def source(self, a, ins, out):
        return Source("Concat")

    def inline(self, a, xs):
        return f"torch.cat([{', '.join(xs)}], 1)"


@register
class Add(Op):
    name = "add"
    kind = Kind.ELEMENTWISE
    arity = None
    doc = "Element-wise sum of equally shaped tensors (residual connections)."
    elementwise = "add"

    def full_macs(self, a, ins, out):
        return (len(ins) - 1) * math.prod(out)

    def infer(self, a, ins):
        if any(s != ins[0] for s in ins[1:]):
            raise ShapeError(f"add of unequal shapes: {', '.join(map(str, ins))}",
                             "residual adds need equal channels and spatial size; use a projection "
                             "or a `when:` condition")
        return ins[0]

    overwrites = (0, 1)  # the first two only: the sum stays bit-identical (IEEE addition commutes)

    def torch_inplace(self, module, k):
        from .backends import torch_layers as L
        return L.Add(inplace=k)

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.Add()

    def source(self, a, ins, out):
        return Source("Add")

    def inline(self, a, xs):
        return " + ".join(xs)


@register
class Mul(Op):
    name = "mul"
    kind = Kind.ELEMENTWISE
    arity = 2
    doc = "Element-wise product with broadcasting (squeeze-and-excitation gating)."
    elementwise = "mul"

    def full_macs(self, a, ins, out):
        return math.prod(out)

    def infer(self, a, ins):
        x, y = ins
        if len(x) != len(y):
            raise ShapeError(f"mul of shapes with different rank: {x}, {y}")
        out = []
        for p, q in zip(x, y):
            if p != q and 1 not in (p, q):
                raise ShapeError(f"mul of shapes that do not broadcast: {x}, {y}",
                                 "each axis must match or be 1")
            out.append(max(p, q))
        return tuple(out)

    overwrites = (0, 1)  # into the full-size operand (IEEE multiplication commutes)

    def torch_inplace(self, module, k):
        from .backends import torch_layers as L
        return L.Mul(inplace=k)

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.Mul()

    def source(self, a, ins, out):
        return Source("Mul")

    def inline(self, a, xs):
        return f"{xs[0]} * {xs[1]}"


class ChunkParams(Params):
    chunks: Channels = 2
    index: Annotated[int, Field(ge=0, le=MAX_CHANNELS)] = 0


@register
class Chunk(Op):
    name = "chunk"
    kind = Kind.DATA
    Params = ChunkParams
    doc = "Channel split: piece `index` of `chunks` equal pieces (x.chunk(chunks, 1)[index])."
    elementwise = "split"
    view = True  # x.chunk() is a view: the consumer reads the slice in place

    def infer(self, a, ins):
        c = ins[0][0]
        if a["index"] >= a["chunks"]:
            raise ShapeError(f"chunk index {a['index']} out of range for {a['chunks']} chunks")
        if c % a["chunks"]:
            raise ShapeError(f"{c} channels do not split into {a['chunks']} equal chunks")
        return (c // a["chunks"], *ins[0][1:])

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.Chunk(a["chunks"], a["index"])

    def source(self, a, ins, out):
        return Source("Chunk", (("chunks", a["chunks"], REQUIRED), ("index", a["index"], REQUIRED)), 2)

    def inline(self, a, xs):
        return f"{xs[0]}.chunk({a['chunks']}, 1)[{a['index']}]"


class ShuffleParams(Params):
    groups: Channels


@register
class ChannelShuffle(Op):
    name = "channel_shuffle"
    kind = Kind.DATA
    Params = ShuffleParams
    doc = "ShuffleNet channel shuffle: view (g, C/g), transpose, flatten."
    elementwise = "shuffle"  # the transpose is made contiguous: one full copy

    def infer(self, a, ins):
        c = _feature_map(self.name, ins[0])[0]
        if c % a["groups"]:
            raise ShapeError(f"channels not divisible by groups: {c} channels, {a['groups']} groups")
        return ins[0]

    def torch(self, a, ins, out):
        from .backends import torch_layers as L
        return L.ChannelShuffle(a["groups"])

    def source(self, a, ins, out):
        return Source("ChannelShuffle", (("groups", a["groups"], REQUIRED),), 1)

    def inline(self, a, xs):
        return f"channel_shuffle({xs[0]}, {a['groups']})"
