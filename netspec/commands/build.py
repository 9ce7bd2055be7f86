"""`netspec build`: validate, lower, compile; print the per-stage summary (or JSON); optionally save."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..analysis import costs
from ..errors import SourceLoc, SpecError
from .common import add_spec_args, positive_int, human, load_graph, output_file, shape_str, table


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "build", help="validate, lower and compile a spec; print its summary",
        description="Validate a spec, lower it to the graph IR, compile it to a torch.nn.Module and print a "
                    "per-stage summary (output shape, params, MACs) with totals.",
        epilog="examples:\n  netspec build mobilenet_v2\n"
               "  netspec build googlenet --json\n"
               "  netspec build lenet5 --set num_classes=20 --out lenet.pt\n"
               "  netspec build efficientnet_b3 --weights efficientnet_b3.pth --out b3.onnx\n"
               "  netspec build mobilenet_v2 --out mnv2_tv.pth --save-as torchvision\n"
               "  netspec build resnet50 --features 1,2,3,4          # backbone: strides 4, 8, 16, 32\n"
               "  netspec build resnet50 --features stages.layer3 --weights resnet50.pth --out r50_c4.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--out", help="save the model: .pt/.pth/.safetensors = state dict, .ts = TorchScript (traced), "
                                 ".onnx = ONNX (dynamic batch axis)")
    p.add_argument("--weights", metavar="FILE",
                   help="load a checkpoint (.pt/.pth/.safetensors): netspec's own keys, or the spec's reference's "
                        "(torchvision), matched by name or registration order and checked by shape")
    p.add_argument("--strict", action="store_true",
                   help="with --weights: refuse a checkpoint whose classifier has another number of classes "
                        "(default: load everything else and initialise the classifier, for fine-tuning)")
    p.add_argument("--weights-report", action="store_true", help="print how every tensor of --weights was matched")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="load --weights holding NaN or infinite values (with a warning) instead of refusing them")
    p.add_argument("--save-as", choices=("netspec", "torchvision"), default="netspec",
                   help="key names of a saved state dict: netspec's (default) or the reference's "
                        "(torchvision: the constructor loads it with strict=True)")
    p.add_argument("--force", action="store_true", help="allow --out to replace an existing file")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    p.add_argument("--features", nargs="?", const="", metavar="I,J,...|NAME,...",
                   help="build the backbone instead (no head): feature maps by timm's out_indices (index i = the "
                        "last map at stride 2^(i+1); 1,2,3,4 = strides 4..32; default every index the network "
                        "has) or by name (stages.layer3); prints channels, reduction and module of each")
    p.add_argument("--max-params", type=positive_int, metavar="N",
                   help="refuse a model with more parameters + buffers than N (default: NETSPEC_MAX_PARAMS, "
                        "else half the available memory as float32)")
    o = p.add_argument_group("inference-optimised build (docs/performance.md)")
    o.add_argument("--optimize", action="store_true",
                   help="build the inference-only module: batch norm folded into convs, dropout and identities "
                        "removed, in-place activations, channels-last memory format")
    o.add_argument("--no-channels-last", dest="nchw", action="store_true",
                   help="with --optimize: keep the default (NCHW) memory format")
    o.add_argument("--freeze", action="store_true", help="with --optimize: trace and torch.jit.freeze the module")
    o.add_argument("--compile", action="store_true",
                   help="with --optimize: wrap in torch.compile and compile it with one forward "
                        "(--out saves the module before compilation)")
    return p


def summary(loaded) -> dict:
    G = loaded.graph
    inp = (1, *G.graph["input_shape"])
    logits = G.graph["outputs"]["logits"]
    macs = costs.total_macs(G)
    out = {
        "name": G.graph["name"],
        "reference": G.graph["reference"],
        "input_shape": list(inp),
        "output_shape": [1, *G.nodes[logits]["shape"]],
        "params": costs.total_params(G),
        "params_with_aux": costs.total_params(G, include_aux=True),
        "buffers": costs.total_buffers(G),
        "macs": macs,
        "flops": 2 * macs,
        "aux_heads": [k for k in G.graph["outputs"] if k != "logits"],
        "stages": [
            {"name": r.name, "scope": r.scope, "blocks": r.blocks, "output_shape": [1, *r.output_shape],
             "params": r.params, "macs": r.macs}
            for r in costs.parts(G)
        ],
    }
    return out


def render_table(s: dict) -> str:
    rows = [[r["name"], str(r["blocks"] or ""), shape_str(r["output_shape"][1:]), f"{r['params']:,}",
             f"{r['macs']:,}"] for r in s["stages"]]
    rows.append(["total", "", shape_str(s["output_shape"][1:]), f"{s['params']:,}", f"{s['macs']:,}"])
    lines = [f"{s['name']}" + (f"  ({s['reference']})" if s["reference"] else ""),
             f"input {shape_str(s['input_shape'][1:])}", "",
             table(rows[:-1] + [["─" * 5, "", "", "", ""]] + rows[-1:], ["part", "blocks", "output", "params", "MACs"],
                   "lrlrr"), ""]
    lines.append(f"params {s['params']:,} ({human(s['params'])})" +
                 (f", {s['params_with_aux']:,} with aux heads {', '.join(s['aux_heads'])}" if s["aux_heads"] else ""))
    lines.append(f"MACs   {s['macs']:,} ({human(s['macs'])}), FLOPs = 2 x MACs = {human(s['flops'])}")
    return "\n".join(lines)


STATE_DICT = (".pt", ".pth", ".safetensors")


def save(model, path: Path, force: bool, loaded, save_as: str = "netspec") -> None:
    suffix = path.suffix.lower()
    if suffix not in (*STATE_DICT, ".ts", ".torchscript", ".onnx"):
        raise SpecError(f"--out: unknown file type '{suffix}'", SourceLoc(str(path)),
                        "use .pt/.pth/.safetensors (state dict), .ts (TorchScript) or .onnx")
    if save_as != "netspec" and suffix not in STATE_DICT:
        raise SpecError(f"--save-as {save_as} names the keys of a state dict, not of a {suffix} file",
                        SourceLoc(str(path)), "use --out with .pt, .pth or .safetensors")
    output_file(str(path), force)
    import torch

    from ..interop import export_onnx
    from ..weights import reference_keys, reference_state_dict, write_checkpoint

    if suffix in STATE_DICT:
        state = model.state_dict()
        if save_as == "torchvision":
            spec = loaded.spec
            where = spec.locs.loc(("reference_keys",))
            keys = reference_keys(spec.reference_keys, where)
            if keys is None or not spec.reference_keys.startswith("torchvision/"):
                raise SpecError(f"spec '{spec.name}' declares no torchvision key list", where,
                                "add `reference_keys: torchvision/<constructor>` (netspec/reference_keys) to the spec")
            state = reference_state_dict(model, keys, where=where)
        write_checkpoint(state, path)
    elif suffix in (".ts", ".torchscript"):
        model.eval()
        traced = torch.jit.trace(model, torch.zeros(1, *loaded.graph.graph["input_shape"]))
        traced.save(str(path))
    else:
        export_onnx(model, loaded.graph, path)


def run(args) -> int:
    extras = [f for f, d in (("no-channels-last", "nchw"), ("freeze", "freeze"), ("compile", "compile"))
              if getattr(args, d)]
    if extras and not args.optimize:
        print(f"error: --{extras[0]} needs --optimize", file=sys.stderr)
        return 2
    if args.freeze and args.compile:
        print("error: --freeze and --compile are alternatives; pick one", file=sys.stderr)
        return 2
    loaded = load_graph(args)
    if args.features is not None:
        return run_features(args, loaded)
    from ..api import compile

    report = None
    if args.weights_report and not args.weights:
        raise SpecError("--weights-report reports how --weights was matched; no --weights given",
                        SourceLoc(args.spec), "add --weights FILE")
    if args.weights:
        from ..finetune import load_pretrained
        from ..weights import reference_keys
        spec = loaded.spec
        keys = reference_keys(spec.reference_keys, spec.locs.loc(("reference_keys",)))
        model, report = load_pretrained(loaded.graph, keys, args.weights, strict=args.strict, seed=args.seed,
                                        max_params=args.max_params,
                                        allow_nonfinite=args.allow_nonfinite)
    else:
        model = compile(loaded.graph, seed=args.seed, max_params=args.max_params)
    s = summary(loaded)
    n_torch = sum(p.numel() for p in model.parameters())
    if n_torch != s["params_with_aux"]:  # the IR and the module must agree; a mismatch is a netspec bug
        print(f"warning: compiled module has {n_torch:,} parameters, IR says {s['params_with_aux']:,}",
              file=sys.stderr)
    if args.optimize:
        from ..backends.torch_optimize import optimize_module
        from ..optimize import describe, inference_graph

        s["optimized"] = {**describe(loaded.graph, inference_graph(loaded.graph)),
                          "channels_last": not args.nchw, "freeze": args.freeze, "compile": args.compile}
        model = optimize_module(model, channels_last=not args.nchw, freeze=args.freeze)
        if args.compile:
            import torch

            compiled = torch.compile(model)
            with torch.inference_mode():
                compiled(torch.zeros(1, *loaded.graph.graph["input_shape"]))
    if args.out:
        save(model, Path(args.out), args.force, loaded, args.save_as)
        s["saved"] = args.out
    if report is not None:
        s["weights"] = {"file": args.weights, "matched_by": report.how, "tensors": len(report.matches),
                        "skipped": [o for o, *_ in report.skipped]}
        if args.weights_report:
            s["weights"]["mapping"] = {m.ours: m.theirs for m in report.matches}
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(render_table(s))
        if report is not None:
            print(report.text() if args.weights_report else
                  "\n".join([f"loaded {len(report.matches)} tensors from {args.weights} (matched by {report.how})"]
                            + report.skipped_lines()))
        if args.optimize:
            o = s["optimized"]
            opts = ", ".join(k.replace("_", "-") for k in ("channels_last", "freeze", "compile") if o[k])
            merged = (f", {o['branches_merged']} blocks of parallel convs re-parameterised into one conv each"
                      if o.get("branches_merged") else "")
            print(f"optimised for inference: {o['batchnorm_folded']} batch norms folded, {o['identities_removed']} "
                  f"dropout/identity ops removed, {o['inplace']} ops in place{merged}" + (f"; {opts}" if opts else ""))
        if args.out:
            print(f"saved {args.out}" + (" (torchvision keys)" if args.save_as == "torchvision" else ""))
    return 0


def run_features(args, loaded) -> int:
    """`--features`: the backbone (netspec.backbone), its feature maps as a table or JSON; --out saves its weights."""
    from ..api import build_features

    if args.optimize or args.save_as != "netspec":
        raise SpecError("--features builds a backbone; --optimize and --save-as apply to the whole network",
                        SourceLoc("--features"), "drop --optimize / --save-as")
    items = [t.strip() for t in args.features.split(",") if t.strip()]
    by_index = bool(items) and all(t.lstrip("-").isdigit() for t in items)
    model = build_features(loaded.spec, out_indices=[int(t) for t in items] if by_index else None,
                           out_nodes=items if items and not by_index else None, seed=args.seed,
                           max_params=args.max_params, weights=args.weights, strict=args.strict)
    G = model.graph
    feats = [{**f, "index": int(f["reduction"]).bit_length() - 2 if by_index or not items else None,
              "node": n, "shape": [1, *G.nodes[n]["shape"]]} for f, n in zip(model.feature_info, model.output_nodes)]
    s = {"name": G.graph["name"], "input_shape": [1, *G.graph["input_shape"]], "features": feats,
         "params": costs.total_params(G), "macs": costs.total_macs(G)}
    if args.out:
        path = Path(args.out)
        if path.suffix.lower() not in STATE_DICT:
            raise SpecError(f"--out: a backbone is saved as a state dict, not {path.suffix or path.name}",
                            SourceLoc(str(path)), "use .pt, .pth or .safetensors")
        output_file(str(path), args.force)
        from ..weights import write_checkpoint
        write_checkpoint(model.state_dict(), path)
        s["saved"] = args.out
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    rows = [["-" if f["index"] is None else str(f["index"]), f["module"], str(f["num_chs"]), str(f["reduction"]),
             shape_str(f["shape"][1:])] for f in feats]
    print(f"{s['name']} backbone  input {shape_str(s['input_shape'][1:])}\n")
    print(table(rows, ["index", "module", "channels", "reduction", "output"], "llrrl"))
    print(f"\nparams {s['params']:,} ({human(s['params'])}), MACs {s['macs']:,} ({human(s['macs'])})")
    if getattr(model, "weights_report", None) is not None:
        r = model.weights_report
        print("\n".join([f"loaded from {args.weights} (matched by {r.how}); the backbone keeps "
                         f"{len(model.state_dict())} of its tensors"] + r.skipped_lines()))
    if args.out:
        print(f"saved {args.out}")
    return 0
