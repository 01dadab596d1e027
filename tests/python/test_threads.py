"""One registry shared by many Python threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import module_registry as mr


def test_threads_register_discover_create_and_process(native: mr.ModuleRegistry) -> None:
    def work(t: int) -> int:
        done = 0
        for i in range(50):
            name = f"t{t}-m{i}"
            native.register(mr.ModuleConfig(name=name, capabilities=["bulk", f"thread-{t}"]), lambda v, n=name: f"{n}:{v}")
            assert native.create(name).process(i) == f"{name}:{i}"
            found = native.discover(capabilities=["bulk", f"thread-{t}"])
            # Those with j % 5 == 0 for j < i were unregistered again.
            assert len(found) == i + 1 - (i + 4) // 5
            assert native.create("sha256").process(name.encode()) is not None
            if i % 5 == 0:
                native.unregister(name)
            done += 1
        return done

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(work, range(8))) == 400
    assert len(native.discover(capabilities=["bulk"])) == 8 * 40


def test_one_instance_from_many_threads(registry: mr.ModuleRegistry) -> None:
    lock = threading.Lock()
    calls: list[int] = []

    def record(v: int) -> int:
        with lock:
            calls.append(v)
        return v * v

    registry.register(mr.ModuleConfig(name="sq"), record)
    inst = registry.create("sq")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(inst.process, range(200)))
    assert results == [v * v for v in range(200)]
    assert sorted(calls) == list(range(200))


def test_a_python_module_may_call_back_into_the_registry(native: mr.ModuleRegistry) -> None:
    def nested(v: bytes) -> str:
        # Runs inside a call from Rust; creating and processing again must not deadlock.
        digest = native.create("sha256").process(v)
        native.register(mr.ModuleConfig(name=f"made-{len(native)}"))
        return str(digest)

    native.register(mr.ModuleConfig(name="nested"), nested)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outs = list(pool.map(lambda i: native.create("nested").process(b"abc"), range(20)))
    assert set(outs) == {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
