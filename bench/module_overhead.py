"""What the module contract (docs/module.md) costs at inference, side by side in one process.

    python bench/module_overhead.py --models mobilenet_v2 shufflenet_v2 --rounds 15

Variants, eval under `torch.inference_mode`, torchvision's weights copied in, interleaved rounds:
  fast-path-direct  the flat no-grad forward called directly: what the default build ran before
                    the parts existed (main's forward under inference_mode, minus the check)
  netspec           `model(x)`: the check (`fast_path_active`) and then the same fast path
  nested            `model(x)` with a no-op forward hook on one block: the nested forward
  tv                torchvision eager
Ratios are to torchvision, median over rounds of the per-round ratio (IQR in brackets).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

from forward import MODELS, EXTRA, build_variants, interleaved, summarise  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=["mobilenet_v2", "shufflenet_v2"])
    p.add_argument("--batches", type=int, nargs="*", default=[1, 8])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for m in [m for m in MODELS + EXTRA if m.spec in args.models]:
        v, _ = build_variants(m)
        ns, hooked, tv = v["netspec"], v["netspec-hooked"], v["tv"]
        for batch in args.batches:
            x = torch.randn(batch, 3, m.res, m.res, generator=torch.Generator().manual_seed(0))

            def call(f):
                def run():
                    with torch.inference_mode():
                        f(x)
                return run
            fns = {"fast-path-direct": call(ns._infer_nograd), "netspec": call(ns), "nested": call(hooked),
                   "tv": call(tv)}
            s = summarise(interleaved(fns, args.rounds, warmup=2))
            cells = ", ".join(f"{k} {r['ratio']:.3f}× ({r['ratio_q1']:.2f}–{r['ratio_q3']:.2f})"
                              for k, r in s.items() if k != "tv")
            print(f"{m.label}, batch {batch}: tv {s['tv']['median_ms']:.1f} ms; {cells}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
