"""Workflows from Python."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import module_registry as mr
from module_registry import Workflow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry() -> mr.ModuleRegistry:
    r = mr.ModuleRegistry(native_modules=True)
    r.register(mr.ModuleConfig(name="add-one", capabilities=["math"]), lambda x: x + 1)
    r.register(mr.ModuleConfig(name="add-ten", version="2.0.0", capabilities=["math"]), lambda x: x + 10)
    r.register(mr.ModuleConfig(name="total"), lambda m: sum(m.values()))
    return r


def test_builder_runs_and_reports(registry: mr.ModuleRegistry) -> None:
    wf = (
        Workflow("diamond", output="both")
        .step("one", "add-one")
        .step("ten", capabilities=["math"], after=[])
        .step("both", "total", after=["one", "ten"])
    )
    result = registry.run_workflow(wf, 5)
    assert result.output == 6 + 15
    assert [s.id for s in result.steps] == ["one", "ten", "both"]
    ten = result.step("ten")
    assert ten is not None and (ten.module, ten.version, ten.status, ten.attempts) == ("add-ten", "2.0.0", "ok", 1)
    assert all(s.duration >= 0 and s.error is None for s in result.steps)
    assert result.step("nope") is None
    html = result._repr_html_()
    assert "<table" in html and "<svg" in html and "add-ten" in html
    assert "WorkflowResult(output=21" in repr(result)


def test_four_forms_are_equal(registry: mr.ModuleRegistry, tmp_path: Path) -> None:
    built = (
        Workflow("report", output="digest")
        .step("decode", "text-decode")
        .step("digest", "sha256", version="^1", after=["decode"], retries=1, timeout_ms=500, config={"output": "hex"})
        .step("count", capabilities=["math"], after=[], on_error="fallback", fallback="identity")
    )
    toml_path = tmp_path / "w.toml"
    toml_path.write_text(
        """
name = "report"
output = "digest"

[[steps]]
id = "decode"
module = "text-decode"

[[steps]]
id = "digest"
module = "sha256"
version = "^1"
after = ["decode"]
retries = 1
timeout_ms = 500
config = { output = "hex" }

[[steps]]
id = "count"
capabilities = ["math"]
after = []
on_error = "fallback"
fallback = "identity"
"""
    )
    assert Workflow.load(toml_path) == built
    json_path = tmp_path / "w.json"
    built.save(json_path)
    assert Workflow.load(json_path) == built
    built.save(tmp_path / "again.toml")
    assert Workflow.load(tmp_path / "again.toml") == built
    assert Workflow.from_dict(built.to_dict()) == built
    rhai_json = registry.run_script(
        """
        let wf = workflow("report");
        wf.step(#{ id: "decode", "module": "text-decode" });
        wf.step(#{ id: "digest", "module": "sha256", version: "^1", after: ["decode"], retries: 1, timeout_ms: 500, config: #{ output: "hex" } });
        wf.step(#{ id: "count", capabilities: ["math"], after: [], on_error: "fallback", fallback: "identity" });
        wf.output = "digest";
        wf.to_json()
        """
    )
    assert Workflow.from_dict(__import__("json").loads(rhai_json)) == built
    assert registry.run_workflow(built, b"abc").output == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_pipeline_and_then(registry: mr.ModuleRegistry) -> None:
    assert registry.run_workflow(registry.pipeline("add-one", "add-ten", "add-one"), 0).output == 12
    wf = Workflow("chain").then("add-one").then("add-one").then("add-ten", id="last")
    assert wf.step_ids == ["add-one", "add-one-2", "last"]
    assert len(wf) == 3
    assert registry.run_workflow(wf, 0).output == 12


def test_failures_raise_workflow_error_with_the_cause(registry: mr.ModuleRegistry) -> None:
    def broken(x: Any) -> Any:
        raise ZeroDivisionError("no")

    registry.register(mr.ModuleConfig(name="broken"), broken)
    wf = registry.pipeline("add-one", "broken", "add-one")
    with pytest.raises(mr.WorkflowError, match='step "broken"') as caught:
        registry.run_workflow(wf, 1)
    err = caught.value
    assert err.step == "broken" and err.workflow == "pipeline"
    assert isinstance(err.__cause__, mr.ModuleFailedError)
    assert isinstance(err.__cause__.__cause__, ZeroDivisionError)
    skip = Workflow("w").then("add-one").then("broken", on_error="skip").then("add-one")
    result = registry.run_workflow(skip, 1)
    assert result.output == 3 and result.steps[1].status == "skipped" and "ZeroDivisionError" in (result.steps[1].error or "")
    fb = Workflow("w").then("broken", on_error="fallback", fallback="add-ten")
    result = registry.run_workflow(fb, 1)
    assert result.output == 11 and result.steps[0].status == "fallback" and result.steps[0].module == "add-ten"


def test_retries_and_timeouts(registry: mr.ModuleRegistry) -> None:
    calls = {"n": 0}

    def flaky(x: Any) -> Any:
        calls["n"] += 1
        if calls["n"] < 3:
            raise RuntimeError("not yet")
        return x

    registry.register(mr.ModuleConfig(name="flaky"), flaky)
    result = registry.run_workflow(Workflow("w").then("flaky", retries=2), "ok")
    assert result.output == "ok" and result.steps[0].attempts == 3

    def sleepy(x: Any) -> Any:
        time.sleep(3)
        return x

    registry.register(mr.ModuleConfig(name="sleepy"), sleepy)
    start = time.monotonic()
    with pytest.raises(mr.WorkflowError, match="timed out"):
        registry.run_workflow(Workflow("w").then("sleepy", timeout_ms=100), 1)
    assert time.monotonic() - start < 2.5


def test_parallel_branches_overlap(registry: mr.ModuleRegistry) -> None:
    barrier = threading.Barrier(2, timeout=10)

    def meet(x: Any) -> Any:
        barrier.wait()  # both branches must be running at once
        return x

    registry.register(mr.ModuleConfig(name="meet-a"), meet)
    registry.register(mr.ModuleConfig(name="meet-b"), meet)
    wf = Workflow("par").step("a", "meet-a", after=[]).step("b", "meet-b", after=[]).step("j", "identity", after=["a", "b"])
    assert registry.run_workflow(wf, 1).output == {"a": 1, "b": 1}


def test_invalid_workflows_name_the_step(registry: mr.ModuleRegistry) -> None:
    cases = [
        (Workflow("w").step("a", "ghost"), "a"),
        (Workflow("w").step("a", "add-one", after=["b"]).step("b", "add-one", after=["a"]), "a"),
        (Workflow("w").step("a", capabilities=["nothing"]), "a"),
        (Workflow("w").step("a", "add-one", after=["zzz"]), "a"),
    ]
    for wf, step in cases:
        with pytest.raises(mr.WorkflowError) as caught:
            registry.run_workflow(wf, 1)
        assert caught.value.step == step
        with pytest.raises(mr.WorkflowError):
            registry.check_workflow(wf)
    with pytest.raises(ValueError, match="on_error"):
        Workflow("w").step("a", "add-one", on_error="explode")
    with pytest.raises(mr.ValidationError):
        Workflow.from_dict({"name": "w", "steps": [{"id": "a", "colour": 1}]})
    with pytest.raises(mr.ModuleRegistryError, match="missing.toml"):
        Workflow.load("missing.toml")


def test_mixing_python_script_and_native_modules(registry: mr.ModuleRegistry) -> None:
    registry.register_script('const MODULE = #{ name: "shout" }; fn process(x) { x.to_upper() }')

    class Frame:
        pass

    frame = Frame()
    registry.register(mr.ModuleConfig(name="wrap"), lambda s: {"text": s, "frame": frame})
    wf = Workflow("mixed").then("text-decode").then("shout").then("wrap")
    out = registry.run_workflow(wf, b"hi").output
    assert out["text"] == "HI" and out["frame"] is frame


def test_batches_keep_order_and_show_progress(registry: mr.ModuleRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    wf = registry.pipeline("add-one", "add-ten")
    results = registry.run_workflow_batch(wf, range(50))
    assert [r.output for r in results] == [i + 11 for i in range(50)]
    results = registry.run_workflow_batch(wf, [1, 2, 3], progress=True)
    assert [r.output for r in results] == [12, 13, 14]
    err = capsys.readouterr().err
    assert "3/3" in err  # tqdm (or the plain bar) reported every run


def test_pictures(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("w").step("a", "add-one").step("b", "add-ten", after=[]).step("c", "total", after=["a", "b"])
    mermaid = wf.to_mermaid()
    assert "a --> c" in mermaid and "b --> c" in mermaid and "c --> wf_out" in mermaid
    assert '"a" -> "c";' in wf.to_dot()
    svg = wf._repr_svg_()
    assert "<svg" in svg and svg.rstrip().endswith("</svg>") and "total" in svg
    assert "Workflow(\"w\"" in repr(wf)


def test_the_shipped_workflow(registry: mr.ModuleRegistry) -> None:
    registry.load_scripts(ROOT / "scripts")
    wf = Workflow.load(ROOT / "examples" / "workflows" / "text-report.toml")
    out = registry.run_workflow(wf, {"title": "Hello There", "body": "one two\nthree"}).output
    assert out.startswith("hello-there: 3 words on 2 lines; sha256 ")


def test_drawing_a_big_workflow_lets_other_threads_run() -> None:
    import sys

    wf = mr.Workflow("big")
    for _ in range(30_000):  # some tens of milliseconds of drawing
        wf = wf.then("identity")
    go = threading.Event()
    ran: list[bool] = []
    def mark() -> None:
        go.wait()
        ran.append(True)

    other = threading.Thread(target=mark)
    other.start()
    interval = sys.getswitchinterval()
    # The GIL now changes hands only when a thread lets it go: the other
    # thread can run before this one checks only if `to_svg` released it.
    sys.setswitchinterval(1000)
    try:
        go.set()
        svg = wf.to_svg()
        ran_during = bool(ran)
    finally:
        sys.setswitchinterval(interval)
    other.join()
    assert svg.count("<rect") >= 30_000
    assert ran_during, "to_svg kept the GIL"


def test_several_final_steps_give_a_dict_unless_output_names_one(registry: mr.ModuleRegistry, tmp_path: Path) -> None:
    wf = Workflow("two").step("one", "add-one", after=[]).step("ten", "add-ten", after=[])
    registry.check_workflow(wf)
    assert registry.run_workflow(wf, 1).output == {"one": 2, "ten": 11}
    assert registry.run_workflow(Workflow.from_dict({**wf.to_dict(), "output": "ten"}), 1).output == 11
    wf.output = "one"
    assert registry.run_workflow(wf, 1).output == 2
    wf.output = None
    # The file forms and Rhai say the same.
    for name in ("w.toml", "w.json"):
        wf.save(tmp_path / name)
        assert registry.run_workflow(Workflow.load(tmp_path / name), 1).output == {"one": 2, "ten": 11}
    from_rhai = registry.run_script(
        """
        let wf = workflow("two");
        wf.step(#{ id: "one", "module": "add-one", after: [] });
        wf.step(#{ id: "ten", "module": "add-ten", after: [] });
        registry.run_workflow(wf, 1).output
        """
    )
    assert from_rhai == {"one": 2, "ten": 11}
    assert [r.output for r in registry.run_workflow_batch(wf, [1, 2])] == [{"one": 2, "ten": 11}, {"one": 3, "ten": 12}]
    assert (("one", Workflow.OUTPUT) in wf.edges()) and (("ten", Workflow.OUTPUT) in wf.edges())


def test_steps_named_input_and_output_are_nodes_of_their_own(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("ends").step("input", "add-one").step("output", "add-one")
    assert wf.edges() == [(Workflow.INPUT, "input"), ("input", "output"), ("output", Workflow.OUTPUT)]
    dot = wf.to_dot()
    assert '"(input)" -> "input";' in dot and '"output" -> "(output)";' in dot
    result = registry.run_workflow(wf, 0)
    assert result.output == 2
    import xml.etree.ElementTree as ET

    svg = ET.fromstring(result.to_svg())
    kinds = [g.get("class") for g in svg.iter("{http://www.w3.org/2000/svg}g")]
    assert kinds.count("step") == 2 and kinds.count("end") == 2


def test_then_numbers_a_long_chain_of_one_module_in_one_pass() -> None:
    wf = Workflow("long")
    for _ in range(5000):
        wf.then("identity")
    ids = wf.step_ids
    assert ids[:3] == ["identity", "identity-2", "identity-3"] and ids[-1] == "identity-5000"
    assert len(set(ids)) == 5000
    assert mr.ModuleRegistry(native_modules=True).run_workflow(wf, "x").output == "x"


def test_a_result_keeps_the_workflow_as_it_ran_and_one_list_of_steps(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("grow").step("a", "add-one")
    result = registry.run_workflow(wf, 1)
    # The workflow changed after the run: the result still has the one that ran.
    wf.step("b", "add-ten")
    wf.output = "a"
    ran = result.workflow
    assert ran is not None and ran.step_ids == ["a"] and ran.output is None
    assert wf.step_ids == ["a", "b"] and wf.output == "a"
    # A second run of the changed workflow runs both steps.
    assert registry.run_workflow(wf, 1).output == 2
    assert [s.id for s in registry.run_workflow(wf, 1).steps] == ["a", "b"]
    # The steps are one list, the same at every read, with each step's output.
    assert result.steps is result.steps
    assert [(s.id, s.output, s.status) for s in result.steps] == [("a", 2, "ok")]
    assert result.step("a") is result.steps[0]
    assert result.outputs == {"a": 2}


def test_a_run_after_a_change_to_the_registry_uses_what_is_registered_now(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("w").step("a", "add-one")
    assert registry.run_workflow(wf, 1).output == 2
    registry.check_workflow(wf)
    registry.replace(mr.ModuleConfig(name="add-one", capabilities=["math"]), lambda x: x + 100)
    assert registry.run_workflow(wf, 1).output == 101
    registry.unregister("add-one", "0.1.0")
    with pytest.raises(mr.WorkflowError, match="add-one"):
        registry.run_workflow(wf, 1)
    with pytest.raises(mr.WorkflowError):
        registry.check_workflow(wf)


def test_results_of_many_runs_keep_their_own_texts(registry: mr.ModuleRegistry) -> None:
    """Single runs' results share one table of texts (ids, modules,
    versions, workers, errors) until it is full, then a fresh one starts:
    across 6,000 runs, each failing with an error of its own (past the
    table's 4,096 texts and 1 MiB), and runs of another workflow between
    them, every result still reads its own texts."""

    def fails(x: int) -> int:
        raise ValueError(f"input {x} " + "e" * 300)

    registry.register(mr.ModuleConfig(name="fails"), fails)
    wf = Workflow("texts").step("a", "add-one").step("b", "fails", on_error="skip").step("c", "add-ten")
    other = Workflow("other").step("x", "add-ten").step("y", "add-one")
    kept = []
    for i in range(6000):
        kept.append(registry.run_workflow(wf, i))
        if i % 1000 == 0:
            o = registry.run_workflow(other, i)
            assert [(s.id, s.module, s.version) for s in o.steps] == [
                ("x", "add-ten", "2.0.0"),
                ("y", "add-one", "0.1.0"),
            ]
    for i in (0, 1, 4095, 4096, 4097, 5999):
        r = kept[i]
        assert [(s.id, s.module, s.status) for s in r.steps] == [
            ("a", "add-one", "ok"),
            ("b", "fails", "skipped"),
            ("c", "add-ten", "ok"),
        ]
        failed = r.step("b")
        assert failed is not None and failed.error is not None
        assert f"input {i + 1} " in failed.error, (i, failed.error[:80])
        assert r.worker.startswith(f"{os.getpid()}:")


def test_step_counts_follow_each_run_of_a_kept_plan(registry: mr.ModuleRegistry) -> None:
    """A plan keeps its steps' counters: runs of one workflow count on the
    registry's own metrics, counting off counts nothing, and a second
    registry running an equal workflow counts on its own."""
    wf = Workflow("counted").step("a", "add-one").step("b", "add-ten")

    def runs(r: mr.ModuleRegistry) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in r.metrics_text().splitlines():
            if line.startswith("module_registry_step_runs_total{") and 'workflow="counted"' in line:
                out[line.split('step="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
        return out

    for _ in range(3):
        registry.run_workflow(wf, 1)
    assert runs(registry) == {"a": 3.0, "b": 3.0}
    registry.set_metrics(False)
    registry.run_workflow(wf, 1)
    registry.set_metrics(True)
    registry.run_workflow(wf, 1)
    assert runs(registry) == {"a": 4.0, "b": 4.0}
    second = mr.ModuleRegistry()
    second.register(mr.ModuleConfig(name="add-one"), lambda x: x + 1)
    second.register(mr.ModuleConfig(name="add-ten", version="2.0.0"), lambda x: x + 10)
    second.run_workflow(wf, 1)
    assert runs(second) == {"a": 1.0, "b": 1.0}
    assert runs(registry) == {"a": 4.0, "b": 4.0}
