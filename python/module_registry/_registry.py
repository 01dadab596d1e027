"""The Python face of the registry: the compiled registry plus what only
Python has (decorators and installed packages' entry points)."""

from __future__ import annotations

import os
import sys

from . import _core
from ._core import ModuleConfig, ModuleType, PluginConfig, Schema

# `typing` and `dataclasses` cost tens of milliseconds to import: only type checkers read these.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Coroutine, Iterable, Iterator, Mapping, Optional, TypeVar, Union

    T = TypeVar("T")

#: The entry-point group that installed packages declare their modules under.
DEFAULT_GROUP = "module_registry.modules"


class EntryPointReport:
    """What `ModuleRegistry.load_entry_points` did.

    ``loaded``: names of the entry points that registered their modules.
    ``failed``: ``(entry point name, exception)`` for each one that failed;
    whatever it had registered before failing was removed again.
    """

    __slots__ = ("loaded", "failed")

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.failed: list[tuple[str, BaseException]] = []

    def __repr__(self) -> str:
        return f"EntryPointReport(loaded={self.loaded!r}, failed={self.failed!r})"


def _default_name(obj: Any) -> str:
    return str(getattr(obj, "__name__", "")).lower().replace("_", "-")


#: Entry points found per group, with the state of ``sys.path`` they were found in.
_ENTRY_POINT_CACHE: dict[str, tuple[tuple[tuple[str, int], ...], list[Any]]] = {}


def _path_state() -> tuple[tuple[str, int], ...]:
    """Each ``sys.path`` entry with its modification time: installing or
    removing a package adds or removes a ``*.dist-info`` folder, which changes
    the time of the folder holding it (stevedore's cache relies on the same)."""
    import os

    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


def _entry_points(group: str, refresh: bool = False) -> list[Any]:
    """The installed entry points of ``group``. Scanning every installed
    distribution costs milliseconds, so the result is kept until ``sys.path``
    or one of its folders changes (or ``refresh`` is true)."""
    state = _path_state()
    cached = _ENTRY_POINT_CACHE.get(group)
    if cached is not None and cached[0] == state and not refresh:
        return cached[1]
    from importlib.metadata import entry_points

    found = list(entry_points(group=group))
    _ENTRY_POINT_CACHE[group] = (state, found)
    return found


class ModuleRegistry(_core.ModuleRegistry):
    """The registry of modules and plugins. Safe to share between threads.

    ``ModuleRegistry(native_modules=True)`` starts with every native module
    compiled into the extension (``identity``, JSON, text, SHA-256, gzip,
    base64); ``bundled_scripts=True`` adds the script modules shipped with
    the package (``slugify``, ``markdown``, ``csv-records``, ``template``,
    ...; their files are in ``module_registry.bundled_scripts()``).
    """

    def module(
        self,
        name: Optional[str] = None,
        version: str = "0.1.0",
        type: Union[ModuleType, str] = ModuleType.DataProcessor,
        capabilities: Union[list[str], tuple[str, ...], set[str], frozenset[str]] = (),
        metadata: Optional[Mapping[str, str]] = None,
        dependencies: Optional[Mapping[str, str]] = None,
        kind: str = "module",
        input: Union[Schema, str, None] = None,
        output: Union[Schema, str, None] = None,
        config_type: Union[Schema, str, None] = None,
    ) -> Callable[[T], T]:
        """Decorator registering a function (its ``process``) or a class
        (built per instance; ``process``, optional ``init``/``shutdown``).
        The name defaults to the object's ``__name__`` with ``_`` as ``-``.
        ``input``, ``output`` and ``config_type`` declare its types (a
        ``Schema`` or a type expression; ``any`` when not given).
        Returns the object unchanged."""

        def decorate(obj: T) -> T:
            declaration = PluginConfig if kind == "plugin" else ModuleConfig
            config = declaration(
                name=name if name is not None else _default_name(obj),
                version=version,
                type=type,
                capabilities=list(capabilities),
                metadata=dict(metadata or {}),
                dependencies=dict(dependencies or {}),
                input=input,
                output=output,
                config_type=config_type,
            )
            if kind == "plugin":
                self.register_plugin(config, obj)
            elif kind == "module":
                self.register(config, obj)
            else:
                raise _core.ValidationError(f'kind must be "module" or "plugin", not {kind!r}')
            return obj

        return decorate

    def load_entry_points(self, group: str = DEFAULT_GROUP, refresh: bool = False) -> EntryPointReport:
        """Load the modules that installed packages declare under the
        entry-point ``group``. Each entry point names a callable
        ``f(registry)`` that registers that package's modules. A failing
        package is reported in ``.failed`` (and what it registered is removed
        again); it never stops the others.

        The list of entry points is kept between calls until ``sys.path`` or
        one of its folders changes, as installing a package does;
        ``refresh=True`` scans the installed packages again regardless."""
        report = EntryPointReport()
        for ep in sorted(_entry_points(group, refresh), key=lambda e: e.name):
            failure: list[BaseException] = []

            def install(ep: Any = ep) -> None:
                try:
                    register = ep.load()
                    if not callable(register):
                        raise TypeError(f"entry point {ep.name} ({ep.value}) is not callable")
                    register(self)
                except Exception as exc:  # noqa: BLE001 - one broken package must not stop the others
                    failure.append(exc)

            # Exactly what this package registered, from this thread: what
            # other threads register meanwhile is never undone.
            _, registered = self._recording_registrations(install)
            if failure:
                for info in registered:
                    self._unregister_exact(info)
                report.failed.append((ep.name, failure[0]))
            else:
                report.loaded.append(ep.name)
        return report

    def run_workflow_batch(
        self,
        workflow: _core.Workflow,
        inputs: Iterable[Any],
        *,
        progress: bool = False,
        executor: Any = None,
        chunk_size: Optional[int] = None,
        errors: str = "raise",
    ) -> list[Any]:
        """Run ``workflow`` on every input; results in input order.

        ``executor=None`` runs here, one set of instances for the batch. An
        ``executor`` (a ``dask.distributed.Client`` or any
        ``concurrent.futures.Executor``) gets the inputs in chunks of
        ``chunk_size`` (default: about four chunks per worker), one task
        each; each worker process rebuilds the registry from its pickle
        once (see ``fingerprint``) and runs a chunk with one set of
        instances. A view's batch runs as its principal on the workers too.

        ``errors="raise"``: the first failing input (in input order) raises
        its ``WorkflowError``, whose ``index`` is its position in
        ``inputs``, and the remaining work is cancelled. ``errors="return"``:
        the slot of each failed input holds its ``WorkflowError`` and every
        other input completes. ``progress=True`` shows a progress bar (tqdm
        when it is installed, a text bar on stderr otherwise).

        It is the list of what ``iter_workflow_batch`` yields, so ``inputs``
        may be any iterable (a generator too); results of one batch share
        their workflow and the texts of their step reports."""
        from ._batch import run_batch

        return run_batch(self, workflow, inputs, progress, executor, chunk_size, errors)

    def iter_workflow_batch(
        self,
        workflow: _core.Workflow,
        inputs: Iterable[Any],
        *,
        executor: Any = None,
        chunk_size: Optional[int] = None,
        ordered: bool = True,
        errors: str = "raise",
    ) -> Iterator[Any]:
        """``run_workflow_batch`` as an iterator: results as they are made,
        ``inputs`` (any iterable, a generator of any length) taken lazily
        with a bounded window in flight, so memory stays flat however many
        inputs there are.

        Here (``executor=None``) one set of instances serves the batch and
        the inputs are taken ``chunk_size`` at a time (default 512, or more
        for a step on a wide pool). On an ``executor`` they go in chunks of
        ``chunk_size`` (default: about four per worker when ``inputs`` has a
        length, else 10,000), at most two chunks per worker in flight; each
        chunk's results come back as one compact payload. ``ordered=True``
        yields in input order; ``ordered=False`` as chunks finish (here, in
        input order too).

        The workflow is checked (and here its instances built) when this is
        called, as the current principal; the batch acts as that principal
        throughout. ``errors="raise"``: the first failing input raises its
        ``WorkflowError`` (with ``index``) where it would be yielded, after
        the results before it, and the iterator ends; ``errors="return"``
        yields each failed input's ``WorkflowError`` in its place. Closing
        the iterator (or dropping it, or leaving a ``for`` loop early) closes
        the batch's instances and cancels the chunks still waiting."""
        from ._batch import iterate

        return iterate(self, workflow, inputs, executor, chunk_size, ordered, errors)

    def arun_workflow(self, workflow: _core.Workflow, input: Any = None) -> Coroutine[Any, Any, _core.WorkflowResult]:
        """``await registry.arun_workflow(workflow, input)``: ``run_workflow``
        on the extension's worker threads, the event loop running
        meanwhile; ``async def`` modules are awaited on this loop.
        Cancelling the awaiting task lets the steps running finish and
        skips the others; the ``CancelledError`` raised carries the run's
        ``WorkflowResult`` as ``result`` (its skipped steps say
        ``"cancelled before it started"``)."""
        from ._async import run_workflow

        return run_workflow(self, _core._current_principal(), workflow, input)

    def arun_workflow_batch(
        self, workflow: _core.Workflow, inputs: Iterable[Any], *, errors: str = "raise"
    ) -> Coroutine[Any, Any, list[Any]]:
        """``await registry.arun_workflow_batch(workflow, inputs)``: the
        local ``run_workflow_batch`` (one set of instances, ``errors`` as
        there) on a worker thread. Cancelling it starts no more inputs."""
        from ._async import run_workflow_batch

        return run_workflow_batch(self, _core._current_principal(), workflow, inputs, errors)

    def _repr_html_(self) -> str:
        """The registrations as a table grouped by name (in a notebook)."""
        from ._display import modules_html

        return modules_html(self.list(), calls=self._calls_by_module())

    def fingerprint(self) -> str:
        """A hex digest of what this registry would rebuild from its pickle:
        declarations, script sources, settings, policy, and the code of its
        Python modules. It changes whenever any of these changes, and is the
        same for a registry and its unpickled copy."""
        from ._pickling import fingerprint

        return fingerprint(self)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as what rebuilds it (see ``module_registry._pickling``):
        the audit log and instances stay behind. Unpickling runs code, as
        any pickle does: only from a source you trust."""
        from ._pickling import rebuild_registry, registry_state

        return (rebuild_registry, (type(self), registry_state(self)))

    def __eq__(self, other: object) -> bool:
        """Registries are equal when they would rebuild the same (same ``fingerprint``)."""
        if not isinstance(other, _core.ModuleRegistry):
            return NotImplemented
        from ._pickling import fingerprint

        return other is self or fingerprint(self) == fingerprint(other)

    # Equal by content but changing: not hashable, as a list is not.
    __hash__ = None  # type: ignore[assignment]

    def as_principal(self, principal: str) -> "RegistryView":
        """A view with the registry's methods, each acting as ``principal``
        and checked against the policy set with ``set_policy``. The name
        ``system`` (the registry itself, in the audit log) and ``""`` are
        reserved: ``ValidationError``."""
        return RegistryView(self, principal)

    @classmethod
    def from_manifest(
        cls,
        text: str,
        *,
        allow_imports: Iterable[str] = (),
        script_folders: Iterable[Union[str, os.PathLike[str]]] = (),
    ) -> "ModuleRegistry":
        """A registry rebuilt from ``export_manifest()``: declarations,
        native modules, scripts (digest-checked), Python modules and settings.

        A manifest is data. Its Python modules are imported only when their
        module is under one of ``allow_imports`` (``"myapp"`` allows
        ``myapp:f`` and ``myapp.sub:f``; nothing by default), and only after
        the whole manifest has been checked; its scripts resolve ``import``
        only when recorded inside one of ``script_folders``. All or nothing:
        on any error nothing is registered."""
        registry = cls()
        registry._load_manifest(
            text, _resolve_python, [str(p) for p in allow_imports], [os.fspath(p) for p in script_folders]
        )
        return registry

    def __repr__(self) -> str:
        return f"<ModuleRegistry with {len(self)} registrations>"


def _resolve_python(name: str, import_path: Optional[str], version: str = "", kind: str = "module") -> Any:
    """The handler of a Python module recorded in a manifest."""
    if import_path is None:
        raise _core.ValidationError(
            f"module {name!r} was built by code a manifest cannot carry (a lambda or a local "
            "function); register it again after loading the manifest"
        )
    import importlib

    module_name, _, qualname = import_path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


if TYPE_CHECKING:  # pragma: no cover
    # Type checkers see a view as having the registry's whole typed surface
    # (a typo such as `view.crate("x")` is reported); at run time it
    # forwards each call (`__getattr__`), acting as its principal.
    _ViewSurface = ModuleRegistry
else:
    _ViewSurface = object


class RegistryView(_ViewSurface):
    """A registry seen by one principal: the registry's methods, each call
    checked against the registry's ``AccessPolicy``; denial raises
    ``PermissionDeniedError``. Scripts and workflows run through a view have
    the principal's permissions, never more."""

    def __init__(self, registry: ModuleRegistry, principal: str) -> None:
        _core.check_principal(principal)  # the core's rule: not "system", not ""
        self._registry = registry
        self._principal = principal

    @property
    def principal(self) -> str:
        """Who this view acts as."""
        return self._principal

    def _as(self, func: Callable[..., Any]) -> Callable[..., Any]:
        principal = self._principal

        def call(*args: Any, **kwargs: Any) -> Any:
            result = _core.call_as(principal, func, *args, **kwargs)
            if func.__name__ == "module":  # the decorator registers later: keep acting as the principal
                return self._as(result)
            return result

        call.__name__ = getattr(func, "__name__", "call")
        call.__doc__ = getattr(func, "__doc__", None)
        return call

    def module(self, *args: Any, **kwargs: Any) -> Callable[[T], T]:
        """``ModuleRegistry.module`` acting as this principal (also when the
        decorator registers)."""
        decorate: Callable[[T], T] = self._as(self._registry.module)(*args, **kwargs)
        return decorate

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self._registry, name)
            return self._as(attr) if callable(attr) else attr

    def __len__(self) -> int:
        return len(self._as(self._registry.list)())

    def __contains__(self, name: object) -> bool:
        return bool(_core.call_as(self._principal, self._registry.get, name)) if isinstance(name, str) else False

    def __repr__(self) -> str:
        return f"<RegistryView of {self._registry!r} as {self._principal!r}>"

    def _repr_html_(self) -> str:
        """What this principal may discover, as a table (in a notebook)."""
        from ._display import modules_html

        try:
            calls = self._as(self._registry._calls_by_module)()
        except _core.PermissionDeniedError:
            calls = None  # reading metrics needs admin on "*"
        return modules_html(self._as(self._registry.list)(), f"seen by {self._principal}", calls)
