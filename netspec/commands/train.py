"""`netspec train`: train a spec's network with its `train:` recipe; one process, or many under torchrun."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SourceLoc, SpecError
from .common import add_spec_args, bounded_float, non_negative_int, positive_int


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True,
                   help="'digits' (scikit-learn's handwritten digits, no download), 'fake' (random images) or an "
                        "image folder: train/ and val/ of class folders, or class folders split by --val-split")
    p.add_argument("--val-split", type=bounded_float(0, 0.9), default=0.2, help="validation fraction of a single folder / digits")
    p.add_argument("--workers", type=non_negative_int, help="data loader worker processes (default: 0 in memory, else min(4, cores))")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--fake-images", type=positive_int, default=1024, help="--data fake: number of training images")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", help="train the network with the spec's recipe (train:), writing a run folder",
        description="Compile the spec and train it with its `train:` recipe (override any field with "
                    "--set train.FIELD=VALUE). Writes RUN_DIR/metrics.jsonl, checkpoint.pt (every epoch, atomic), "
                    "best.pt, curves.png and spec.yaml. Under torchrun it trains with DistributedDataParallel.",
        epilog="examples:\n  netspec train lenet5 --data digits --out runs/lenet5\n"
               "  netspec train lenet5 --data digits --out runs/lenet5 --resume\n"
               "  torchrun --standalone --nproc_per_node 2 -m netspec train lenet5 --data digits "
               "--out runs/ddp\n"
               "  netspec train efficientnet_v2_s --data ./images --out runs/effv2s\n"
               "  netspec train resnet18 --weights resnet18.pth --data ./flowers --out runs/flowers   # fine-tune",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p, aux=False)
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="the run folder")
    p.add_argument("--weights", metavar="FILE",
                   help="fine-tune: start from this checkpoint (netspec's or the reference's keys); a classifier "
                        "for another number of classes is initialised, and the skipped keys are listed")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint.pt")
    p.add_argument("--force", action="store_true", help="start over in an existing RUN_DIR (its files are replaced)")
    p.add_argument("--sync-bn", action="store_true", help="with several processes: synchronised BatchNorm")
    p.add_argument("--no-amp", action="store_true", help="CUDA: train in float32 (default: mixed precision)")
    p.add_argument("--check-replicas", action="store_true",
                   help="with several processes: verify after every step that all hold identical weights (slow)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    return p


def resolved(args):
    """(scaled spec, graph, recipe, resolved spec YAML) for the command line's spec, variant and --set values."""
    from ..lower import lower
    from ..recipe import Recipe, resolved_data
    from ..scale import apply_scaling
    from ..spec import load_spec
    from .expand import expanded, to_yaml

    spec = load_spec(args.spec, overrides=args.overrides)
    scaled = apply_scaling(spec, variant=args.variant, phi=args.phi, resolution=args.res)
    graph = lower(scaled, aux=True)
    recipe = scaled.train or Recipe()
    data = expanded(spec, variant=args.variant, phi=args.phi, resolution=args.res, unroll_repeats=False)
    data["train"] = resolved_data(recipe)
    how = " ".join(f"{flag} {value}" for flag, value in
                   (("--variant", args.variant), ("--phi", args.phi), ("--res", args.res)) if value is not None)
    header = f"# resolved by netspec train from {args.spec} {how} " + " ".join(f"--set {s}" for s in args.overrides)
    return scaled, graph, recipe, to_yaml(data, header.rstrip() + "\n")


def classes_decide_num_classes(args) -> None:
    """With data whose classes are known (an image folder, digits), `num_classes` is theirs: added as
    `--set num_classes=N` and said; an explicit `--set num_classes` that disagrees is an error."""
    from ..spec import load_spec
    from ..train.data import data_classes

    classes = data_classes(args.data)
    if classes is None or not classes:
        return
    n = len(classes)
    for text in args.overrides:
        key, _, value = text.partition("=")
        if key.strip() == "num_classes" and value.strip() != str(n):
            raise SpecError(f"--set {text.strip()} disagrees with the {n} classes of {args.data}",
                            SourceLoc("--set"), "leave num_classes out: the data's classes decide it")
    spec_n = load_spec(args.spec, overrides=args.overrides).num_classes
    args.overrides = [*args.overrides, f"num_classes={n}"]
    if spec_n != n:
        shown = ", ".join(classes[:6]) + (", ..." if n > 6 else "")
        print(f"num_classes {n} from the classes of {args.data} ({shown}); the spec's head had {spec_n}",
              file=sys.stderr)


def pretrained_loader(weights: str, spec, graph):
    """`Options.init` for --weights: load the checkpoint into the initialised model, return what happened."""
    from ..finetune import load_into
    from ..weights import reference_keys

    keys = reference_keys(spec.reference_keys, spec.locs.loc(("reference_keys",)))
    if not Path(weights).is_file():
        raise SpecError(f"--weights: {weights} does not exist", SourceLoc(weights), "give a .pt/.pth/.safetensors file")

    def init(model) -> str:
        report = load_into(model, graph, keys, weights)
        return "\n".join([f"fine-tuning from {weights}: {len(report.matches)} tensors loaded (matched by "
                          f"{report.how})"] + report.skipped_lines())
    return init


def run(args) -> int:
    from ..extras import require
    from ..train import Options, train

    if not 0 < args.val_split < 1:
        raise SpecError(f"--val-split must be between 0 and 1, got {args.val_split}", SourceLoc("--val-split"))
    if args.weights and args.resume:
        raise SpecError("--weights starts a new run from a checkpoint; --resume continues RUN_DIR from its own",
                        SourceLoc("--weights"), "drop one of them")
    require("matplotlib", "netspec train (curves.png)")  # before any work, not at the end of epoch 1
    classes_decide_num_classes(args)
    scaled, graph, recipe, text = resolved(args)
    if scaled.train is None:
        print(f"note: {args.spec} has no `train:` section; using the default recipe (see docs/training.md)",
              file=sys.stderr)
    opts = Options(data=args.data, out=Path(args.out), resume=args.resume, force=args.force, device=args.device,
                   workers=args.workers, val_split=args.val_split, fake_images=args.fake_images, sync_bn=args.sync_bn,
                   check_replicas=args.check_replicas, amp=not args.no_amp,
                   progress=False if args.no_progress else None, spec_yaml=text,
                   init=pretrained_loader(args.weights, scaled, graph) if args.weights else None)
    train(graph, recipe, opts)
    return 0
