"""Pickling a registry, and the digest of Python code its fingerprint uses.

A registry pickles as what rebuilds it: the manifest the core writes
(declarations, natives by name, script sources with the scripts they
import, settings, policy), the step cache's settings (not its contents: a
folder on disk is shared by the workers of one machine) plus the
handler of each Python module, by reference when it can be imported back and
by value through ``cloudpickle`` when it cannot (a lambda, a closure, a
function defined in a notebook). Unpickling runs that code, as any pickle
does: load pickles only from a source you trust.

Exceptions of this package keep their ``__cause__`` through a pickle (a
cause that cannot be pickled travels as its text), so an error raised on a
worker arrives with the module's own error attached.
"""

from __future__ import annotations

from . import _core
from ._digest import Undigestable, code_digest, importable

__all__ = ["Undigestable", "code_digest", "importable", "fingerprint", "handler_token"]

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Iterator, Optional

#: The layout of a pickled registry's state; a different one is refused.
STATE_FORMAT = 1


def _describe(kind: str, name: str, version: str) -> str:
    return f"{kind} {name}@{version}"


def _portable(handler: Any, subject: str) -> tuple[str, Any]:
    """``("ref", handler)`` for an importable handler (the pickler stores its
    import path), else ``("value", bytes)`` pickled by cloudpickle."""
    import pickle

    if importable(handler) is not None:
        return ("ref", handler)
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - cloudpickle is a dependency
        raise pickle.PicklingError(
            f"{subject} is implemented by {handler!r}, which cannot be imported back: "
            "pickling it by value needs cloudpickle (pip install cloudpickle)"
        ) from exc
    try:
        return ("value", cloudpickle.dumps(handler))
    except Exception as exc:  # noqa: BLE001 - any failure is reported with the module's name
        raise pickle.PicklingError(
            f"{subject} cannot be pickled: its handler {handler!r} can be neither imported "
            f"back nor pickled by value ({type(exc).__name__}: {exc})"
        ) from exc


def registry_state(registry: _core.ModuleRegistry) -> tuple[Any, ...]:
    """What a pickled registry holds (needs ``admin``, as the manifest does)."""
    import pickle

    import json
    import os

    manifest = registry.export_manifest()
    code = []
    for kind, name, version, handler in registry._code_modules():
        subject = _describe(kind, name, version)
        if handler is None:
            raise pickle.PicklingError(
                f"{subject} is built by a factory given in Rust code, which cannot be pickled"
            )
        code.append((kind, name, version, _portable(handler, subject)))
    # The Python modules the manifest names by import path (their handlers
    # travel beside it). Scripts carry the scripts they import.
    allow_imports: set[str] = set()
    for entry in json.loads(manifest)["modules"]:
        implementation = entry["implementation"]
        if implementation["kind"] == "python":
            allow_imports.add(implementation["import_path"].partition(":")[0])
    # The cache's settings (not its contents): workers on one machine share
    # its folder.
    cache = registry._cache_settings()
    if cache is not None:
        cache = (cache[0], None if cache[1] is None else str(cache[1]), cache[2])
    return (STATE_FORMAT, manifest, code, sorted(allow_imports), cache)


def rebuild_registry(cls: type, state: tuple[Any, ...]) -> Any:
    """The registry a pickle holds (the inverse of `registry_state`)."""
    import pickle

    if not isinstance(state, tuple) or not state or state[0] != STATE_FORMAT:
        raise pickle.UnpicklingError(
            f"this pickle holds a registry in another layout ({state[:1]!r}); "
            f"this version of module_registry reads layout {STATE_FORMAT}"
        )
    _, manifest, code, allow_imports, cache = state
    handlers: dict[tuple[str, str, str], Any] = {}
    for kind, name, version, (how, payload) in code:
        handlers[(kind, name, version)] = pickle.loads(payload) if how == "value" else payload

    def resolve(name: str, import_path: Optional[str], version: str, kind: str) -> Any:
        try:
            return handlers[(kind, name, version)]
        except KeyError:
            raise _core.ValidationError(
                f"the pickle has no handler for {_describe(kind, name, version)}"
            ) from None

    registry = cls()
    registry._load_manifest(manifest, resolve, allow_imports)
    if cache is not None:
        memory_items, path, max_bytes = cache
        registry.set_cache(memory_items=memory_items, path=path, max_bytes=max_bytes)
    return registry


# --- the fingerprint ---------------------------------------------------------


def handler_token(handler: Any) -> str:
    """What identifies a Python handler in a registry's fingerprint: its
    import path (when it has one) and the digest of its code and state. A
    handler with no stable digest gets a token of its own each time, so
    that a fingerprint holding it matches no other (a worker then rebuilds
    the registry rather than run another one's code)."""
    try:
        digest = code_digest(handler)
    except Undigestable:
        import uuid

        digest = f"undigestable-{uuid.uuid4().hex}"
    return f"{importable(handler) or '-'}#{digest}"


def fingerprint(registry: _core.ModuleRegistry) -> str:
    """The core's fingerprint, extended with each Python handler's token."""
    core = registry._fingerprint()
    code = registry._code_modules()
    cache = registry._cache_settings()
    if not code and cache is None:
        return core
    import hashlib

    digest = hashlib.sha256(core.encode())
    if cache is not None:
        digest.update(f"\0cache\0{cache[0]}\0{cache[1]}\0{cache[2]}".encode())
    for kind, name, version, handler in code:
        token = "rust-factory" if handler is None else handler_token(handler)
        digest.update(f"\0{kind}\0{name}\0{version}\0{token}".encode())
    return digest.hexdigest()


# --- exceptions keep their cause -----------------------------------------------


def _rebuild_error(cls: type, args: tuple[Any, ...], attrs: Optional[dict[str, Any]], cause: Any) -> BaseException:
    exc: BaseException = cls(*args)
    if attrs:
        exc.__dict__.update(attrs)
    exc.__cause__ = cause
    return exc


def portable_cause(exc: BaseException) -> Optional[BaseException]:
    """``exc.__cause__`` if it pickles, else a ``ModuleRegistryError`` with
    its text."""
    import pickle

    cause = exc.__cause__
    if cause is not None:
        try:
            pickle.dumps(cause)
        except Exception:  # noqa: BLE001 - any cause that cannot travel goes as text
            cause = _core.ModuleRegistryError(f"{type(cause).__qualname__}: {cause}")
    return cause


def make_portable(exc: BaseException, depth: int = 0) -> None:
    """Replace, along ``exc``'s chain of causes, the first cause that cannot
    be pickled (alone) by its text, keeping every link above it as it is."""
    cause = exc.__cause__
    if cause is None:
        return
    if depth < 64:
        make_portable(cause, depth + 1)
    exc.__cause__ = portable_cause(exc)


def _reduce_error(exc: BaseException) -> tuple[Any, ...]:
    return (_rebuild_error, (type(exc), exc.args, dict(vars(exc)) or None, portable_cause(exc)))


# Every exception of the package derives from ModuleRegistryError.
_core.ModuleRegistryError.__reduce__ = _reduce_error  # type: ignore[assignment,method-assign]
