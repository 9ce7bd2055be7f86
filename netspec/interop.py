"""Exports that run without netspec: ONNX (the torch side; imported only when exporting).

The ONNX file has a dynamic batch axis, opset 18, an input named `x` and an output named
`logits` (inference graph: aux heads are training-only), and is checked with `onnx.checker`.
When torch cannot express the model, each node's module is exported on its own to find the
first that fails, and the error names its op and the spec entry that produced it.
"""
from __future__ import annotations

import io
from pathlib import Path

import networkx as nx
import torch

from .errors import SourceLoc, SpecError

OPSET = 18


def _export(module, example, target, *, dynamic: bool, names: bool = True) -> None:
    kwargs = {"input_names": ["x"], "output_names": ["logits"]} if names else {}
    if dynamic:
        kwargs["dynamic_axes"] = {"x": {0: "batch"}, "logits": {0: "batch"}}
    torch.onnx.export(module, (example,), target, dynamo=False, opset_version=OPSET, **kwargs)


def _culprit(model, G: nx.DiGraph):
    """The first node whose module alone does not export, with the error it raises."""
    for n, data in G.nodes(data=True):
        if data["op"] == "input" or len(data["inputs"]) != 1:
            continue
        module = model.get_submodule(n)
        try:
            _export(module.eval(), torch.zeros(1, *data["in_shapes"][0]), io.BytesIO(), dynamic=False, names=False)
        except Exception as exc:  # noqa: BLE001 - looking for the failing op
            return n, exc
    return None, None


def export_onnx(model, G: nx.DiGraph, path: str | Path) -> None:
    from .extras import require
    onnx = require("onnx", "--out .onnx")

    model.eval()
    example = torch.zeros(2, *G.graph["input_shape"])  # batch 2: nothing specialises on a batch of 1
    try:
        _export(model, example, str(path), dynamic=True)
    except Exception as exc:  # noqa: BLE001 - translated into a located error below
        Path(path).unlink(missing_ok=True)
        node, node_exc = _culprit(model, G)
        if node is None:
            raise SpecError(f"ONNX export failed: {type(exc).__name__}: {str(exc)[:300]}", SourceLoc(str(path)),
                            "export TorchScript (.ts) instead, or report this model") from None
        data = G.nodes[node]
        raise SpecError(f"ONNX (opset {OPSET}) cannot express op '{data['op']}' of node {node}: "
                        f"{type(node_exc).__name__}: {str(node_exc)[:300]}", data["loc"],
                        "replace this entry with ops ONNX supports, or export TorchScript (.ts)") from None
    onnx.checker.check_model(onnx.load(str(path)))
