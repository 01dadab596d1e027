"""The asyncio API's cost per call, and a pool's from Python.

Disabled by default: under `make test` every benchmark runs once as a test and
checks its result; `make bench` measures them. The async figures are per
call: each round awaits `CALLS` calls on one running loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine

import module_registry as mr

CALLS = 1000


def _on_a_loop(benchmark: Any, calls: Callable[[], Coroutine[Any, Any, int]]) -> None:
    """Benchmarks running ``calls()`` on one event loop kept for every round."""
    loop = asyncio.new_event_loop()
    try:
        assert benchmark(lambda: loop.run_until_complete(calls())) == CALLS
    finally:
        loop.close()


def test_aprocess_awaited_one_at_a_time(benchmark: Any) -> None:
    inst = mr.ModuleRegistry(native_modules=True).create("identity")

    async def calls() -> int:
        for i in range(CALLS):
            assert await inst.aprocess(i) == i
        return CALLS

    _on_a_loop(benchmark, calls)


def test_aprocess_gathered(benchmark: Any) -> None:
    inst = mr.ModuleRegistry(native_modules=True).create("identity")

    async def calls() -> int:
        out = await asyncio.gather(*(inst.aprocess(i) for i in range(CALLS)))
        assert out == list(range(CALLS))
        return CALLS

    _on_a_loop(benchmark, calls)


def test_process_in_a_loop_baseline(benchmark: Any) -> None:
    """The same calls made synchronously inside a coroutine (blocking the loop)."""
    inst = mr.ModuleRegistry(native_modules=True).create("identity")

    async def calls() -> int:
        for i in range(CALLS):
            assert inst.process(i) == i
        return CALLS

    _on_a_loop(benchmark, calls)


def test_pool_process_native_identity(benchmark: Any) -> None:
    with mr.ModuleRegistry(native_modules=True).pool("identity", size=4) as pool:
        assert benchmark(pool.process, b"input data") == b"input data"
