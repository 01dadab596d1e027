"""Typed workflows from Python (issue 30): a workflow's edges checked before
any step runs (`WorkflowTypeError`), discovery by type, values checked at run
time (`set_validation`, a step's `validate=True`), and the types the shipped
native and script modules declare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import module_registry as mr
from module_registry import Schema, SchemaError, WorkflowTypeError
from module_registry.cli import main


def typed_registry(calls: list[Any]) -> mr.ModuleRegistry:
    registry = mr.ModuleRegistry()

    def count(text: str) -> int:
        calls.append(text)
        return len(text.split())

    def slug(text: str) -> str:
        calls.append(text)
        return text.lower().replace(" ", "-")

    registry.register(mr.ModuleConfig("word-count", "1.0.0", input="str", output="int"), count)
    registry.register(mr.ModuleConfig("slugify", "1.0.0", input="str", output="str"), slug)
    return registry


def test_a_mistyped_workflow_is_refused_before_any_step_runs() -> None:
    calls: list[Any] = []
    registry = typed_registry(calls)
    wf = mr.Workflow("posts").step("count", "word-count").step("slug", "slugify")
    message = (
        'workflow "posts": step "slug" (slugify@1.0.0) takes str, '
        'but step "count" (word-count@1.0.0) gives int'
    )
    with pytest.raises(WorkflowTypeError) as caught:
        registry.check_workflow(wf)
    err = caught.value
    assert str(err) == message
    assert isinstance(err, mr.WorkflowError)
    assert (err.workflow, err.step, err.module, err.producer) == ("posts", "slug", "slugify@1.0.0", "count")
    assert (err.path, err.expected, err.found) == ("$", "str", "int")
    with pytest.raises(WorkflowTypeError, match="gives int"):
        registry.run_workflow(wf, "a b c")
    # A batch is refused whole, whatever errors= says.
    with pytest.raises(WorkflowTypeError):
        registry.run_workflow_batch(wf, ["a", "b c"] * 50, errors="return")
    assert calls == []


def test_a_correct_workflow_runs_unchanged_and_the_input_type_is_checked() -> None:
    registry = typed_registry([])
    wf = mr.Workflow("posts").input("str").step("slug", "slugify").step("count", "word-count")
    assert wf.input_type == Schema("str")
    registry.check_workflow(wf)
    assert registry.run_workflow(wf, "Hello Typed World").output == 1  # one slug
    back = mr.Workflow.from_dict(wf.to_dict())
    assert back == wf and wf.to_dict()["input"] == "str"
    wrong = mr.Workflow("w").input(Schema("int")).step("slug", "slugify", after=[])
    with pytest.raises(WorkflowTypeError, match="takes str, but the workflow input is int"):
        registry.check_workflow(wrong)
    assert mr.Workflow("w").input(None).input_type is None
    with pytest.raises(SchemaError):
        mr.Workflow("w").input("lst[")


def test_configs_are_checked_against_the_config_type() -> None:
    registry = mr.ModuleRegistry()
    registry.register(
        mr.ModuleConfig("threshold", "1.0.0", input="float", config_type="{threshold: float}"),
        lambda x, config: x,
    )
    with pytest.raises(WorkflowTypeError, match="no config is given"):
        registry.check_workflow(mr.Workflow("w").step("a", "threshold"))
    with pytest.raises(WorkflowTypeError, match=r"at \$\.threshold: expected float, found str") as caught:
        registry.check_workflow(mr.Workflow("w").step("a", "threshold", config={"threshold": "high"}))
    assert caught.value.path == "$.threshold"
    registry.check_workflow(mr.Workflow("w").step("a", "threshold", config={"threshold": 2}))


def test_discovery_by_type() -> None:
    registry = typed_registry([])
    registry.register(mr.ModuleConfig("loose"), lambda x: x)

    def names(found: Any) -> list[str]:
        return sorted(info.name for info in found)

    assert names(registry.discover(input="str")) == ["loose", "slugify", "word-count"]
    assert names(registry.discover(input="str", output="float")) == ["word-count"]
    assert names(registry.discover(output=Schema("str"))) == ["slugify"]
    query = mr.CapabilityQuery().with_input("str").with_output("int")
    assert names(registry.discover_capabilities(query)) == ["word-count"]
    assert names(registry.discover(input="bytes", output="str")) == []
    with pytest.raises(SchemaError):
        registry.discover(input="lst")


def test_validation_catches_a_lying_module() -> None:
    registry = mr.ModuleRegistry()
    registry.register(
        mr.ModuleConfig("liar", "1.0.0", input="str", output="{tags: list[str]}"),
        lambda text: {"tags": ["a", "b", 3]},
    )
    liar = registry.create("liar")
    assert registry.validation == "off"
    assert liar.process(5) == {"tags": ["a", "b", 3]}
    assert registry.set_validation("inputs") is registry
    with pytest.raises(SchemaError) as caught:
        liar.process(5)
    err = caught.value
    assert isinstance(err, mr.ValidationError)
    assert (err.path, err.expected, err.found, err.module, err.role) == ("$", "str", "int", "liar@1.0.0", "input")
    assert str(err) == 'module "liar@1.0.0": its input at $ does not fit: expected str, found int'
    liar.process("fine")
    registry.set_validation("all")
    with pytest.raises(SchemaError) as caught:
        liar.process("fine")
    assert (caught.value.path, caught.value.expected, caught.value.found) == ("$.tags[2]", "str", "int")
    assert caught.value.role == "output"
    with pytest.raises(mr.ModuleRegistryError, match="off"):
        registry.set_validation("sometimes")  # type: ignore[arg-type]
    registry.set_validation("off")
    liar.process(5)


def test_a_step_with_validate_checks_its_values() -> None:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig("liar", "1.0.0", output="int"), lambda x: x)
    wf = mr.Workflow("w").step("s", "liar", validate=True)
    assert registry.run_workflow(wf, 5).output == 5
    with pytest.raises(mr.WorkflowError) as caught:
        registry.run_workflow(wf, "five")
    cause = caught.value.__cause__
    assert isinstance(cause, SchemaError)
    assert (cause.step, cause.module, cause.role, cause.expected, cause.found) == ("s", "liar@1.0.0", "output", "int", "str")
    assert wf.to_dict()["steps"][0]["validate"] is True
    registry.run_workflow(mr.Workflow("w").step("s", "liar"), "five")


def test_shipped_modules_declare_types_and_their_chains_still_check() -> None:
    registry = mr.ModuleRegistry(native_modules=True, bundled_scripts=True)
    types = {info.name: (str(info.input), str(info.output)) for info in registry.list()}
    assert types["sha256"] == ("str | bytes", "str | bytes")
    assert types["gzip-compress"] == ("str | bytes", "bytes")
    assert types["text-decode"] == ("str | bytes", "str")
    assert types["slugify"] == ("int | float | str | bytes", "str")
    assert types["text-stats"][1] == "{chars: int, lines: int, top_words: list[list[any]], words: int}"
    assert all(i.input != Schema("any") or i.name in {"identity", "json-encode", "json-pick", "template"} for i in registry.list())
    ok = registry.pipeline("gzip-compress", "gzip-decompress", "text-decode", "slugify", "text-stats")
    registry.check_workflow(ok)
    assert registry.run_workflow(ok, "Hello Hello World").output["words"] == 3
    bad = registry.pipeline("text-stats", "slugify")
    with pytest.raises(WorkflowTypeError, match=r'step "slugify" \(slugify@1\.0\.0\) takes int \| float \| str \| bytes'):
        registry.check_workflow(bad)


def test_the_cli_describes_types_and_check_reports_type_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["describe", "sha256"]) == 0
    out = capsys.readouterr().out
    assert "sha256@1.0.0" in out and "str | bytes -> str | bytes" in out
    assert main(["describe", "slugify@^1", "--json-schema"]) == 0
    schemas = json.loads(capsys.readouterr().out)
    assert set(schemas) == {"input", "output", "config_type"}
    assert Schema.from_json_schema(schemas["output"]) == Schema("str")
    assert main(["describe", "slugify@^2"]) == 1
    assert "no module named 'slugify' matching '^2'" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\ninput = "str"\n[[steps]]\nid = "stats"\nmodule = "text-stats"\n'
        '[[steps]]\nid = "slug"\nmodule = "slugify"\n'
    )
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert 'step "slug" (slugify@1.0.0) takes int | float | str | bytes, but step "stats" (text-stats@1.0.0) gives {' in err


def test_the_module_table_shows_input_to_output() -> None:
    registry = typed_registry([])
    html = registry.list()._repr_html_()
    assert "<th>types</th>" in html
    assert "<code>str</code> → <code>int</code>" in html
    assert "<code>str</code> → <code>str</code>" in html


def test_a_pickled_registry_keeps_its_validation_mode() -> None:
    import pickle

    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig("liar", "1.0.0", input="str"), lambda x: x)
    plain = registry.fingerprint()
    registry.set_validation("all")
    rebuilt = pickle.loads(pickle.dumps(registry))
    assert rebuilt.validation == "all"
    with pytest.raises(SchemaError, match="its input"):
        rebuilt.create("liar").process(5)
    registry.set_validation("off")
    assert registry.fingerprint() == plain


def test_a_picture_labels_each_edge_with_the_type_that_flows() -> None:
    """`to_svg(types=True, registry=...)`: the workflow input's type out of
    the input, each step's output type out of the step (a fallback's and a
    skipped step's input joined in), long types cut with the whole on
    hover, text escaped; without a registry a clear error; a mistyped
    workflow is its type error, not a picture."""
    import re

    calls: list[Any] = []
    registry = typed_registry(calls)
    registry.register(
        mr.ModuleConfig("tagger", "1.0.0", input="str", output='{title: str, tags: list[str], kind: "<b>" | "a&b", score: float}'),
        lambda s: {"title": s, "tags": [], "kind": "<b>", "score": 1.0},
    )
    wf = (
        mr.Workflow("posts")
        .input("str")
        .step("slug", "slugify")
        .step("count", "word-count", on_error="skip")
        .step("tags", "tagger", after=["slug"])
    )
    svg = wf.to_svg(types=True, registry=registry)
    labels = re.findall(r'<text class="edge-type"[^>]*><title>(.*?)</title>(.*?)</text>', svg)
    hovers = [h for h, _ in labels]
    assert "str" in hovers  # the input, and slugify's output
    assert "int | str" in hovers  # word-count skipped passes its input on
    long = [(h, shown) for h, shown in labels if h.startswith("{")]
    assert len(long) == 1, labels
    hover, shown = long[0]
    assert "&lt;b&gt;" in hover and "&amp;" in hover and '"<b>"' not in svg
    assert shown.endswith("…") and len(shown) < len(hover)
    assert len(labels) == len(wf.edges())
    plain = wf.to_svg()
    assert "edge-type" not in plain and plain == wf._repr_svg_()
    with pytest.raises(ValueError, match="registry=registry"):
        wf.to_svg(types=True)
    wrong = mr.Workflow("posts").step("count", "word-count").step("slug", "slugify")
    with pytest.raises(WorkflowTypeError, match='takes str, but step "count"'):
        wrong.to_svg(types=True, registry=registry)
