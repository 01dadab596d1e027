"""The pictures, read back by parsing their SVG: the workflow's and the run's
share one drawing (the core's: layout, sans-serif, colours, tight size), say
each label once, show a step's settings, end a fan-in's arrows apart; the
timelines start at the first step, tick at round values, clip nothing and
name workers ``worker 1``, ``worker 2``."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import pytest

import module_registry as mr
from module_registry import Workflow

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<b>\"q\" & 'a'\nline two\x1b[0m"


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def boxes(root: ET.Element) -> list[tuple[float, float, float, float]]:
    return [
        (float(r.get("x", "nan")), float(r.get("y", "nan")), float(r.get("width", "nan")), float(r.get("height", "nan")))
        for r in root.iter(f"{SVG}rect")
    ]


def arrow_ends(root: ET.Element) -> list[tuple[float, float]]:
    """The last point of every edge's path (where its arrowhead is drawn)."""
    out = []
    for p in root.iter(f"{SVG}path"):
        if p.get("class") == "edge":
            nums = [float(w) for w in (p.get("d") or "").split() if w[0].isdigit() or w[0] == "-"]
            out.append((nums[-2], nums[-1]))
    return out


@pytest.fixture
def registry() -> mr.ModuleRegistry:
    r = mr.ModuleRegistry(native_modules=True)

    def boom(x: Any) -> Any:
        raise ValueError(HOSTILE)

    r.register(mr.ModuleConfig(name="boom"), boom)
    return r


def test_the_workflow_and_its_run_share_one_drawing(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("w").then("identity").then("sha256")
    still = ET.fromstring(wf.to_svg())
    run = ET.fromstring(registry.run_workflow(wf, b"x").to_svg())
    for root in (still, run):
        assert root.get("font-family") == "sans-serif" and root.get("font-size") == "12"
        # Tight: the picture ends at most 12 px past its lowest and rightmost box.
        bottom = max(y + h for _, y, _, h in boxes(root))
        right = max(x + w for x, _, w, _ in boxes(root))
        assert bottom <= float(root.get("height", "0")) <= bottom + 13
        assert right <= float(root.get("width", "0")) <= right + 13
        # Coloured: every box filled, none white.
        assert all(r.get("fill") not in (None, "#fff", "#ffffff", "none") for r in root.iter(f"{SVG}rect"))
    # One layout: the same columns and rows in both (boxes differ in size only).
    def grid(root: ET.Element) -> list[tuple[int, int]]:
        xs = sorted({b[0] for b in boxes(root)})
        column = {x: sorted(b[1] for b in boxes(root) if b[0] == x) for x in xs}
        return [(xs.index(b[0]), column[b[0]].index(b[1])) for b in boxes(root)]

    assert grid(still) == grid(run) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert {g.get("data-outcome") for g in groups(run, "step")} == {"ok"}


def test_a_one_row_chain_is_no_taller_than_its_boxes() -> None:
    root = ET.fromstring(Workflow("chain").then("identity").then("identity").to_svg())
    top = min(y for _, y, _, _ in boxes(root))
    bottom = max(y + h for _, y, _, h in boxes(root))
    assert float(root.get("height", "0")) <= (bottom - top) + 2 * 12


def test_each_label_is_written_once(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("w").then("identity").step("hash", "sha256")
    still = texts(ET.fromstring(wf.to_svg()))
    assert sum("identity" in t for t in still) == 1, still
    assert still.count("hash") == 1 and sum("sha256" in t for t in still) == 1, still
    run = texts(ET.fromstring(registry.run_workflow(wf, b"x").to_svg()))
    assert sum("identity" in t for t in run) == 1 and any(t.startswith("identity@") for t in run), run
    assert run.count("hash") == 1 and sum(t.startswith("sha256@") for t in run) == 1, run


def test_a_steps_settings_show_on_both_pictures(registry: mr.ModuleRegistry) -> None:
    wf = (
        Workflow("s")
        .step("slow", "identity", cache=True, timeout_ms=250, retries=3, pool=2)
        .step("b", "boom", on_error="skip")
        .step("c", "boom", on_error="fallback", fallback="identity")
    )
    for svg in (wf.to_svg(), registry.run_workflow(wf, 1).to_svg()):
        all_text = texts(ET.fromstring(svg))
        assert "cache · timeout 250.0 ms · retries 3 · pool 2" in all_text, all_text
        assert "on error: skip" in all_text and "on error: fallback identity" in all_text


def test_a_fan_in_ends_its_arrows_apart(registry: mr.ModuleRegistry) -> None:
    wf = Workflow("fan", output="join")
    for i in range(5):
        wf.step(f"b{i}", "identity", after=[])
    wf.step("join", "identity", after=[f"b{i}" for i in range(5)])
    for svg in (wf.to_svg(), registry.run_workflow(wf, 1).to_svg()):
        root = ET.fromstring(svg)
        (join,) = [g for g in groups(root, "step") if g.get("data-step") == "join"]
        rect = join.find(f"{SVG}rect")
        assert rect is not None
        x, y, h = float(rect.get("x", "0")), float(rect.get("y", "0")), float(rect.get("height", "0"))
        into = sorted(e[1] for e in arrow_ends(root) if abs(e[0] - x) < 0.05)
        assert len(into) == 5
        assert all(b - a >= 6 for a, b in zip(into, into[1:])), into
        assert y < into[0] and into[-1] < y + h


def test_hostile_labels_stay_text(registry: mr.ModuleRegistry) -> None:
    result = registry.run_workflow(Workflow("w").step("b", "boom", on_error="skip"), 1)
    root = ET.fromstring(result.to_svg())
    (step,) = groups(root, "step")
    tip = step.findtext(f"{SVG}title") or ""
    assert "<b>\"q\" & 'a'\nline two" in tip and "\x1b" not in tip
    # A result put together by hand, with hostile ids, modules and versions.
    report = mr.StepReport(HOSTILE, HOSTILE, HOSTILE, "failed", 2, 0.0, 0.25, HOSTILE)
    bare = ET.fromstring(mr.WorkflowResult(None, [report], 0.3).to_svg())
    (step,) = groups(bare, "step")
    assert step.get("data-step") == HOSTILE.replace("\x1b", "\ufffd")
    assert all("\n" not in t for t in texts(bare))
    assert not list(bare.iter(f"{SVG}b"))


def test_a_wide_workflow_is_drawn_whole() -> None:
    wf = Workflow("wide")
    for b in range(500):
        wf.step(f"a{b}", "identity", after=[])
        wf.step(f"b{b}", "identity", after=[f"a{b}"])
    root = ET.fromstring(wf.to_svg())
    assert len(groups(root, "step")) == 1000 and len(arrow_ends(root)) == 1500
    bottom = max(y + h for _, y, _, h in boxes(root))
    assert float(root.get("height", "0")) <= bottom + 13


def ticks_of(root: ET.Element) -> list[tuple[float, float, str]]:
    """Each tick: its value in seconds, its x, its label."""
    out = []
    for g in groups(root, "tick"):
        text = g.find(f"{SVG}text")
        assert text is not None
        out.append((float(g.get("data-seconds", "nan")), float(text.get("x", "nan")), text.text or ""))
    return out


@pytest.mark.parametrize("span", [6.4e-3, 0.1271 * 5, 0.6e-3, 3.7, 42e-6, 1.0])
def test_ticks_fall_at_round_values_at_their_true_positions(span: float) -> None:
    from module_registry import _display

    bars = [_display.Bar("lane 1", 0.0, span, "s", "ok", "s")]
    root = ET.fromstring(_display.Timeline(bars, "t").to_svg())
    marks = ticks_of(root)
    values = [v for v, _, _ in marks]
    step = values[1] - values[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6, (span, values)
    assert values[0] == 0 and values[-1] >= span and values[-2] < span and len(values) <= 8
    # Evenly spaced labels at the x of their values; the label says the value.
    xs = [x for _, x, _ in marks]
    scale = (xs[-1] - xs[0]) / values[-1]
    assert all(abs(x - (xs[0] + v * scale)) < 0.02 for v, x, _ in marks)
    for v, _, label in marks:
        number, unit = label.split(" ")
        assert math.isclose(float(number) * {"µs": 1e-6, "ms": 1e-3, "s": 1.0}[unit], v, rel_tol=1e-9, abs_tol=1e-12)
    # Nothing clipped: the last label's half width fits in the picture.
    width = float(root.get("width", "0"))
    assert xs[-1] + len(marks[-1][2]) * 6.5 / 2 <= width
    # The bar spans the whole span.
    (bar,) = groups(root, "bar")
    rect = bar.find(f"{SVG}rect")
    assert rect is not None
    assert abs(float(rect.get("width", "0")) - span * scale) < 0.02


def test_the_run_timeline_starts_at_the_first_step() -> None:
    steps = [mr.StepReport(f"s{i}", "m", "1.0.0", "ok", 1, 0.009 + i * 1e-4, 1e-4) for i in range(6)]
    timeline = mr.WorkflowResult(1, steps, 0.0096).timeline()
    assert min(b.start for b in timeline.bars) == 0
    assert "9.0 ms before it" in timeline.title and "warm-up" in timeline.title
    root = ET.fromstring(timeline.to_svg())
    assert ticks_of(root)[-1][0] < 1e-3  # the axis covers the steps, not the warm-up
    # Bars that are wide enough carry their step id.
    labelled = [g.findtext(f"{SVG}text") for g in groups(root, "bar")]
    assert labelled == [f"s{i}" for i in range(6)]
    # The title fits in the picture.
    assert len(timeline.title) * 6.5 <= float(root.get("width", "0"))


def test_a_batch_timeline_names_its_workers(registry: mr.ModuleRegistry) -> None:
    results = registry.run_workflow_batch(Workflow("wide").step("n", "identity", pool=2), list(range(40)))
    timeline = mr.timeline(results)
    root = ET.fromstring(timeline.to_svg())
    lanes = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "lane"]
    assert lanes == [f"worker {i + 1}" for i in range(len(lanes))]
    tips = [g.findtext(f"{SVG}title") or "" for g in groups(root, "bar")]
    assert all(t.split(": ")[0].split(" on ")[1] in lanes for t in tips), tips[:3]
    assert not any(r.worker in t for r in results for t in tips)
