"""The digest of Python code and of the state it holds (`code_digest`):
what a Python module's step cache key and a registry's fingerprint use.

Two handlers get one digest only when they run the same code on the same
state: bytecode, constants, defaults, closures, the globals they read
(recursively), a callable object's class and state, a class's attributes.
What has no stable digest raises `Undigestable`: the step is then not
cached (``unhashable``), never served another code's output.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Iterator, Optional

#: How deep `code_digest` follows what code refers to (nested code,
#: closures, globals, classes, objects' state); deeper is undigestable.
_MAX_DIGEST_DEPTH = 100

#: How many objects `code_digest` visits at most; more is undigestable.
_MAX_DIGEST_NODES = 200_000


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



class Undigestable(TypeError):
    """What `code_digest` raises for something with no stable digest (an
    object that cannot be reduced, as pickle would, such as a socket; state
    nested deeper than the bound, or too much of it): a step running such
    code is not cached, and a registry holding it has a fingerprint that
    matches no other."""


def code_digest(obj: Any) -> str:
    """A hex SHA-256 of what a Python handler runs and what it holds, the
    same in every process with the same code and state. For a function: its
    bytecode, constants, names and flags (recursively into nested code),
    its defaults and keyword defaults, the values its closure holds, its
    attributes, and the globals it reads (by name: each value digested in
    turn, so a helper function, a class or a constant it uses is covered,
    recursively; of a module of the program, the attributes the code names).
    For a class: its bases and every attribute (methods, class attributes).
    For a bound method: the function and the object. For any other object
    (a callable instance): its class and its state, as pickle would reduce
    it (``__reduce_ex__``: ``__getstate__``, ``__dict__``, slots), or its
    ``__module_registry_token__()`` when its class has one (bytes or text:
    what identifies it, as for an opaque input; for bookkeeping such as a
    call counter that decides no output). Code of
    the standard library and of installed packages is known by its import
    path and the package's ``__version__``. Cycles are followed once;
    nesting past `_MAX_DIGEST_DEPTH` or more than `_MAX_DIGEST_NODES`
    objects raise `Undigestable`, as does an object that cannot be reduced."""
    import hashlib

    digest = hashlib.sha256()
    try:
        _Digest(digest.update).feed(obj, 0)
    except RecursionError:
        raise Undigestable("what the code refers to is nested too deeply to digest") from None
    return digest.hexdigest()


class _Digest:
    """One walk of `code_digest`: what it fed, what it has seen (by id,
    each kept alive so that an id is not reused by a temporary), and how
    many objects it visited."""

    def __init__(self, update: Callable[[bytes], Any], budget: Optional[list[int]] = None) -> None:
        self.update = update
        self.seen: dict[int, tuple[int, Any]] = {}
        self.budget = budget if budget is not None else [_MAX_DIGEST_NODES]

    def tag(self, label: str, payload: bytes = b"") -> None:
        head = label.encode()
        self.update(len(head).to_bytes(4, "little") + head + len(payload).to_bytes(8, "little") + payload)

    def feed(self, obj: Any, depth: int) -> None:
        import types

        if depth > _MAX_DIGEST_DEPTH:
            raise Undigestable(
                f"{_kind(obj)} is nested more than {_MAX_DIGEST_DEPTH} levels deep in what the code refers to"
            )
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise Undigestable(f"the code refers to more than {_MAX_DIGEST_NODES} objects")
        kind = type(obj)
        if kind in _SCALARS:
            self.tag(kind.__name__, _scalar_bytes(obj))
            return
        found = self.seen.get(id(obj))
        if found is not None:
            self.tag("ref", str(found[0]).encode())
            return
        self.seen[id(obj)] = (len(self.seen), obj)
        down = depth + 1
        if kind in (tuple, list):
            self.tag(kind.__name__, str(len(obj)).encode())
            for item in obj:
                self.feed(item, down)
        elif kind in (set, frozenset):
            # In an order that does not depend on hashing (which differs
            # between processes): by each item's own digest.
            import hashlib

            parts = []
            for item in obj:
                sub = hashlib.sha256()
                _Digest(sub.update, self.budget).feed(item, down)
                parts.append(sub.digest())
            self.tag(kind.__name__, b"".join(sorted(parts)))
        elif kind is dict:
            self.tag("dict", str(len(obj)).encode())
            for key, value in list(obj.items()):
                self.feed(key, down)
                self.feed(value, down)
        elif kind is types.ModuleType:
            self.tag("module", _module_tag(obj.__name__).encode())
        elif kind is types.CodeType:
            self.code(obj, down)
        elif kind is types.FunctionType:
            self.function(obj, down)
        elif kind is types.MethodType:
            self.tag("method")
            self.feed(obj.__func__, down)
            self.feed(obj.__self__, down)
        elif kind is types.BuiltinFunctionType:
            owner = obj.__self__
            self.tag("builtin", f"{getattr(obj, '__module__', None)}.{obj.__qualname__}".encode())
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.feed(owner, down)  # a bound method of a builtin type: its object
        elif kind in (staticmethod, classmethod):
            self.tag(kind.__name__)
            self.feed(obj.__func__, down)
        elif kind is property:
            self.tag("property")
            for part in (obj.fget, obj.fset, obj.fdel):
                self.feed(part, down)
        elif isinstance(obj, type):
            self.cls(obj, down)
        elif kind in _IDENTITY_ONLY or _is_identity_only(kind):
            # Synchronisation objects and this package's own objects: what
            # they are, not a state that decides an output.
            self.tag("object", f"{kind.__module__}.{kind.__qualname__}".encode())
        else:
            self.instance(obj, down)

    def code(self, code: Any, down: int) -> None:
        self.tag("code", code.co_code)
        header = (
            code.co_name,
            code.co_names,
            code.co_varnames,
            code.co_freevars,
            code.co_cellvars,
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags,
        )
        self.tag("header", repr(header).encode())
        self.tag("exceptions", getattr(code, "co_exceptiontable", b""))
        for const in code.co_consts:
            self.feed(const, down)

    def function(self, func: Any, down: int) -> None:
        path = _library_path(func)
        if path is not None:
            self.tag("library", path.encode())
            return
        self.tag("function", func.__qualname__.encode())
        code = func.__code__
        self.feed(code, down)
        self.feed(func.__defaults__, down)
        self.feed(func.__kwdefaults__, down)
        for cell in func.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                self.tag("empty-cell")
            else:
                self.feed(contents, down)
        attributes = {k: v for k, v in vars(func).items() if k not in _FUNCTION_SKIP}
        if attributes:
            self.tag("attributes")
            self.feed(dict(sorted(attributes.items())), down)
        # The globals it reads, each by name and value.
        namespace = func.__globals__
        import builtins
        import types

        names = _all_names(code)
        for name in _global_names(code):
            if name in namespace:
                value = namespace[name]
                self.tag("global", name.encode())
                self.feed(value, down)
                if isinstance(value, types.ModuleType) and _library_path_of_module(value.__name__) is None:
                    # A module of the program: the attributes the code names.
                    members = vars(value)
                    for attr in names:
                        if attr in members:
                            self.tag("member", attr.encode())
                            self.feed(members[attr], down)
            elif hasattr(builtins, name):
                self.tag("builtin-name", name.encode())
            else:
                self.tag("missing-global", name.encode())

    def cls(self, cls: type, down: int) -> None:
        path = _library_path(cls)
        if path is not None:
            self.tag("library", path.encode())
            return
        # By its name: a class pickled by value (cloudpickle) loses its qualname.
        self.tag("class", f"{cls.__module__}.{cls.__name__}".encode())
        self.tag("bases", str(len(cls.__bases__)).encode())
        for base in cls.__bases__:
            self.feed(base, down)
        if type(cls) is not type:
            self.tag("metaclass")
            self.feed(type(cls), down)
        import types

        for name, attr in sorted(vars(cls).items()):
            if name in _CLASS_SKIP:
                continue
            self.tag("attribute", name.encode())
            if isinstance(attr, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                self.tag("slot")  # a slot: its value lives in each object
            else:
                self.feed(attr, down)

    def instance(self, obj: Any, down: int) -> None:
        kind = type(obj)
        self.tag("instance")
        self.feed(kind, down)
        token = getattr(kind, "__module_registry_token__", None)
        if token is not None:
            # The object says what identifies it (as an input's does): a
            # call counter, a log, a cache of its own that decides no output.
            try:
                given = token(obj)
            except Exception as exc:  # noqa: BLE001 - whatever it raised, it has no digest
                raise Undigestable(f"{_kind(obj)}: its __module_registry_token__ failed ({type(exc).__name__}: {exc})") from None
            if isinstance(given, str):
                given = given.encode()
            if not isinstance(given, bytes):
                raise Undigestable(f"{_kind(obj)}: its __module_registry_token__ gave {type(given).__name__}, not bytes or str")
            self.tag("token", given)
            return
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception as exc:  # noqa: BLE001 - whatever the reason, it has no state to digest
            raise Undigestable(
                f"{_kind(obj)} has no stable digest: it cannot be reduced as pickle would "
                f"({type(exc).__name__}: {exc})"
            ) from None
        wrapped = getattr(obj, "__wrapped__", None) if not isinstance(obj, type) else None
        if wrapped is not None:
            # A wrapper (``functools.lru_cache``, say) may reduce to its name
            # alone: what it wraps is what it runs.
            self.tag("wraps")
            self.feed(wrapped, down)
        if isinstance(reduced, str):
            self.tag("global", reduced.encode())
            return
        if not isinstance(reduced, tuple) or len(reduced) < 2:
            raise Undigestable(f"{_kind(obj)} has no stable digest: its __reduce_ex__ gave {type(reduced).__name__}")
        parts = list(reduced[:6]) + [None] * (6 - min(len(reduced), 6))
        # The items a list or a dict subclass gives as iterators.
        for i in (3, 4):
            if parts[i] is not None:
                parts[i] = list(parts[i])
        self.tag("reduced", str(len(reduced)).encode())
        for part in parts:
            self.feed(part, down)


def _module_tag(name: str) -> str:
    return _library_path_of_module(name) or name


def _kind(obj: Any) -> str:
    kind = type(obj)
    return f"an object of type {kind.__module__}.{kind.__qualname__}"


_SCALARS = (int, float, complex, str, bytes, bytearray, bool, type(None), type(Ellipsis), type(NotImplemented))


def _scalar_bytes(obj: Any) -> bytes:
    if isinstance(obj, bool) or obj is None or obj is Ellipsis or obj is NotImplemented:
        return repr(obj).encode()
    if isinstance(obj, int):
        return hex(obj).encode()  # any size (repr stops at 4,300 digits)
    if isinstance(obj, (float, complex)):
        return repr(obj).encode()  # -0.0, nan, inf each their own
    if isinstance(obj, str):
        return obj.encode("utf-8", "surrogatepass")
    return bytes(obj)


def _identity_only_types() -> tuple[type, ...]:
    import threading

    return (type(threading.Lock()), type(threading.RLock()))


_IDENTITY_ONLY = _identity_only_types()


def _is_identity_only(kind: type) -> bool:
    """This package's own objects (a registry, an instance, a config), known
    by their type: what they do is covered where they are declared."""
    module = getattr(kind, "__module__", "") or ""
    return module == "module_registry" or module.startswith("module_registry.")


#: A function's attributes that are not what it runs.
_FUNCTION_SKIP = frozenset({"__wrapped__"})  # the closure holds the wrapped function

#: A class's attributes that are not what it runs (line numbers, the
#: machinery of abstract classes, the descriptors of ``__dict__``, the
#: slot names ``copyreg`` caches on a class when one of its objects is
#: first pickled).
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "_abc_impl", "__firstlineno__", "__module__", "__slotnames__"})

_GLOBAL_NAMES: dict[Any, tuple[str, ...]] = {}
_ALL_NAMES: dict[Any, tuple[str, ...]] = {}


def _global_names(code: Any) -> tuple[str, ...]:
    """The global names ``code`` and the code nested in it read or write
    (its ``LOAD_GLOBAL``-like instructions), in order, each once."""
    found = _GLOBAL_NAMES.get(code)
    if found is None:
        import dis

        names: dict[str, None] = {}
        ops = {dis.opmap[op] for op in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL") if op in dis.opmap}
        for nested in _codes(code):
            for instruction in dis.get_instructions(nested):
                if instruction.opcode in ops:
                    names[str(instruction.argval)] = None
        found = tuple(names)
        if len(_GLOBAL_NAMES) > 4096:
            _GLOBAL_NAMES.clear()
        _GLOBAL_NAMES[code] = found
    return found


def _all_names(code: Any) -> tuple[str, ...]:
    """Every name ``code`` and the code nested in it use (globals and
    attributes), each once."""
    found = _ALL_NAMES.get(code)
    if found is None:
        names: dict[str, None] = {}
        for nested in _codes(code):
            names.update(dict.fromkeys(nested.co_names))
        found = tuple(names)
        if len(_ALL_NAMES) > 4096:
            _ALL_NAMES.clear()
        _ALL_NAMES[code] = found
    return found


def _codes(code: Any, depth: int = 0) -> Iterator[Any]:
    import types

    yield code
    if depth < _MAX_DIGEST_DEPTH:
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from _codes(const, depth + 1)


def _library_path(obj: Any) -> Optional[str]:
    """``module:qualname@version`` for a function or class of the standard
    library or an installed package that imports back as itself; None for
    the program's own code (digested in full)."""
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        return None
    tag = _library_path_of_module(module)
    if tag is None:
        return None
    path = importable(obj)
    return None if path is None else f"{path}@{tag}"


_LIBRARY: dict[str, Optional[str]] = {}


def _library_path_of_module(name: str) -> Optional[str]:
    """For a module of the standard library or an installed package (not
    the program's own), ``name@version`` (the top package's
    ``__version__``); else None."""
    if name in _LIBRARY:
        return _LIBRARY[name]
    found = _library_tag(name)
    if len(_LIBRARY) > 4096:
        _LIBRARY.clear()
    _LIBRARY[name] = found
    return found


def _library_tag(name: str) -> Optional[str]:
    import os
    import sys
    import sysconfig

    if name == "__main__":
        return None
    top = name.partition(".")[0]
    top_module = sys.modules.get(top)
    version = getattr(top_module, "__version__", None)
    tag = f"{name}@{version if isinstance(version, str) else ''}"
    if top == "module_registry" or name in sys.builtin_module_names or top in sys.stdlib_module_names:
        return tag
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if not isinstance(file, str):
        return None  # unknown here: digested in full
    path = os.path.realpath(file)
    roots = {sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    for root in roots:
        if root and path.startswith(os.path.realpath(root) + os.sep):
            return tag
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return tag
    return None
