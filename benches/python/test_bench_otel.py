"""What OpenTelemetry spans (`module_registry.otel`) cost from Python.

Issue 31's figures: not instrumented, no measurable cost; instrumented with
the OTel SDK and an in-memory exporter, at most 5 µs per span. A run of a
3-step workflow makes 7 spans (the run, 3 steps, 3 module calls); a direct
`process` makes one.

Disabled by default: under `make test` every benchmark runs once as a test and
checks its result; `make bench` measures them.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import module_registry as mr
from module_registry import otel

PAYLOAD = b"input data"
WORKFLOW = mr.Workflow("bench").then("identity").then("identity", id="b").then("identity", id="c")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def instrumented(exporter: InMemorySpanExporter) -> Iterator[mr.ModuleRegistry]:
    registry = mr.ModuleRegistry(native_modules=True)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(registry, tracer_provider=provider)
    yield registry
    otel.uninstrument(registry)


def test_process_not_instrumented(benchmark: Any) -> None:
    inst = mr.ModuleRegistry(native_modules=True).create("identity")
    assert benchmark(inst.process, PAYLOAD) == PAYLOAD


def test_process_instrumented(benchmark: Any, instrumented: mr.ModuleRegistry, exporter: InMemorySpanExporter) -> None:
    inst = instrumented.create("identity")

    def call() -> Any:
        exporter.clear()  # the exporter's list would grow with every round
        return inst.process(PAYLOAD)

    assert benchmark(call) == PAYLOAD
    assert [s.name for s in exporter.get_finished_spans()] == ["call module identity"]


def test_run_not_instrumented(benchmark: Any) -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    assert benchmark(registry.run_workflow, WORKFLOW, PAYLOAD).output == PAYLOAD


def test_run_instrumented(benchmark: Any, instrumented: mr.ModuleRegistry, exporter: InMemorySpanExporter) -> None:
    def run() -> Any:
        exporter.clear()
        return instrumented.run_workflow(WORKFLOW, PAYLOAD)

    assert benchmark(run).output == PAYLOAD
    assert len(exporter.get_finished_spans()) == 7


def test_baseline_one_sdk_span(benchmark: Any, exporter: InMemorySpanExporter) -> None:
    """The SDK's own cost of one span with three attributes and explicit
    times (what `process` instrumented adds cannot be below it)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    attributes = {"module_registry.module.name": "identity", "module_registry.module.version": "0.1.0"}

    def span() -> None:
        exporter.clear()
        tracer.start_span("call module identity", attributes=attributes, start_time=1).end(end_time=2)

    benchmark(span)
    assert len(exporter.get_finished_spans()) == 1
