"""The edges of the process for the Rust threads that run Python: a
program that used the async API, scripts calling Python modules, or worker
threads busy at exit ends cleanly (exit status 0, no "Fatal Python
error"); a forked child gets working threads of its own; a burst of
``async def`` calls leaves no threads behind; more waiting coroutines than
the thread cap allows end in a typed error, never a hang. Each program
runs in a fresh interpreter, a few times (the exit race is a race)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

import module_registry as mr
from module_registry import Workflow

RUNS = 3

PRELUDE = """
import asyncio, os, sys, threading, time
import module_registry as mr
from module_registry import Workflow
registry = mr.ModuleRegistry(native_modules=True)
registry.register(mr.ModuleConfig(name="double"), lambda x: x * 2)

@registry.module(name="later")
async def later(x):
    await asyncio.sleep(0)
    return x + 1

never = None

@registry.module(name="never")
async def never_ends(x):
    await asyncio.Event().wait()

def slow(x):
    time.sleep(0.2)
    return x

registry.register(mr.ModuleConfig(name="slow"), slow)
"""


def run_program(body: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def assert_clean_exit(body: str, expect: str = "done", runs: int = RUNS) -> None:
    for _ in range(runs):
        done = run_program(body)
        assert "Fatal Python error" not in done.stderr, done.stderr[-2000:]
        assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
        assert expect in done.stdout, (done.stdout, done.stderr[-2000:])


PROGRAMS = {
    "aprocess of a function and an async def module": """
        async def main():
            assert await registry.create("double").aprocess(2) == 4
            assert await registry.create("later").aprocess(2) == 3
        asyncio.run(main())
        print("done")
    """,
    "arun_workflow and arun_workflow_batch": """
        wf = Workflow("w").then("double").then("later")
        async def main():
            assert (await registry.arun_workflow(wf, 1)).output == 3
            assert [r.output for r in await registry.arun_workflow_batch(wf, [1, 2])] == [3, 5]
        asyncio.run(main())
        print("done")
    """,
    "wait_for timing out an async def module": """
        async def main():
            for _ in range(3):
                try:
                    await asyncio.wait_for(registry.create("never").aprocess(1), 0.05)
                except (asyncio.TimeoutError, TimeoutError):
                    pass
        asyncio.run(main())
        print("done")
    """,
    "calls still pending when the loop ends": """
        async def main():
            inst = registry.create("slow")
            tasks = [asyncio.create_task(inst.aprocess(i)) for i in range(6)]
            never = [asyncio.create_task(registry.create("never").aprocess(i)) for i in range(3)]
            await asyncio.sleep(0)
        asyncio.run(main())
        print("done")
    """,
    "a loop closed with calls in flight": """
        loop = asyncio.new_event_loop()
        started = threading.Event()
        def blocked(x):
            started.set()
            time.sleep(0.2)
            return x
        registry.register(mr.ModuleConfig(name="blocked"), blocked)
        task = loop.create_task(registry.create("blocked").aprocess(1))
        loop.run_until_complete(asyncio.sleep(0))
        started.wait(30)
        task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        # A second loop afterwards works as the first did.
        assert asyncio.run(registry.create("later").aprocess(1)) == 2
        print("done")
    """,
    "a synchronous call of an async def module (the private loop) at exit": """
        assert registry.create("later").process(1) == 2
        assert registry.run_workflow(Workflow("w").then("later"), 1).output == 2
        print("done")
    """,
    "a Python module called from a script, with and without limits": """
        calls = 'registry.create("double").process(input)'
        assert registry.run_script(calls, 2) == 4
        registry.set_script_limits(mr.ScriptLimits.unlimited())
        assert registry.run_script(calls, 3) == 6
        print("done")
    """,
    "worker threads busy at exit": """
        def busy(x):
            time.sleep(0.3)
            return x
        registry.register(mr.ModuleConfig(name="busy"), busy)
        loop = asyncio.new_event_loop()
        inst = registry.create("busy")
        tasks = [loop.create_task(inst.aprocess(i)) for i in range(8)]
        loop.run_until_complete(asyncio.sleep(0))
        # Leave with every worker inside a call (the loop is not closed).
        print("done")
    """,
    "a batch on the workflow pool threads at exit": """
        wf = Workflow("w").step("s", "slow", pool=4)
        t = threading.Thread(target=lambda: registry.run_workflow_batch(wf, [1, 2, 3, 4]), daemon=True)
        t.start()
        time.sleep(0.05)
        print("done")
    """,
    "daemon threads running batches in a loop at exit": """
        def slower(x):
            time.sleep(0.02)
            return x
        registry.register(mr.ModuleConfig(name="slower"), slower)
        wf = Workflow("w").step("s", "slower", pool=4)
        def loop():
            while True:
                try:
                    registry.run_workflow_batch(wf, list(range(8)))
                except Exception:
                    pass
        for _ in range(3):
            threading.Thread(target=loop, daemon=True).start()
        time.sleep(0.1)
        print("done")
    """,
    # Calls that never end on their own: the exit hook asks them to end
    # (SystemExit raised in their thread) instead of waiting for ever.
    "a call abandoned at its step's timeout that never ends": """
        def forever(x):
            while True:
                time.sleep(0.05)
        registry.register(mr.ModuleConfig(name="forever"), forever)
        try:
            registry.run_workflow(Workflow("w").step("s", "forever", timeout_ms=100), 1)
        except mr.WorkflowError as e:
            assert "timed out" in str(e), e
        print("done")
    """,
    "a call abandoned by wait_for that never ends": """
        def forever(x):
            while True:
                time.sleep(0.05)
        registry.register(mr.ModuleConfig(name="forever"), forever)
        async def main():
            try:
                await asyncio.wait_for(registry.create("forever").aprocess(1), 0.2)
            except asyncio.TimeoutError:
                print("timed out")
        asyncio.run(main())
        print("done")
    """,
    "daemon threads calling async def modules at exit": """
        def calls(name):
            inst = registry.create(name)
            while True:
                inst.process(1)
        for name in ["later", "later", "never"]:
            threading.Thread(target=calls, args=(name,), daemon=True).start()
        time.sleep(0.2)
        print("done")
    """,
    "a daemon thread inside a module that never ends": """
        def forever(x):
            while True:
                time.sleep(0.05)
        registry.register(mr.ModuleConfig(name="forever"), forever)
        started = threading.Event()
        def call():
            started.set()
            registry.create("forever").process(1)
        threading.Thread(target=call, daemon=True).start()
        started.wait(30)
        time.sleep(0.1)
        print("done")
    """,
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_programs_exit_cleanly(name: str) -> None:
    assert_clean_exit(PROGRAMS[name])


def test_daemon_threads_awaiting_async_def_modules_exit_without_a_traceback() -> None:
    for _ in range(RUNS):
        done = run_program(PROGRAMS["daemon threads calling async def modules at exit"])
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_a_forked_child_gets_worker_threads_of_its_own() -> None:
    assert_clean_exit(
        """
        assert asyncio.run(registry.create("later").aprocess(1)) == 2
        calls = 'registry.create("double").process(input)'
        assert registry.run_script(calls, 2) == 4
        pid = os.fork()
        if pid == 0:
            ok = asyncio.run(asyncio.wait_for(registry.create("later").aprocess(5), 60)) == 6
            ok = ok and registry.run_script(calls, 3) == 6
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        print("done")
        """
    )


def test_keyboard_interrupt_during_a_call_ends_without_an_abort() -> None:
    """Ctrl-C while a worker thread runs a Python module: the program ends
    with ``KeyboardInterrupt`` and exit status 0, no abort. The signal goes
    to the main thread, as a terminal's Ctrl-C does (a process-directed
    ``os.kill`` from the worker may be taken by the worker's own thread;
    CPython runs the Python handler only on the main thread, once it
    notices the pending signal, and once in CI the program ended, with
    status 0, before it had)."""
    body = """
        import signal
        main_thread = threading.main_thread().ident
        def interrupt(x):
            signal.pthread_kill(main_thread, signal.SIGINT)
            time.sleep(0.2)
            return x
        registry.register(mr.ModuleConfig(name="interrupt"), interrupt)
        async def main():
            await registry.create("interrupt").aprocess(1)
            await asyncio.sleep(5)
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            print("interrupted")
    """
    assert_clean_exit(body, expect="interrupted")


def test_more_waiting_coroutines_than_the_thread_cap_end_in_a_typed_error() -> None:
    """1,100 ``async def`` calls at once, each awaiting another instance's
    ``aprocess``: past the 1,024-thread cap a call fails with
    ``UnavailableError`` (inside its ``ModuleFailedError``) instead of
    taking the last workers the awaited calls need; every call ends."""
    assert_clean_exit(
        """
        inner = registry.create("double")
        @registry.module(name="outer")
        async def outer(x):
            return await inner.aprocess(x) + 1
        o = registry.create("outer")
        async def main():
            calls = asyncio.gather(*(o.aprocess(i) for i in range(1100)), return_exceptions=True)
            out = await asyncio.wait_for(calls, 300)
            failed = 0
            for i, v in enumerate(out):
                if isinstance(v, BaseException):
                    assert isinstance(v, mr.ModuleFailedError), repr(v)
                    assert isinstance(v.__cause__, mr.UnavailableError), repr(v.__cause__)
                    assert "1024 worker threads" in str(v.__cause__)
                    failed += 1
                else:
                    assert v == 2 * i + 1
            assert failed < 1100
        asyncio.run(main())
        print("done")
        """,
        runs=1,
    )


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def test_a_burst_of_async_def_calls_leaves_no_threads_behind() -> None:
    registry = mr.ModuleRegistry()
    release = asyncio.Event()
    started = 0

    @registry.module(name="waits")
    async def waits(x: int) -> int:
        nonlocal started
        started += 1
        await release.wait()
        return x

    inst = registry.create("waits")

    async def main() -> int:
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(inst.aprocess(i)) for i in range(300)]
        # Every call is waiting on this loop, each holding a worker thread.
        deadline = time.monotonic() + 120
        while started < 300:
            assert time.monotonic() < deadline, f"{started} calls started"
            await asyncio.sleep(0.01)
        peak = thread_count()
        release.set()
        assert await asyncio.gather(*tasks) == list(range(300))
        return peak

    peak = asyncio.run(main())
    assert peak >= 300
    # The workers that stood in for waiting ones end once idle (polled,
    # generous deadline): back to the base count.
    deadline = time.monotonic() + 60
    while thread_count() > peak - 250:
        assert time.monotonic() < deadline, f"{thread_count()} threads stay (at the peak: {peak})"
        time.sleep(0.05)


def test_aprocess_is_a_coroutine_for_every_asyncio_api() -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    inst = registry.create("identity")

    async def main() -> None:
        assert await asyncio.create_task(inst.aprocess(1)) == 1
        assert await asyncio.ensure_future(inst.aprocess(2)) == 2
        assert await asyncio.wait_for(inst.aprocess(3), 60) == 3
        gathered: Any = await asyncio.gather(inst.aprocess(4), inst.aprocess(5))
        assert gathered == [4, 5]
        assert asyncio.iscoroutine(inst.aprocess(6))
        if hasattr(asyncio, "TaskGroup"):
            async with asyncio.TaskGroup() as group:
                task: asyncio.Task[Any] = group.create_task(inst.aprocess(7))
            assert task.result() == 7
        # Closed before its first step: it never runs, and says so if awaited.
        pending = inst.aprocess(8)
        pending.close()
        with pytest.raises(RuntimeError, match="already awaited"):
            await pending
        # An exception thrown in before the first step comes back out.
        with pytest.raises(KeyError):
            inst.aprocess(9).throw(KeyError("k"))

    asyncio.run(main())


def test_a_run_cancelled_twice_keeps_its_result() -> None:
    registry = mr.ModuleRegistry()
    started = threading.Event()
    release = threading.Event()

    def held(x: Any) -> Any:
        started.set()
        assert release.wait(60)
        return x

    registry.register(mr.ModuleConfig(name="held"), held)
    registry.register(mr.ModuleConfig(name="after"), lambda x: x)
    wf = Workflow("twice").then("held").then("after")

    async def main() -> Any:
        task: asyncio.Task[Any] = asyncio.create_task(registry.arun_workflow(wf, 1))
        while not started.is_set():
            await asyncio.sleep(0.005)
        task.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError) as e:
            await task
        return e.value

    cancelled = asyncio.run(main())
    result = getattr(cancelled, "result")
    assert isinstance(result, mr.WorkflowResult), result
    assert [(s.id, s.status) for s in result.steps] == [("held", "ok"), ("after", "skipped")]


def test_threads_that_run_python_keep_their_thread_state() -> None:
    """A thread's Python state lives as long as the thread (``threading.local``
    values stay), and a script calling a Python module with no limits
    reuses one helper thread instead of starting one per call."""
    registry = mr.ModuleRegistry()
    local = threading.local()
    seen: list[tuple[int, int]] = []

    def count(x: Any) -> Any:
        local.calls = getattr(local, "calls", 0) + 1
        seen.append((threading.get_native_id(), local.calls))
        return x

    registry.register(mr.ModuleConfig(name="count"), count)
    registry.set_script_limits(mr.ScriptLimits.unlimited())
    script = 'let m = registry.create("count"); for i in 0..input { m.process(i); } input'
    assert registry.run_script(script, 50) == 50
    assert len({tid for tid, _ in seen}) == 1, "a thread per call"
    assert seen[-1][1] == 50, "a thread state per call"
    seen.clear()

    inst = registry.create("count")

    async def main() -> None:
        for i in range(5 * max(4, os.cpu_count() or 1)):
            await inst.aprocess(i)

    asyncio.run(main())
    assert all(tid != threading.get_native_id() for tid, _ in seen)
    # More calls than workers, one at a time: some worker saw its own earlier calls.
    assert max(calls for _, calls in seen) >= 2, "a thread state per call"
