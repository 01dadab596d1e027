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


def test_cached_steps_hit_on_the_second_run(registry: mr.ModuleRegistry) -> None:
    calls: list[Any] = []

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
    attempts: list[int] = []

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
    with pytest.raises(OverflowError):
        registry.set_cache(memory_items=-1)
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
    runs: list[Any] = []

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
