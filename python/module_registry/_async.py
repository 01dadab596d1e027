"""Async support: the coroutines of ``arun_workflow`` and
``arun_workflow_batch`` (their work runs on the extension's worker
threads, see ``python/src/aio.rs``), and how a coroutine returned by an
``async def`` module is awaited."""

from __future__ import annotations

import asyncio
import threading

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Coroutine, Optional

_private_lock = threading.Lock()
_private: Optional[tuple[asyncio.AbstractEventLoop, threading.Thread]] = None


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
    when that loop runs on another thread, else on the private loop."""
    if loop is not None and loop.is_running() and not _on_loop_thread(loop):
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
    private, thread = _private_loop()
    if threading.current_thread() is thread:
        return _on_fresh_thread(coro)
    return asyncio.run_coroutine_threadsafe(coro, private).result()


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
        try:
            cancelled.result = await future  # type: ignore[attr-defined]
        except BaseException:
            cancelled.result = None  # type: ignore[attr-defined]
        raise
