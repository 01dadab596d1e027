"""Instances from Python: failures stay inside their call."""

from __future__ import annotations


import pytest

import module_registry as mr


def double(x: int) -> int:
    """A module-level function: a manifest records it by import path."""
    return x * 2


def test_isolation_of_python_exceptions(registry: mr.ModuleRegistry) -> None:
    registry.register(mr.ModuleConfig(name="bad"), lambda x: 1 / 0)
    registry.register(mr.ModuleConfig(name="good"), double)
    bad, good = registry.create("bad"), registry.create("good")
    for i in range(3):
        with pytest.raises(mr.ModuleFailedError):
            bad.process(i)
        assert good.process(i) == 2 * i
    assert len(registry) == 2


def test_identity_gives_back_immutable_inputs_and_copies_of_mutable_ones() -> None:
    inst = mr.ModuleRegistry(native_modules=True).create("identity")
    data, text = b"input data", "input text"
    assert inst.process(data) == data and type(inst.process(data)) is bytes
    assert inst.process(text) == text
    items = [1, [2, 3]]
    out = inst.process(items)
    assert out == items and out is not items
    out[1].append(4)
    assert items == [1, [2, 3]]
    # A module whose output differs from its input still gives its own output.
    encode = mr.ModuleRegistry(native_modules=True).create("text-encode")
    assert encode.process("abc") == b"abc"
