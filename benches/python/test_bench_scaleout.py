"""Batches on a Dask cluster beside the same batches here.

A two-worker ``LocalCluster`` (processes, 127.0.0.1) is started once for the
module. Under ``make test`` each benchmark runs once and checks its result;
``make bench`` / ``make bench-report`` measure them.
"""

from __future__ import annotations

import pickle
from typing import Any, Iterator

import pytest

import module_registry as mr

distributed = pytest.importorskip("distributed")

#: Inputs of the CPU-bound batch, and the work per input.
CPU_INPUTS = 2_000
PRIMES_BELOW = 2_500
#: Inputs of the trivial batch (per-input overhead).
TRIVIAL_INPUTS = 20_000


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


def count_primes(limit: int) -> int:
    """Pure Python: holds the GIL the whole time."""
    return sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(2, limit))


def cpu_registry() -> tuple[mr.ModuleRegistry, mr.Workflow]:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="count-primes"), count_primes)
    return registry, mr.Workflow("cpu").then("count-primes")


def trivial_registry() -> tuple[mr.ModuleRegistry, mr.Workflow]:
    return mr.ModuleRegistry(native_modules=True), mr.Workflow("trivial").then("identity")


EXPECTED_PRIMES = count_primes(PRIMES_BELOW)


def test_cpu_batch_local(benchmark: Any) -> None:
    registry, workflow = cpu_registry()
    inputs = [PRIMES_BELOW] * CPU_INPUTS
    results = benchmark.pedantic(registry.run_workflow_batch, (workflow, inputs), rounds=3, iterations=1)
    assert len(results) == CPU_INPUTS and results[-1].output == EXPECTED_PRIMES


def test_cpu_batch_dask(benchmark: Any, client: Any) -> None:
    registry, workflow = cpu_registry()
    inputs = [PRIMES_BELOW] * CPU_INPUTS
    registry.run_workflow_batch(workflow, inputs[:4], executor=client)  # the workers rebuild it once

    def run() -> list[Any]:
        return registry.run_workflow_batch(workflow, inputs, executor=client)

    results = benchmark.pedantic(run, rounds=3, iterations=1)
    assert len(results) == CPU_INPUTS and results[-1].output == EXPECTED_PRIMES


def test_trivial_batch_local(benchmark: Any) -> None:
    registry, workflow = trivial_registry()
    inputs = list(range(TRIVIAL_INPUTS))
    results = benchmark.pedantic(registry.run_workflow_batch, (workflow, inputs), rounds=5, iterations=1)
    assert [r.output for r in results[:3]] == [0, 1, 2]


def test_trivial_batch_dask(benchmark: Any, client: Any) -> None:
    registry, workflow = trivial_registry()
    inputs = list(range(TRIVIAL_INPUTS))
    registry.run_workflow_batch(workflow, inputs[:4], executor=client)

    def run() -> list[Any]:
        return registry.run_workflow_batch(workflow, inputs, executor=client)

    results = benchmark.pedantic(run, rounds=5, iterations=1)
    assert [r.output for r in results[-3:]] == inputs[-3:]


def big_registry() -> mr.ModuleRegistry:
    """1,000 declarations and 10 scripts."""
    registry = mr.ModuleRegistry()
    for n in range(1_000):
        registry.register(mr.ModuleConfig(name=f"decl-{n}", capabilities=[f"cap-{n % 50}", f"cap-{n % 7}"]))
    for n in range(10):
        registry.register_script(
            f'const MODULE = #{{ name: "script-{n}", version: "1.0.{n}", capabilities: ["text"] }};\n'
            f"fn process(x) {{ let out = []; for i in 0..{n + 1} {{ out.push(x); }} out }}"
        )
    return registry


def test_rebuild_registry_on_a_worker(benchmark: Any) -> None:
    registry = big_registry()
    blob = pickle.dumps(registry)
    rebuilt = benchmark.pedantic(pickle.loads, (blob,), rounds=10, iterations=1)
    assert len(rebuilt) == 1_010 and rebuilt.fingerprint() == registry.fingerprint()
