"""`netspec predict`: the top-k classes of images, with the class names of the run that trained the weights."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import SourceLoc, SpecError
from .common import add_spec_args, positive_int


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict", help="classify images with trained weights: top-k classes with their names",
        description="Load weights into the compiled spec and print the top-k classes of each image. Class names "
                    "come from --classes, else from classes.json beside the weights (netspec train writes it to "
                    "the run folder); their number sets num_classes. Images are resized (and centre-cropped) as "
                    "the spec's recipe validates them.",
        epilog="examples:\n  netspec predict resnet18 --weights runs/flowers/best.pt rose.jpg tulip.jpg\n"
               "  netspec predict runs/flowers/spec.yaml --weights runs/flowers/best.pt photos/*.jpg --top 3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_args(p, aux=False)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--weights", required=True, help="a state dict (RUN_DIR/best.pt) or a reference checkpoint")
    p.add_argument("--classes", help="a JSON list of class names (default: classes.json beside --weights)")
    p.add_argument("--top", type=positive_int, default=5, help="how many classes per image (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON: one object per image")
    return p


def class_names(args) -> list[str] | None:
    path = Path(args.classes) if args.classes else Path(args.weights).parent / "classes.json"
    if not path.is_file():
        if args.classes:
            raise SpecError(f"--classes: {path} does not exist", SourceLoc(str(path)), "give a JSON list of names")
        return None
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read class names: {exc}", SourceLoc(str(path)), "a JSON list of strings") from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SpecError("class names must be a non-empty JSON list of strings", SourceLoc(str(path)))
    return names


def run(args) -> int:
    import torch

    from ..finetune import load_pretrained
    from ..train import data as D
    from ..weights import reference_keys
    from .train import resolved

    for image in args.images:
        if not Path(image).is_file():
            raise SpecError(f"image {image} does not exist", SourceLoc(image))
    names = class_names(args)
    if names is not None:
        for text in args.overrides:
            key, _, value = text.partition("=")
            if key.strip() == "num_classes" and value.strip() != str(len(names)):
                raise SpecError(f"--set {text.strip()} disagrees with the {len(names)} class names",
                                SourceLoc("--set"), "leave num_classes out: the class names decide it")
        args.overrides = [*args.overrides, f"num_classes={len(names)}"]
    scaled, graph, recipe, _ = resolved(args)
    keys = reference_keys(scaled.reference_keys, scaled.locs.loc(("reference_keys",)))
    model, _ = load_pretrained(graph, keys, args.weights, strict=True)
    model.eval()
    c, h, w = graph.graph["input_shape"]
    transform, load = D.eval_transform(recipe.augment, (h, w), c), D._Loader(c)
    n_classes = graph.graph["num_classes"]
    names = names or [str(i) for i in range(n_classes)]
    k = min(args.top, n_classes)
    results = []
    with torch.inference_mode():
        for image in args.images:
            try:
                x = transform(load(image))
            except OSError as exc:
                raise SpecError(f"cannot read image {image} ({exc})", SourceLoc(image)) from None
            probs = model(x[None]).float().softmax(dim=1)[0]
            p, idx = probs.topk(k)
            results.append({"image": image, "top": [{"class": names[i], "index": int(i), "probability": float(q)}
                                                    for q, i in zip(p.tolist(), idx.tolist())]})
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for r in results:
            print(f"{r['image']}: " + "  ".join(f"{t['class']} {t['probability']:.1%}" for t in r["top"]))
    return 0
