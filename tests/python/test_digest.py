"""The digest of Python code and the state it holds (what a Python module's
cache key and a registry's fingerprint use): what it covers, values that
must not collide, what has no digest, and its bounds."""

from __future__ import annotations

import math
import subprocess
import sys
import types
from typing import Any

import pytest

from module_registry._digest import Undigestable, code_digest


def define(source: str, **globals_: Any) -> dict[str, Any]:
    """The namespace after running ``source`` in it (as a notebook cell or
    a module would), with ``globals_`` set first."""
    namespace: dict[str, Any] = {"__name__": "notebook_cell", **globals_}
    exec(source, namespace)
    return namespace


def test_the_globals_a_function_reads_are_covered() -> None:
    ns = define("def f(x):\n    return helper(x) * FACTOR\n\ndef helper(x):\n    return x + 1\n", FACTOR=2)
    first = code_digest(ns["f"])
    assert code_digest(ns["f"]) == first  # stable
    ns["FACTOR"] = 3
    assert code_digest(ns["f"]) != first  # a module-level constant
    ns["FACTOR"] = 2
    assert code_digest(ns["f"]) == first
    exec("def helper(x):\n    return x + 2\n", ns)  # a redefined helper
    assert code_digest(ns["f"]) != first
    # A global the function does not read changes nothing.
    ns["UNUSED"] = 1
    exec("def helper(x):\n    return x + 1\n", ns)
    assert code_digest(ns["f"]) == first


def test_helpers_reading_globals_and_cycles_are_followed() -> None:
    ns = define("def f(x):\n    return g(x)\n\ndef g(x):\n    return f(x) if x > LIMIT else x\n", LIMIT=10)
    first = code_digest(ns["f"])  # f and g refer to each other: followed once
    ns["LIMIT"] = 11  # read by g, two levels down
    assert code_digest(ns["f"]) != first


def test_attributes_of_a_module_of_the_program_that_the_code_names() -> None:
    settings = types.ModuleType("settings_for_digest_test")
    settings.THRESHOLD = 1  # type: ignore[attr-defined]
    ns = define("def f(x):\n    return x > settings.THRESHOLD\n", settings=settings)
    first = code_digest(ns["f"])
    settings.THRESHOLD = 2  # type: ignore[attr-defined]
    assert code_digest(ns["f"]) != first
    # A library module is known by its name and version, not looked into.
    lib = define("def f(x):\n    return math.sqrt(x)\n", math=math)
    assert code_digest(lib["f"]) == code_digest(define("def f(x):\n    return math.sqrt(x)\n", math=math)["f"])


def test_closures_defaults_and_keyword_defaults() -> None:
    def make(n: Any) -> Any:
        return lambda x: x * n

    assert code_digest(make(2)) != code_digest(make(3))
    assert code_digest(make([1, 2])) != code_digest(make([1, 3]))  # a closure's contents, not its identity

    def a(x: Any, k: Any = 1) -> Any:
        return x * k

    def b(x: Any, k: Any = 2) -> Any:
        return x * k

    def c(x: Any, *, k: Any = 1) -> Any:
        return x * k

    def d(x: Any, *, k: Any = 2) -> Any:
        return x * k

    assert code_digest(a) != code_digest(b)
    assert code_digest(c) != code_digest(d)


class Scaler:
    def __init__(self, factor: Any) -> None:
        self.factor = factor

    def __call__(self, x: Any) -> Any:
        return x * self.factor


class Doubler:
    def run(self, x: Any) -> Any:
        return x * 2


class Tripler:
    def run(self, x: Any) -> Any:
        return x * 2  # the same code as Doubler.run, another class


def test_callable_objects_and_bound_methods_are_covered_with_their_state() -> None:
    assert code_digest(Scaler(2)) != code_digest(Scaler(3))
    assert code_digest(Scaler(2)) == code_digest(Scaler(2))
    one = Scaler(2)
    before = code_digest(one)
    one.factor = 3  # the same object, its state changed
    assert code_digest(one) != before
    assert code_digest(Doubler().run) != code_digest(Tripler().run)
    assert code_digest(Scaler(2).__call__) != code_digest(Scaler(3).__call__)
    # The state of the object behind a bound method.
    first, second = Doubler(), Doubler()
    second.extra = 1  # type: ignore[attr-defined]
    assert code_digest(first.run) != code_digest(second.run)


def test_class_attributes_and_methods_of_a_class_module() -> None:
    ns = define("class M:\n    factor = 2\n    def process(self, x):\n        return x * self.factor\n")
    first = code_digest(ns["M"])
    ns["M"].factor = 3
    assert code_digest(ns["M"]) != first
    ns["M"].factor = 2
    assert code_digest(ns["M"]) == first
    # A method changed in a base class.
    base = define("class Base:\n    def process(self, x):\n        return x\nclass M(Base):\n    pass\n")
    other = define("class Base:\n    def process(self, x):\n        return -x\nclass M(Base):\n    pass\n")
    assert code_digest(base["M"]) != code_digest(other["M"])


@pytest.mark.parametrize(
    "values",
    [
        (1, 1.0, True, "1", b"1", (1,), [1], None),
        (0.0, -0.0, 0, False),
        (float("nan"), float("inf"), -float("inf"), "nan"),
        (b"ab", "ab", bytearray(b"ab")),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # map order: iterating them differs
        ((1, (2, 3)), ((1, 2), 3), (1, 2, 3)),
        (("ab", "c"), ("a", "bc")),
        (10**5000, 10**5000 + 1),  # past repr's digit limit
        (frozenset({1}), {1}, (1,)),
    ],
)
def test_values_a_closure_holds_do_not_collide(values: tuple[Any, ...]) -> None:
    def holding(value: Any) -> Any:
        return lambda x: (x, value)

    digests = [code_digest(holding(v)) for v in values]
    assert len(set(digests)) == len(values), values


def test_sets_digest_alike_in_every_process() -> None:
    # String hashing differs between processes: the set's order must not matter.
    program = (
        "from module_registry._digest import code_digest\n"
        "names = {'alpha', 'beta', 'gamma', 'delta', 'epsilon'}\n"
        "f = lambda x, names=names: x in names\n"
        "print(code_digest(f))\n"
    )
    outs = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, env={"PYTHONHASHSEED": seed, "PATH": ""}
        )
        assert done.returncode == 0, done.stderr
        outs.add(done.stdout)
    assert len(outs) == 1


def test_what_has_no_stable_digest_is_undigestable() -> None:
    def gen() -> Any:
        yield 1

    held = gen()
    with pytest.raises(Undigestable, match="generator"):
        code_digest(lambda x: (x, held))
    deep: Any = []
    for _ in range(500):
        deep = [deep]
    with pytest.raises(Undigestable, match="nested"):
        code_digest(lambda x: (x, deep))
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)  # a cycle is fine, and stable
    assert code_digest(lambda x: (x, cyclic)) == code_digest(lambda x: (x, cyclic))


def test_the_digest_is_bounded_in_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    from module_registry import _digest

    monkeypatch.setattr(_digest, "_MAX_DIGEST_NODES", 1000)
    wide = list(range(2000))
    with pytest.raises(Undigestable, match="more than 1000 objects"):
        code_digest(lambda x: (x, wide))


def test_locks_and_library_objects_do_not_make_code_undigestable() -> None:
    import logging
    import threading

    lock = threading.Lock()
    log = logging.getLogger("digest-test")
    ns = define("def f(x):\n    with lock:\n        log.debug('x')\n        return x\n", lock=lock, log=log)
    assert code_digest(ns["f"]) == code_digest(ns["f"])
    assert len(code_digest(math.sqrt)) == 64 and len(code_digest(sorted)) == 64
