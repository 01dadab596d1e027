"""Instances from Python: failures stay inside their call."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import module_registry as mr


def double(x: int) -> int:
    """A module-level function: a manifest records it by import path."""
    return x * 2


class Greeter:
    """A module-level class module."""

    def process(self, name: str) -> str:
        return f"hello {name}"


def make_policy() -> mr.AccessPolicy:
    return (
        mr.AccessPolicy()
        .grant("reader", ["discover"])
        .grant("runner", ["create"], modules="text-*")
        .grant("publisher", ["register", "unregister"], modules="team-*")
        .grant("root", ["admin"])
        .assign("alice", "reader")
        .assign("alice", "runner")
        .assign("alice", "publisher")
        .assign("bob", "reader")
        .assign("root", "root")
    )


def test_isolation_of_python_exceptions(registry: mr.ModuleRegistry) -> None:
    registry.register(mr.ModuleConfig(name="bad"), lambda x: 1 / 0)
    registry.register(mr.ModuleConfig(name="good"), double)
    bad, good = registry.create("bad"), registry.create("good")
    for i in range(3):
        with pytest.raises(mr.ModuleFailedError):
            bad.process(i)
        assert good.process(i) == 2 * i
    assert len(registry) == 2
