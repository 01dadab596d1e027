"""Values crossing into Rust and back."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

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
