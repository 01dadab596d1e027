"""The shipped script modules against plain Python on realistic inputs
(titles of 20-80 characters, texts of 0.5-5 KB; `shipped_peers.py`). Each
benchmark runs one module, or its plain-Python equivalent, over the same
set of inputs; the target is at most 5x the plain-Python time.
`benches/python/shipped.py` gives the ratios interleaved in one run.

Disabled by default: under `make test` every benchmark runs once as a test
and checks its result; `make bench` measures them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import module_registry as mr

sys.path.insert(0, str(Path(__file__).parent))
from shipped_peers import CASES  # noqa: E402

NAMES = sorted(CASES)


@pytest.fixture(scope="module")
def registry() -> mr.ModuleRegistry:
    return mr.ModuleRegistry(bundled_scripts=True)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_module_matches_plain_python(registry: mr.ModuleRegistry, name: str) -> None:
    plain, make = CASES[name]
    instance = registry.create(name)
    for x in make():
        assert instance.process(x) == plain(x)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_module(benchmark: Any, registry: mr.ModuleRegistry, name: str) -> None:
    plain, make = CASES[name]
    inputs = make()
    process = registry.create(name).process
    out = benchmark(lambda: [process(x) for x in inputs])
    assert out == [plain(x) for x in inputs]


@pytest.mark.parametrize("name", NAMES)
def test_shipped_module_plain_python(benchmark: Any, name: str) -> None:
    plain, make = CASES[name]
    inputs = make()
    out = benchmark(lambda: [plain(x) for x in inputs])
    assert len(out) == len(inputs)
