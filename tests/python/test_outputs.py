"""Every output of a run (`WorkflowResult.outputs`, `StepReport.output`) and
the configs a step gives its module's dependencies (`dependency_configs`)."""

from __future__ import annotations

import asyncio
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import module_registry as mr
from module_registry import Workflow


def words(text: str) -> list[str]:
    return text.split()


def count(items: list[str]) -> int:
    return len(items)


def registry() -> mr.ModuleRegistry:
    r = mr.ModuleRegistry(native_modules=True)
    r.register(mr.ModuleConfig(name="words"), words)
    r.register(mr.ModuleConfig(name="count"), count)
    r.register(mr.ModuleConfig(name="upper"), lambda s: s.upper())
    r.register(mr.ModuleConfig(name="fail"), lambda s: 1 / 0)
    return r


def test_every_step_gives_its_output_in_run_order() -> None:
    r = registry()
    wf = (
        Workflow("text", output="n")
        .step("w", "words")
        .step("n", "count", after=["w"])
        .step("up", "upper", after=[])
    )
    result = r.run_workflow(wf, "a bb ccc")
    assert result.outputs == {"w": ["a", "bb", "ccc"], "n": 3, "up": "A BB CCC"}
    order = list(result.outputs)
    assert order.index("w") < order.index("n"), order
    assert result.step("w").output == ["a", "bb", "ccc"]  # type: ignore[union-attr]
    assert result.output == 3
    # A new dict each time: changing one changes nothing else.
    result.outputs.clear()
    assert len(result.outputs) == 3


def test_a_step_that_changes_its_input_in_place_leaves_the_earlier_output_alone() -> None:
    r = registry()

    def grow(items: list[str]) -> list[str]:
        items.append("more")
        return items

    r.register(mr.ModuleConfig(name="grow"), grow)
    result = r.run_workflow(r.pipeline("words", "grow"), "a b")
    assert result.outputs["words"] == ["a", "b"]
    assert result.outputs["grow"] == ["a", "b", "more"]


def test_skipped_steps_have_no_output_fallbacks_give_theirs() -> None:
    r = registry()
    wf = (
        Workflow("policies")
        .step("skip", "fail", on_error="skip")
        .step("fb", "fail", on_error="fallback", fallback="upper", after=[])
        .step("end", "identity", after=["skip", "fb"])
    )
    result = r.run_workflow(wf, "x")
    skip = result.step("skip")
    assert skip is not None and skip.status == "skipped" and skip.output is None
    assert "skip" not in result.outputs
    assert result.outputs["fb"] == "X"
    assert result.output == {"skip": "x", "fb": "X"}


def test_numpy_and_pandas_outputs_are_kept_as_the_objects_they_are() -> None:
    r = mr.ModuleRegistry()
    frame = pd.DataFrame({"a": [1, 2, 3]})
    r.register(mr.ModuleConfig(name="frame"), lambda _: frame)
    r.register(mr.ModuleConfig(name="total"), lambda df: np.int64(df["a"].sum()))
    result = r.run_workflow(r.pipeline("frame", "total"), None)
    assert result.outputs["frame"] is frame
    assert result.outputs["total"] == 6


def test_outputs_survive_pickling_equality_and_a_process_pool_batch() -> None:
    r = registry()
    wf = r.pipeline("words", "count")
    result = r.run_workflow(wf, "a b c")
    again = pickle.loads(pickle.dumps(result))
    assert again == result
    assert again.outputs == {"words": ["a", "b", "c"], "count": 3}
    with ProcessPoolExecutor(2) as pool:
        results = r.run_workflow_batch(wf, ["a", "a b", "a b c"] * 10, executor=pool)
    assert [res.outputs["count"] for res in results] == [1, 2, 3] * 10
    assert results[2].outputs["words"] == ["a", "b", "c"]


def test_a_batch_of_10000_keeps_each_inputs_outputs() -> None:
    r = registry()
    wf = r.pipeline("words", "count")
    texts = [" ".join(["w"] * (i % 7)) for i in range(10_000)]
    results = r.run_workflow_batch(wf, texts)
    assert all(res.outputs["count"] == i % 7 for i, res in enumerate(results))
    assert all(len(res.outputs["words"]) == i % 7 for i, res in enumerate(results))


def test_async_runs_give_every_output() -> None:
    r = registry()
    result = asyncio.run(r.arun_workflow(r.pipeline("words", "count"), "x y"))
    assert result.outputs == {"words": ["x", "y"], "count": 2}


class Store:
    def init(self, config: Any) -> None:
        self.url = (config or {}).get("url", "memory")

    def process(self, _: Any) -> str:
        return str(self.url)


class App:
    def init(self, config: Any, dependencies: dict[str, Any]) -> None:
        self.store = dependencies["store"]

    def process(self, x: Any) -> dict[str, Any]:
        return {"input": x, "url": self.store.process(None)}


def with_dependency() -> mr.ModuleRegistry:
    r = mr.ModuleRegistry()
    r.register(mr.ModuleConfig(name="store", version="1.0.0"), Store)
    r.register(mr.ModuleConfig(name="app", dependencies={"store": "^1"}), App)
    return r


def test_a_step_gives_its_modules_dependencies_configs(tmp_path: Path) -> None:
    r = with_dependency()
    wf = Workflow("deps").step("app", "app", dependency_configs={"store": {"url": "sqlite://a.db"}})
    assert r.run_workflow(wf, 1).output == {"input": 1, "url": "sqlite://a.db"}
    # Without them, the dependency's init gets None.
    assert r.run_workflow(Workflow("plain").step("app", "app"), 1).output["url"] == "memory"
    # then() and pools take them too.
    chained = Workflow("then").then("app", pool=2, dependency_configs={"store": {"url": "pg://b"}})
    assert {res.output["url"] for res in r.run_workflow_batch(chained, [1, 2, 3])} == {"pg://b"}
    # The file forms keep them.
    path = tmp_path / "wf.toml"
    wf.save(path)
    assert "dependency_configs" in path.read_text()
    assert r.run_workflow(Workflow.load(path), 2).output["url"] == "sqlite://a.db"
    assert Workflow.from_dict(wf.to_dict()).to_dict() == wf.to_dict()


def test_bad_dependency_configs_are_refused_before_anything_runs() -> None:
    r = with_dependency()
    ran: list[int] = []

    def probe(x: int) -> int:
        ran.append(x)
        return x

    r.register(mr.ModuleConfig(name="probe"), probe)
    wf = Workflow("typo").step("p", "probe").step("app", "app", dependency_configs={"stor": {}})
    with pytest.raises(mr.WorkflowError, match=r'"stor", which is not one of its dependencies \(store\)'):
        r.run_workflow(wf, 1)
    assert ran == []
    with pytest.raises(TypeError, match="module names"):
        Workflow("bad").step("app", "app", dependency_configs={1: {}})  # type: ignore[dict-item]
    with pytest.raises(mr.ValidationError, match="it has none"):
        r.create("store", dependency_configs={"x": None})


def test_scripts_see_every_output() -> None:
    r = with_dependency()
    out = r.run_script(
        """
        let wf = workflow("s");
        wf.step(#{ id: "app", "module": "app", dependency_configs: #{ store: #{ url: "s://z" } } });
        let run = registry.run_workflow(wf, 5);
        [run.outputs.app.url, run.steps[0].output.input]
        """
    )
    assert out == ["s://z", 5]
