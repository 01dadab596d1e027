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
