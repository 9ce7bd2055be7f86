"""The Python API: the pipeline as plain functions, each of the previous stage's output.

    spec  = load("mobilenet_v2")                     # a zoo name (list_models()) or a YAML file -> validated Spec
    spec  = load("specs/vgg.yaml", variant="A-LRN")  # ... a named variant (also phi=, res=, as the CLI)
    graph = lower(spec)                              # Spec -> graph IR with shapes
    model = compile(graph)                           # graph IR -> torch.nn.Module (imports torch)

    model = build("efficientnet_b3", weights="efficientnet_b3.pth")   # = build("efficientnet", variant="b3", ...)
"""
from __future__ import annotations

import math
from pathlib import Path

import networkx as nx

from .errors import SourceLoc, SpecError
from .analysis.budget import check_model_size
from .lower import lower
from .scale import apply_scaling
from .spec import Spec, load_spec
from .zoo import list_models, resolve as resolve_name


def load(source: str | Path, *, overrides: list[str] | None = None, variant: str | None = None,
         phi: float | None = None, res: int | None = None, num_classes: int | None = None) -> Spec:
    """Read and validate a spec; with `variant`, `phi` or `res`, also scale it (the CLI's options).

    source     a spec file, or a zoo name (`mobilenet_v2`, `efficientnet_b3`, `resnet50`: see
               `list_models()`); a file that exists wins over a name

    overrides  `path=value` patches applied before validation (`--set`), e.g. ["num_classes=10"]
    variant    a row of the spec's `variants:` table (`--variant b3`)
    phi        the compound-scaling coefficient (`--phi 2`), from 0 to 16
    res        the input resolution (`--res 260`), wins over the spec and the variant
    num_classes  the classifier's outputs (`--set num_classes=10`)
    With any of them the scaled spec is returned (its `variants:` table is then gone, as in
    `netspec expand`); without them, the spec as validated. `build` (like the CLI) always scales.
    """
    if phi is not None and not (isinstance(phi, (int, float)) and math.isfinite(phi) and 0 <= phi <= 16):
        raise SpecError(f"phi must be a number from 0 to 16 (B7 is about 7), got {phi!r}", SourceLoc("phi="))
    if res is not None and (not isinstance(res, int) or isinstance(res, bool) or res < 1):
        raise SpecError(f"res must be a positive integer, got {res!r}", SourceLoc("res="))
    if num_classes is not None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise SpecError(f"num_classes must be a positive integer, got {num_classes!r}", SourceLoc("num_classes="))
        overrides = [*(overrides or []), f"num_classes={num_classes}"]
    source, variant = resolve_name(source, variant)
    spec = load_spec(source, overrides=overrides)
    if variant is None and phi is None and res is None:
        return spec
    return apply_scaling(spec, variant=variant, phi=phi, resolution=res)


def compile(graph: nx.DiGraph, *, seed: int | None = 0, max_params: int | None = None, optimize: bool = False,
            channels_last: bool | None = None, freeze: bool = False, torch_compile: bool = False):
    """Compile the graph IR into a `torch.nn.Module` (the only step that imports torch).

    A graph whose parameters and buffers exceed `max_params` (default: NETSPEC_MAX_PARAMS, else a
    share of the available memory; see `netspec.limits`) is refused with a located `SpecError`
    before anything is allocated.

    `optimize=True` returns the inference-only module (docs/performance.md): batch norm folded,
    dropout and identities removed, in-place activations, channels-last memory format (unless
    `channels_last=False`); optionally frozen with `torch.jit.freeze` or wrapped in `torch.compile`.
    To optimise a trained model, call `netspec.backends.torch_optimize.optimize_module(model)`."""
    check_model_size(graph, max_params)
    try:
        from .backends.pytorch import compile_graph
    except ImportError as exc:
        raise ImportError(f"compiling a module needs torch ({exc}); install it: pip install torch") from exc
    model = compile_graph(graph, seed=seed)
    if not optimize:
        if channels_last is not None or freeze or torch_compile:
            raise ValueError("channels_last, freeze and torch_compile apply to the optimised build: "
                             "pass optimize=True")
        return model
    from .backends.torch_optimize import optimize_module
    return optimize_module(model, channels_last=channels_last is not False, freeze=freeze, compile=torch_compile)


def build(source: str | Path, *, overrides: list[str] | None = None, variant: str | None = None,
          phi: float | None = None, res: int | None = None, num_classes: int | None = None, aux: bool = True, seed: int | None = 0,
          max_params: int | None = None, weights: str | Path | None = None, strict: bool = False,
          features_only: bool = False, out_indices=None, out_nodes=None,
          optimize: bool = False, channels_last: bool | None = None, freeze: bool = False,
          torch_compile: bool = False):
    """load → scale → lower → compile in one call: `build("specs/efficientnet.yaml", variant="b3")`.

    `weights` loads a checkpoint (netspec's own keys, or the spec's reference's: see docs/interop.md).
    Fine-tuning: with another `num_classes` than the checkpoint's, every tensor loads except the
    classifier's, which is initialised; `model.weights_report` (a `netspec.weights.Report`) lists
    what was matched and, in `.skipped`, what was not. `strict=True` refuses any shape difference.
    `optimize` and its options are as in `compile`.

    Backbones (timm's convention, `netspec.backbone`): `features_only=True` returns a module whose forward
    gives a list of feature maps, `out_indices` picking them by stride (index i: the last map at stride
    2^(i+1); default every index 0-4 the network has), or `out_nodes=["stages.layer3", ...]` by name;
    `model.feature_info` lists channels, reduction and module name. The head is not built.
    """
    spec = apply_scaling(load(source, overrides=overrides, variant=variant, phi=phi, res=res, num_classes=num_classes))
    if features_only or out_nodes is not None or out_indices is not None:
        if optimize:
            raise ValueError("optimize applies to the classifier; features_only builds a backbone")
        return build_features(spec, out_indices=out_indices, out_nodes=out_nodes, seed=seed, max_params=max_params,
                              weights=weights, strict=strict)
    graph = lower(spec, aux=aux and not optimize)
    if weights is None:
        return compile(graph, seed=seed, max_params=max_params, optimize=optimize, channels_last=channels_last,
                       freeze=freeze, torch_compile=torch_compile)
    model = compile_with_weights(graph, spec, weights, max_params=max_params, strict=strict,
                                 seed=0 if seed is None else seed)
    if not optimize:
        return model
    from .backends.torch_optimize import optimize_module
    return optimize_module(model, channels_last=channels_last is not False, freeze=freeze, compile=torch_compile)


def build_features(spec: Spec, *, out_indices=None, out_nodes=None, seed: int | None = 0,
                   max_params: int | None = None, weights: str | Path | None = None, strict: bool = False):
    """The backbone of a scaled spec: the graph pruned to the chosen feature maps, compiled to return them."""
    from .backbone import feature_graph, select

    full = lower(spec, aux=True)  # aux heads are never feature maps, but a whole-network checkpoint has them
    points = select(full, out_indices=out_indices, out_nodes=out_nodes)
    graph = feature_graph(full, points)
    check_model_size(graph, max_params)
    from .backends.pytorch import compile_outputs
    outputs = [p.node for p in points]
    if weights is None:
        model = compile_outputs(graph, outputs, seed=seed)
    else:  # the checkpoint is the whole network's: load it into the whole network, keep the backbone's part
        import torch
        whole = compile_with_weights(full, spec, weights, max_params=max_params, strict=strict,
                                     seed=0 if seed is None else seed)
        with torch.device("meta"):
            model = compile_outputs(graph, outputs, seed=None)
        state = whole.state_dict()
        model.load_state_dict({k: state[k] for k in model.state_dict()}, strict=True, assign=True)
        model.weights_report = whole.weights_report
    model.feature_info = graph.graph["feature_info"]
    return model


def compile_with_weights(graph: nx.DiGraph, spec: Spec, weights: str | Path, *, max_params: int | None = None,
                         strict: bool = False, seed: int = 0):
    """Compile without initialising (on the meta device) and take every tensor from the checkpoint; a
    classifier for another number of classes is initialised instead (unless `strict`: see `build`)."""
    from .finetune import load_pretrained
    from .weights import reference_keys
    check_model_size(graph, max_params)
    keys = reference_keys(spec.reference_keys, spec.locs.loc(("reference_keys",)))
    model, report = load_pretrained(graph, keys, weights, strict=strict, seed=seed, max_params=max_params)
    model.weights_report = report
    return model


def report(source: str | Path, out: str | Path | None = None, *, overrides: list[str] | None = None,
           variant: str | None = None, phi: float | None = None, res: int | None = None,
           run: str | Path | None = None, level: str = "stage", batch: int = 1, profile: str = "reference",
           force: bool = False) -> str:
    """The interactive HTML report of a spec (`netspec report`; docs/report.md): returns the page and,
    with `out`, writes it there (an existing file only with `force=True`). No torch.

    `run` is a `netspec train` run directory whose metrics.jsonl the page plots. The spec options are
    those of `load`; a spec with `variants:` also gets its family table (unless `phi` is given)."""
    from . import htmlreport

    path = None
    if out is not None:
        path = Path(out)
        if path.exists() and not force:
            raise SpecError(f"{path} exists; not overwriting it", SourceLoc(str(path)),
                            "choose another file name or pass force=True")
    source, variant = resolve_name(source, variant)  # a zoo name: its family file and row
    run_info = htmlreport.run_data(run) if run is not None else None
    base = load(source, overrides=overrides)
    graph = lower(apply_scaling(load(source, overrides=overrides, variant=variant, phi=phi, res=res)))
    family = htmlreport.family_data(base, resolution=res, current=variant or "(base)") if phi is None else None
    bits = [f"variant {variant}"] if variant else []
    bits += [f"phi {phi:g}"] if phi is not None else []
    bits += [f"res {res}"] if res else []
    page = htmlreport.report_html(graph, family=family, run=run_info, initial=level,
                                  subtitle=" · ".join(["netspec report", *bits, *(overrides or [])]),
                                  batch=batch, profile=profile)
    if path is not None:
        path.write_text(page, encoding="utf-8")
    return page


__all__ = ["load", "lower", "compile", "build", "list_models", "report"]
