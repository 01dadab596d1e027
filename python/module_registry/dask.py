"""Workflows over Dask collections (install ``module-registry[dask]``).

>>> from module_registry.dask import map_workflow            # doctest: +SKIP
>>> outputs = map_workflow(registry, workflow, bag)          # doctest: +SKIP
>>> outputs.compute()                                        # doctest: +SKIP

The registry travels once in the task graph (as its pickle); each worker
process rebuilds it once per fingerprint, and each partition runs with one
set of instances. A failing element raises its ``WorkflowError`` (``index``
is its position within its partition) when the collection is computed.
Importing ``module_registry`` never imports this module or Dask.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _core
from ._batch import run_payload, snapshot, tracing_of

__all__ = ["map_workflow"]


def _outputs(
    fingerprint: str,
    blob: bytes,
    workflow: _core.Workflow,
    principal: Optional[str],
    items: list[Any],
    trace: Optional[dict[str, str]],
) -> list[Any]:
    payload = run_payload(fingerprint, blob, workflow, 0, items, principal, False, trace)
    if payload["errors"]:
        raise payload["errors"][min(payload["errors"])]
    outputs: list[Any] = payload["outputs"]
    return outputs


def _bag_partition(
    items: Any,
    fingerprint: str,
    blob: bytes,
    workflow: _core.Workflow,
    principal: Optional[str],
    trace: Optional[dict[str, str]] = None,
) -> list[Any]:
    return _outputs(fingerprint, blob, workflow, principal, list(items), trace)


def _series_partition(
    series: Any,
    fingerprint: str,
    blob: bytes,
    workflow: _core.Workflow,
    principal: Optional[str],
    trace: Optional[dict[str, str]] = None,
) -> Any:
    import pandas as pd

    values = _outputs(fingerprint, blob, workflow, principal, series.tolist(), trace)
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


def map_workflow(registry: Any, workflow: _core.Workflow, collection: Any, *, meta: Any = None) -> Any:
    """``collection`` (a ``dask.bag.Bag`` or a ``dask.dataframe.Series``)
    with each element replaced by ``workflow``'s output on it, lazily: the
    same kind of collection, computed when you compute it. ``meta`` describes
    a Series' output (as in ``Series.map_partitions``; default: objects, under
    the input's name). A view (``registry.as_principal(...)``) runs as its
    principal on the workers."""
    import dask.bag as db
    from dask.delayed import delayed

    from ._registry import RegistryView

    if isinstance(registry, RegistryView):
        return _core.call_as(registry.principal, map_workflow, registry._registry, workflow, collection, meta=meta)
    if not isinstance(workflow, _core.Workflow):
        raise TypeError(f"workflow must be a Workflow, not {type(workflow).__name__}")
    principal = _core._current_principal()
    # The caller's trace context as it is now (W3C headers), when the
    # registry is instrumented (`otel`): the workers' spans join its trace.
    tracing = tracing_of(registry)
    trace = None if tracing is None else tracing.carrier()
    fingerprint, blob = snapshot(registry)
    # One node of the graph holds the pickle; every partition refers to it.
    shared = delayed(blob, name=f"module-registry-{fingerprint[:16]}", pure=True)
    if isinstance(collection, db.Bag):
        return collection.map_partitions(  # type: ignore[no-untyped-call]
            _bag_partition, fingerprint, shared, workflow, principal, trace
        )
    import dask.dataframe as dd

    if isinstance(collection, dd.Series):
        if meta is None:
            meta = (collection.name, "object")
        return collection.map_partitions(  # type: ignore[no-untyped-call]
            _series_partition, fingerprint, shared, workflow, principal, trace, meta=meta
        )
    raise TypeError(
        "map_workflow maps over a dask.bag.Bag or a dask.dataframe.Series, "
        f"not {type(collection).__module__}.{type(collection).__name__}"
    )
