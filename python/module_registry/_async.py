"""Async support: the coroutines of ``arun_workflow`` and
``arun_workflow_batch`` (their work runs on the extension's worker
threads, see ``python/src/aio.rs``), and how a coroutine returned by an
``async def`` module is awaited."""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import threading

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Coroutine, NoReturn, Optional

# An ``aprocess`` call is a coroutine: ``create_task``, ``gather``,
# ``wait_for`` and ``TaskGroup`` take it as they take ``async def`` calls.
collections.abc.Coroutine.register(_core._Pending)

_private_lock = threading.Lock()
_private: Optional[tuple[asyncio.AbstractEventLoop, threading.Thread]] = None
# The coroutines worker threads wait for now (cancelled at exit), and
# whether the interpreter exits (no coroutine is started any more).
_waiting: set[concurrent.futures.Future[Any]] = set()
_stopping = False
# How long a thread waiting for a coroutine sleeps between checks for exit.
_WAIT_SLICE = 0.05


def _private_loop() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """The loop synchronous calls await ``async def`` modules on, running
    forever on a daemon thread of its own (started on first use)."""
    global _private
    with _private_lock:
        if _private is None or not _private[1].is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="module-registry-async-loop", daemon=True)
            thread.start()
            _private = (loop, thread)
        return _private


def _on_fresh_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs ``coro`` on a new loop on a new thread (for the one case no
    running loop can take it: a synchronous call made on the private
    loop's own thread)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # handed back to the caller below
            box["error"] = e

    thread = threading.Thread(target=run, name="module-registry-async-nested")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_coroutine(coro: Coroutine[Any, Any, Any], loop: Optional[asyncio.AbstractEventLoop]) -> Any:
    """The value of ``coro``, a coroutine an ``async def`` module returned:
    awaited on ``loop`` (the loop of the ``a*`` call running the module)
    when that loop runs on another thread, else on the private loop. Once
    the interpreter exits, refused: ``UnavailableError`` on the main thread,
    ``SystemExit`` on any other (only daemon threads still run then, and
    ``SystemExit`` ends one quietly, never a traceback at exit)."""
    if _stopping:  # read without the lock: the check below is the one that counts
        coro.close()
        _exiting("an async def module is not awaited any more")
    if loop is None or not loop.is_running() or _on_loop_thread(loop):
        private, thread = _private_loop()
        if threading.current_thread() is thread:
            return _on_fresh_thread(coro)
        loop = private
    # Submitted and registered under the lock `_stop` takes: a call either
    # sees the exit and is refused, or is among those `_stop` cancels (a
    # coroutine handed to a loop that has stopped would never be awaited).
    with _private_lock:
        stopping = _stopping
        if not stopping:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
            _waiting.add(future)
    if stopping:
        coro.close()
        _exiting("an async def module is not awaited any more")
    return _wait(future)


def _exiting(what: str) -> NoReturn:
    message = f"the interpreter is exiting: {what}"
    if threading.current_thread() is threading.main_thread():
        raise _core.UnavailableError(message)
    raise SystemExit(message)


def _wait(future: concurrent.futures.Future[Any]) -> Any:
    """The result of ``future`` (registered in ``_waiting``), waited for in
    short slices so that a ``SystemExit`` the exit hook asks for reaches
    this thread between them."""
    try:
        while True:
            try:
                return future.result(timeout=_WAIT_SLICE)
            except concurrent.futures.TimeoutError:
                continue
    except concurrent.futures.CancelledError:
        with _private_lock:
            stopping = _stopping
        if stopping:  # cancelled by the exit hook, not by the module
            _exiting("the async def module's call was cancelled")
        raise
    finally:
        with _private_lock:
            _waiting.discard(future)


def _stop() -> None:
    """At exit, before the extension stops its threads: no coroutine starts
    any more, those worker threads wait for are cancelled (so they return),
    and the private loop stops."""
    global _stopping
    with _private_lock:
        _stopping = True
        waiting = list(_waiting)
        private = _private
    for future in waiting:
        future.cancel()
    if private is not None:
        loop, thread = private

        def cancel_all() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.call_soon(loop.stop)

        try:
            loop.call_soon_threadsafe(cancel_all)
        except RuntimeError:  # pragma: no cover - closed already
            return
        if thread is not threading.current_thread():
            thread.join(timeout=5)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def run_workflow(registry: Any, principal: Optional[str], workflow: Any, input: Any) -> Any:
    """The coroutine of ``ModuleRegistry.arun_workflow``."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    token = _core.call_as(principal, registry._start_workflow, workflow, input, loop, future) if principal else (
        registry._start_workflow(workflow, input, loop, future)
    )
    return await _until_done(future, token)


async def run_workflow_batch(registry: Any, principal: Optional[str], workflow: Any, inputs: Any, errors: str) -> Any:
    """The coroutine of ``ModuleRegistry.arun_workflow_batch``."""
    if errors not in ("raise", "return"):
        raise _core.ValidationError(f'errors must be "raise" or "return", not {errors!r}')
    if not isinstance(workflow, _core.Workflow):
        raise TypeError(f"workflow must be a Workflow, not {type(workflow).__name__}")
    keep_going = errors == "return"
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    items = list(inputs)
    start = registry._start_batch
    token = (
        _core.call_as(principal, start, workflow, items, keep_going, loop, future)
        if principal
        else start(workflow, items, keep_going, loop, future)
    )
    outcomes: list[Any] = await _until_done(future, token)
    if not keep_going:
        for item in outcomes:
            if isinstance(item, BaseException):
                raise item
    return outcomes


async def _until_done(future: asyncio.Future[Any], token: Any) -> Any:
    """Awaits ``future``; when the awaiting task is cancelled, cancels the
    run (its steps not started are skipped), waits for the steps running to
    finish, and re-raises the cancellation with the run's result (its
    ``WorkflowResult``, or list of outcomes) as ``result`` (``None`` if the
    run failed)."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError as cancelled:
        token.cancel()
        # Cancelled again while the steps running finish: still wait for
        # them (the run is stopping already), or the result would be lost.
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        cancelled.result = (  # type: ignore[attr-defined]
            future.result() if future.done() and not future.cancelled() and future.exception() is None else None
        )
        raise
