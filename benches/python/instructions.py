"""Instructions per operation from Python, counted with callgrind.

`python benches/python/instructions.py` prints a JSON object of counts (one
per case). Each case runs its operation K and 2K times in two processes under
`valgrind --tool=callgrind`; the difference divided by K is what one
operation costs, with start-up and the first call's one-off work (imports,
planning a workflow the first time) left out. Counts hardly depend on what
else the machine is doing (unlike times), so CI checks them:

`python benches/python/instructions.py --check` measures every case and
fails when one is above its limit in `instructions.json` (next to this file):
the count recorded for it plus a margin (`MARGIN`), so a change that makes a
case slower by more than the margin fails, and noise does not. The issue's
targets are printed beside the counts (met or not); they do not fail the
check. `--record` writes the measured counts as the new recorded ones.

`python benches/python/instructions.py CASE N` runs case CASE N times (what
callgrind is pointed at).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

#: Steps of the chain of native `identity` modules.
CHAIN = 20
#: How much above its recorded count a case may be before the check fails.
MARGIN = 0.10
#: The recorded counts (`--record` writes them).
RECORDED = Path(__file__).with_name("instructions.json")


def _chain() -> tuple[object, object]:
    import module_registry as mr

    registry = mr.ModuleRegistry(native_modules=True)
    wf = mr.Workflow("chain")
    for i in range(CHAIN):
        wf.step(f"s{i}", module="identity")
    return registry, wf


def case_run_workflow(n: int) -> Callable[[], object]:
    """A whole `run_workflow` of a 20-step native chain from Python: check,
    build the instances, run, close, the result object."""
    registry, wf = _chain()

    def go() -> None:
        for _ in range(n):
            registry.run_workflow(wf, b"x")  # type: ignore[attr-defined]

    return go


def case_batch_input(n: int) -> Callable[[], object]:
    """One input of `run_workflow_batch` of the 20-step native chain
    (instances reused: n inputs in one batch)."""
    registry, wf = _chain()
    inputs = [b"x"] * n
    return lambda: registry.run_workflow_batch(wf, inputs)  # type: ignore[attr-defined]


def case_check_workflow(n: int) -> Callable[[], object]:
    """`check_workflow` of the 20-step chain, already checked once."""
    registry, wf = _chain()

    def go() -> None:
        for _ in range(n):
            registry.check_workflow(wf)  # type: ignore[attr-defined]

    return go


def case_process(n: int) -> Callable[[], object]:
    """`instance.process(b"...")` on the native `identity`."""
    import module_registry as mr

    inst = mr.ModuleRegistry(native_modules=True).create("identity")
    payload = b"input data"
    process = inst.process

    def go() -> None:
        for _ in range(n):
            process(payload)

    return go


def case_loop(n: int) -> Callable[[], object]:
    """The loop the other cases run their operation in, alone (a Python
    `for` over a range calling a function of one argument that returns it):
    what `process` costs above this is the binding's."""
    payload = b"input data"

    def echo(v: bytes) -> bytes:
        return v

    def go() -> None:
        for _ in range(n):
            echo(payload)

    return go


#: Each case: what it builds and how many operations K is.
CASES: dict[str, tuple[Callable[[int], Callable[[], object]], int]] = {
    "run_workflow": (case_run_workflow, 200),
    "batch_input": (case_batch_input, 1000),
    "check_workflow": (case_check_workflow, 2000),
    "process": (case_process, 20000),
    "loop": (case_loop, 20000),
}

#: The issue's targets (instructions per operation), where it sets one.
TARGETS = {
    "run_workflow": 60_000,
    "batch_input": 2_500 * CHAIN,
}


def run(case: str, n: int) -> None:
    build, _ = CASES[case]
    build(1)()  # the one-off work (planning, caches) before counting
    build(n)()


def count(python: str, case: str, n: int) -> int:
    """Instructions of `run(case, n)` in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                python,
                __file__,
                case,
                str(n),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"callgrind run of {case} failed: {proc.stderr[-2000:]}")
        for line in out.read_text().splitlines():
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in the callgrind output of {case}")


def measure(cases: list[str] | None = None, python: str = sys.executable) -> dict[str, int]:
    """Instructions per operation of each case (callgrind: 2K operations minus K)."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    out = {}
    for case in cases or list(CASES):
        k = CASES[case][1]
        once, twice = count(python, case, k), count(python, case, 2 * k)
        out[case] = round((twice - once) / k)
    return out


def check(counts: dict[str, int]) -> list[str]:
    """What is above its recorded count plus the margin (empty: all within)."""
    recorded = json.loads(RECORDED.read_text())
    failures = []
    for case, measured in counts.items():
        limit = recorded.get(case)
        if limit is None:
            failures.append(f"{case}: no recorded count in {RECORDED.name} (run --record)")
        elif measured > limit * (1 + MARGIN):
            failures.append(
                f"{case}: {measured} instructions, above {limit} recorded + {MARGIN:.0%}"
            )
    return failures


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] in CASES:
        run(argv[0], int(argv[1]))
        return 0
    mode = argv[0] if argv and argv[0] in ("--check", "--record") else None
    cases = [a for a in argv if a not in ("--check", "--record")] or None
    counts = measure(cases)
    for case, measured in counts.items():
        target = TARGETS.get(case)
        verdict = "" if target is None else f" (target {target}: {'met' if measured <= target else 'missed'})"
        print(f"{case}: {measured} instructions per operation{verdict}", file=sys.stderr)
    print(json.dumps(counts, indent=1))
    if mode == "--record":
        recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
        recorded.update(counts)
        RECORDED.write_text(json.dumps(recorded, indent=1) + "\n")
    if mode == "--check":
        failures = check(counts)
        for f in failures:
            print(f"instructions check: {f}", file=sys.stderr)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
