"""Batches on a real Dask cluster (two worker processes on 127.0.0.1), on
process and thread pools, and workflows mapped over Dask collections."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import module_registry as mr
from module_registry import _batch

distributed = pytest.importorskip("distributed")

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def mixed_registry() -> mr.ModuleRegistry:
    """Scripts, natives and Python modules that cannot be imported back."""
    registry = mr.ModuleRegistry(native_modules=True)
    registry.load_scripts(SCRIPTS)
    suffix = "!"
    registry.register(mr.ModuleConfig(name="exclaim"), lambda text: text + suffix)

    class Wrap:
        def __init__(self) -> None:
            self.calls = 0

        def process(self, text: str) -> dict[str, Any]:
            self.calls += 1
            return {"text": text, "calls": self.calls}

    registry.register(mr.ModuleConfig(name="wrap"), Wrap)
    return registry


MIXED = mr.Workflow("mixed").then("slugify").then("identity").then("exclaim").then("wrap")


def texts(results: list[Any]) -> list[str]:
    return [r.output["text"] for r in results]


def test_modules_defined_here_travel_by_value_with_scripts_and_natives(client: Any) -> None:
    registry = mixed_registry()
    inputs = [f"Hello World {n}" for n in range(40)]
    results = registry.run_workflow_batch(MIXED, inputs, executor=client, chunk_size=10)
    assert [r.output["text"] for r in results] == [f"hello-world-{n}!" for n in range(40)]
    # Instances are reused within a chunk: the class counts its calls.
    assert [r.output["calls"] for r in results[:10]] == list(range(1, 11))
    assert all(isinstance(r, mr.WorkflowResult) and r.steps[0].status == "ok" for r in results)
    # Every worker process did the work: both rebuilt the registry once.
    assert sum(client.run(lambda: _batch.rebuilds).values()) >= 1


def test_results_keep_input_order_whatever_order_chunks_finish(client: Any) -> None:
    registry = mr.ModuleRegistry()

    def slow_first(n: int) -> int:
        time.sleep(0.002 * max(0, 20 - n))  # early inputs take longest
        return n * n

    registry.register(mr.ModuleConfig(name="square"), slow_first)
    workflow = mr.Workflow("w").then("square")
    inputs = list(range(24))
    results = registry.run_workflow_batch(workflow, inputs, executor=client, chunk_size=1)
    assert [r.output for r in results] == [n * n for n in inputs]


def failing_registry() -> mr.ModuleRegistry:
    registry = mr.ModuleRegistry()

    def check(n: int) -> int:
        if n % 10 == 3:
            time.sleep(0.3)  # the earliest failure is also the slowest to arrive
            raise ValueError(f"bad input {n}")
        if n == 17:
            raise ValueError("bad input 17")
        return n

    registry.register(mr.ModuleConfig(name="check"), check)
    return registry


def test_errors_raise_gives_the_first_failing_input_in_input_order(client: Any) -> None:
    registry = failing_registry()
    workflow = mr.Workflow("w").then("check")
    with pytest.raises(mr.WorkflowError) as info:
        registry.run_workflow_batch(workflow, range(30), executor=client, chunk_size=2)
    assert info.value.index == 3
    assert "input #3" in str(info.value) and info.value.step == "check"
    assert isinstance(info.value.__cause__, mr.ModuleFailedError)
    assert "bad input 3" in str(info.value.__cause__.__cause__)
    # The same batch here raises the same input.
    with pytest.raises(mr.WorkflowError) as here:
        registry.run_workflow_batch(workflow, range(30))
    assert here.value.index == 3


def test_errors_return_fills_each_failed_slot(client: Any) -> None:
    registry = failing_registry()
    workflow = mr.Workflow("w").then("check")
    for executor in (None, client):
        out = registry.run_workflow_batch(workflow, range(30), executor=executor, chunk_size=4, errors="return")
        assert len(out) == 30
        failed = [i for i, r in enumerate(out) if isinstance(r, mr.WorkflowError)]
        assert failed == [3, 13, 17, 23]
        assert all(out[i].index == i for i in failed)
        assert [r.output for r in out if isinstance(r, mr.WorkflowResult)] == [
            n for n in range(30) if n not in failed
        ]


def test_a_view_runs_on_the_workers_as_its_principal(client: Any) -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    registry.register(mr.ModuleConfig(name="secret"), lambda x: "secret")
    policy = mr.AccessPolicy().grant("user", ["discover", "create"], "text-*").assign("alice", "user")
    registry.set_policy(policy)
    alice = registry.as_principal("alice")
    allowed = mr.Workflow("ok").then("text-encode")
    assert [r.output for r in alice.run_workflow_batch(allowed, ["a", "b"], executor=client)] == [b"a", b"b"]
    denied = mr.Workflow("no").then("secret")
    with pytest.raises(mr.WorkflowError) as info:
        alice.run_workflow_batch(denied, ["a", "b"], executor=client)
    assert isinstance(info.value.__cause__, mr.PermissionDeniedError)
    assert info.value.__cause__.principal == "alice"
    # The owner may: the denial was the principal's, applied on the worker.
    assert [r.output for r in registry.run_workflow_batch(denied, ["a"], executor=client)] == ["secret"]


def test_a_changed_registry_is_rebuilt_on_the_workers(client: Any) -> None:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="v"), lambda x: 1)
    workflow = mr.Workflow("w").then("v")
    before = sum(client.run(lambda: _batch.rebuilds).values())
    assert {r.output for r in registry.run_workflow_batch(workflow, range(8), executor=client)} == {1}
    again = sum(client.run(lambda: _batch.rebuilds).values())
    assert again > before
    # The same registry again: nothing is rebuilt.
    registry.run_workflow_batch(workflow, range(8), executor=client)
    assert sum(client.run(lambda: _batch.rebuilds).values()) == again
    first = registry.fingerprint()
    registry.replace(mr.ModuleConfig(name="v"), lambda x: 2)
    assert registry.fingerprint() != first
    assert {r.output for r in registry.run_workflow_batch(workflow, range(8), executor=client)} == {2}
    assert sum(client.run(lambda: _batch.rebuilds).values()) > again


def test_progress_bar_moves_as_chunks_complete(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    registry.run_workflow_batch(mr.Workflow("bar").then("identity"), range(50), executor=client, progress=True)
    assert "50/50" in capsys.readouterr().err


def test_process_and_thread_pools_give_the_same_results() -> None:
    registry = mixed_registry()
    inputs = [f"Item {n}" for n in range(30)]
    expected = texts(registry.run_workflow_batch(MIXED, inputs))
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        assert texts(registry.run_workflow_batch(MIXED, inputs, executor=pool)) == expected
        out = failing_registry().run_workflow_batch(mr.Workflow("w").then("check"), range(20), executor=pool, errors="return")
        assert [i for i, r in enumerate(out) if isinstance(r, mr.WorkflowError)] == [3, 13, 17]
    with concurrent.futures.ThreadPoolExecutor(3) as threads:
        assert texts(registry.run_workflow_batch(MIXED, inputs, executor=threads)) == expected


def test_bad_arguments_are_typed_errors(registry: mr.ModuleRegistry) -> None:
    workflow = mr.Workflow("w").then("nothing")
    with pytest.raises(mr.ValidationError, match="errors must be"):
        registry.run_workflow_batch(workflow, [1], errors="ignore")
    with pytest.raises(mr.ValidationError, match="chunk_size"):
        registry.run_workflow_batch(workflow, [1], chunk_size=0)
    with pytest.raises(TypeError, match="executor must be"):
        registry.run_workflow_batch(workflow, [1], executor=object())
    # A workflow that cannot be planned fails as a whole (not as one input).
    with pytest.raises(mr.WorkflowError, match="nothing") as info:
        registry.run_workflow_batch(workflow, [1, 2])
    assert not hasattr(info.value, "index")
    # Even with no inputs, here or on an executor.
    with pytest.raises(mr.WorkflowError, match="nothing"):
        registry.run_workflow_batch(workflow, [])
    with concurrent.futures.ThreadPoolExecutor(1) as threads, pytest.raises(mr.WorkflowError, match="nothing"):
        registry.run_workflow_batch(workflow, [], executor=threads)
    registry.register(mr.ModuleConfig(name="nothing"), lambda x: x)
    assert registry.run_workflow_batch(workflow, [], executor=None) == []


def test_an_unpicklable_module_is_named_before_anything_runs(client: Any) -> None:
    import threading

    registry = mr.ModuleRegistry()
    lock = threading.Lock()
    registry.register(mr.ModuleConfig(name="locked"), lambda x: (lock, x)[1])
    with pytest.raises(Exception, match="module locked@0.1.0 cannot be pickled"):
        registry.run_workflow_batch(mr.Workflow("w").then("locked"), [1], executor=client)


def test_map_workflow_over_a_bag_and_a_series(client: Any) -> None:
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd

    from module_registry.dask import map_workflow

    registry = mixed_registry()
    workflow = mr.Workflow("short").then("slugify").then("exclaim")
    bag = db.from_sequence([f"A b {n}" for n in range(12)], npartitions=3)
    mapped = map_workflow(registry, workflow, bag)
    assert isinstance(mapped, db.Bag)
    assert mapped.compute() == [f"a-b-{n}!" for n in range(12)]
    series = dd.from_pandas(pd.Series([f"X {n}" for n in range(9)], index=range(10, 19)), npartitions=2)
    out = map_workflow(registry, workflow, series, meta=("out", "object"))
    assert isinstance(out, dd.Series)
    computed = out.compute()
    assert list(computed) == [f"x-{n}!" for n in range(9)] and list(computed.index) == list(range(10, 19))
    with pytest.raises(TypeError, match="Bag or a dask.dataframe.Series"):
        map_workflow(registry, workflow, [1, 2])


def test_importing_module_registry_does_not_import_dask() -> None:
    import subprocess
    import sys

    code = "import sys, module_registry; print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_failure_whose_cause_is_a_local_class_keeps_its_chain(client: Any) -> None:
    class Odd(Exception):
        pass

    def fail(x: Any) -> Any:
        raise Odd(f"odd input {x}")

    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="fail"), fail)
    out = registry.run_workflow_batch(mr.Workflow("w").then("fail"), [1, 2], executor=client, errors="return")
    assert [r.index for r in out] == [0, 1]
    module_error = out[1].__cause__
    assert isinstance(module_error, mr.ModuleFailedError) and module_error.module == "fail"
    assert "odd input 2" in str(module_error.__cause__)


def test_objects_of_classes_defined_here_travel_both_ways(client: Any) -> None:
    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="wrap"), lambda p: Point(p.x + 1))
    results = registry.run_workflow_batch(mr.Workflow("w").then("wrap"), [Point(1), Point(2)], executor=client)
    assert [r.output.x for r in results] == [2, 3]


def test_workers_share_the_cache_folder(client: Any, tmp_path: Path) -> None:
    registry = mr.ModuleRegistry()

    def square(n: int) -> int:
        return n * n

    registry.register(mr.ModuleConfig(name="square"), square)
    registry.set_cache(path=tmp_path / "cache")
    before = registry.fingerprint()
    workflow = mr.Workflow("w").then("square", cache=True)
    first = registry.run_workflow_batch(workflow, range(20), executor=client, chunk_size=5)
    assert {r.steps[0].cache for r in first} == {"miss"}
    # The workers wrote into the folder: here, and on the cluster again, all hits.
    assert registry.cache_stats()["entries"] == 20
    local = registry.run_workflow_batch(workflow, range(20))
    assert {r.steps[0].cache for r in local} == {"hit"}
    again = registry.run_workflow_batch(workflow, range(20), executor=client, chunk_size=5)
    assert {r.steps[0].cache for r in again} == {"hit"}
    assert [r.output for r in again] == [n * n for n in range(20)]
    registry.set_cache(path=tmp_path / "other")
    assert registry.fingerprint() != before


class Scaler:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor


def test_a_second_registry_differing_only_in_state_runs_on_the_workers(client: Any) -> None:
    import dask.bag as db

    from module_registry.dask import map_workflow

    def scaled(factor: int) -> mr.ModuleRegistry:
        registry = mr.ModuleRegistry()
        registry.register(mr.ModuleConfig(name="scale"), Scaler(factor))
        return registry

    wf = mr.Workflow("w").then("scale")
    bag = db.from_sequence([1, 2, 3, 4], npartitions=2)
    assert sorted(map_workflow(scaled(2), wf, bag).compute()) == [2, 4, 6, 8]
    assert sorted(map_workflow(scaled(3), wf, bag).compute()) == [3, 6, 9, 12]  # was [2, 4, 6, 8]
    assert [r.output for r in scaled(5).run_workflow_batch(wf, [1, 2], executor=client)] == [5, 10]


def test_cache_stats_after_a_dask_batch_count_the_workers_steps(client: Any, tmp_path: Path) -> None:
    registry = mr.ModuleRegistry()
    registry.register_script('const MODULE = #{ name: "cube", version: "1.0.0" }; fn process(x) { x * x * x }')
    registry.set_cache(path=tmp_path / "cache")
    workflow = mr.Workflow("w").then("cube", cache=True)
    registry.run_workflow_batch(workflow, range(12), executor=client, chunk_size=4)
    stats = registry.cache_stats()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (0, 12, 12)
    out = registry.run_workflow_batch(workflow, range(12), executor=client, chunk_size=4)
    assert [r.output for r in out] == [n**3 for n in range(12)]
    stats = registry.cache_stats()
    assert (stats["hits"], stats["misses"]) == (12, 12)
