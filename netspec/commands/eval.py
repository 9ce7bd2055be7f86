"""`netspec eval`: top-1, top-5 and loss of trained weights on a dataset's validation images."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SourceLoc, SpecError
from .common import add_spec_args, positive_int
from .train import add_data_args, classes_decide_num_classes, resolved


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval", help="evaluate trained weights (best.pt, checkpoint.pt) on validation data",
        description="Load weights into the compiled spec and print the validation top-1, top-5 and loss (main "
                    "head). The validation images are those `netspec train` held out with the same recipe seed "
                    "and --val-split.",
        epilog="example:\n  netspec eval lenet5 --weights runs/lenet5/best.pt --data digits",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p, aux=False)
    add_data_args(p)
    p.add_argument("--weights", required=True, help="a state dict (best.pt) or a checkpoint (checkpoint.pt)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    return p


def run(args) -> int:
    from ..api import compile
    from ..train import data as D
    from ..train.loop import Dist, evaluate, loader, setup_processes
    from ..train.rundir import load_checkpoint

    classes_decide_num_classes(args)  # as `netspec train` did: the data's classes size the head
    _, graph, recipe, _ = resolved(args)
    path = Path(args.weights)
    if not path.is_file():
        raise SpecError(f"--weights: {path} does not exist", SourceLoc(str(path)), "give RUN_DIR/best.pt")
    state = load_checkpoint(path)
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise SpecError(f"--weights {path} holds no state dict (a dict of tensor names to tensors)",
                        SourceLoc(str(path)), "give RUN_DIR/best.pt or RUN_DIR/checkpoint.pt")
    c, h, w = graph.graph["input_shape"]
    data = D.load_data(args.data, channels=c, size=(h, w), num_classes=graph.graph["num_classes"], seed=recipe.seed,
                       val_fraction=args.val_split, fake_images=args.fake_images)
    d, device = Dist(), setup_processes(args.device)[1]
    model = compile(graph, seed=recipe.seed)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise SpecError(f"--weights {path} do not fit this spec: {str(exc).splitlines()[0][:300]}",
                        SourceLoc(str(path)), "evaluate with the spec (and --variant / --set) it was trained with; "
                                              "RUN_DIR/spec.yaml is that spec") from None
    model.to(device)
    data.val.transform = D.eval_transform(recipe.augment, (h, w), c)
    workers = args.workers if args.workers is not None else 0
    m = evaluate(model, loader(data.val, args.batch_size, shuffle=False, seed=recipe.seed, epoch=0, d=d,
                               workers=workers, device=device), device, d)
    print(f"{graph.graph['name']} on {data.name} ({m['n']} validation images): "
          f"top-1 {m['acc1']:.2%}  " + (f"top-5 {m['acc5']:.2%}  " if m["acc5"] is not None else "")
          + f"loss {m['loss']:.4f}")
    return 0
