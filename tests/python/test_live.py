"""Live modules from Python: instance pools, script folders reloaded as
their files change, and the asyncio API."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import module_registry as mr
from module_registry import CapabilityQuery, Workflow


def eventually(what: str, check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


# ----- pools -------------------------------------------------------------


class Counter:
    """A stateful module: each instance counts its own calls."""

    made = 0
    closed = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        with Counter.lock:
            Counter.made += 1
            self.id = Counter.made
        self.calls = 0
        self.inside = False

    def process(self, delay: float) -> int:
        assert not self.inside, "two calls ran on one instance at once"
        self.inside = True
        time.sleep(delay)
        self.calls += 1
        self.inside = False
        return self.id

    def shutdown(self) -> None:
        with Counter.lock:
            Counter.closed += 1


@pytest.fixture
def counting() -> mr.ModuleRegistry:
    Counter.made = Counter.closed = 0
    r = mr.ModuleRegistry()
    r.register(mr.ModuleConfig(name="counter", capabilities=["count"]), Counter)
    return r


def test_a_pool_spreads_calls_and_shuts_down_once(counting: mr.ModuleRegistry) -> None:
    with counting.pool("counter", size=3) as pool:
        assert isinstance(pool, mr.InstancePool) and len(pool) == 3
        ids = [pool.process(0) for _ in range(9)]
        assert sorted(set(ids)) == [1, 2, 3] and all(ids.count(i) == 3 for i in (1, 2, 3))
        stats = pool.stats()
        assert [(s["provider"], s["calls"], s["failures"], s["state"]) for s in stats] == [("counter@0.1.0", 3, 0, "idle")] * 3
        assert pool.strategy == "round-robin" and pool.providers == ["counter@0.1.0"]
    assert Counter.closed == 3 and pool.closed
    pool.close()
    assert Counter.closed == 3
    with pytest.raises(mr.UnavailableError, match="closed"):
        pool.process(0)


class Meeting:
    """A module whose calls wait for one another: ``width`` calls meet only
    if that many run at once (a barrier, not a clock)."""

    barrier: threading.Barrier

    def process(self, x: Any) -> Any:
        Meeting.barrier.wait(timeout=60)
        return x


def test_threads_get_real_parallelism_without_sharing_state(counting: mr.ModuleRegistry) -> None:
    with counting.pool("counter", size=4, strategy="least-busy") as pool:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(5):
                    pool.process(0.01)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sum(s["calls"] for s in pool.stats()) == 40
    # Four calls on a pool of four run at once: they all meet at the barrier
    # (in turn, the first would wait for the others forever).
    counting.register(mr.ModuleConfig(name="meeting"), Meeting)
    Meeting.barrier = threading.Barrier(4)
    with counting.pool("meeting", size=4, strategy="least-busy") as meeting:
        out: list[Any] = []
        callers = [threading.Thread(target=lambda i=i: out.append(meeting.process(i))) for i in range(4)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
        assert sorted(out) == [0, 1, 2, 3] and not Meeting.barrier.broken


def flaky_registry(state: dict[str, bool]) -> mr.ModuleRegistry:
    r = mr.ModuleRegistry()

    def bad(x: Any) -> Any:
        if state["failing"]:
            raise RuntimeError("bad is down")
        return ["bad", x]

    r.register(mr.ModuleConfig(name="bad", capabilities=["echo"]), bad)
    r.register(mr.ModuleConfig(name="good", capabilities=["echo"]), lambda x: ["good", x])
    return r


def test_a_capability_pool_fails_over_to_another_provider() -> None:
    r = flaky_registry({"failing": True})
    query = CapabilityQuery().with_required_capabilities(["echo"])
    with r.pool(query, size=2, retries=1) as pool:
        assert len(pool) == 4 and sorted(pool.providers) == ["bad@0.1.0", "good@0.1.0"]
        assert [pool.process(i) for i in range(4)] == [["good", i] for i in range(4)]
        assert sum(s["failures"] for s in pool.stats()) >= 1
    with r.pool(query, size=1) as strict:
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(strict.process(0))
            except mr.ModuleFailedError as e:
                assert isinstance(e.__cause__, RuntimeError)
                outcomes.append("failed")
        assert "failed" in outcomes


def test_the_circuit_opens_after_five_failures_and_closes_after_the_cooldown() -> None:
    state = {"failing": True}
    r = flaky_registry(state)
    # A cooldown long enough that a loaded machine cannot outlast it between
    # two lines; its end is polled for, not slept for.
    with r.pool("bad", size=2, cooldown=3.0) as pool:
        for _ in range(5):
            with pytest.raises(mr.ModuleFailedError):
                pool.process(0)
        assert {s["state"] for s in pool.stats()} == {"cooling-down"}
        with pytest.raises(mr.UnavailableError, match="cooling down") as e:
            pool.process(0)
        assert e.value.subject == "pool of bad"
        state["failing"] = False
        eventually("the circuit closes", lambda: {s["state"] for s in pool.stats()} != {"cooling-down"}, timeout=60)
        assert pool.process(1) == ["bad", 1]
        assert {s["state"] for s in pool.stats()} == {"idle"}


def test_bad_pool_arguments_are_typed_errors(counting: mr.ModuleRegistry) -> None:
    for kwargs in ({"size": 0}, {"size": 10**6}, {"strategy": "fastest"}, {"cooldown": 0.0}, {"cooldown": float("nan")}):
        with pytest.raises(mr.ValidationError):
            counting.pool("counter", **kwargs)
    with pytest.raises(TypeError, match="module name or a CapabilityQuery"):
        counting.pool(42)  # type: ignore[arg-type]
    with pytest.raises(mr.UnknownModuleError):
        counting.pool("nope")
    with pytest.raises(mr.UnknownModuleError):
        counting.pool(CapabilityQuery().with_required_capabilities(["none-such"]))
    assert Counter.made == 0


def test_a_pooled_step_runs_a_batch_that_wide(counting: mr.ModuleRegistry) -> None:
    wf = Workflow("wide").step("c", "counter", pool=4)
    results = counting.run_workflow_batch(wf, [0.02] * 16)
    assert sorted({r.output for r in results}) == [1, 2, 3, 4]
    assert Counter.closed == 4
    # Four inputs run at once: they all meet at the barrier.
    counting.register(mr.ModuleConfig(name="meeting"), Meeting)
    Meeting.barrier = threading.Barrier(4)
    met = counting.run_workflow_batch(Workflow("meet").step("m", "meeting", pool=4), [0, 1, 2, 3])
    assert [r.output for r in met] == [0, 1, 2, 3] and not Meeting.barrier.broken
    with pytest.raises(mr.WorkflowError, match="pool"):
        counting.check_workflow(Workflow("bad").step("c", "counter", pool=0))


# ----- watching a script folder -------------------------------------------


def script(name: str, version: str, answer: str) -> str:
    return f'const MODULE = #{{ name: "{name}", version: "{version}" }};\nfn process(x) {{ "{answer}" }}\n'


def answer(registry: mr.ModuleRegistry, name: str) -> Any:
    try:
        return registry.create(name).process(None)
    except mr.ModuleRegistryError:
        return None


def write_by_rename(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_watch_scripts_follows_a_folder(tmp_path: Path) -> None:
    a = tmp_path / "a.rhai"
    a.write_text(script("wa", "1.0.0", "one"))
    registry = mr.ModuleRegistry()
    events: list[mr.ReloadEvent] = []
    with registry.watch_scripts(tmp_path, on_event=events.append) as watcher:
        assert isinstance(watcher, mr.ScriptWatcher) and watcher.running
        assert [(e.kind, e.name, e.version, e.error) for e in events] == [("loaded", "wa", "1.0.0", None)]
        assert Path(events[0].path).name == "a.rhai"
        old = registry.create("wa")
        write_by_rename(a, script("wa", "1.0.0", "two"))
        eventually("reloaded", lambda: answer(registry, "wa") == "two")
        assert old.process(None) == "one"
        a.write_text("const MODULE = #{ name: \"wa\", version: \"1.0.0\" };\nfn process(x) { x +* }")
        eventually("rejected", lambda: any(e.kind == "rejected" for e in events))
        assert answer(registry, "wa") == "two"
        rejected = next(e for e in events if e.kind == "rejected")
        assert rejected.name == "wa" and rejected.error and "a.rhai" in rejected.error
        assert any(e.operation == "reload-rejected" for e in registry.audit_events())
        a.write_text(script("wa", "2.0.0", "three"))
        eventually("new version", lambda: answer(registry, "wa") == "three")
        assert [i.version for i in registry.versions("wa")] == ["2.0.0", "1.0.0"]
        a.unlink()
        eventually("removed", lambda: "wa" not in registry)
        assert events[-1].kind == "removed"
    assert not watcher.running
    a.write_text(script("wa", "1.0.0", "after"))
    time.sleep(0.3)
    assert "wa" not in registry


def test_reload_under_load_never_fails_a_call(tmp_path: Path) -> None:
    a = tmp_path / "a.rhai"
    a.write_text(script("busy", "1.0.0", "old"))
    registry = mr.ModuleRegistry()
    stop = threading.Event()
    answers: set[Any] = set()
    errors: list[BaseException] = []
    with registry.watch_scripts(tmp_path):
        held = registry.create("busy")

        def call() -> None:
            while not stop.is_set():
                try:
                    answers.add(registry.create("busy").process(None))
                    answers.add(held.process(None))
                except BaseException as e:
                    errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        for i in range(100):
            text = script("busy", "1.0.0", "new" if i % 2 == 0 else "old")
            if i % 3 == 0:
                a.write_text(text)  # truncate, then write
            else:
                write_by_rename(a, text)
            time.sleep(0.003)
        a.write_text(script("busy", "1.0.0", "new"))
        eventually("final code", lambda: answer(registry, "busy") == "new")
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert answers <= {"old", "new"} and "new" in answers
    assert held.process(None) == "old"


def test_a_callback_that_raises_or_stops_its_watcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    registry = mr.ModuleRegistry()
    box: dict[str, Any] = {}
    seen: list[str] = []

    def careless(event: mr.ReloadEvent) -> None:
        seen.append(event.kind)
        box["watcher"].stop()  # from the watcher's own thread: no deadlock
        raise ValueError("a careless callback")

    box["watcher"] = registry.watch_scripts(tmp_path, on_event=careless)
    (tmp_path / "g.rhai").write_text(script("wg", "1.0.0", "g"))
    eventually("callback ran", lambda: seen == ["loaded"])
    eventually("stopped", lambda: not box["watcher"].running)
    # The callback's exception goes where Python sends exceptions nobody can catch.
    eventually("reported", lambda: len(unraisable) == 1)
    assert isinstance(unraisable[0].exc_value, ValueError)
    with pytest.raises(mr.ModuleRegistryError):
        registry.watch_scripts(tmp_path / "missing")


def test_only_admin_may_watch(tmp_path: Path) -> None:
    registry = mr.ModuleRegistry()
    policy = mr.AccessPolicy().grant("reader", ["discover"], "*").assign("bob", "reader")
    registry.set_policy(policy)
    with pytest.raises(mr.PermissionDeniedError):
        registry.as_principal("bob").watch_scripts(tmp_path)


# ----- asyncio ------------------------------------------------------------


def test_aprocess_runs_off_the_loop() -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    instance = registry.create("identity")

    async def main() -> list[Any]:
        return await asyncio.gather(*(instance.aprocess(i) for i in range(10_000)))

    assert asyncio.run(main()) == list(range(10_000))
    # No thread per call: the worker threads are a handful.
    assert len(os.listdir("/proc/self/task")) < 100


def test_aprocess_errors_and_reuse() -> None:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="boom"), lambda x: 1 / 0)
    instance = registry.create("boom")

    async def main() -> None:
        with pytest.raises(mr.ModuleFailedError) as e:
            await instance.aprocess(1)
        assert isinstance(e.value.__cause__, ZeroDivisionError)
        pending = instance.aprocess(1)
        with pytest.raises(mr.ModuleFailedError):
            await pending
        with pytest.raises(RuntimeError, match="already awaited"):
            await pending

    asyncio.run(main())


def test_the_loop_keeps_ticking_while_100_workflows_run() -> None:
    """The work runs off the loop: each of 100 workflows waits (on a worker
    thread) until the loop has ticked while they are in flight, which a
    blocked loop never does."""
    registry = mr.ModuleRegistry()
    registry.register_script(
        'const MODULE = #{ name: "work", version: "1.0.0" };\n'
        "fn process(n) { let t = 0; for i in 0..n { t += i; } t }"
    )
    ticked = threading.Event()

    def gate(n: int) -> int:
        assert ticked.wait(60), "the loop never ticked while the workflows ran"
        return n

    registry.register(mr.ModuleConfig(name="gate"), gate)
    wf = Workflow("busy", output="a").step("g", "gate").step("a", "work", after=["g"]).step("b", "work", after=[])

    async def main() -> int:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                await asyncio.sleep(0)
                ticks += 1
                if ticks == 50:
                    ticked.set()

        tick = asyncio.create_task(ticker())
        results = await asyncio.gather(*(registry.arun_workflow(wf, 300) for _ in range(100)))
        done = True
        await tick
        assert all(r.output == sum(range(300)) for r in results)
        return ticks

    assert asyncio.run(main()) >= 50


def test_results_reach_the_loop_in_batches() -> None:
    """Results that arrive while the loop is busy wake it once, not once each."""
    registry = mr.ModuleRegistry()
    lock = threading.Lock()
    finished = 0
    all_finished = threading.Event()

    workers: set[int] = set()

    def count(x: int) -> int:
        nonlocal finished
        with lock:
            workers.add(threading.get_native_id())
            finished += 1
            if finished == 50:
                all_finished.set()
        return x

    registry.register(mr.ModuleConfig(name="count"), count)
    inst = registry.create("count")

    async def main() -> int:
        loop = asyncio.get_running_loop()
        wakeups = 0
        schedule = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return schedule(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign, assignment]
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(inst.aprocess(i)) for i in range(50)]
        await asyncio.sleep(0)  # every call started
        assert all_finished.wait(60)  # the loop stays busy while all finish
        assert await asyncio.gather(*tasks) == list(range(50))
        return wakeups

    # At most one wake-up, plus one per worker still handing its result
    # over when the loop looked.
    assert asyncio.run(main()) <= 1 + len(workers)


def test_async_def_modules_run_in_sync_and_async_calls() -> None:
    registry = mr.ModuleRegistry()
    loops: list[Any] = []

    @registry.module(name="later")
    async def later(x: int) -> int:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return x + 1

    @registry.module(name="async-class")
    class AsyncClass:
        async def init(self, config: Any) -> None:
            self.step = config or 10

        async def process(self, x: int) -> int:
            await asyncio.sleep(0)
            return x + self.step

    # Synchronous calls: awaited on a private loop.
    assert registry.create("later").process(1) == 2
    assert registry.run_workflow(Workflow("w").then("later").then("async-class"), 1).output == 12

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # A synchronous call inside a running loop (as in a notebook) works too.
        assert registry.create("later").process(5) == 6
        assert loops[-1] is not loop
        # Under the async API: awaited on the caller's loop.
        result = await registry.arun_workflow(Workflow("w").then("later").then("later"), 1)
        assert result.output == 3 and loops[-1] is loop
        assert await registry.create("later").aprocess(7) == 8 and loops[-1] is loop
        outcomes = await registry.arun_workflow_batch(Workflow("w").then("later"), [1, 2, 3])
        assert [r.output for r in outcomes] == [2, 3, 4]

    asyncio.run(main())


def test_an_async_generator_is_refused() -> None:
    registry = mr.ModuleRegistry()

    async def gen(x: Any) -> Any:
        yield x

    with pytest.raises(TypeError, match="async generator"):
        registry.register(mr.ModuleConfig(name="gen"), gen)


def test_cancelling_a_run_skips_the_steps_not_started() -> None:
    registry = mr.ModuleRegistry()
    ran: list[str] = []
    started = threading.Event()

    release = threading.Event()

    def slow(x: Any) -> Any:
        ran.append("slow")
        started.set()
        assert release.wait(60)
        return x

    registry.register(mr.ModuleConfig(name="slow"), slow)
    def after(x: Any) -> Any:
        ran.append("after")
        return x

    registry.register(mr.ModuleConfig(name="after"), after)
    wf = Workflow("cancel-me").then("slow").then("after").then("after", id="last")

    async def main() -> Any:
        task: asyncio.Task[Any] = asyncio.create_task(registry.arun_workflow(wf, 1))
        while not started.is_set():
            await asyncio.sleep(0.005)
        task.cancel()
        for _ in range(3):
            await asyncio.sleep(0)  # the task sees its cancellation and cancels the run
        release.set()
        with pytest.raises(asyncio.CancelledError) as e:
            await task
        return e.value

    cancelled = asyncio.run(main())
    assert ran == ["slow"]
    result = getattr(cancelled, "result")
    assert [(s.id, s.status) for s in result.steps] == [("slow", "ok"), ("after", "skipped"), ("last", "skipped")]
    assert result.steps[1].error == "cancelled before it started"


def test_async_batches_raise_or_return_and_views_keep_their_principal() -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    registry.register(mr.ModuleConfig(name="inverse"), lambda x: 1 / x)
    wf = Workflow("inv").then("inverse")

    async def main() -> None:
        with pytest.raises(mr.WorkflowError) as e:
            await registry.arun_workflow_batch(wf, [1, 0, 2])
        assert e.value.index == 1
        outcomes = await registry.arun_workflow_batch(wf, [1, 0, 2], errors="return")
        assert outcomes[0].output == 1.0 and isinstance(outcomes[1], mr.WorkflowError) and outcomes[2].output == 0.5
        with pytest.raises(mr.ValidationError):
            await registry.arun_workflow_batch(wf, [1], errors="ignore")
        policy = mr.AccessPolicy().grant("reader", ["discover"], "*").assign("bob", "reader")
        registry.set_policy(policy)
        view = registry.as_principal("bob")
        with pytest.raises(mr.WorkflowError) as denied:
            await view.arun_workflow(wf, 1)
        assert isinstance(denied.value.__cause__, mr.PermissionDeniedError)
        assert (await registry.arun_workflow(wf, 4)).output == 0.25

    asyncio.run(main())


def test_cancelling_a_batch_starts_no_more_inputs() -> None:
    registry = mr.ModuleRegistry()
    seen: list[int] = []
    started = threading.Event()

    release = threading.Event()

    def slow(x: int) -> int:
        seen.append(x)
        started.set()
        assert release.wait(60)
        return x

    registry.register(mr.ModuleConfig(name="slow"), slow)

    async def main() -> Any:
        task: asyncio.Task[Any] = asyncio.create_task(registry.arun_workflow_batch(Workflow("b").then("slow"), [1, 2, 3, 4]))
        while not started.is_set():
            await asyncio.sleep(0.005)
        task.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError) as e:
            await task
        return getattr(e.value, "result")

    outcomes = asyncio.run(main())
    assert seen == [1]
    assert [r.output for r in outcomes] == [1]


def test_async_modules_awaiting_async_calls_do_not_starve_the_workers() -> None:
    """30 runs at once, each an ``async def`` module that itself awaits
    ``aprocess``: more than there are worker threads, each of which waits
    for its coroutine; a waiting worker is replaced, so all finish."""
    registry = mr.ModuleRegistry(native_modules=True)
    inner = registry.create("identity")

    @registry.module(name="nested")
    async def nested(x: int) -> int:
        return int(await inner.aprocess(x)) + 1

    async def main() -> list[Any]:
        runs = (registry.arun_workflow(Workflow("n").then("nested"), i) for i in range(30))
        return await asyncio.wait_for(asyncio.gather(*runs), timeout=30)

    assert [r.output for r in asyncio.run(main())] == [i + 1 for i in range(30)]
