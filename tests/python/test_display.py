"""What notebooks show: tables, the run's picture, timelines; every piece
of text escaped, every picture valid SVG."""

from __future__ import annotations

import pickle
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

import module_registry as mr
from module_registry import ModuleList, Workflow

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def groups(svg: str, cls: str) -> list[ET.Element]:
    return [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == cls]


@pytest.fixture
def registry() -> mr.ModuleRegistry:
    r = mr.ModuleRegistry(native_modules=True)
    r.register(mr.ModuleConfig(name="up", version="1.0.0", capabilities=["text"], metadata={"note": HOSTILE}), str.upper)
    r.register(mr.ModuleConfig(name="up", version="2.0.0", capabilities=["text"]), str.upper)

    def boom(x: Any) -> Any:
        raise ValueError(HOSTILE)

    r.register(mr.ModuleConfig(name="boom"), boom)

    def nap(x: Any) -> Any:
        time.sleep(0.03)
        return x

    r.register(mr.ModuleConfig(name="nap"), nap)
    return r


def test_listing_and_discovery_return_a_module_list(registry: mr.ModuleRegistry) -> None:
    for found in (registry.list(), registry.discover(capabilities=["text"]), registry.versions("up")):
        assert isinstance(found, ModuleList) and isinstance(found, list)
    found = registry.discover(capabilities=["text"])
    assert [i.version for i in found if i.name == "up"] == ["2.0.0", "1.0.0"]
    html = found._repr_html_()
    assert "<table" in html and "<b>up</b>" in html and "2.0.0, 1.0.0" in html and "python" in html
    assert found + [] == list(found) and found[0].name in html


def test_a_long_listing_shows_fifty_names_and_a_count(registry: mr.ModuleRegistry) -> None:
    for i in range(80):
        registry.register(mr.ModuleConfig(name=f"m{i:03d}"), str.strip)
    html = registry._repr_html_()
    assert html.count("<tr>") == 1 + 50
    assert "more names" in html


def test_every_display_escapes_what_it_shows(registry: mr.ModuleRegistry) -> None:
    info = registry.get("up", "1.0.0")
    assert info is not None
    result = registry.run_workflow(Workflow("w").step("b", "boom", on_error="skip"), "x")
    policy = mr.AccessPolicy().grant("reader", ["discover"], "*").assign("<img src=x>", "reader")
    for html in (info._repr_html_(), result._repr_html_(), result.to_svg(), result.timeline().to_svg(), policy._repr_html_()):
        assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in info._repr_html_()
    assert "&lt;img src=x&gt;" in policy._repr_html_()
    (step,) = groups(result.to_svg(), "step")
    assert step.get("data-outcome") == "skipped"
    assert HOSTILE in (step.findtext(f"{SVG}title") or "")  # parsed back: the error, whole


def test_the_run_is_drawn_coloured_by_outcome(registry: mr.ModuleRegistry) -> None:
    wf = (
        Workflow("mixed", output="join")
        .step("a", "up")
        .step("b", "boom", after=[], on_error="fallback", fallback="identity")
        .step("c", "boom", after=[], on_error="skip")
        .step("join", "identity", after=["a", "b", "c"])
    )
    result = registry.run_workflow(wf, "x")
    svg = result.to_svg()
    outcomes = {g.get("data-step"): g.get("data-outcome") for g in groups(svg, "step")}
    assert outcomes == {"a": "ok", "b": "fallback", "c": "skipped", "join": "ok"}
    assert len(groups(svg, "end")) == 2
    assert len([e for e in ET.fromstring(svg).iter(f"{SVG}path") if e.get("class") == "edge"]) == len(wf.edges()) == 7
    assert svg in result._repr_html_() and "<table" in result._repr_html_()
    # Pickled, it keeps what it needs to be drawn again.
    back = pickle.loads(pickle.dumps(result))
    assert back == result and back.to_svg() == svg and back.worker == result.worker and back.started_at == result.started_at
    # A result built by hand has no workflow: its steps in a row.
    bare = mr.WorkflowResult(1, result.steps, 0.5)
    assert bare.workflow is None and len(groups(bare.to_svg(), "step")) == 4


def test_a_cached_step_is_drawn_as_cached(registry: mr.ModuleRegistry) -> None:
    registry.set_cache(memory_items=10)
    wf = Workflow("c").step("s", "sha256", cache=True)
    registry.run_workflow(wf, b"x")
    (step,) = groups(registry.run_workflow(wf, b"x").to_svg(), "step")
    assert step.get("data-outcome") == "cached"


def test_a_timeline_puts_parallel_steps_in_lanes(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("par", output="c").step("a", "nap").step("b", "nap", after=[]).step("c", "identity", after=["a", "b"])
    timeline = registry.run_workflow(wf, 1).timeline()
    assert len(timeline.bars) == 3 and len(timeline.lanes) == 2
    svg = timeline._repr_svg_()
    assert len(groups(svg, "bar")) == 3
    one = registry.run_workflow(Workflow("chain").then("nap").then("nap"), 1).timeline()
    assert len(one.lanes) == 1


def test_a_batch_timeline_has_a_lane_per_worker(registry: mr.ModuleRegistry) -> None:
    wide = Workflow("wide").step("n", "nap", pool=3)
    results = registry.run_workflow_batch(wide, list(range(9)))
    assert len({r.worker for r in results}) == 3
    timeline = mr.timeline(results)
    assert len(timeline.bars) == 9 and len(timeline.lanes) == 3
    assert len(groups(timeline.to_svg(), "bar")) == 9
    mixed = registry.run_workflow_batch(Workflow("b").then("boom"), [1, 2], errors="return")
    assert len(mr.timeline(mixed).bars) == 0
    assert mr.timeline([]).bars == []
    ET.fromstring(mr.timeline([]).to_svg())


def test_instances_policies_views_and_indexes_display(registry: mr.ModuleRegistry, tmp_path: Any) -> None:
    with registry.create("up") as inst:
        html = inst._repr_html_()
        assert "<b>up</b>" in html and "2.0.0" in html and "initialized" in html
    policy = mr.AccessPolicy().grant("runner", ["create", "discover"], "up*").assign("bob", "runner")
    html = policy._repr_html_()
    assert "runner" in html and "up*" in html and "bob" in html
    registry.set_policy(policy)
    seen = registry.as_principal("bob")._repr_html_()
    assert "seen by bob" in seen and "<b>up</b>" in seen and "boom" not in seen
    registry.set_policy(None)
    (tmp_path / "s.rhai").write_text('const MODULE = #{ name: "shelf-item", version: "1.0.0", metadata: #{ license: "MIT" } };\nfn process(x) { x }\n')
    from module_registry import _core

    _core._build_index(tmp_path)
    index = registry.package_index((tmp_path / "index.json").as_uri())
    html = index._repr_html_()
    assert "shelf-item" in html and "MIT" in html


def test_a_long_chain_declared_last_to_first_is_drawn_in_one_pass(registry: mr.ModuleRegistry) -> None:
    import signal

    n = 12_000
    wf = Workflow("long")
    for i in reversed(range(n)):
        wf.step(f"s{i}", "identity", after=[f"s{i - 1}"] if i else [])
    result = registry.run_workflow(wf, "x")
    assert result.output == "x"

    def hang(*_: Any) -> None:
        raise TimeoutError("drawing the run took more than 30 s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(30)  # a hang guard only: the drawing is linear
    try:
        html = result._repr_html_()
        svg = result.to_svg()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    # One column per step, in chain order (s0 right after the input).
    xs: dict[Any, float] = {}
    for g in groups(svg, "step"):
        rect = g.find(f"{SVG}rect")
        assert rect is not None
        xs[g.get("data-step")] = float(rect.get("x", "nan"))
    assert len(xs) == n
    assert all(xs[f"s{i}"] < xs[f"s{i + 1}"] for i in range(n - 1))
    from module_registry import _display

    # The table shows the first 50 steps and counts the rest.
    assert f"and {n - _display.MAX_ROWS} more steps" in html


def test_a_timeline_of_many_overlapping_steps_packs_them_in_lanes() -> None:
    from module_registry import _display

    lanes = _display._pack([(0.0, 1.0, k) for k in range(3000)] + [(1.0, 2.0, 3000 + k) for k in range(3000)])
    assert sorted(set(lanes.values())) == list(range(3000))
    # The second wave reuses the first lanes, lowest first.
    assert [lanes[3000 + k] for k in range(3)] == [0, 1, 2]


def test_a_huge_output_or_error_is_shown_cut(registry: mr.ModuleRegistry) -> None:
    from module_registry import _display

    def huge(x: Any) -> Any:
        return {"text": "y" * 10_000_000, "data": b"z" * 10_000_000, "items": list(range(100_000))}

    registry.register(mr.ModuleConfig(name="huge"), huge)
    html = registry.run_workflow(Workflow("h").then("huge"), None)._repr_html_()
    assert len(html) < 20_000, len(html)
    assert "zzz" in html and "…" in html

    def loud(x: Any) -> Any:
        raise ValueError("e" * 1_000_000)

    registry.register(mr.ModuleConfig(name="loud"), loud)
    result = registry.run_workflow(Workflow("l").then("loud", on_error="skip"), 1)
    assert len(result._repr_html_()) < 20_000
    assert _display._short("a" * 600).endswith("(100 more characters)")
