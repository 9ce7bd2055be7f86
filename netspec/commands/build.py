"""`netspec build`: validate, lower, compile; print the per-stage summary (or JSON); optionally save."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..analysis import costs
from ..errors import SourceLoc, SpecError
from .common import add_spec_args, human, load_graph, output_file, shape_str, table


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "build", help="validate, lower and compile a spec; print its summary",
        description="Validate a spec, lower it to the graph IR, compile it to a torch.nn.Module and print a "
                    "per-stage summary (output shape, params, MACs) with totals.",
        epilog="examples:\n  netspec build specs/mobilenet_v2.yaml\n"
               "  netspec build specs/googlenet.yaml --json\n"
               "  netspec build specs/lenet5.yaml --set num_classes=20 --out lenet.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--out", help="save the model: .pt/.pth = state dict, .ts = TorchScript (traced), .onnx = ONNX")
    p.add_argument("--force", action="store_true", help="allow --out to replace an existing file")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
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


def save(model, path: Path, force: bool, input_shape) -> None:
    output_file(str(path), force)
    import torch

    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        torch.save(model.state_dict(), path)
    elif suffix in (".ts", ".torchscript"):
        model.eval()
        traced = torch.jit.trace(model, torch.zeros(1, *input_shape))
        traced.save(str(path))
    elif suffix == ".onnx":
        model.eval()
        torch.onnx.export(model, (torch.zeros(1, *input_shape),), str(path), dynamo=False,
                          input_names=["x"], output_names=["logits"])
    else:
        raise SpecError(f"--out: unknown file type '{suffix}'", SourceLoc(str(path)),
                        "use .pt/.pth (state dict), .ts (TorchScript) or .onnx")


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
    from ..api import compile

    model = compile(loaded.graph, seed=args.seed)
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
        save(model, Path(args.out), args.force, loaded.graph.graph["input_shape"])
        s["saved"] = args.out
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(render_table(s))
        if args.optimize:
            o = s["optimized"]
            opts = ", ".join(k.replace("_", "-") for k in ("channels_last", "freeze", "compile") if o[k])
            print(f"optimised for inference: {o['batchnorm_folded']} batch norms folded, {o['identities_removed']} "
                  f"dropout/identity ops removed, {o['inplace']} ops in place" + (f"; {opts}" if opts else ""))
        if args.out:
            print(f"saved {args.out}")
    return 0
