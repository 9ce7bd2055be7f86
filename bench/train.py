"""Training throughput: netspec's MobileNetV2 beside torchvision's in the same loop, and the DDP speed-up.

    python bench/train.py                       # both parts (a few minutes on 2 cores)
    python bench/train.py --res 224 --batch 32  # the ImageNet shape (slow on CPU)
    python bench/train.py --no-ddp --device cuda

Part 1 - same loop: one training step (forward in train mode, cross-entropy, backward, SGD with momentum) of
each model on the same random batch, round-robin: each round runs `--steps` steps of one model then of the
other (the order alternates per round), so a change in machine load hits both alike. Reported: the median
images/s of each over the rounds and their ratio (netspec / torchvision; 1.0 = the same speed).

Part 2 - DDP: `netspec train specs/mobilenet_v2.yaml --data fake` in one process, then under
`torchrun --standalone --nproc_per_node 2` with the same per-process batch; images/s (all processes together)
of the last epoch from metrics.jsonl, and their ratio (the speed-up; 2.0 is linear). On a CPU each process
gets `--threads` threads, so the two-process run uses twice the cores.

Prints a JSON object (and writes it with --out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def same_loop(args) -> dict:
    import torch
    import torch.nn.functional as F

    import netspec
    from netspec._torchvision import import_torchvision
    from netspec.scale import apply_scaling

    torch.set_num_threads(args.threads)
    tv = import_torchvision()
    device = torch.device(args.device)
    spec = apply_scaling(netspec.load(ROOT / "specs" / "mobilenet_v2.yaml"), resolution=args.res)
    models = {"netspec": netspec.compile(netspec.lower(spec), seed=0),
              "torchvision": tv.models.mobilenet_v2(num_classes=1000)}
    n_ns = sum(p.numel() for p in models["netspec"].parameters())
    n_tv = sum(p.numel() for p in models["torchvision"].parameters())
    assert n_ns == n_tv, (n_ns, n_tv)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.res, args.res, generator=g).to(device)
    y = torch.randint(0, 1000, (args.batch,), generator=g).to(device)
    opts = {}
    for name, m in models.items():
        m.to(device).train()
        opts[name] = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def steps(name: str, k: int) -> float:
        m, opt = models[name], opts[name]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(k):
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return k * args.batch / (time.perf_counter() - t)

    for name in models:  # warm-up
        steps(name, 2)
    rates: dict[str, list[float]] = {name: [] for name in models}
    for r in range(args.rounds):
        order = list(models) if r % 2 == 0 else list(reversed(models))
        for name in order:
            rates[name].append(steps(name, args.steps))
    med = {name: statistics.median(v) for name, v in rates.items()}
    ratios = [a / b for a, b in zip(rates["netspec"], rates["torchvision"])]
    return {"res": args.res, "batch": args.batch, "rounds": args.rounds, "steps_per_round": args.steps,
            "threads": args.threads, "device": args.device, "params": n_ns,
            "images_per_s": {k: round(v, 2) for k, v in med.items()},
            "ratio_of_medians": round(med["netspec"] / med["torchvision"], 3),
            "median_of_round_ratios": round(statistics.median(ratios), 3),
            "round_ratios": [round(r, 3) for r in ratios]}


def ddp(args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    common = ["train", str(ROOT / "specs" / "mobilenet_v2.yaml"), "--data", "fake", "--res", str(args.ddp_res),
              "--set", "num_classes=10", "--set", f"train.epochs={args.ddp_epochs}",
              "--set", f"train.batch_size={args.batch}", "--fake-images", str(args.ddp_images), "--no-progress",
              "--device", args.device]
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    out: dict = {"res": args.ddp_res, "batch_per_process": args.batch, "images": args.ddp_images,
                 "epochs": args.ddp_epochs, "threads_per_process": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        for label, launcher in (("1 process", [sys.executable, "-m", "netspec"]),
                                ("2 processes", [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "netspec"])):
            run_dir = Path(tmp) / label.replace(" ", "_")
            r = subprocess.run([*launcher, *common, "--out", str(run_dir)], capture_output=True, text=True, env=env,
                               cwd=ROOT)
            if r.returncode != 0:
                raise SystemExit(f"{label} failed:\n{r.stdout}\n{r.stderr}")
            rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            out[label] = round(statistics.median(row["images_per_s"] for row in rows[1:] or rows), 2)
    out["speedup"] = round(out["2 processes"] / out["1 process"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--res", type=int, default=112)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-ddp", action="store_true")
    p.add_argument("--ddp-res", type=int, default=64)
    p.add_argument("--ddp-images", type=int, default=256)
    p.add_argument("--ddp-epochs", type=int, default=3)
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args()
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "same_loop": same_loop(args)}
    if not args.no_ddp:
        result["ddp"] = ddp(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
