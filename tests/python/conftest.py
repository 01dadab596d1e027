"""Shared fixtures for the Python tests."""

from __future__ import annotations

import pytest

import module_registry as mr


@pytest.fixture
def registry() -> mr.ModuleRegistry:
    return mr.ModuleRegistry()


@pytest.fixture
def native() -> mr.ModuleRegistry:
    return mr.ModuleRegistry(native_modules=True)
