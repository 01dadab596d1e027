"""Values crossing into Rust and back."""

from __future__ import annotations

import enum
import subprocess
import sys
import threading
from collections import OrderedDict
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import module_registry as mr
from module_registry._core import _roundtrip as roundtrip


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -5, 2**63 - 1, 1.5, float("inf"), "", "héllo", b"", b"\x00\xff", [1, "a"], {"k": [None, {"n": 1.0}]}],
)
def test_plain_values_round_trip(native: mr.ModuleRegistry, value: Any) -> None:
    out = native.create("identity").process(value)
    assert out == value and type(out) is type(value)


def test_tuples_become_lists() -> None:
    assert roundtrip((1, (2, 3))) == [1, [2, 3]]


class Thing:
    pass


@pytest.mark.parametrize(
    "value",
    [Thing(), 2**70, OrderedDict(a=1), {1: "int key"}, object(), bytearray(b"x"), {"a", "b"}, 3 + 4j],
)
def test_other_objects_come_back_as_the_same_object(native: mr.ModuleRegistry, value: Any) -> None:
    assert native.create("identity").process(value) is value
    assert roundtrip([value])[0] is value


def test_opaque_objects_pass_through_a_chain(native: mr.ModuleRegistry) -> None:
    class Frame:
        pass

    frame = Frame()
    seen: list[Any] = []

    def peek(v: Any) -> Any:
        seen.append(v["frame"])
        return v

    native.register(mr.ModuleConfig(name="peek"), peek)
    out = native.orchestrate(["identity", "peek", "identity"], {"frame": frame, "n": 1})
    assert out["frame"] is frame and seen[0] is frame


def test_self_containing_lists_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="deeper"):
        roundtrip(loop)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_conversion_is_lossless(value: Any) -> None:
    assert roundtrip(value) == value


def test_errors_about_opaque_values_name_their_type(native: mr.ModuleRegistry) -> None:
    class Frame:
        pass

    with pytest.raises(mr.ModuleFailedError, match=r"opaque value \(Python .*Frame\) has no JSON form"):
        native.create("json-encode").process({"frame": Frame()})
    with pytest.raises(mr.ModuleFailedError, match=r"opaque value \(Python _thread.lock\)"):
        native.create("json-encode").process(threading.Lock())


# --- subclasses and numpy scalars (issue 26) ---------------------------------



class Name(str):
    def __str__(self) -> str:
        raise RuntimeError("__str__ must not be called")


class Count(int):
    def __index__(self) -> int:
        raise RuntimeError("__index__ must not be called")

    def __int__(self) -> int:
        raise RuntimeError("__int__ must not be called")


class Weird(float):
    def __float__(self) -> float:
        raise RuntimeError("__float__ must not be called")


class Blob(bytes):
    pass


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Name("Ada"), "Ada"),
        (Count(7), 7),
        (Weird(2.5), 2.5),
        (Blob(b"\x00z"), b"\x00z"),
        (Level.HIGH, 3),
        (np.str_("Hello World"), "Hello World"),
        (np.bytes_(b"ab"), b"ab"),
        (np.int64(-5), -5),
        (np.int8(3), 3),
        (np.uint64(2**63 - 1), 2**63 - 1),
        (np.float64(1.5), 1.5),
        (np.float32(0.1), float(np.float32(0.1))),  # the exact float32 value, widened
        (np.float16(0.5), 0.5),
        (np.bool_(True), True),
        (np.bool_(False), False),
    ],
)
def test_subclasses_and_numpy_scalars_arrive_as_their_base_type(native: mr.ModuleRegistry, value: Any, expected: Any) -> None:
    out = native.create("identity").process(value)
    assert out == expected and type(out) is type(expected)
    if not isinstance(expected, bytes):
        encode = native.create("json-encode")
        assert encode.process({"v": value}) == encode.process({"v": expected})


def test_nan_in_a_float_subclass_stays_nan() -> None:
    out = roundtrip([Weird("nan"), np.float64("nan"), np.float32("-inf")])
    assert out[0] != out[0] and out[1] != out[1] and out[2] == float("-inf")
    assert all(type(x) is float for x in out)


@pytest.mark.parametrize(
    "value",
    [
        np.uint64(2**64 - 1),  # past i64: the same object, never wrapped or rounded
        Count(2**70),
        np.longdouble("1.1"),  # a float would round it
        np.arange(3),
        np.datetime64("2020-01-01T00:00:00.000000000"),
        np.timedelta64(5, "ns"),  # an integer type, but a duration
        np.complex64(1j),
        Decimal("0.1"),
        datetime(2020, 1, 1),
        frozenset({1}),
        memoryview(b"ab"),
        {1: "a", "b": 2},
        {(1, 2): "tuple key"},
    ],
)
def test_what_has_no_exact_value_stays_the_same_object(native: mr.ModuleRegistry, value: Any) -> None:
    assert native.create("identity").process(value) is value
    assert roundtrip({"v": value})["v"] is value


def test_str_subclass_keys_become_text_and_colliding_keys_are_refused() -> None:
    assert roundtrip({np.str_("k"): np.int64(1), Name("n"): Level.HIGH}) == {"k": 1, "n": 3}

    class Loose(str):
        def __hash__(self) -> int:
            return id(self)

        def __eq__(self, other: object) -> bool:
            return self is other

    with pytest.raises(ValueError, match=r"two keys that are both the text 'a'|two keys that are both the text \"a\""):
        roundtrip({"a": 1, Loose("a"): 2})


def test_a_dict_changed_while_it_converts_is_not_a_crash() -> None:
    # A finaliser the collector runs mid-conversion (at an allocation the
    # conversion makes) changes the dict being walked: an iterator over the
    # live dict would panic ("changed size during iteration").
    import gc

    d: dict[str, Any] = {f"k{i}": {"inner": i} for i in range(200)}
    ran: list[int] = []

    class Sneaky:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

        def __del__(self) -> None:
            ran.append(1)
            d[f"late{len(ran)}"] = {}
            if len(ran) < 50:
                Sneaky()  # more garbage for the next collection

    old = gc.get_threshold()
    gc.collect()
    try:
        gc.set_threshold(1)
        Sneaky()
        out = roundtrip(d)
    finally:
        gc.set_threshold(*old)
        gc.collect()
    assert ran, "the collector never ran during the conversion"
    assert all(out[f"k{i}"] == {"inner": i} for i in range(200))


def test_numpy_is_never_imported_by_a_conversion() -> None:
    code = (
        "import sys, module_registry as mr\n"
        "from module_registry._core import _roundtrip\n"
        "class S(str): pass\n"
        "assert _roundtrip([S('x'), 1, object()])[:2] == ['x', 1]\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_batches_of_ten_thousand(native: mr.ModuleRegistry) -> None:
    values = np.arange(10_000, dtype=np.int64)
    out = native.create("identity").process(list(values))
    assert out == list(range(10_000)) and all(type(x) is int for x in out)
    floats = np.linspace(0, 1, 10_000)
    assert native.create("identity").process(list(floats)) == floats.tolist()
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    records = frame.to_dict("records")  # numpy scalars inside
    assert native.create("identity").process(records) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert native.create("identity").process(frame) is frame
    assert native.create("identity").process(frame["a"].iloc[0]) == 1
    batch = native.run_workflow_batch(mr.Workflow("same").then("identity"), np.arange(10_000))
    assert [r.output for r in batch] == list(range(10_000))
    assert all(type(r.output) is int for r in batch)


def test_a_native_given_an_object_it_cannot_use_names_its_type(native: mr.ModuleRegistry) -> None:
    for name in ["text-encode", "sha256", "base64-encode", "json-decode"]:
        with pytest.raises(mr.ModuleFailedError, match=r"opaque value \(Python numpy.ndarray\)"):
            native.create(name).process(np.arange(3))

    # No JSON text for what has no exact JSON form: int keys, bytes, NaN, huge ints.
    encode = native.create("json-encode")
    for value, message in [
        ({1: "a"}, r"opaque value \(Python dict\) has no JSON form"),
        ({"b": b"x"}, "bytes have no JSON form"),
        ([np.float64("nan")], "no JSON form"),
        ([np.uint64(2**64 - 1)], r"opaque value \(Python numpy.uint64\)"),
        ([2**70], r"opaque value \(Python int\)"),
    ]:
        with pytest.raises(mr.ModuleFailedError, match=message):
            encode.process(value)


def test_a_lone_surrogate_is_a_typed_error_saying_where() -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    identity = registry.create("identity")
    with pytest.raises(mr.ValidationError, match=r"a str \('\\ud800' at index 1\) holds a lone surrogate.* at \$$") as caught:
        identity.process("a\ud800b")
    assert isinstance(caught.value.__cause__, UnicodeEncodeError)
    with pytest.raises(mr.ValidationError, match=r"^invalid input: a str .*lone surrogate.* at \$\[1\]\[\"k\"\]\[0\]$"):
        identity.process(["ok", {"k": ("\udcff",)}])
    with pytest.raises(mr.ValidationError, match=r"^invalid input: a str .*lone surrogate.* at \$\[\"x\"\] \(a key\)$"):
        identity.process({"x": {"\udc80": 1}})
    # Text passed with surrogatepass is bytes, and fine.
    assert identity.process("a\ud800b".encode("utf-8", "surrogatepass")) == b"a\xed\xa0\x80b"
