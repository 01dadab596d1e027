"""Workflow batches, on this machine or on an executor.

On an executor (a ``dask.distributed.Client`` or any
``concurrent.futures.Executor``) the inputs go in chunks, one task each. The
registry travels once as a pickle with its fingerprint; each worker process
rebuilds it once and keeps it for later chunks with the same fingerprint.
Within a chunk one set of instances serves every input. Results come back in
input order, whatever order the chunks finish in.
"""

from __future__ import annotations

import sys
import threading

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Iterator, Optional, Sequence, Union

    Outcome = Union[_core.WorkflowResult, BaseException]

#: Chunks per worker when ``chunk_size`` is not given: enough to balance
#: uneven inputs, few enough that per-task costs stay small.
CHUNKS_PER_WORKER = 4

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


def run_chunk(
    fingerprint: str,
    source: Any,
    workflow: _core.Workflow,
    first_index: int,
    inputs: Sequence[Any],
    principal: Optional[str],
    keep_going: bool,
) -> list[Outcome]:
    """One task: run ``workflow`` on ``inputs`` (positions ``first_index``
    on) as ``principal``; a failed input's slot holds its ``WorkflowError``
    (the list ends there unless ``keep_going``)."""
    return _run_on(_registry_for(fingerprint, source), source, workflow, first_index, inputs, principal, keep_going)


def _run_on(
    registry: Any,
    source: Any,
    workflow: _core.Workflow,
    first_index: int,
    inputs: Sequence[Any],
    principal: Optional[str],
    keep_going: bool,
) -> list[Outcome]:
    run = registry._run_workflow_batch
    if principal is None:
        out: list[Outcome] = run(workflow, inputs, None, keep_going, first_index)
    else:
        out = _core.call_as(principal, run, workflow, inputs, None, keep_going, first_index)
    if not isinstance(source, _core.ModuleRegistry):
        # The errors go back through a pickle (the executor's, which may be
        # another library's): a cause that cannot travel goes as its text.
        from ._pickling import make_portable

        for outcome in out:
            if isinstance(outcome, BaseException):
                make_portable(outcome)
    return out


def run_packed_chunk(
    fingerprint: str,
    source: Any,
    workflow: _core.Workflow,
    first_index: int,
    packed_inputs: bytes,
    principal: Optional[str],
    keep_going: bool,
) -> bytes:
    """`run_chunk` with the inputs and the outcomes as one pickle each: an
    executor carries one bytes object much faster than a list it may
    serialise item by item (Dask does, at ~25 µs an item). The outcomes go
    with what the worker's copy of the registry counted since it last
    reported (JSON), for the driver to merge into its own metrics."""
    import pickle

    inputs = pickle.loads(packed_inputs)
    registry = _registry_for(fingerprint, source)
    out = _run_on(registry, source, workflow, first_index, inputs, principal, keep_going)
    return pack((out, registry._take_metrics_delta()))


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


def run_batch(
    registry: Any,
    workflow: _core.Workflow,
    inputs: Any,
    progress: bool,
    executor: Any,
    chunk_size: Optional[int],
    errors: str,
) -> list[Outcome]:
    if errors not in ("raise", "return"):
        raise _core.ValidationError(f'errors must be "raise" or "return", not {errors!r}')
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise _core.ValidationError(f"chunk_size must be a positive int or None, not {chunk_size!r}")
    if not isinstance(workflow, _core.Workflow):
        raise TypeError(f"workflow must be a Workflow, not {type(workflow).__name__}")
    items = list(inputs)
    keep_going = errors == "return"
    out: list[Outcome]
    if executor is None:
        if progress:
            with progress_bar(len(items), workflow.name) as advance:
                out = registry._run_workflow_batch(workflow, items, advance, keep_going)
        else:
            out = registry._run_workflow_batch(workflow, items, None, keep_going)
    else:
        out = _on_executor(registry, workflow, items, progress, executor, chunk_size, keep_going)
    if not keep_going:
        for item in out:
            if isinstance(item, BaseException):
                raise item
    return out


def _is_dask(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(executor, "scatter")


def _worker_count(executor: Any) -> int:
    if _is_dask(executor):
        workers = executor.scheduler_info().get("workers", {})
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
    import os

    return max(1, int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1))


def chunks_of(items: Sequence[Any], chunk_size: Optional[int], workers: int) -> list[tuple[int, Sequence[Any]]]:
    """``(first index, inputs)`` per chunk: ``chunk_size`` inputs each, or
    about `CHUNKS_PER_WORKER` chunks per worker."""
    size = chunk_size or max(1, -(-len(items) // (CHUNKS_PER_WORKER * workers)))
    return [(start, items[start : start + size]) for start in range(0, len(items), size)]


def _on_executor(
    registry: Any,
    workflow: _core.Workflow,
    items: list[Any],
    progress: bool,
    executor: Any,
    chunk_size: Optional[int],
    keep_going: bool,
) -> list[Outcome]:
    import concurrent.futures

    principal = _core._current_principal()
    chunks = chunks_of(items, chunk_size, _worker_count(executor))
    if not chunks:
        registry.check_workflow(workflow)  # as a local batch would
        return []
    dask = _is_dask(executor)
    if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        # Threads share this process: the registry itself, no pickle.
        fingerprint, source = "", registry
    elif dask or isinstance(executor, concurrent.futures.Executor):
        fingerprint, blob = snapshot(registry)
        # Dask sends the pickle to each worker once (under a key of its own:
        # a key named by content could be the one an earlier batch is
        # releasing); a plain executor sends it with each task. Each
        # process rebuilds it once.
        source = executor.scatter(blob, broadcast=True, hash=False) if dask else blob
    else:
        raise TypeError(
            "executor must be a dask.distributed.Client or a concurrent.futures.Executor, "
            f"not {type(executor).__name__}"
        )
    import pickle

    # Threads share this process: nothing to pack.
    packed = not isinstance(executor, concurrent.futures.ThreadPoolExecutor)
    futures = {}
    for start, chunk in chunks:
        inputs: Any = pack(chunk) if packed else chunk
        task = run_packed_chunk if packed else run_chunk
        args = (fingerprint, source, workflow, start, inputs, principal, keep_going)
        future = executor.submit(task, *args, pure=False) if dask else executor.submit(task, *args)
        futures[future] = (start, len(chunk))
    results: list[Any] = [None] * len(items)
    first_failure: Optional[int] = None
    done_starts: set[int] = set()
    cancelled: set[int] = set()  # the chunks this batch cancelled itself
    try:
        with progress_bar(len(items), workflow.name, enabled=progress) as advance:
            finished = 0
            for future in _as_completed(list(futures), dask):
                start, count = futures[future]
                if start in cancelled:
                    continue
                if future.cancelled():
                    raise concurrent.futures.CancelledError(
                        f"the executor cancelled the chunk of inputs {start} to {start + count - 1}"
                    )
                if packed:
                    out, counts = pickle.loads(future.result())
                    # What the worker counted (its module calls, steps,
                    # cache hits) becomes the driver's, whoever runs the
                    # batch (the counting is the registry's own).
                    _core._as_owner(registry._merge_worker_metrics, counts)
                else:
                    out = future.result()
                results[start : start + len(out)] = out
                done_starts.add(start)
                finished += count
                advance(finished, len(items))
                if keep_going:
                    continue
                failed = next((start + i for i, x in enumerate(out) if isinstance(x, BaseException)), None)
                if failed is not None and (first_failure is None or failed < first_failure):
                    first_failure = failed
                    for other, (other_start, _) in futures.items():
                        if other_start > failed and other_start not in cancelled:
                            cancelled.add(other_start)
                            other.cancel()
                if first_failure is not None and all(
                    s in done_starts for s, _ in futures.values() if s < first_failure
                ):
                    break
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
    if first_failure is not None:
        return results[: first_failure + 1]
    return results


def _as_completed(futures: list[Any], dask: bool) -> Iterator[Any]:
    if dask:
        from distributed import as_completed

        return iter(as_completed(futures))  # type: ignore[no-untyped-call]
    import concurrent.futures

    return concurrent.futures.as_completed(futures)


class _TextBar:
    """A minimal progress bar on stderr, for when tqdm is not installed."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label

    def __call__(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        sys.stderr.flush()


class progress_bar:
    """Context manager yielding an ``advance(done, total)`` callback: a tqdm
    bar (``tqdm.auto``: a widget in notebooks) when tqdm is installed, a
    text bar on stderr otherwise, nothing when not ``enabled``."""

    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        if not self.enabled:
            return lambda done, total: None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _TextBar(self.total, self.label)
        self.bar = tqdm(total=self.total, desc=self.label)

        def advance(done: int, total: int) -> None:
            self.bar.update(done - self.bar.n)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
