"""Streaming batches: `iter_workflow_batch` here and on executors, compact
results, chunk payloads, and the CLI's streaming `--batch`."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

import module_registry as mr
from module_registry import Workflow, _core


@pytest.fixture
def registry() -> mr.ModuleRegistry:
    r = mr.ModuleRegistry(native_modules=True)
    r.register(mr.ModuleConfig(name="double"), lambda x: x * 2)

    def odd_only(n: int) -> int:
        if n % 2 == 0:
            raise ValueError(f"{n} is even")
        return n

    r.register(mr.ModuleConfig(name="odd-only"), odd_only)
    return r


class Counted:
    """An endless iterable of 0, 1, 2, ... that counts what it handed out."""

    def __init__(self) -> None:
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for n in itertools.count():
            self.taken += 1
            yield n


def test_an_endless_generator_is_taken_a_window_at_a_time(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("d").then("double")
    source = Counted()
    results = registry.iter_workflow_batch(wf, iter(source), chunk_size=3)
    firsts = [r.output for r in itertools.islice(results, 5)]
    assert firsts == [0, 2, 4, 6, 8]
    assert source.taken <= 6, "only a window is taken ahead of what is read"
    assert source.taken >= 5
    results.close()  # type: ignore[attr-defined]
    before = source.taken
    assert list(results) == [] and source.taken == before, "a closed batch takes nothing more"


def test_iterated_results_are_the_batch_results(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("two").then("double").then("double")
    streamed = list(registry.iter_workflow_batch(wf, (n for n in range(1200))))
    listed = registry.run_workflow_batch(wf, range(1200))
    assert [r.output for r in streamed] == [r.output for r in listed] == [4 * n for n in range(1200)]
    last = streamed[-1]
    # Step reports are packed and built when read; they read as before.
    assert [(s.module, s.status, s.attempts, s.cache, s.error) for s in last.steps] == [
        ("double", "ok", 1, "off", None),
        ("double", "ok", 1, "off", None),
    ]
    assert [s.output for s in last.steps] == [2 * 1199, 4 * 1199]
    assert last.outputs == {s.id: s.output for s in last.steps}
    assert last.workflow == wf and last.worker.split(":")[0].isdigit()
    # A kept result pickles and compares as any result.
    again = pickle.loads(pickle.dumps(last))
    assert again == last and again.output == last.output and again.steps == last.steps
    one = registry.run_workflow_batch(Workflow("one").then("double"), [21])[0]
    assert one.steps[0].output == 42 == one.output


def test_errors_raise_after_the_results_before_it(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("odd").then("odd-only")
    seen = []
    with pytest.raises(mr.WorkflowError) as info:
        for result in registry.iter_workflow_batch(wf, [1, 3, 5, 6, 7], chunk_size=2):
            seen.append(result.output)
    assert seen == [1, 3, 5]
    assert info.value.index == 3 and str(info.value).count("input #3") == 1, str(info.value)
    out = list(registry.iter_workflow_batch(wf, range(6), errors="return", chunk_size=4))
    assert [i for i, r in enumerate(out) if isinstance(r, mr.WorkflowError)] == [0, 2, 4]
    assert [r.index for r in out if isinstance(r, mr.WorkflowError)] == [0, 2, 4]


def test_bad_arguments_fail_when_called_not_when_iterated(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("d").then("double")
    with pytest.raises(mr.ValidationError, match="ordered"):
        registry.iter_workflow_batch(wf, [1], ordered="yes")  # type: ignore[arg-type]
    with pytest.raises(mr.ValidationError, match="errors must be"):
        registry.iter_workflow_batch(wf, [1], errors="ignore")
    with pytest.raises(mr.ValidationError, match="chunk_size"):
        registry.iter_workflow_batch(wf, [1], chunk_size=0)
    with pytest.raises(mr.WorkflowError, match="nothing"):
        registry.iter_workflow_batch(Workflow("w").then("nothing"), [1])
    with concurrent.futures.ThreadPoolExecutor(1) as threads, pytest.raises(mr.WorkflowError, match="nothing"):
        registry.iter_workflow_batch(Workflow("w").then("nothing"), [1], executor=threads)


def test_one_set_of_instances_closed_when_the_iterator_ends(registry: mr.ModuleRegistry) -> None:
    events: list[str] = []

    class Tracked:
        def __init__(self) -> None:
            events.append("init")

        def process(self, x: int) -> int:
            return x

        def shutdown(self) -> None:
            events.append("shutdown")

    registry.register(mr.ModuleConfig(name="tracked"), Tracked)
    wf = Workflow("t").then("tracked")
    results = registry.iter_workflow_batch(wf, itertools.count(), chunk_size=10)
    for _ in range(100):
        next(results)
    assert events == ["init"]
    results.close()  # type: ignore[attr-defined]
    assert events == ["init", "shutdown"]
    # Leaving a for loop early and dropping the iterator closes them too.
    for result in registry.iter_workflow_batch(wf, itertools.count()):
        if result.output == 3:
            break
    del result
    import gc

    gc.collect()
    assert events == ["init", "shutdown", "init", "shutdown"]


def test_a_views_batch_acts_as_its_principal_on_every_window() -> None:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="who"), lambda x: _core._current_principal())
    registry.set_policy(mr.AccessPolicy().grant("user", ["discover", "create"], "*").assign("alice", "user"))
    alice = registry.as_principal("alice")
    wf = Workflow("w").then("who")
    results = alice.iter_workflow_batch(wf, range(50), chunk_size=4)
    assert {r.output for r in results} == {"alice"}
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        out = alice.iter_workflow_batch(wf, range(20), executor=threads, chunk_size=3)
        assert [r.output for r in out] == ["alice"] * 20
    mallory = registry.as_principal("mallory")
    with pytest.raises(mr.WorkflowError):
        mallory.iter_workflow_batch(wf, [1])


def test_thread_and_process_executors_stream_in_order_or_as_they_finish(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("d").then("identity")
    expected = list(range(0, 500))
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        ordered = registry.iter_workflow_batch(wf, iter(expected), executor=threads, chunk_size=7)
        assert [r.output for r in ordered] == expected
        loose = registry.iter_workflow_batch(wf, iter(expected), executor=threads, chunk_size=7, ordered=False)
        assert sorted(r.output for r in loose) == expected
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        source = Counted()
        results = registry.iter_workflow_batch(wf, iter(source), executor=pool, chunk_size=5)
        assert [r.output for r in itertools.islice(results, 12)] == list(range(12))
        # At most two chunks per worker in flight, and one more read ahead.
        assert source.taken <= 5 * (2 * 2 + 3)
        results.close()  # type: ignore[attr-defined]
        out = registry.run_workflow_batch(Workflow("odd").then("odd-only"), range(9), executor=pool, errors="return")
        assert [i for i, r in enumerate(out) if isinstance(r, mr.WorkflowError)] == [0, 2, 4, 6, 8]
        assert all(r.steps[0].module == "odd-only" for r in out if isinstance(r, mr.WorkflowResult))


def test_a_chunk_travels_as_one_compact_payload(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("two").then("double").then("identity")
    payload = registry._run_workflow_chunk(wf, [1, 2, 3], False, 10)
    assert payload["outputs"] == [2, 4, 6] and payload["first_index"] == 10
    assert isinstance(payload["table"], bytes) and payload["errors"] == {}
    assert set(payload["texts"]) >= {"double", "identity"}
    assert payload["step_outputs"] == [2, 2, 4, 4, 6, 6]
    layout = _core._ResultLayout(wf)
    results: list[Any] = layout.unpack(pickle.loads(pickle.dumps(payload)))
    assert [r.output for r in results] == [2, 4, 6]
    assert [[s.module for s in r.steps] for r in results] == [["double", "identity"]] * 3
    assert results[2].steps[0].output == 6 and results[0].workflow == wf
    texts = layout.texts
    layout.unpack(registry._run_workflow_chunk(wf, [4, 5]))
    assert layout.texts == texts, "the texts of a batch's results are kept once"
    failed = registry._run_workflow_chunk(Workflow("odd").then("odd-only"), [1, 2, 3], True, 5)
    assert sorted(failed["errors"]) == [1] and failed["errors"][1].index == 6
    out: list[Any] = _core._ResultLayout(None).unpack(failed)
    assert isinstance(out[1], mr.WorkflowError) and [out[0].output, out[2].output] == [1, 3]


def test_a_payload_that_does_not_hold_together_is_refused(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("d").then("double")
    payload = registry._run_workflow_chunk(wf, [1, 2])
    layout = _core._ResultLayout(wf)
    for broken in (
        {k: v for k, v in payload.items() if k != "table"},
        {**payload, "table": payload["table"][:-3]},
        {**payload, "texts": []},
    ):
        with pytest.raises(mr.ValidationError, match="chunk payload"):
            layout.unpack(broken)


def test_a_kept_result_is_small(registry: mr.ModuleRegistry) -> None:
    """The figure is in benches/python/batch_memory.py; here only that results
    of a batch share their workflow (no copy each)."""
    wf = Workflow("d").then("double")
    results = registry.run_workflow_batch(wf, range(3))
    assert all(r.workflow == wf for r in results)
    assert sys.getsizeof(results[0]) <= 200


ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "module_registry", *args], capture_output=True, text=True, timeout=300)


def test_cli_batch_streams_json_lines(tmp_path: Path) -> None:
    wf = tmp_path / "id.toml"
    wf.write_text('name = "id"\n[[steps]]\nid = "id"\nmodule = "identity"\n')
    lines = tmp_path / "in.jsonl"
    n = 20_000
    lines.write_text("".join(f"{i}\n" for i in range(n)))
    proc = run_cli("run", str(wf), "--input", str(lines), "--batch", "--report")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == list(range(n))
    assert f": {n} inputs, 1 steps: {n} ok, in " in proc.stderr
    # A failing line stops the batch: the outputs before it are written, its error said.
    bad = tmp_path / "bad.jsonl"
    bad.write_text("1\n2\n{broken\n4\n")
    failed = run_cli("run", str(wf), "--input", str(bad), "--batch")
    assert failed.returncode == 1 and "line 3, is not JSON" in failed.stderr
    # An endless pipe is read within the limit, never past it.
    import os

    fifo = tmp_path / "endless.jsonl"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["bash", "-c", f'yes 1 > "{fifo}"'], stderr=subprocess.DEVNULL)
    try:
        endless = run_cli("run", str(wf), "--input", str(fifo), "--batch", "--input-limit", "0.01")
    finally:
        writer.kill()
        writer.wait()
    assert endless.returncode == 1 and "is larger than 0.01 MiB" in endless.stderr, endless.stderr
    assert endless.stdout.splitlines()[:3] == ["1", "1", "1"], "the lines before the limit ran"


def test_a_source_that_raises_mid_batch_raises_its_own_error(registry: mr.ModuleRegistry) -> None:
    """An input generator that breaks after two inputs: its own error reaches
    the caller (after the results before it), here and on an executor."""
    wf = Workflow("w").then("identity")

    def broken() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("the source broke")

    got: list[Any] = []
    with pytest.raises(ValueError, match="the source broke"):
        for result in registry.iter_workflow_batch(wf, broken()):
            got.append(result.output)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        with pytest.raises(ValueError, match="the source broke"):
            list(registry.iter_workflow_batch(wf, broken(), executor=pool))
        # The executor still serves a batch afterwards.
        assert [r.output for r in registry.iter_workflow_batch(wf, range(5), executor=pool)] == list(range(5))


def test_a_second_batch_on_the_same_executor(registry: mr.ModuleRegistry) -> None:
    """Two batches, ordered then as they finish, on one thread pool: each
    gives every input's result once."""
    wf = Workflow("w").then("identity")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = [r.output for r in registry.iter_workflow_batch(wf, range(1000), executor=pool)]
        second = [r.output for r in registry.iter_workflow_batch(wf, range(1000), executor=pool, ordered=False)]
    assert first == list(range(1000))
    assert sorted(second) == list(range(1000))
