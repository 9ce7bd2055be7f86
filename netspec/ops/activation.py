"""Point-wise activations and their in-place forms."""
from __future__ import annotations

import math

from .base import REQUIRED, Kind, Op, Source, register

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


