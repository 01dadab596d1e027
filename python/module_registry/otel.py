"""OpenTelemetry spans of a registry's runs, steps and module calls
(install ``module-registry[otel]``; only ``opentelemetry-api`` is used, the
SDK and exporters are yours).

>>> from module_registry import otel                      # doctest: +SKIP
>>> otel.instrument(registry)                             # doctest: +SKIP

``instrument`` makes one ``run workflow {workflow}`` span per run (its
parent the span current where the run was called), one ``run step {step}``
child per step and, inside a step that ran its module, a ``call module
{module}`` span; a direct ``instance.process`` on an instance created while
instrumented is a ``call module {module}`` span too. Spans are built after
the run from its step timings (explicit start and end times), so module
code never waits on tracing. Attributes are in the ``module_registry.``
namespace; a failing step is ERROR with ``error.type`` and an exception
event, and so is its run; a retried step has one ``retry`` event per failed
attempt. Batches on an executor carry the caller's W3C ``traceparent`` with
each chunk: spans made on a worker join the caller's trace when the worker
process has a global tracer provider. Importing ``module_registry`` never
imports this module or OpenTelemetry.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Coroutine, Iterable, Optional, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import _core

__all__ = ["instrument", "uninstrument"]

_NS = "module_registry."
#: The registry methods `instrument` wraps on the registry itself.
_WRAPPED = ("run_workflow", "arun_workflow", "arun_workflow_batch", "create", "create_plugin")
_PROPAGATOR = TraceContextTextMapPropagator()
_ERROR = Status(StatusCode.ERROR)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class _Tracing:
    """One registry's instrumentation: its tracer, and whether it is on
    (instances created while it was on keep their observer; once off, it
    makes nothing)."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.active = True

    # -- what the package calls (`_batch`, `dask`) -------------------------

    def carrier(self) -> dict[str, str]:
        """The current trace context as W3C headers (``traceparent``), for a
        chunk of a batch; empty when no span is current."""
        headers: dict[str, str] = {}
        _PROPAGATOR.inject(headers)
        return headers

    def record_batch(
        self, workflow: str, outcomes: Sequence[Any], parent: Any, start: int, end: int, principal: Optional[str]
    ) -> None:
        """Spans of a batch's runs: each result's from its own timings, a
        failed input's over the batch's time."""
        if not self.active:
            return
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                self.record_failure(workflow, outcome, parent, start, end, principal)
            elif outcome is not None:
                self.record_result(workflow, outcome, parent, principal)

    def window_recorder(self, workflow: str) -> Callable[[Sequence[Any], int], None]:
        """For a batch run here a window at a time (``iter_workflow_batch``):
        ``record(outcomes, started)`` makes a window's spans, children of the
        context current now (when the batch was started), as the principal
        current now."""
        parent, principal = otel_context.get_current(), _core._current_principal()

        def record(outcomes: Sequence[Any], started: int) -> None:
            self.record_batch(workflow, outcomes, parent, started, time.time_ns(), principal)

        return record

    # -- spans ---------------------------------------------------------------

    def record_result(self, workflow: str, result: Any, parent: Any, principal: Optional[str]) -> None:
        """The run span of a finished run and its step spans."""
        start = _ns(result.started_at)
        attributes: dict[str, Any] = {_NS + "workflow.name": workflow}
        if principal is not None:
            attributes[_NS + "principal"] = principal
        tracer = self.tracer
        run = tracer.start_span("run workflow " + workflow, context=parent, attributes=attributes, start_time=start)
        inside = trace.set_span_in_context(run, parent)
        for step in result.steps:
            self._step(tracer, step, inside, start)
        run.end(end_time=start + _ns(result.duration))

    def _step(self, tracer: Any, step: Any, parent: Any, run_start: int) -> None:
        begin = run_start + _ns(step.start)
        finish = begin + _ns(step.duration)
        module = {_NS + "module.name": step.module, _NS + "module.version": step.version}
        attributes = {
            **module,
            _NS + "step.id": step.id,
            _NS + "step.attempts": step.attempts,
            _NS + "step.cache": step.cache,
            _NS + "step.outcome": step.status,
        }
        span = tracer.start_span("run step " + step.id, context=parent, attributes=attributes, start_time=begin)
        for attempt in range(1, step.attempts):
            span.add_event("retry", {_NS + "step.attempts": attempt}, timestamp=begin)
        if step.attempts:
            inside = trace.set_span_in_context(span, parent)
            call = tracer.start_span("call module " + step.module, context=inside, attributes=module, start_time=begin)
            call.end(end_time=finish)
        if step.status == "failed":
            span.set_status(_ERROR)
            span.set_attribute("error.type", "ModuleFailedError")
            span.add_event(
                "exception",
                {"exception.type": "ModuleFailedError", "exception.message": step.error or ""},
                timestamp=finish,
            )
        span.end(end_time=finish)

    def record_failure(
        self, workflow: str, error: BaseException, parent: Any, start: int, end: int, principal: Optional[str]
    ) -> None:
        """A failed run: its span ERROR, with a child for the step that
        failed: ERROR, ``error.type`` the registry's error class, and an
        exception event of the module's own error (the root cause)."""
        attributes: dict[str, Any] = {_NS + "workflow.name": workflow}
        if principal is not None:
            attributes[_NS + "principal"] = principal
        run = self.tracer.start_span("run workflow " + workflow, context=parent, attributes=attributes, start_time=start)
        run.set_status(Status(StatusCode.ERROR, str(error)))
        run.set_attribute("error.type", type(error).__name__)
        run.record_exception(error, timestamp=end)
        step = getattr(error, "step", None)
        if step:
            cause = error.__cause__ or error
            own = _root_cause(cause)
            inside = trace.set_span_in_context(run, parent)
            span = self.tracer.start_span(
                "run step " + step,
                context=inside,
                attributes={_NS + "step.id": step, _NS + "step.outcome": "failed"},
                start_time=start,
            )
            span.set_status(Status(StatusCode.ERROR, str(own)))
            span.set_attribute("error.type", type(cause).__name__)
            span.record_exception(own, timestamp=end)
            span.end(end_time=end)
        run.end(end_time=end)

    def observe_call(
        self, instance: Any, start: int, end: int, error: Optional[BaseException], creator: Optional[str] = None
    ) -> None:
        """The observer of instances created while instrumented: one
        ``call module`` span per ``process``, its principal the one calling
        or else the one that created the instance (through a view)."""
        if not self.active:
            return
        info = instance.info
        attributes: dict[str, Any] = {
            _NS + "module.name": info.name,
            _NS + "module.version": info.version,
            _NS + "module.kind": info.kind,
        }
        principal = _core._current_principal() or creator
        if principal is not None:
            attributes[_NS + "principal"] = principal
        span = self.tracer.start_span("call module " + info.name, attributes=attributes, start_time=start)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.set_attribute("error.type", type(error).__name__)
            span.record_exception(error, timestamp=end)
        span.end(end_time=end)

    # -- the registry's wrapped methods ------------------------------------

    def wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        return getattr(self, "_wrap_" + name)(method)  # type: ignore[no-any-return]

    def _wrap_run_workflow(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def run_workflow(workflow: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return method(workflow, *args, **kwargs)
            parent, principal, start = otel_context.get_current(), _core._current_principal(), time.time_ns()
            try:
                result = method(workflow, *args, **kwargs)
            except Exception as e:
                self.record_failure(_name(workflow), e, parent, start, time.time_ns(), principal)
                raise
            self.record_result(_name(workflow), result, parent, principal)
            return result

        return run_workflow

    def _wrap_arun_workflow(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def arun_workflow(workflow: Any, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
            coroutine = method(workflow, *args, **kwargs)
            return self._awaited(coroutine, _name(workflow), otel_context.get_current(), _core._current_principal())

        return arun_workflow

    async def _awaited(self, coroutine: Any, workflow: str, parent: Any, principal: Optional[str]) -> Any:
        start = time.time_ns()
        try:
            result = await coroutine
        except BaseException as e:
            if self.active:
                self.record_failure(workflow, e, parent, start, time.time_ns(), principal)
            raise
        if self.active:
            self.record_result(workflow, result, parent, principal)
        return result

    def _wrap_arun_workflow_batch(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def arun_workflow_batch(workflow: Any, inputs: Iterable[Any], **kwargs: Any) -> Coroutine[Any, Any, Any]:
            coroutine = method(workflow, inputs, **kwargs)
            principal = _core._current_principal()
            return self._batch_awaited(coroutine, _name(workflow), otel_context.get_current(), principal)

        return arun_workflow_batch

    async def _batch_awaited(self, coroutine: Any, workflow: str, parent: Any, principal: Optional[str]) -> Any:
        start = time.time_ns()
        try:
            outcomes = await coroutine
        except BaseException as e:
            if self.active:
                self.record_failure(workflow, e, parent, start, time.time_ns(), principal)
            raise
        self.record_batch(workflow, outcomes, parent, start, time.time_ns(), principal)
        return outcomes

    def _wrap_create(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def create(*args: Any, **kwargs: Any) -> Any:
            instance = method(*args, **kwargs)
            if self.active:
                creator = _core._current_principal()

                def observe(instance: Any, start: int, end: int, error: Optional[BaseException]) -> None:
                    self.observe_call(instance, start, end, error, creator)

                instance._observe(observe)
            return instance

        create.__name__ = method.__name__
        return create

    _wrap_create_plugin = _wrap_create


def _root_cause(error: BaseException) -> BaseException:
    """The innermost ``__cause__`` of ``error`` (what the module raised)."""
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    return error


def _name(workflow: Any) -> str:
    return str(getattr(workflow, "name", workflow))


def _target(registry: Any) -> Any:
    from ._registry import ModuleRegistry, RegistryView

    if isinstance(registry, RegistryView):
        registry = registry._registry
    if not isinstance(registry, ModuleRegistry):
        raise TypeError(f"instrument takes a module_registry.ModuleRegistry, not {type(registry).__name__}")
    return registry


def instrument(registry: Any, tracer_provider: Any = None) -> None:
    """Makes spans of ``registry``'s runs, steps and module calls with
    ``tracer_provider``'s tracer (default: the global one, looked up when
    spans are made). Instrumenting again replaces the provider."""
    registry = _target(registry)
    uninstrument(registry)
    from . import __version__

    tracer = trace.get_tracer("module_registry", __version__, tracer_provider=tracer_provider)
    tracing = _Tracing(tracer)
    for name in _WRAPPED:
        setattr(registry, name, tracing.wrap(name, getattr(registry, name)))
    registry._otel = tracing


def uninstrument(registry: Any) -> None:
    """Stops making spans of ``registry`` (instances created while it was
    instrumented stop too). Nothing happens if it was not instrumented."""
    registry = _target(registry)
    tracing = vars(registry).pop("_otel", None)
    if tracing is None:
        return
    tracing.active = False
    for name in _WRAPPED:
        vars(registry).pop(name, None)


def record_chunk(source: Any, workflow: str, outcomes: Sequence[Any], carrier: dict[str, str], start: int) -> None:
    """On the process that ran a chunk of a batch: its runs' spans, children
    of the caller's context in ``carrier``, made with the source registry's
    tracer when it is instrumented here (threads) or else the global one."""
    tracing = getattr(source, "_otel", None)
    if tracing is None:
        tracing = _Tracing(trace.get_tracer("module_registry"))
    parent = _PROPAGATOR.extract(carrier)
    tracing.record_batch(workflow, outcomes, parent, start, time.time_ns(), _core._current_principal())
