"""Peak memory of a large batch, and what a kept result costs.

    python benches/python/batch_memory.py [--inputs N] [--steps S] [MODE ...]

Each MODE runs in a fresh interpreter (so one's peak cannot hide another's)
on a workflow of S steps of the native `identity` module (a trivial step:
what is measured is the batch, not the work), and prints the process's peak
resident memory (`ru_maxrss`) for N inputs (default 1,000,000):

- `baseline`: the interpreter, the package and a registry, no batch
- `listcomp`: `[x for x in range(N)]`, the floor a list of N things costs
- `run`: `run_workflow_batch(wf, range(N))`, every result kept
- `iter`: `for r in iter_workflow_batch(wf, range(N))`, each result dropped
- `iter-gen`: `iter_workflow_batch` over a generator (no length known)
- `cli`: `module-registry run WF --batch --input N-lines.jsonl` (the
  command's own peak, its output to /dev/null)

and, for `run`, the bytes each kept result adds (growth of resident memory
over the batch divided by N). The issue's targets for a one-step workflow:
`run` at most 300 MB, `iter` at most 100 MB, a kept result at most 200 B.
A run prints one line per mode; `--json` prints them as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from typing import Any

MODES = ("baseline", "listcomp", "run", "iter", "iter-gen", "cli")


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure_cli(n: int, steps: int) -> dict[str, Any]:
    """The command line's peak on an N-line ``.jsonl`` (in a child process)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        wf = os.path.join(tmp, "wf.toml")
        with open(wf, "w") as f:
            f.write('name = "ids"\n')
            for i in range(steps):
                after = f'after = ["s{i - 1}"]\n' if i else ""
                f.write(f'[[steps]]\nid = "s{i}"\nmodule = "identity"\n{after}')
        lines = os.path.join(tmp, "in.jsonl")
        with open(lines, "w") as f:
            f.writelines(f"{i}\n" for i in range(n))
        size_mib = os.path.getsize(lines) / (1 << 20)
        with open(os.devnull, "w") as sink:
            subprocess.run(
                [sys.executable, "-m", "module_registry", "run", wf, "--batch", "--input", lines,
                 "--input-limit", str(max(64, int(size_mib) + 1))],
                stdout=sink, check=True,
            )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"mode": "cli", "inputs": n, "steps": steps, "peak_mb": round(peak / 1e6, 1)}


def measure(mode: str, n: int, steps: int) -> dict[str, Any]:
    """One mode, in this process (the parent runs each in a fresh one)."""
    if mode == "cli":
        return measure_cli(n, steps)
    import gc

    import module_registry as mr

    registry = mr.ModuleRegistry(native_modules=True)
    wf = registry.pipeline(*(["identity"] * steps))
    registry.run_workflow_batch(wf, range(10))  # warm: first-run set-up out of the figure
    gc.collect()
    before = resident_bytes()
    out: dict[str, Any] = {"mode": mode, "inputs": n, "steps": steps}
    kept: Any = None
    if mode == "listcomp":
        kept = [x for x in range(n)]
    elif mode == "run":
        kept = registry.run_workflow_batch(wf, range(n))
        assert len(kept) == n and kept[-1].output == n - 1
        gc.collect()
        out["bytes_per_result"] = round((resident_bytes() - before) / n, 1)
    elif mode in ("iter", "iter-gen"):
        inputs = range(n) if mode == "iter" else (x for x in range(n))
        count = 0
        for result in registry.iter_workflow_batch(wf, inputs):
            count += 1
        assert count == n and result.output == n - 1
    elif mode != "baseline":
        raise SystemExit(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    out["peak_mb"] = round(peak_bytes() / 1e6, 1)
    del kept
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modes", nargs="*", metavar="MODE", help=f"any of {', '.join(MODES)} (default: all)")
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object of every mode's figures")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.modes = args.modes or list(MODES)
    for mode in args.modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    if args.child:
        print(json.dumps(measure(args.modes[0], args.inputs, args.steps)))
        return
    figures = {}
    for mode in args.modes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "--inputs", str(args.inputs), "--steps", str(args.steps), mode],
            capture_output=True, text=True, check=True,
        )
        figures[mode] = json.loads(proc.stdout)
        if not args.json:
            line = figures[mode]
            extra = f", {line['bytes_per_result']:.0f} B per kept result" if "bytes_per_result" in line else ""
            print(f"{mode:9} {args.inputs} inputs, {args.steps} step(s): peak {line['peak_mb']:.1f} MB{extra}", flush=True)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
