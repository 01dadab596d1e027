"""Whole-process memory per registered module, as a Python user feels it.

    python benches/python/rss.py module_registry|pure_python [N]

Run in a fresh interpreter: makes the names and capability lists first, one
shared handler, then registers N modules and prints the growth of the
process's resident memory (from /proc/self/statm) divided by N. The same
measurement for the pure-Python dict + capability index registry sits beside
it in benches/README.md.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def handler(value: Any) -> Any:
    return value


def measure(which: str, n: int) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peers import capabilities_for

    names = [f"module-{i}" for i in range(n)]
    caps = capabilities_for(n)
    if which == "module_registry":
        import module_registry as mr

        registry = mr.ModuleRegistry()
        register = lambda i: registry.register(mr.ModuleConfig(name=names[i], capabilities=caps[i]), handler)  # noqa: E731
        register_warm = lambda: registry.register(mr.ModuleConfig(name="warm-up", capabilities=["x"]), handler)  # noqa: E731
    elif which == "pure_python":
        from peers import PurePythonRegistry

        pure = PurePythonRegistry()
        register = lambda i: pure.register(names[i], caps[i], handler)  # noqa: E731
        register_warm = lambda: pure.register("warm-up", ["x"], handler)  # noqa: E731
    else:
        raise SystemExit(f"unknown registry {which!r}")
    register_warm()
    gc.collect()
    before = resident_bytes()
    for i in range(n):
        register(i)
    gc.collect()
    return (resident_bytes() - before) / n


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    print(f"{measure(sys.argv[1], n):.1f}")
