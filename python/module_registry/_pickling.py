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

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Optional

#: The layout of a pickled registry's state; a different one is refused.
STATE_FORMAT = 1

#: How deep `code_digest` follows nested code, closures and classes.
_MAX_DIGEST_DEPTH = 64


def importable(obj: Any) -> Optional[str]:
    """``module:qualified.name`` when importing that path gives back ``obj``
    itself, else None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if module == "__main__" or "<" in qualname:
        return None
    import importlib

    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # noqa: BLE001 - not importable, whatever the reason
        return None
    return f"{module}:{qualname}" if found is obj else None


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


# --- the digest of Python code -------------------------------------------------

_SIMPLE = (int, float, complex, str, bytes, bool, type(None), type(Ellipsis))


def code_digest(obj: Any) -> str:
    """A hex SHA-256 of what a Python handler runs: for a function its
    bytecode, constants and names (recursively into nested code objects),
    its defaults and the values its closure holds; for a class the same for
    each function defined in it, and its bases' names. A change inside
    another function it calls is not seen."""
    import hashlib

    digest = hashlib.sha256()
    _feed(digest.update, obj, 0, set())
    return digest.hexdigest()


def _feed(update: Callable[[bytes], Any], obj: Any, depth: int, seen: set[int]) -> None:
    import functools
    import types

    if depth > _MAX_DIGEST_DEPTH or id(obj) in seen:
        update(b"<seen>")
        return
    if isinstance(obj, _SIMPLE):
        update(f"{type(obj).__name__}:{obj!r};".encode())
        return
    seen.add(id(obj))
    if isinstance(obj, (tuple, list, frozenset, set)):
        update(f"{type(obj).__name__}[".encode())
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        for item in items:
            _feed(update, item, depth + 1, seen)
        update(b"]")
    elif isinstance(obj, dict):
        update(b"dict{")
        for key, value in obj.items():
            _feed(update, key, depth + 1, seen)
            _feed(update, value, depth + 1, seen)
        update(b"}")
    elif isinstance(obj, types.CodeType):
        update(b"code:" + obj.co_code)
        update(repr((obj.co_name, obj.co_names, obj.co_varnames, obj.co_argcount)).encode())
        for const in obj.co_consts:
            _feed(update, const, depth + 1, seen)
    elif isinstance(obj, types.FunctionType):
        update(f"function:{obj.__qualname__};".encode())
        _feed(update, obj.__code__, depth + 1, seen)
        _feed(update, obj.__defaults__, depth + 1, seen)
        _feed(update, obj.__kwdefaults__, depth + 1, seen)
        for cell in obj.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                contents = None
            _feed(update, contents, depth + 1, seen)
    elif isinstance(obj, (staticmethod, classmethod)):
        _feed(update, obj.__func__, depth + 1, seen)
    elif isinstance(obj, property):
        for part in (obj.fget, obj.fset, obj.fdel):
            _feed(update, part, depth + 1, seen)
    elif isinstance(obj, functools.partial):
        update(b"partial:")
        _feed(update, (obj.func, obj.args, obj.keywords), depth + 1, seen)
    elif isinstance(obj, type):
        update(f"class:{obj.__module__}.{obj.__qualname__};".encode())
        update(repr([f"{b.__module__}.{b.__qualname__}" for b in obj.__bases__]).encode())
        for name, attr in sorted(vars(obj).items()):
            if isinstance(attr, (types.FunctionType, staticmethod, classmethod, property)):
                update(name.encode())
                _feed(update, attr, depth + 1, seen)
    else:
        # Something else callable (an instance, a builtin): its type and, when
        # it has one, its import path; what it holds is not seen.
        update(f"object:{type(obj).__module__}.{type(obj).__qualname__};".encode())
        path = importable(obj)
        if path is not None:
            update(path.encode())
        elif isinstance(type(obj), type) and type(obj).__module__ not in ("builtins",):
            _feed(update, type(obj), depth + 1, seen)


def handler_token(handler: Any) -> str:
    """What identifies a Python handler in a registry's fingerprint: its
    import path (when it has one) and the digest of its code."""
    return f"{importable(handler) or '-'}#{code_digest(handler)}"


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
