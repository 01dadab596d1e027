"""Python code on Rust threads (issue 32 item 4), each figure beside its peer
measured in the same run: `python benches/python/threads.py [--rounds N]`.

- a Python module called from a script, against a native one (per call:
  the difference of a loop of 2K calls and one of K, so the script's own
  start is not counted), with default limits and with `ScriptLimits.unlimited()`;
- `await inst.aprocess(x)` one at a time against
  `await loop.run_in_executor(None, f, x)`, and 1,000 `aprocess` gathered;
- a fan-out of 10 Python steps against the same steps in a chain;
- the threads a process starts for 1,000 script calls of a Python module
  (`/proc/self/task` before and after), with every kind of limits.

Medians over interleaved rounds (side after side in each round).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any, Callable, Mapping

import module_registry as mr


def med(times: list[float]) -> float:
    return statistics.median(times)


def fmt(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.2f} us"


def interleaved(sides: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(rounds):
        for k, f in sides.items():
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    return {k: med(t) for k, t in times.items()}


def script_calls(rounds: int) -> None:
    for label, limits in (("default limits", mr.ScriptLimits()), ("unlimited", mr.ScriptLimits.unlimited())):
        reg = mr.ModuleRegistry(native_modules=True, script_limits=limits)
        reg.register(mr.ModuleConfig(name="py-identity"), lambda x: x)
        k = 500
        loop = 'let m = registry.create(NAME); for i in 0..input { m.process(i); } input'
        sides = {
            f"{name} x{n}": (lambda name=name, n=n: reg.run_script(loop.replace("NAME", f'"{name}"'), n))
            for name in ("identity", "py-identity")
            for n in (k, 2 * k)
        }
        got = interleaved(sides, rounds)
        native = (got[f"identity x{2 * k}"] - got[f"identity x{k}"]) / k
        python = (got[f"py-identity x{2 * k}"] - got[f"py-identity x{k}"]) / k
        print(f"script -> module, {label}: native {fmt(native)}/call, Python {fmt(python)}/call, above native {fmt(python - native)}")


def aprocess(rounds: int) -> None:
    reg = mr.ModuleRegistry()

    def f(x: Any) -> Any:
        return x

    reg.register(mr.ModuleConfig(name="py-identity"), f)
    inst = reg.create("py-identity")

    async def one_at_a_time(n: int) -> None:
        for i in range(n):
            await inst.aprocess(i)

    async def executor(n: int) -> None:
        loop = asyncio.get_running_loop()
        for i in range(n):
            await loop.run_in_executor(None, f, i)

    async def gathered(n: int) -> None:
        await asyncio.gather(*(inst.aprocess(i) for i in range(n)))

    async def main() -> dict[str, float]:
        times: dict[str, list[float]] = {"aprocess": [], "executor": [], "gathered": []}
        for _ in range(rounds):
            for k, (g, n) in {"aprocess": (one_at_a_time, 200), "executor": (executor, 200), "gathered": (gathered, 1000)}.items():
                start = time.perf_counter()
                await g(n)
                times[k].append((time.perf_counter() - start) / n)
        return {k: med(t) for k, t in times.items()}

    got = asyncio.run(main())
    print(
        f"await aprocess one at a time {fmt(got['aprocess'])}/call, run_in_executor {fmt(got['executor'])}/call "
        f"(ratio {got['aprocess'] / got['executor']:.2f}); 1,000 gathered {fmt(got['gathered'])}/call"
    )


def fan_out(rounds: int) -> None:
    reg = mr.ModuleRegistry()

    def work(x: Any) -> int:
        return sum(range(3000)) + (0 if isinstance(x, dict) else 1)

    reg.register(mr.ModuleConfig(name="work"), work)
    names = [f"s{i}" for i in range(10)]
    fan = mr.Workflow("fan", output="join")
    chain = mr.Workflow("chain", output="join")
    for i, n in enumerate(names):
        fan = fan.step(n, "work", after=[])
        chain = chain.step(n, "work", after=[names[i - 1]] if i else [])
    fan = fan.step("join", "work", after=names)
    chain = chain.step("join", "work", after=[names[-1]])
    got = interleaved({"fan": lambda: reg.run_workflow(fan, 1), "chain": lambda: reg.run_workflow(chain, 1)}, rounds)
    plain = interleaved({"direct": lambda: [work(1) for _ in range(11)]}, rounds)["direct"]
    print(
        f"10 Python steps: fan-out {fmt(got['fan'])}, chain {fmt(got['chain'])} "
        f"(ratio {got['fan'] / got['chain']:.2f}); the 11 calls directly {fmt(plain)}"
    )


def threads_started() -> None:
    for label, limits in (
        ("default", mr.ScriptLimits()),
        ("unlimited", mr.ScriptLimits.unlimited()),
        (
            "timeout only",
            mr.ScriptLimits(
                max_operations=None, max_call_depth=None, max_expr_depth=None, max_string_size=None,
                max_array_size=None, max_map_size=None, max_memory=None, timeout=5.0,
            ),
        ),
    ):
        reg = mr.ModuleRegistry(script_limits=limits)
        reg.register(mr.ModuleConfig(name="py-identity"), lambda x: x)
        script = 'let m = registry.create("py-identity"); for i in 0..input { m.process(i); } input'
        reg.run_script(script, 1)  # helpers started on first use
        before = len(os.listdir("/proc/self/task"))
        for _ in range(10):
            reg.run_script(script, 100)
        after = len(os.listdir("/proc/self/task"))
        print(f"threads alive after 1,000 script calls of a Python module, {label} limits: {after - before} more")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    script_calls(args.rounds)
    aprocess(args.rounds)
    fan_out(args.rounds * 4)
    threads_started()


if __name__ == "__main__":
    main()
