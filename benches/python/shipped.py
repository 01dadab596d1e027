"""The shipped script modules against plain Python, interleaved in one run:
`python benches/python/shipped.py [--against FOLDER] [--rounds N]`.

Each round runs every input through every side in turn (side after side on
each input), so a load that comes and goes on a shared machine falls on all
of them alike; a side's figure is, per input, its fastest call over the
rounds, averaged over the inputs.
`--against FOLDER` adds the scripts of another folder (an older version of
`scripts/`, say) as a third side, for before/after ratios in one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))

import module_registry as mr  # noqa: E402
from shipped_peers import CASES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="a folder of other versions of the scripts")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    shipped = mr.ModuleRegistry(bundled_scripts=True)
    other = None
    if args.against is not None:
        other = mr.ModuleRegistry()
        other.load_scripts(args.against)
    print(f"{'module':<12} {'python':>10} {'shipped':>10} {'ratio':>7}" + (f" {'against':>10} {'ratio':>7}" if other else ""))
    for name, (plain, make) in CASES.items():
        inputs = make()
        sides: dict[str, Callable[[Any], Any]] = {"python": plain, "shipped": shipped.create(name).process}
        if other is not None:
            sides["against"] = other.create(name).process
        for side, f in sides.items():
            for x in inputs[:5]:
                assert f(x) == plain(x), (name, side, x)
        # Per input and side, the fastest of the rounds (a call preempted by
        # another process's work is slower, never faster); a side's figure
        # is the mean of those over the inputs.
        best = {side: [float("inf")] * len(inputs) for side in sides}
        clock = time.perf_counter
        for _ in range(args.rounds):
            for i, x in enumerate(inputs):  # side after side on each input
                for side, f in sides.items():
                    start = clock()
                    f(x)
                    best[side][i] = min(best[side][i], clock() - start)
        med = {side: statistics.fmean(t) for side, t in best.items()}
        line = f"{name:<12} {med['python'] * 1e6:>8.1f}us {med['shipped'] * 1e6:>8.1f}us {med['shipped'] / med['python']:>6.1f}x"
        if other is not None:
            line += f" {med['against'] * 1e6:>8.1f}us {med['against'] / med['python']:>6.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
