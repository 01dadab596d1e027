"""OpenTelemetry spans (`module_registry.otel`) read back with the SDK's
in-memory exporter, and across a process pool and a Dask cluster whose
workers export to files."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import module_registry as mr
from module_registry import otel

NS = "module_registry."


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def make_registry() -> mr.ModuleRegistry:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="inc", version="1.2.0"), lambda x: x + 1)
    registry.register(mr.ModuleConfig(name="double"), lambda x: x * 2)

    def broken(x: Any) -> Any:
        raise ZeroDivisionError(f"cannot take {x}")

    registry.register(mr.ModuleConfig(name="broken"), broken)
    return registry


@pytest.fixture
def registry(provider: TracerProvider) -> Iterator[mr.ModuleRegistry]:
    registry = make_registry()
    otel.instrument(registry, tracer_provider=provider)
    yield registry
    otel.uninstrument(registry)


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def parent_of(span: ReadableSpan) -> Optional[int]:
    return None if span.parent is None else span.parent.span_id


def span_id(span: Any) -> int:
    return int(span.get_span_context().span_id)


WORKFLOW = mr.Workflow("traced", output="c").step("a", "inc").step("b", "double", after=["a"]).step("c", "inc", after=["a"])


def test_one_run_span_with_a_child_per_step_under_the_callers_span(
    registry: mr.ModuleRegistry, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("caller") as caller:
        result = registry.run_workflow(WORKFLOW, 1)
    spans = exporter.get_finished_spans()
    run = one(spans, "run workflow traced")
    assert parent_of(run) == span_id(caller)
    assert run.context.trace_id == caller.get_span_context().trace_id
    assert run.attributes == {NS + "workflow.name": "traced"}
    assert run.status.status_code == StatusCode.UNSET
    assert run.start_time is not None and run.end_time is not None
    for step in result.steps:
        span = one(spans, f"run step {step.id}")
        assert parent_of(span) == run.context.span_id
        assert span.attributes is not None
        assert dict(span.attributes) == {
            NS + "module.name": step.module,
            NS + "module.version": step.version,
            NS + "step.id": step.id,
            NS + "step.attempts": 1,
            NS + "step.cache": "off",
            NS + "step.outcome": "ok",
        }
        assert span.start_time is not None and span.end_time is not None
        assert run.start_time <= span.start_time <= span.end_time <= run.end_time
        calls = [c for c in named(spans, f"call module {step.module}") if parent_of(c) == span.context.span_id]
        assert len(calls) == 1
    # Nothing more: one run, three steps, three module calls (and the caller).
    assert len(spans) == 1 + 3 + 3 + 1
    assert one(spans, "run step b").attributes[NS + "module.version"] == "0.1.0"  # type: ignore[index]


def test_a_failing_step_is_an_error_with_the_modules_own_exception(
    registry: mr.ModuleRegistry, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(mr.WorkflowError):
        registry.run_workflow(mr.Workflow("failing").then("inc").then("broken", id="bad"), 1)
    spans = exporter.get_finished_spans()
    run = one(spans, "run workflow failing")
    assert run.status.status_code == StatusCode.ERROR
    assert run.attributes is not None and run.attributes["error.type"] == "WorkflowError"
    bad = one(spans, "run step bad")
    assert parent_of(bad) == run.context.span_id
    assert bad.status.status_code == StatusCode.ERROR
    assert bad.attributes is not None
    assert bad.attributes[NS + "step.outcome"] == "failed"
    assert bad.attributes["error.type"] == "ModuleFailedError"
    (event,) = [e for e in bad.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ZeroDivisionError"
    assert "cannot take 2" in str(event.attributes["exception.message"])


def test_a_skipped_step_says_so_and_its_run_is_ok(registry: mr.ModuleRegistry, exporter: InMemorySpanExporter) -> None:
    registry.run_workflow(mr.Workflow("skips").then("broken", id="bad", on_error="skip").then("inc"), 1)
    spans = exporter.get_finished_spans()
    assert one(spans, "run workflow skips").status.status_code == StatusCode.UNSET
    bad = one(spans, "run step bad")
    assert bad.attributes is not None and bad.attributes[NS + "step.outcome"] == "skipped"


def test_retries_are_events_on_the_one_step_span(registry: mr.ModuleRegistry, exporter: InMemorySpanExporter) -> None:
    calls = []

    def flaky(x: Any) -> Any:
        calls.append(x)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return x

    registry.register(mr.ModuleConfig(name="flaky"), flaky)
    registry.run_workflow(mr.Workflow("retrying").then("flaky", id="f", retries=2), "x")
    spans = exporter.get_finished_spans()
    step = one(spans, "run step f")
    assert step.attributes is not None and step.attributes[NS + "step.attempts"] == 3
    retries = [e for e in step.events if e.name == "retry"]
    assert [e.attributes[NS + "step.attempts"] for e in retries if e.attributes is not None] == [1, 2]
    assert step.status.status_code == StatusCode.UNSET
    assert len(named(spans, "run step f")) == 1


def test_a_cache_hit_is_on_the_step_and_calls_no_module(
    registry: mr.ModuleRegistry, exporter: InMemorySpanExporter
) -> None:
    registry.set_cache()
    workflow = mr.Workflow("cached").then("inc", id="s", cache=True)
    registry.run_workflow(workflow, 5)
    registry.run_workflow(workflow, 5)
    steps = named(exporter.get_finished_spans(), "run step s")
    assert [s.attributes[NS + "step.cache"] for s in steps if s.attributes is not None] == ["miss", "hit"]
    assert len(named(exporter.get_finished_spans(), "call module inc")) == 1


def test_direct_calls_and_the_principal_of_a_view(registry: mr.ModuleRegistry, exporter: InMemorySpanExporter) -> None:
    instance = registry.create("inc")
    assert instance.process(1) == 2
    call = one(exporter.get_finished_spans(), "call module inc")
    assert call.attributes == {NS + "module.name": "inc", NS + "module.version": "1.2.0", NS + "module.kind": "module"}
    exporter.clear()
    view = registry.as_principal("alice")
    with pytest.raises(mr.ModuleFailedError):
        view.create("broken").process(3)
    view.run_workflow(mr.Workflow("viewed").then("inc"), 1)
    spans = exporter.get_finished_spans()
    failed = one(spans, "call module broken")
    assert failed.attributes is not None and failed.attributes[NS + "principal"] == "alice"
    assert failed.status.status_code == StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]
    run = one(spans, "run workflow viewed")
    assert run.attributes is not None and run.attributes[NS + "principal"] == "alice"


def test_a_local_batch_and_async_runs(
    registry: mr.ModuleRegistry, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")
    workflow = mr.Workflow("batch").then("inc").then("broken", id="check", on_error="fail")
    ok = mr.Workflow("batch").then("inc")
    with tracer.start_as_current_span("caller") as caller:
        registry.run_workflow_batch(ok, range(4))
        out = registry.run_workflow_batch(workflow, range(2), errors="return")
    assert all(isinstance(o, mr.WorkflowError) for o in out)
    runs = named(exporter.get_finished_spans(), "run workflow batch")
    assert len(runs) == 6
    assert {parent_of(r) for r in runs} == {span_id(caller)}
    assert [r.status.status_code for r in runs].count(StatusCode.ERROR) == 2
    exporter.clear()

    async def main() -> None:
        with tracer.start_as_current_span("async caller") as outer:
            await registry.arun_workflow(ok, 1)
            await registry.arun_workflow_batch(ok, [1, 2])
        assert {parent_of(r) for r in named(exporter.get_finished_spans(), "run workflow batch")} == {span_id(outer)}

    asyncio.run(main())
    assert len(named(exporter.get_finished_spans(), "run workflow batch")) == 3


def test_uninstrument_makes_no_more_spans(registry: mr.ModuleRegistry, exporter: InMemorySpanExporter) -> None:
    instance = registry.create("inc")
    otel.uninstrument(registry)
    registry.run_workflow(WORKFLOW, 1)
    registry.run_workflow_batch(WORKFLOW, [1, 2])
    assert instance.process(1) == 2
    assert registry.create("inc").process(1) == 2
    assert exporter.get_finished_spans() == ()
    otel.uninstrument(registry)  # again: nothing happens
    assert "run_workflow" not in vars(registry)


def test_instrument_again_replaces_the_provider(registry: mr.ModuleRegistry, exporter: InMemorySpanExporter) -> None:
    other = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(other))
    otel.instrument(registry.as_principal("bob"), tracer_provider=provider)  # a view instruments its registry
    registry.run_workflow(WORKFLOW, 1)
    assert exporter.get_finished_spans() == ()
    assert len(named(other.get_finished_spans(), "run workflow traced")) == 1


def test_instrument_takes_a_registry() -> None:
    with pytest.raises(TypeError, match="ModuleRegistry"):
        otel.instrument(object())


def test_importing_the_package_imports_no_opentelemetry() -> None:
    code = "import sys, module_registry; print(any(m.split('.')[0] == 'opentelemetry' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- across processes: workers export to files the test reads ----------------

#: Where this worker process's spans go (set by `trace_to_files`).
_FOLDER: Optional[Path] = None


class FileExporter(SpanExporter):
    """Each span as one JSON line in ``_FOLDER/<pid>.jsonl``."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        assert _FOLDER is not None
        with open(_FOLDER / f"{os.getpid()}.jsonl", "a") as out:
            for s in spans:
                assert s.context is not None
                record = {
                    "name": s.name,
                    "trace_id": s.context.trace_id,
                    "span_id": s.context.span_id,
                    "parent": parent_of(s),
                    "attributes": dict(s.attributes or {}),
                }
                out.write(json.dumps(record) + "\n")
        return SpanExportResult.SUCCESS


def trace_to_files(folder: str) -> int:
    """A worker's setup: a global tracer provider exporting to ``folder``."""
    global _FOLDER
    _FOLDER = Path(folder)
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
        trace.set_tracer_provider(provider)
    return os.getpid()


def read_spans(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_a_process_pool_batch_joins_the_callers_trace(
    registry: mr.ModuleRegistry, provider: TracerProvider, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = provider.get_tracer("test")
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        2, mp_context=spawn, initializer=trace_to_files, initargs=(str(tmp_path),)
    ) as pool:
        with tracer.start_as_current_span("caller") as caller:
            out = registry.run_workflow_batch(WORKFLOW, range(8), executor=pool, chunk_size=2)
    assert [r.output for r in out] == [n + 2 for n in range(8)]
    spans = read_spans(tmp_path)
    runs = [s for s in spans if s["name"] == "run workflow traced"]
    assert len(runs) == 8
    context = caller.get_span_context()
    assert {s["trace_id"] for s in spans} == {context.trace_id}
    assert {r["parent"] for r in runs} == {context.span_id}
    steps = [s for s in spans if s["name"].startswith("run step ")]
    assert len(steps) == 24
    assert {s["parent"] for s in steps} <= {r["span_id"] for r in runs}
    # The driver made no run spans of its own for the workers' runs.
    assert named(exporter.get_finished_spans(), "run workflow traced") == []


def test_a_batch_of_an_uninstrumented_registry_carries_no_trace(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=spawn, initializer=trace_to_files, initargs=(str(tmp_path),)
    ) as pool:
        make_registry().run_workflow_batch(WORKFLOW, range(4), executor=pool)
    assert read_spans(tmp_path) == []


distributed = pytest.importorskip("distributed")


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


def test_dask_batch_and_map_workflow_join_the_callers_trace(
    client: Any, registry: mr.ModuleRegistry, provider: TracerProvider, tmp_path: Path
) -> None:
    import dask.bag as db

    from module_registry.dask import map_workflow

    pids = client.run(trace_to_files, str(tmp_path))
    assert len(set(pids.values())) == 2
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("batch caller") as batch_caller:
        out = registry.run_workflow_batch(WORKFLOW, range(12), executor=client, chunk_size=3)
    assert len(out) == 12
    with tracer.start_as_current_span("map caller") as map_caller:
        bag = db.from_sequence(range(6), npartitions=3)  # type: ignore[no-untyped-call]
        mapped = map_workflow(registry, WORKFLOW, bag)
    # Computed outside the span: the context is the one current at the call.
    assert sorted(mapped.compute()) == [n + 2 for n in range(6)]
    spans = read_spans(tmp_path)
    by_trace: dict[int, list[dict[str, Any]]] = {}
    for s in spans:
        by_trace.setdefault(s["trace_id"], []).append(s)
    batch, mapping = batch_caller.get_span_context(), map_caller.get_span_context()
    assert set(by_trace) == {batch.trace_id, mapping.trace_id}
    batch_runs = [s for s in by_trace[batch.trace_id] if s["name"] == "run workflow traced"]
    map_runs = [s for s in by_trace[mapping.trace_id] if s["name"] == "run workflow traced"]
    assert (len(batch_runs), len(map_runs)) == (12, 6)
    assert {r["parent"] for r in batch_runs} == {batch.span_id}
    assert {r["parent"] for r in map_runs} == {mapping.span_id}
