"""A cached batch from an empty cache, memory only against the disk cache
on, interleaved in one run: `python benches/python/cache_batch.py [--rounds N]`
(the figure is the median round of each side, and their ratio)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_bench_cache_batch import CHEAP_INPUTS, INPUTS, make_registry, run_fresh  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--cheap", action="store_true", help="two native sha256 steps instead of the text pipeline")
    args = parser.parse_args()
    registry = make_registry()
    times: dict[str, list[float]] = {"memory": [], "disk": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            for side in times:
                start = time.perf_counter()
                run_fresh(registry, Path(tmp) / str(n) if side == "disk" else None, args.cheap)
                times[side].append(time.perf_counter() - start)
    med = {side: statistics.median(t) for side, t in times.items()}
    count = len(CHEAP_INPUTS if args.cheap else INPUTS)
    print(f"{count} inputs, 2 cached steps: memory {med['memory'] * 1e3:.1f} ms, disk {med['disk'] * 1e3:.1f} ms, {med['disk'] / med['memory']:.2f}x")


if __name__ == "__main__":
    main()
