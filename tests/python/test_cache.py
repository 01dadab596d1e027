"""The step cache from Python: hits and misses, what the key covers, what
is never kept, and the shipped workflows giving the same results cached."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

import module_registry as mr

ROOT = Path(__file__).resolve().parents[2]


class Calls(list[Any]):
    """A record of calls that decides no output: its token says so (else a
    closure holding it would change its code's digest at each call)."""

    def __module_registry_token__(self) -> str:
        return "calls"


def test_cached_steps_hit_on_the_second_run(registry: mr.ModuleRegistry) -> None:
    calls = Calls()

    def double(x: Any, config: Any = None) -> Any:  # takes a config (see below)
        calls.append(x)
        return x * 2

    registry.register(mr.ModuleConfig(name="double"), double)
    wf = mr.Workflow("w").then("double", cache=True)
    assert registry.run_workflow(wf, 2).steps[0].cache == "off"  # no cache set yet
    assert registry.cache_stats() == {"hits": 0, "misses": 0, "unhashable": 0, "entries": 0, "bytes": 0, "enabled": False}
    registry.set_cache(memory_items=100)
    first, second = registry.run_workflow(wf, 21), registry.run_workflow(wf, 21)
    assert (first.steps[0].cache, second.steps[0].cache) == ("miss", "hit")
    assert first.output == second.output == 42 and second.steps[0].attempts == 0
    assert calls == [2, 21]
    stats = registry.cache_stats()
    assert (stats["hits"], stats["misses"], stats["entries"], stats["enabled"]) == (1, 1, 1, True)
    # The step's config is part of the key.
    assert registry.run_workflow(mr.Workflow("w").then("double", cache=True, config={"k": 1}), 21).steps[0].cache == "miss"
    # New code under the same name and version: a miss, the new output.
    registry.replace(mr.ModuleConfig(name="double"), lambda x: x * 3)
    again = registry.run_workflow(wf, 21)
    assert (again.steps[0].cache, again.output) == ("miss", 63)
    registry.clear_cache()
    assert registry.cache_stats()["entries"] == 0 and registry.cache_stats()["hits"] == 0


def test_opaque_inputs_failures_and_uncacheable_modules(registry: mr.ModuleRegistry) -> None:
    registry.set_cache()

    class Thing:
        pass

    registry.register(mr.ModuleConfig(name="same"), lambda x: x)
    wf = mr.Workflow("w").then("same", cache=True)
    thing = Thing()
    out = registry.run_workflow(wf, thing)
    assert out.output is thing and out.steps[0].cache == "unhashable"
    assert registry.cache_stats()["unhashable"] == 1
    attempts = Calls()  # a list would change the closure's digest at each call

    def flaky(x: Any) -> Any:
        attempts.append(x)
        if len(attempts) == 1:
            raise RuntimeError("first call fails")
        return x

    registry.register(mr.ModuleConfig(name="flaky"), flaky)
    flaky_wf = mr.Workflow("f").then("flaky", cache=True)
    with pytest.raises(mr.WorkflowError):
        registry.run_workflow(flaky_wf, 1)
    assert registry.run_workflow(flaky_wf, 1).steps[0].cache == "miss"  # the failure was not kept
    assert registry.run_workflow(flaky_wf, 1).steps[0].cache == "hit"
    registry.register(mr.ModuleConfig(name="clock", metadata={"cacheable": "false"}), lambda x: x)
    assert registry.run_workflow(mr.Workflow("c").then("clock", cache=True), 1).steps[0].cache == "off"


def test_bad_settings_and_reports(registry: mr.ModuleRegistry) -> None:
    with pytest.raises(mr.ValidationError, match="memory_items"):
        registry.set_cache(memory_items=0)
    bads: list[Any] = [-1, True, 2**64, 1.5, "10"]
    for bad in bads:
        with pytest.raises(mr.ValidationError, match="memory_items must be a whole number from 1 to"):
            registry.set_cache(memory_items=bad)
    with pytest.raises(mr.ValidationError, match="max_bytes must be a whole number from 1 to"):
        registry.set_cache(max_bytes=-5)
    report = mr.StepReport("a", "m", "1.0.0", "ok", 0, 0.0, 0.0, None, "hit")
    assert pickle.loads(pickle.dumps(report)) == report and report.cache == "hit"
    with pytest.raises(mr.ValidationError, match="cache must be one of"):
        mr.StepReport("a", "m", "1.0.0", "ok", 0, 0.0, 0.0, None, "maybe")
    wf = mr.Workflow("w").then("identity", cache=True)
    assert "cache = true" in wf.to_toml() and wf.to_dict()["steps"][0]["cache"] is True
    assert "cache" not in mr.Workflow("w").then("identity").to_toml()


def test_a_view_needs_admin_to_set_the_cache(native: mr.ModuleRegistry) -> None:
    native.set_policy(mr.AccessPolicy().grant("r", ["discover", "create"]).assign("alice", "r"))
    with pytest.raises(mr.PermissionDeniedError):
        native.as_principal("alice").set_cache()
    with pytest.raises(mr.PermissionDeniedError):
        native.as_principal("alice").clear_cache()


@pytest.mark.parametrize(
    "path", sorted(p for p in (ROOT / "examples" / "workflows").iterdir() if p.name != "input.json"), ids=lambda p: p.name
)
def test_shipped_workflows_give_the_same_results_cached(path: Path) -> None:
    registry = mr.ModuleRegistry(native_modules=True, bundled_scripts=True)
    data = mr.Workflow.load(path).to_dict()
    for step in data["steps"]:
        step["cache"] = True
    cached = mr.Workflow.from_dict(data)
    plain = mr.Workflow.load(path)
    # Each shipped workflow with the input it is documented with.
    inputs = {"text-report.toml": json.loads((path.parent / "input.json").read_text()), "pack.json": "some text to pack"}
    value = inputs[path.name]
    expected = registry.run_workflow(plain, value).output
    registry.set_cache()
    first = registry.run_workflow(cached, value)
    second = registry.run_workflow(cached, value)
    assert first.output == expected and second.output == expected
    assert {s.cache for s in second.steps} == {"hit"}


def test_opaque_objects_with_a_token_are_cached(registry: mr.ModuleRegistry) -> None:
    registry.set_cache()
    runs = Calls()

    class Frame:
        def __init__(self, rows: int) -> None:
            self.rows = rows

        def __module_registry_token__(self) -> bytes:
            return f"frame:{self.rows}".encode()

    class Broken:
        def __module_registry_token__(self) -> bytes:
            raise RuntimeError("no token today")

    def size(frame: Any) -> Any:
        runs.append(frame)
        return getattr(frame, "rows", None)

    registry.register(mr.ModuleConfig(name="size"), size)
    wf = mr.Workflow("w").then("size", cache=True)
    assert registry.run_workflow(wf, Frame(3)).steps[0].cache == "miss"
    hit = registry.run_workflow(wf, Frame(3))  # another object, the same token
    assert (hit.steps[0].cache, hit.output) == ("hit", 3)
    assert registry.run_workflow(wf, Frame(4)).steps[0].cache == "miss"
    # A token that fails is no error: the step runs, unhashable.
    assert registry.run_workflow(wf, Broken()).steps[0].cache == "unhashable"
    assert registry.run_workflow(wf, [Frame(3), 1]).steps[0].cache == "miss"  # nested
    assert len(runs) == 4


WRITER = """
import sys
import module_registry as mr
registry = mr.ModuleRegistry()
registry.register_script('const MODULE = #{ name: "sq", version: "1.0.0" }; fn process(x) { x * x }')
registry.set_cache(path=sys.argv[1])
wf = mr.Workflow("w").then("sq", cache=True)
start = int(sys.argv[2])
for n in range(start, start + 300):
    assert registry.run_workflow(wf, n).output == n * n
print(registry.cache_stats()["misses"])
"""


def test_two_processes_share_one_cache_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "cache"
    # Overlapping inputs, written at the same time.
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for start in (0, 150)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert not any("warning" in err for _, err in outs), outs
    reader = mr.ModuleRegistry()
    reader.register_script('const MODULE = #{ name: "sq", version: "1.0.0" }; fn process(x) { x * x }')
    reader.set_cache(path=folder)
    assert reader.cache_stats()["entries"] == 450  # nothing lost
    wf = mr.Workflow("w").then("sq", cache=True)
    results = [reader.run_workflow(wf, n) for n in (0, 299, 449)]
    assert [r.steps[0].cache for r in results] == ["hit", "hit", "hit"]
    assert [r.output for r in results] == [0, 299 * 299, 449 * 449]


def test_a_truncated_cache_file_gives_a_fresh_cache(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    registry.set_cache(path=tmp_path)
    wf = mr.Workflow("w").then("sha256", cache=True)
    for n in range(20):
        registry.run_workflow(wf, f"input {n}")
    del registry
    import gc

    gc.collect()
    file = tmp_path / "steps-v1.sqlite"
    file.write_bytes(file.read_bytes()[:1000])
    fresh = mr.ModuleRegistry(native_modules=True)
    fresh.set_cache(path=tmp_path)
    assert "a fresh cache is started" in capfd.readouterr().err
    out = fresh.run_workflow(wf, "input 3")
    assert out.steps[0].cache == "miss" and len(out.output) == 64
    assert fresh.run_workflow(wf, "input 3").steps[0].cache == "hit"


def test_the_cli_caches_runs_in_a_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "module_registry", *args], capture_output=True, text=True, timeout=120)

    workflow = ROOT / "examples" / "workflows" / "text-report.toml"
    args = ["run", str(workflow), "--scripts", str(ROOT / "scripts"), "--input", str(ROOT / "examples" / "workflows" / "input.json")]
    plain = cli(*args)
    first = cli(*args, "--cache", str(tmp_path / "c"))
    second = cli(*args, "--cache", str(tmp_path / "c"))
    assert plain.returncode == first.returncode == second.returncode == 0, first.stderr
    assert plain.stdout == first.stdout == second.stdout
    stats = cli("cache", "stats", str(tmp_path / "c"))
    assert stats.returncode == 0 and " 0 entries" not in stats.stdout and "entries" in stats.stdout
    assert cli("cache", "clear", str(tmp_path / "c")).returncode == 0
    assert " 0 entries" in cli("cache", "stats", str(tmp_path / "c")).stdout
    missing = cli("cache", "stats", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "not a cache folder" in missing.stderr


def test_python_modules_are_keyed_by_their_code_on_disk(tmp_path: Path) -> None:
    def triple(x: Any) -> Any:
        return x * 3

    def quadruple(x: Any) -> Any:
        return x * 4

    def run(handler: Any, metadata: dict[str, str] | None = None) -> mr.WorkflowResult:
        registry = mr.ModuleRegistry()
        registry.register(mr.ModuleConfig(name="f", metadata=metadata or {}), handler)
        registry.set_cache(path=tmp_path)
        return registry.run_workflow(mr.Workflow("w").then("f", cache=True), 7)

    assert run(triple).steps[0].cache == "miss"
    again = run(triple)  # a new registry, as a new process: the same code
    assert (again.steps[0].cache, again.output) == ("hit", 21)
    other = run(quadruple)  # other code under the same name and version
    assert (other.steps[0].cache, other.output) == ("miss", 28)
    # A declared code_version wins: the code behind it is not looked at.
    run(triple, {"code_version": "2024-1"})
    assert run(quadruple, {"code_version": "2024-1"}).output == 21


def test_a_cache_path_that_is_a_file_is_a_typed_error(tmp_path: Path, registry: mr.ModuleRegistry) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(mr.ModuleRegistryError, match="not-a-folder"):
        registry.set_cache(path=blocker)
    assert registry.cache_stats()["enabled"] is False  # the registry is as it was
    with pytest.raises(mr.ValidationError, match="max_bytes"):
        registry.set_cache(path=tmp_path / "c", max_bytes=0)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        import os

        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc")
def test_a_huge_memory_items_reserves_nothing(registry: mr.ModuleRegistry) -> None:
    registry.register(mr.ModuleConfig(name="double"), lambda x: x * 2)
    wf = mr.Workflow("w").then("double", cache=True)
    before = rss_bytes()
    for items in (10**8, 10**10, 10**18, 2**64 - 1):  # aborted the process, panicked, reserved 130 MB
        registry.set_cache(memory_items=items)
        assert registry.run_workflow(wf, 2).steps[0].cache == "miss"
        assert registry.run_workflow(wf, 2).steps[0].cache == "hit"
    assert rss_bytes() - before < 32 * 1024 * 1024
    # The bound still holds for a small one: the least recently used goes.
    registry.set_cache(memory_items=2)
    for n in (1, 2, 3):
        registry.run_workflow(wf, n)
    assert registry.cache_stats()["entries"] == 2
    assert registry.run_workflow(wf, 1).steps[0].cache == "miss"
    assert registry.run_workflow(wf, 3).steps[0].cache == "hit"


class Scaler:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor


def test_code_and_state_changed_between_runs_are_misses(registry: mr.ModuleRegistry) -> None:
    registry.set_cache()
    wf = mr.Workflow("w").then("scale", cache=True)
    registry.register(mr.ModuleConfig(name="scale"), Scaler(2))
    assert registry.run_workflow(wf, 5).output == 10
    registry.replace(mr.ModuleConfig(name="scale"), Scaler(3))  # was a stale hit: 10
    again = registry.run_workflow(wf, 5)
    assert (again.steps[0].cache, again.output) == ("miss", 15)
    # The same object, its state changed between runs.
    scaler = Scaler(4)
    registry.replace(mr.ModuleConfig(name="scale"), scaler)
    assert registry.run_workflow(wf, 5).output == 20
    scaler.factor = 5
    assert registry.run_workflow(wf, 5).output == 25
    # A module-level constant and a helper the function reads.
    ns: dict[str, Any] = {"__name__": "notebook", "FACTOR": 2}
    exec("def helper(x):\n    return x + 1\n\ndef f(x):\n    return helper(x) * FACTOR\n", ns)
    registry.register(mr.ModuleConfig(name="f"), ns["f"])
    fwf = mr.Workflow("g").then("f", cache=True)
    assert registry.run_workflow(fwf, 1).output == 4
    assert registry.run_workflow(fwf, 1).steps[0].cache == "hit"
    ns["FACTOR"] = 3
    assert registry.run_workflow(fwf, 1).output == 6
    exec("def helper(x):\n    return x + 2\n", ns)  # a helper redefined in a notebook
    assert registry.run_workflow(fwf, 1).output == 9
    # Bound methods of two classes with the same code.
    class A:
        def run(self, x: int) -> str:
            return f"{type(self).__name__}{x}"

    class B(A):
        pass

    registry.register(mr.ModuleConfig(name="m"), A().run)
    mwf = mr.Workflow("m").then("m", cache=True)
    assert registry.run_workflow(mwf, 1).output == "A1"
    registry.replace(mr.ModuleConfig(name="m"), B().run)
    assert registry.run_workflow(mwf, 1).output == "B1"
    # Class attributes of a class module.
    class K:
        factor = 2

        def process(self, x: int) -> int:
            return x * self.factor

    registry.register(mr.ModuleConfig(name="k"), K)
    kwf = mr.Workflow("k").then("k", cache=True)
    assert registry.run_workflow(kwf, 1).output == 2
    K.factor = 7
    assert registry.run_workflow(kwf, 1).output == 7


def test_the_key_covers_the_code_of_dependencies(registry: mr.ModuleRegistry) -> None:
    registry.set_cache()

    class App:
        def init(self, config: object, dependencies: dict[str, mr.ModuleInstance]) -> None:
            self.db = dependencies["db"]

        def process(self, x: int) -> Any:
            return self.db.process(x)

    registry.register(mr.ModuleConfig(name="db", version="1.0.0"), lambda x: x + 1)
    registry.register(mr.ModuleConfig(name="app", dependencies={"db": "^1"}), App)
    wf = mr.Workflow("w").then("app", cache=True)
    assert registry.run_workflow(wf, 1).output == 2
    assert registry.run_workflow(wf, 1).steps[0].cache == "hit"
    registry.replace(mr.ModuleConfig(name="db", version="1.0.0"), lambda x: x + 100)
    again = registry.run_workflow(wf, 1)  # was a stale hit: 2
    assert (again.steps[0].cache, again.output) == ("miss", 101)
    # A newer version of the dependency, chosen by the requirement.
    registry.register(mr.ModuleConfig(name="db", version="1.1.0"), lambda x: x - 1)
    assert registry.run_workflow(wf, 1).output == 0


def test_code_holding_state_without_a_digest_is_never_cached(registry: mr.ModuleRegistry) -> None:
    registry.set_cache()

    def numbers() -> Any:
        n = 0
        while True:
            n += 1
            yield n

    counter = numbers()
    registry.register(mr.ModuleConfig(name="next"), lambda x: x + next(counter))
    wf = mr.Workflow("w").then("next", cache=True)
    outs = [registry.run_workflow(wf, 0) for _ in range(3)]
    assert [o.output for o in outs] == [1, 2, 3]
    assert [o.steps[0].cache for o in outs] == ["unhashable"] * 3
    assert registry.cache_stats()["unhashable"] == 3


def test_the_code_digest_is_computed_once_per_run_not_per_input(registry: mr.ModuleRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    from module_registry import _pickling

    calls: list[Any] = []
    real = _pickling.code_digest

    def counting(obj: Any) -> str:
        calls.append(obj)
        return real(obj)

    monkeypatch.setattr(_pickling, "code_digest", counting)
    registry.set_cache()
    registry.register(mr.ModuleConfig(name="double"), lambda x: x * 2)
    wf = mr.Workflow("w").then("double", cache=True).then("double", cache=True)
    assert [r.output for r in registry.run_workflow_batch(wf, range(50))] == [4 * n for n in range(50)]
    assert len(calls) == 2  # one per cached step of the batch
    registry.run_workflow(wf, 1)
    assert len(calls) == 4


FROM_CONSTANT = """
import sys
import module_registry as mr
FACTOR = int(sys.argv[2])
def scale(x):
    return x * FACTOR
registry = mr.ModuleRegistry()
registry.register(mr.ModuleConfig(name="scale"), scale)
registry.set_cache(path=sys.argv[1])
out = registry.run_workflow(mr.Workflow("w").then("scale", cache=True), 7)
print(out.steps[0].cache, out.output)
"""


def test_a_next_process_with_another_constant_is_not_served_the_old_result(tmp_path: Path) -> None:
    import subprocess
    import sys

    def run(factor: int) -> str:
        done = subprocess.run([sys.executable, "-c", FROM_CONSTANT, str(tmp_path), str(factor)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run(2) == "miss 14"
    assert run(2) == "hit 14"  # the same code and constant: from disk
    assert run(3) == "miss 21"  # was "hit 14"


def test_stats_and_clear_on_a_folder_without_a_cache_create_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"...")
    for action in ("stats", "clear"):
        done = subprocess.run([sys.executable, "-m", "module_registry", "cache", action, str(photos)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and "holds no step cache" in done.stderr, done
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg"]


def test_a_symbolic_link_in_the_cache_folder_is_refused(tmp_path: Path, registry: mr.ModuleRegistry) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    folder = tmp_path / "shared"
    folder.mkdir()
    for name in ("steps-v1.sqlite", "steps-v1.sqlite-wal"):
        link = folder / name
        link.symlink_to(target)
        with pytest.raises(mr.ModuleRegistryError, match="symbolic link"):
            registry.set_cache(path=folder)
        link.unlink()
    assert target.read_text() == "keep me" and registry.cache_stats()["enabled"] is False
    # A folder that is itself a link is followed (a cache kept elsewhere).
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    registry.set_cache(path=tmp_path / "link")
    assert (tmp_path / "elsewhere" / "steps-v1.sqlite").exists()


def test_a_cache_folder_created_is_private(tmp_path: Path, registry: mr.ModuleRegistry) -> None:
    import os
    import stat

    registry.set_cache(path=tmp_path / "new" / "cache")
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "cache").st_mode) == 0o700


def test_four_processes_writing_at_once_under_a_bound(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "cache"
    writer = WRITER.replace("registry.set_cache(path=sys.argv[1])", "registry.set_cache(path=sys.argv[1], max_bytes=256 * 1024)")
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(folder), str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for start in (0, 100, 200, 300)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert not any("warning" in err for _, err in outs), outs
    reader = mr.ModuleRegistry()
    reader.set_cache(path=folder, max_bytes=256 * 1024)
    stats = reader.cache_stats()
    assert 0 < stats["entries"] <= 600 and stats["bytes"] <= 256 * 1024


def test_a_cache_file_that_cannot_be_opened_is_not_set_aside_as_damaged(tmp_path: Path, registry: mr.ModuleRegistry) -> None:
    # Not a damaged database (a folder in its place): an error, and nothing
    # of it renamed or removed.
    (tmp_path / "steps-v1.sqlite").mkdir()
    (tmp_path / "steps-v1.sqlite" / "mine.txt").write_text("x")
    with pytest.raises(mr.ModuleRegistryError, match="steps-v1.sqlite"):
        registry.set_cache(path=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["steps-v1.sqlite"]
    assert (tmp_path / "steps-v1.sqlite" / "mine.txt").read_text() == "x"


SQUARE = 'const MODULE = #{ name: "sq", version: "1.0.0" }; fn process(x) { x * x }'


def test_cache_stats_after_a_process_pool_batch_count_the_workers_steps(tmp_path: Path) -> None:
    import concurrent.futures
    import multiprocessing

    registry = mr.ModuleRegistry()
    registry.register_script(SQUARE)
    registry.set_cache(path=tmp_path / "cache")
    wf = mr.Workflow("w").then("sq", cache=True)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        first = registry.run_workflow_batch(wf, range(20), executor=pool, chunk_size=5)
        assert [r.output for r in first] == [n * n for n in range(20)]
        stats = registry.cache_stats()
        assert (stats["hits"], stats["misses"]) == (0, 20)
        # The workers wrote each chunk as it finished: all 20 on disk now.
        assert stats["entries"] == 20
        again = registry.run_workflow_batch(wf, range(20), executor=pool, chunk_size=5)
        assert {r.steps[0].cache for r in again} == {"hit"}
        stats = registry.cache_stats()
        assert (stats["hits"], stats["misses"]) == (20, 20)
        # The workers' own counts come back: a failed input's lookup ("x"
        # missed, then its step failed) counts too.
        out = registry.run_workflow_batch(wf, [1, "x", 2, 30], executor=pool, chunk_size=2, errors="return")
        assert isinstance(out[1], mr.WorkflowError)
        stats = registry.cache_stats()
        assert (stats["hits"], stats["misses"]) == (22, 22)
    # Threads share the registry itself: each step counted once, not twice.
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        registry.run_workflow_batch(wf, range(20, 30), executor=threads, chunk_size=5)
    stats = registry.cache_stats()
    assert (stats["hits"], stats["misses"]) == (22, 32)


def test_a_memory_only_cache_counts_the_workers_steps_too() -> None:
    import concurrent.futures
    import multiprocessing

    registry = mr.ModuleRegistry()
    registry.register_script(SQUARE)
    registry.set_cache()
    wf = mr.Workflow("w").then("sq", cache=True).then("sq", id="again", cache=True)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        registry.run_workflow_batch(wf, [2, 2, 3], executor=pool, chunk_size=3)
    # One worker, one chunk: 2 then 4 miss, the second 2 hits both steps, 3 and 9 miss.
    stats = registry.cache_stats()
    assert (stats["hits"], stats["misses"]) == (2, 4)
    plain = mr.ModuleRegistry()
    plain.register_script(SQUARE)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        plain.run_workflow_batch(wf, [2], executor=pool)
    assert plain.cache_stats()["enabled"] is False


def test_a_batch_longer_than_one_transaction_is_all_on_disk_when_it_returns(tmp_path: Path) -> None:
    """Writes go in transactions of 256 entries; the rest when the batch
    returns, so another connection (as another process) sees all of them."""
    writer, reader = mr.ModuleRegistry(), mr.ModuleRegistry()
    for registry in (writer, reader):
        registry.register_script(SQUARE)
        registry.set_cache(path=tmp_path / "cache")
    wf = mr.Workflow("w").then("sq", cache=True)
    writer.run_workflow_batch(wf, range(600))
    out = reader.run_workflow_batch(wf, range(590, 610))
    assert [r.steps[0].cache for r in out] == ["hit"] * 10 + ["miss"] * 10
    assert [r.output for r in out] == [n * n for n in range(590, 610)]
    assert writer.cache_stats()["entries"] == 610
    writer.clear_cache()
    assert reader.cache_stats()["entries"] == 0
