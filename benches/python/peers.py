"""What users would pick instead: a plain Python registry, pluggy, and
entry points (importlib.metadata / stevedore), set up for the benchmarks."""

from __future__ import annotations

import random
from typing import Any, Callable

import pluggy

import module_registry as mr

VOCABULARY = 200
NEEDLES = 10


class PurePythonRegistry:
    """The straightforward registry: a dict by name plus an index from
    capability to the set of names having it."""

    def __init__(self) -> None:
        self.modules: dict[str, dict[str, Any]] = {}
        self.by_capability: dict[str, set[str]] = {}

    def register(self, name: str, capabilities: list[str], handler: Callable[[Any], Any]) -> None:
        self.modules[name] = {"capabilities": frozenset(capabilities), "handler": handler}
        for cap in capabilities:
            self.by_capability.setdefault(cap, set()).add(name)

    def discover(self, required: list[str]) -> list[str]:
        sets = sorted((self.by_capability.get(c, set()) for c in required), key=len)
        if not sets:
            return sorted(self.modules)
        return sorted(set.intersection(*sets))

    def create(self, name: str) -> Callable[[Any], Any]:
        return self.modules[name]["handler"]


def capabilities_for(n: int, seed: int = 7) -> list[list[str]]:
    """Three random capabilities per module from a vocabulary of 200, plus
    the pair needle-a/needle-b on NEEDLES modules whatever n."""
    rng = random.Random(seed)
    out = []
    step = max(n // NEEDLES, 1)
    for i in range(n):
        caps = {f"cap-{rng.randrange(VOCABULARY)}" for _ in range(3)}
        if i % step == 0:
            caps |= {"needle-a", "needle-b"}
        out.append(sorted(caps))
    return out


def filled_module_registry(n: int) -> mr.ModuleRegistry:
    registry = mr.ModuleRegistry()
    for i, caps in enumerate(capabilities_for(n)):
        registry.register(mr.ModuleConfig(name=f"module-{i}", capabilities=caps))
    return registry


def filled_pure_registry(n: int) -> PurePythonRegistry:
    registry = PurePythonRegistry()
    for i, caps in enumerate(capabilities_for(n)):
        registry.register(f"module-{i}", caps, lambda x: x)
    return registry


def pure_python_bytes_per_module(n: int) -> float:
    """Memory per module of the pure-Python registry holding `n` modules
    (traced by tracemalloc: what registering allocates, names included; the
    capability strings exist beforehand and the handler is one shared
    function, so neither is counted)."""
    import gc
    import tracemalloc

    caps = capabilities_for(n)

    def handler(x: Any) -> Any:
        return x

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        registry = PurePythonRegistry()
        for i, module_caps in enumerate(caps):
            registry.register(f"module-{i}", module_caps, handler)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(registry.modules) == n
    return (after - before) / n


hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


class Spec:
    @hookspec
    def process(self, value: Any) -> Any:  # type: ignore[empty-body]
        """Process a value."""


def make_plugin() -> object:
    class Plugin:
        @hookimpl
        def process(self, value: Any) -> Any:
            return value

    return Plugin()


def pluggy_manager(implementations: int) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Spec)
    for _ in range(implementations):
        pm.register(make_plugin())
    return pm
