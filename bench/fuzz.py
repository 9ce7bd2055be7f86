"""The mutation fuzzer at scale: 20,000 seeded cases over the zoo specs (tests/fuzzing.py is the engine;
the suite runs 250 of them in tests/test_fuzz.py).

    python bench/fuzz.py                     # 20,000 cases on 2 processes, writes bench/fuzz_results.json
    python bench/fuzz.py --cases 2000 --start 50000 --jobs 1

Prints the summary and every defect with the seed that replays it
(`python -c "import fuzzing; print(fuzzing.make_case(SEED).content.decode())"` from tests/).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import fuzzing  # noqa: E402


def _chunk(seeds: list[int]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = fuzzing.fuzz(seeds, Path(tmp))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [{"seed": o.case.seed, "name": o.case.name, "accepted": o.accepted, "defects": o.defects,
             "seconds": o.seconds, "peak_rss_mib": peak_mib} for o in outcomes]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "fuzz_results.json"))
    args = ap.parse_args()
    seeds = list(range(args.start, args.start + args.cases))
    chunks = [seeds[i:i + 100] for i in range(0, len(seeds), 100)]
    t0 = time.perf_counter()
    rows: list[dict] = []
    with mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=20) as pool:
        for done in pool.imap_unordered(_chunk, chunks):
            rows += done
            print(f"\r{len(rows):,}/{len(seeds):,} cases", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    seconds = sorted(r["seconds"] for r in rows)
    defects = [r for r in rows if r["defects"]]
    summary = {
        "cases": len(rows), "first_seed": args.start, "jobs": args.jobs,
        "accepted": sum(r["accepted"] for r in rows), "refused": sum(not r["accepted"] for r in rows),
        "hostile": sum(r["name"].startswith("hostile:") for r in rows), "defects": len(defects),
        "median_case_s": round(seconds[len(seconds) // 2], 4), "p99_case_s": round(seconds[int(len(seconds) * .99)], 3),
        "max_case_s": round(seconds[-1], 3), "max_peak_rss_mib": round(max(r["peak_rss_mib"] for r in rows)),
        "wall_s": round(time.perf_counter() - t0, 1), "python": platform.python_version(),
    }
    Path(args.out).write_text(json.dumps({"summary": summary, "defects": defects}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    for r in defects[:50]:
        print(f"seed {r['seed']} ({r['name']}): {r['defects']}")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
