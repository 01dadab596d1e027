"""The shipped script modules against plain Python, interleaved in one run:
`python benches/python/shipped.py [--against FOLDER] [--rounds N]`.

Each round times every side once over the same inputs (per call: the mean
over the inputs), side after side, so a load that comes and goes on a
shared machine falls on all of them alike; the figure is the median round.
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


def per_call(f: Callable[[Any], Any], inputs: list[Any]) -> float:
    start = time.perf_counter()
    for x in inputs:
        f(x)
    return (time.perf_counter() - start) / len(inputs)


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
        times: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.rounds):
            for side, f in sides.items():
                times[side].append(per_call(f, inputs))
        med = {side: statistics.median(t) for side, t in times.items()}
        line = f"{name:<12} {med['python'] * 1e6:>8.1f}us {med['shipped'] * 1e6:>8.1f}us {med['shipped'] / med['python']:>6.1f}x"
        if other is not None:
            line += f" {med['against'] * 1e6:>8.1f}us {med['against'] / med['python']:>6.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
