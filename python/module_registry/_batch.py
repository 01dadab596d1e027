"""Workflow batches, on this machine or on an executor.

On an executor (a ``dask.distributed.Client`` or any
``concurrent.futures.Executor``) the inputs go in chunks, one task each. The
registry travels once as a pickle with its fingerprint; each worker process
rebuilds it once and keeps it for later chunks with the same fingerprint.
Within a chunk one set of instances serves every input. Results come back in
input order, whatever order the chunks finish in (or as they finish, with
``ordered=False``).

Batches stream: `iterate` (``iter_workflow_batch``) takes the inputs from
any iterable a window at a time (a chunk here; a few chunks per worker on
an executor), so only the inputs in flight are held; `run_batch`
(``run_workflow_batch``) is the list of what it yields. A chunk's results
travel back as one payload (``_run_workflow_chunk``: the outputs and a packed
table of statuses, attempts and times) and become results where they are
read (``_core._ResultLayout.unpack``).
"""

from __future__ import annotations

import sys
import threading
import time

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Iterator, Optional, Sequence, Union

    Outcome = Union[_core.WorkflowResult, BaseException]

#: Chunks per worker when ``chunk_size`` is not given: enough to balance
#: uneven inputs, few enough that per-task costs stay small.
CHUNKS_PER_WORKER = 4

#: Inputs per window of a batch run here, when ``chunk_size`` is not given.
LOCAL_WINDOW = 512
#: The largest chunk an executor gets when ``chunk_size`` is not given (and
#: the chunk when the number of inputs is not known).
EXECUTOR_CHUNK = 10_000
#: Chunks in flight per worker on an executor: one running, one waiting.
CHUNKS_IN_FLIGHT = 2

#: Registries rebuilt in this process, by fingerprint (the last few kept).
_REGISTRIES: dict[str, Any] = {}
_REGISTRIES_KEPT = 8
_REGISTRIES_LOCK = threading.Lock()
#: How many registries this process rebuilt from a pickle (tests read it).
rebuilds = 0


def _registry_for(fingerprint: str, source: Any) -> Any:
    """The registry a chunk runs on: ``source`` itself, or the one rebuilt
    from its pickle (once per process and fingerprint)."""
    global rebuilds
    if isinstance(source, _core.ModuleRegistry):
        return source
    with _REGISTRIES_LOCK:
        found = _REGISTRIES.get(fingerprint)
    if found is not None:
        return found
    import pickle

    registry = pickle.loads(source)  # outside the lock: it may import code
    with _REGISTRIES_LOCK:
        found = _REGISTRIES.setdefault(fingerprint, registry)
        if found is registry:
            rebuilds += 1
        while len(_REGISTRIES) > _REGISTRIES_KEPT:
            del _REGISTRIES[next(iter(_REGISTRIES))]
    return found


def pack(values: Any) -> bytes:
    """One pickle of ``values``: the standard one, or cloudpickle's when they
    hold something only it can carry (an object of a class defined in a
    notebook, say)."""
    import pickle

    try:
        return pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - any failure: let cloudpickle try, and say why if it fails too
        import cloudpickle

        packed: bytes = cloudpickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
        return packed


def snapshot(registry: Any) -> tuple[str, bytes]:
    """The registry's fingerprint and its pickle (taken as its owner)."""
    import pickle

    def take() -> tuple[str, bytes]:
        return registry.fingerprint(), pickle.dumps(registry, protocol=pickle.HIGHEST_PROTOCOL)

    result: tuple[str, bytes] = _core._as_owner(take)
    return result


def run_payload_chunk(
    fingerprint: str,
    source: Any,
    workflow: _core.Workflow,
    first_index: int,
    inputs: Any,
    principal: Optional[str],
    keep_going: bool,
    trace: Optional[dict[str, str]] = None,
) -> Any:
    """One task: ``workflow`` on ``inputs`` (one pickle, unless ``source`` is
    the registry itself, on a thread of this process) as ``principal``; its
    outcomes as one payload (``_run_workflow_chunk``), pickled when it
    travels. ``trace``: the caller's W3C trace context when its registry is
    instrumented (``otel``); the runs' spans are made here, children of it."""
    import pickle

    here = isinstance(source, _core.ModuleRegistry)
    items = inputs if here else pickle.loads(inputs)
    payload = run_payload(fingerprint, source, workflow, first_index, items, principal, keep_going, trace)
    return payload if here else pack(payload)


def run_payload(
    fingerprint: str,
    source: Any,
    workflow: _core.Workflow,
    first_index: int,
    items: Sequence[Any],
    principal: Optional[str],
    keep_going: bool,
    trace: Optional[dict[str, str]] = None,
) -> dict[str, Any]:
    """``workflow`` on ``items`` (positions ``first_index`` on) as
    ``principal``, on the registry ``source`` is or was pickled from: the
    payload of ``_run_workflow_chunk``. Its errors can travel through any
    pickle (a cause that cannot goes as its text). With ``trace`` (the
    caller's W3C trace context) the runs' spans are made here."""
    registry = _registry_for(fingerprint, source)
    run = registry._run_workflow_chunk
    started = time.time_ns()
    if principal is None:
        payload: dict[str, Any] = run(workflow, items, keep_going, first_index)
    else:
        payload = _core.call_as(principal, run, workflow, items, keep_going, first_index)
    if trace is not None:
        _record_chunk(source, workflow, payload, trace, started, principal)
    if not isinstance(source, _core.ModuleRegistry):
        from ._pickling import make_portable

        for error in payload["errors"].values():
            make_portable(error)
        # What this copy of the registry counted since it last reported
        # (JSON), for the driver to merge into its own metrics.
        payload["metrics"] = registry._take_metrics_delta()
    return payload


def _record_chunk(
    source: Any, workflow: _core.Workflow, payload: dict[str, Any], trace: dict[str, str], started: int, principal: Any
) -> None:
    """The chunk's spans (``otel.record_chunk``, from its results rebuilt
    here), as ``principal``; nothing where OpenTelemetry is not installed."""
    try:
        from .otel import record_chunk
    except ImportError:
        return
    outcomes = _core._ResultLayout(workflow).unpack(payload)
    if principal is None:
        record_chunk(source, workflow.name, outcomes, trace, started)
    else:
        _core.call_as(principal, record_chunk, source, workflow.name, outcomes, trace, started)


def tracing_of(registry: Any) -> Any:
    """The registry's ``otel`` instrumentation, or None."""
    return getattr(registry, "_otel", None)


def _check(workflow: Any, chunk_size: Any, ordered: Any, errors: Any) -> None:
    if errors not in ("raise", "return"):
        raise _core.ValidationError(f'errors must be "raise" or "return", not {errors!r}')
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise _core.ValidationError(f"chunk_size must be a positive int or None, not {chunk_size!r}")
    if not isinstance(ordered, bool):
        raise _core.ValidationError(f"ordered must be True or False, not {ordered!r}")
    if not isinstance(workflow, _core.Workflow):
        raise TypeError(f"workflow must be a Workflow, not {type(workflow).__name__}")


def iterate(
    registry: Any,
    workflow: _core.Workflow,
    inputs: Any,
    executor: Any = None,
    chunk_size: Optional[int] = None,
    ordered: bool = True,
    errors: str = "raise",
    advance: Optional[Callable[[int, Optional[int]], None]] = None,
) -> Iterator[Outcome]:
    """The iterator of ``iter_workflow_batch``. Everything is checked now
    (the workflow planned, here its instances built, as the current
    principal); the inputs are taken as it is advanced. ``advance(done,
    total)`` is told after each window."""
    _check(workflow, chunk_size, ordered, errors)
    total = len(inputs) if hasattr(inputs, "__len__") else None
    items = iter(inputs)
    keep_going = errors == "return"
    if executor is None:
        batch = registry._start_workflow_batch(workflow, keep_going)
        size = chunk_size or max(LOCAL_WINDOW, batch.width * 16)
        tracing = tracing_of(registry)
        record = None if tracing is None else tracing.window_recorder(workflow.name)
        return _run_here(batch, items, size, keep_going, advance, total, record)
    import concurrent.futures

    if not (_is_dask(executor) or isinstance(executor, concurrent.futures.Executor)):
        raise TypeError(
            "executor must be a dask.distributed.Client or a concurrent.futures.Executor, "
            f"not {type(executor).__name__}"
        )
    principal = _core._current_principal()
    registry.check_workflow(workflow)  # its errors now, as a local batch's
    return _run_there(registry, workflow, items, executor, chunk_size, ordered, keep_going, principal, advance, total)


def _run_here(
    batch: Any,
    items: Iterator[Any],
    size: int,
    keep_going: bool,
    advance: Optional[Callable[[int, Optional[int]], None]],
    total: Optional[int],
    record: Optional[Callable[[Sequence[Outcome], int], None]] = None,
) -> Iterator[Outcome]:
    """A window of ``size`` inputs at a time on ``batch``; its instances are
    closed when the inputs end, at the first failure (``errors="raise"``) or
    when the iterator is closed or dropped. ``record(outcomes, started)``
    makes a window's spans (``otel``)."""
    from itertools import islice

    index = 0
    try:
        while not batch.stopped:
            window = list(islice(items, size))
            if not window:
                break
            started = time.time_ns()
            out = batch.run(window, index)
            if record is not None:
                record(out, started)
            index += len(window)
            if advance is not None:
                advance(index, total)
            for outcome in out:
                if not keep_going and isinstance(outcome, BaseException):
                    raise outcome
                yield outcome
    finally:
        batch.close()


def run_batch(
    registry: Any,
    workflow: _core.Workflow,
    inputs: Any,
    progress: bool,
    executor: Any,
    chunk_size: Optional[int],
    errors: str,
) -> list[Outcome]:
    """``run_workflow_batch``: the list of what `iterate` yields, in order."""
    _check(workflow, chunk_size, True, errors)
    total = len(inputs) if hasattr(inputs, "__len__") else None
    with progress_bar(total, workflow.name, enabled=progress) as advance:
        return list(iterate(registry, workflow, inputs, executor, chunk_size, True, errors, advance if progress else None))


def _is_dask(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(executor, "scatter")


def _worker_count(executor: Any) -> int:
    if _is_dask(executor):
        workers = executor.scheduler_info().get("workers", {})
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
    import os

    return max(1, int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1))


def chunk_length(total: Optional[int], chunk_size: Optional[int], workers: int) -> int:
    """Inputs per chunk: ``chunk_size``, or about `CHUNKS_PER_WORKER` chunks
    per worker (at most `EXECUTOR_CHUNK`, which is also the size when the
    number of inputs is not known)."""
    if chunk_size:
        return chunk_size
    if total is None:
        return EXECUTOR_CHUNK
    return max(1, min(EXECUTOR_CHUNK, -(-total // (CHUNKS_PER_WORKER * workers))))


def chunks_of(items: Sequence[Any], chunk_size: Optional[int], workers: int) -> list[tuple[int, Sequence[Any]]]:
    """``(first index, inputs)`` per chunk (see `chunk_length`)."""
    size = chunk_length(len(items), chunk_size, workers)
    return [(start, items[start : start + size]) for start in range(0, len(items), size)]


def _source(registry: Any, executor: Any) -> tuple[str, Any, bool]:
    """What the chunks run on: ``(fingerprint, source, travels)``."""
    import concurrent.futures

    if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        # Threads share this process: the registry itself, no pickle.
        return "", registry, False
    dask = _is_dask(executor)
    if dask or isinstance(executor, concurrent.futures.Executor):
        fingerprint, blob = snapshot(registry)
        # Dask sends the pickle to each worker once (under a key of its own:
        # a key named by content could be the one an earlier batch is
        # releasing); a plain executor sends it with each task. Each
        # process rebuilds it once.
        return fingerprint, (executor.scatter(blob, broadcast=True, hash=False) if dask else blob), True
    raise TypeError(
        "executor must be a dask.distributed.Client or a concurrent.futures.Executor, "
        f"not {type(executor).__name__}"
    )


def _wait_first(pending: Any, dask: bool) -> Any:
    if dask:
        from distributed import wait

        return wait(list(pending), return_when="FIRST_COMPLETED").done  # type: ignore[no-untyped-call]
    import concurrent.futures

    return concurrent.futures.wait(list(pending), return_when=concurrent.futures.FIRST_COMPLETED).done


def _run_there(
    registry: Any,
    workflow: _core.Workflow,
    items: Iterator[Any],
    executor: Any,
    chunk_size: Optional[int],
    ordered: bool,
    keep_going: bool,
    principal: Optional[str],
    advance: Optional[Callable[[int, Optional[int]], None]],
    total: Optional[int],
) -> Iterator[Outcome]:
    """Chunks on ``executor``, at most `CHUNKS_IN_FLIGHT` per worker at once,
    each submitted as the one before is taken; outcomes in input order or
    as chunks finish. A failure (``errors="raise"``) cancels the chunks
    after it and raises once the inputs before it are handed out; closing
    the iterator cancels what is still waiting."""
    import concurrent.futures
    from itertools import islice

    fingerprint, source, travels = _source(registry, executor)
    tracing = tracing_of(registry)
    trace = None if tracing is None else tracing.carrier()
    dask = _is_dask(executor)
    workers = _worker_count(executor)
    size = chunk_length(total, chunk_size, workers)
    in_flight = max(2, CHUNKS_IN_FLIGHT * workers)
    layout = _core._ResultLayout(workflow)
    pending: dict[Any, tuple[int, int]] = {}
    finished: dict[int, tuple[int, Sequence[Outcome]]] = {}  # by first index, when ordered
    submitted = next_out = done = 0
    failure: Optional[int] = None  # the first failed input seen (errors="raise")
    exhausted = False
    try:
        while True:
            # Chunks finished but not yet handed out count: a slow chunk
            # holds the window (ordered), never an unbounded backlog.
            while not exhausted and failure is None and len(pending) + len(finished) < in_flight:
                chunk = list(islice(items, size))
                if not chunk:
                    exhausted = True
                    break
                args = (fingerprint, source, workflow, submitted, pack(chunk) if travels else chunk, principal, keep_going, trace)
                task = run_payload_chunk
                future = executor.submit(task, *args, pure=False) if dask else executor.submit(task, *args)
                pending[future] = (submitted, len(chunk))
                submitted += len(chunk)
            if not pending:
                break
            for future in _wait_first(pending, dask):
                start, count = pending.pop(future)
                if future.cancelled():
                    raise concurrent.futures.CancelledError(
                        f"the executor cancelled the chunk of inputs {start} to {start + count - 1}"
                    )
                payload = future.result()
                if travels:
                    import pickle

                    payload = pickle.loads(payload)
                    # What the worker counted (its module calls, steps,
                    # cache hits) becomes the driver's, whoever runs the
                    # batch (the counting is the registry's own).
                    _core._as_owner(registry._merge_worker_metrics, payload["metrics"])
                out = layout.unpack(payload)
                done += count
                if advance is not None:
                    advance(done, total)
                if not keep_going and payload["errors"]:
                    failed = start + min(payload["errors"])
                    if failure is None or failed < failure:
                        failure = failed
                        for other, (other_start, _) in list(pending.items()):
                            if other_start > failed:
                                other.cancel()
                                del pending[other]
                finished[start] = (count, out)
            while finished and (not ordered or next_out in finished):
                start = next_out if ordered else next(iter(finished))
                count, ready = finished.pop(start)
                next_out += count if ordered else 0
                for outcome in ready:
                    if not keep_going and isinstance(outcome, BaseException):
                        raise outcome
                    yield outcome
    finally:
        for future in pending:
            future.cancel()


class _TextBar:
    """A minimal progress bar on stderr, for when tqdm is not installed."""

    def __init__(self, total: Optional[int], label: str) -> None:
        self.total, self.label = total, label

    def __call__(self, done: int, total: Optional[int]) -> None:
        if total is None:  # an iterable of unknown length: the count alone
            sys.stderr.write(f"\r{self.label} {done}")
            sys.stderr.flush()
            return
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        sys.stderr.flush()


class progress_bar:
    """Context manager yielding an ``advance(done, total)`` callback: a tqdm
    bar (``tqdm.auto``: a widget in notebooks) when tqdm is installed, a
    text bar on stderr otherwise, nothing when not ``enabled``."""

    def __init__(self, total: Optional[int], label: str, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, Optional[int]], None]:
        if not self.enabled:
            return lambda done, total: None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _TextBar(self.total, self.label)
        self.bar = tqdm(total=self.total, desc=self.label)

        def advance(done: int, total: Optional[int]) -> None:
            self.bar.update(done - self.bar.n)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
