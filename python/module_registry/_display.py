"""What notebooks show: HTML tables for the registry and its views, module
records, instances, access policies and package indexes; a run's picture
coloured by outcome; timelines of a run or a batch.

Every piece of text that comes from a module, a step or an error is escaped.
Pictures are plain SVG (no script, no external resource), so they display in
any notebook front end and in a browser.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterable, Optional, Sequence

def escape(text: str) -> str:
    """``html.escape``, imported on first use: importing the package must not
    pay for ``html`` and ``json`` (they import ``re``, several milliseconds)."""
    from html import escape as html_escape

    return html_escape(text)


#: Rows a table shows before it says how many are left.
MAX_ROWS = 50

#: Fill and border of a step by its outcome (a cache hit wins over "ok").
COLOURS = {
    "ok": ("#d4edda", "#2e7d32"),
    "failed": ("#f8d7da", "#c62828"),
    "skipped": ("#e2e3e5", "#616161"),
    "fallback": ("#fff3cd", "#b26a00"),
    "cached": ("#d1ecf1", "#0277bd"),
    "not run": ("#ffffff", "#9e9e9e"),
}

_TABLE = "<table class=\"module-registry\"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], total: int, what: str) -> str:
    """An HTML table of already escaped cells, and a line for rows not shown."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    html = _TABLE.format(head=head, rows=body)
    if total > MAX_ROWS:
        html += f"<p>… and {total - MAX_ROWS} more {escape(what)} (of {total})</p>"
    return html


#: The most characters of an output or an error a run's display shows.
MAX_TEXT = 500


def _short(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _output_repr(value: object) -> str:
    """A bounded ``repr`` of a run's output: ``reprlib`` stops early in big
    strings, lists and dicts, so a step returning 100 MB costs nothing here."""
    import reprlib

    class Short(reprlib.Repr):
        def repr_bytes(self, x: bytes, level: int) -> str:
            if len(x) <= self.maxstring:
                return repr(x)
            return f"{x[: self.maxstring]!r}… ({len(x)} bytes)"

    short = Short()
    short.maxstring = short.maxother = MAX_TEXT
    short.maxlist = short.maxdict = short.maxtuple = short.maxset = 20
    short.maxlevel = 4
    return _short(short.repr(value))


def _code(text: object) -> str:
    return f"<code>{escape(str(text))}</code>"


class ModuleList(list):  # type: ignore[type-arg]
    """A list of ``ModuleInfo`` (what discovery and listing return), shown in
    a notebook as a table; a ``list`` in every other way."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return modules_html(self)


def modules_html(
    infos: Sequence[Any], title: Optional[str] = None, calls: Optional[Sequence[tuple[str, int, int, Optional[float]]]] = None
) -> str:
    """One row per module name: its versions (highest first), and the type,
    kind, types (``input -> output``), capabilities and implementation of
    its highest version. With
    ``calls`` (``(name, calls, failures, median_seconds)`` per module name
    that was called, from the registry's metrics) and at least one call, the
    table also has the calls, failures and median call time of each name
    (its versions together)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for info in infos:
        groups.setdefault((info.kind, info.name), []).append(info)
    counted = {name: (n, failed, median) for name, n, failed, median in calls or ()}
    rows = []
    for (kind, name), versions in list(groups.items())[:MAX_ROWS]:
        top = versions[0]
        row: tuple[str, ...] = (
            f"<b>{escape(name)}</b>",
            ", ".join(escape(v.version) for v in versions),
            escape(top.type.name),
            escape(kind),
            f"{_code(str(top.input))} → {_code(str(top.output))}",
            ", ".join(_code(c) for c in sorted(top.capabilities)),
            escape(top.implementation),
        )
        if counted:
            n, failed, median = counted.get(name, (0, 0, None)) if kind == "module" else (0, 0, None)
            row += (str(n) if n else "—", str(failed) if n else "—", _ms(median) if median is not None else "—")
        rows.append(row)
    caption = f"<p>{escape(title)}: " if title else "<p>"
    caption += f"{len(infos)} registration{'' if len(infos) == 1 else 's'} of {len(groups)} name{'' if len(groups) == 1 else 's'}</p>"
    header: tuple[str, ...] = ("name", "versions", "type", "kind", "types", "capabilities", "implementation")
    if counted:
        header += ("calls", "failures", "median")
    return caption + _table(header, rows, len(groups), "names")


def info_html(info: Any) -> str:
    """A registration: its fields, dependencies and metadata."""
    rows = [
        ("name", f"<b>{escape(info.name)}</b>"),
        ("version", escape(info.version)),
        ("kind", escape(info.kind)),
        ("type", escape(info.type.name)),
        ("capabilities", ", ".join(_code(c) for c in sorted(info.capabilities)) or "—"),
        ("implementation", escape(info.implementation)),
        ("types", f"{_code(str(info.input))} → {_code(str(info.output))}"),
        ("config type", _code(str(info.config_type))),
        ("dependencies", ", ".join(f"{_code(n)} {escape(r)}" for n, r in sorted(info.dependencies.items())) or "—"),
        ("metadata", ", ".join(f"{escape(k)}={escape(v)}" for k, v in sorted(info.metadata.items())) or "—"),
    ]
    return _table(("field", "value"), rows, len(rows), "fields")


def instance_html(instance: Any) -> str:
    """An instance: module, version, state and the dependency instances built for it."""
    rows = [
        ("module", f"<b>{escape(instance.name)}</b>"),
        ("version", escape(instance.version)),
        ("state", escape(instance.state)),
        ("dependencies", ", ".join(_code(d) for d in instance.dependencies) or "—"),
    ]
    return _table(("field", "value"), rows, len(rows), "fields")


def policy_html(policy: Any) -> str:
    """An access policy: each role's grants, and each principal's roles
    (read from its JSON form, ``{"roles": {role: [{"permissions", "modules"}]},
    "principals": {principal: [role]}}``)."""
    import json

    state = json.loads(policy.__getstate__())
    role_rows = [
        (
            f"<b>{escape(role)}</b>",
            "; ".join(
                f"{', '.join(escape(p) for p in g['permissions'])} on {_code(g['modules'])}" for g in grants
            ),
        )
        for role, grants in sorted(state["roles"].items())
    ]
    principal_rows = [(escape(p), ", ".join(escape(r) for r in roles)) for p, roles in sorted(state["principals"].items())]
    return (
        "<p>roles</p>"
        + _table(("role", "grants"), role_rows[:MAX_ROWS], len(role_rows), "roles")
        + "<p>principals</p>"
        + _table(("principal", "roles"), principal_rows[:MAX_ROWS], len(principal_rows), "principals")
    )


def index_html(index: Any) -> str:
    """A package index: one row per package version."""
    packages = index.packages()
    rows = [
        (
            f"<b>{escape(p.name)}</b>",
            escape(p.version) + (" (yanked)" if p.yanked else ""),
            escape(p.type),
            ", ".join(_code(c) for c in p.capabilities),
            escape(p.license),
            escape(p.description),
        )
        for p in packages[:MAX_ROWS]
    ]
    caption = f"<p>package index of {len(packages)} package version{'' if len(packages) == 1 else 's'}, generated {escape(index.generated)}</p>"
    return caption + _table(("package", "version", "type", "capabilities", "license", "description"), rows, len(packages), "versions")


# ----- a run's picture ------------------------------------------------------
# Drawn by the core (``WorkflowResult.to_svg``), in the layout and style of
# the workflow's own picture (``Workflow.to_svg``).


def _outcome(report: Any) -> str:
    if report is None:
        return "not run"
    if report.cache == "hit":
        return "cached"
    return str(report.status)


def _ms(seconds: float) -> str:
    """A duration as people read it: ``850 µs``, ``12.5 ms``, ``3.20 s``."""
    ms = seconds * 1e3
    if ms < 1:
        return f"{ms * 1e3:.0f} µs"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1e3:.2f} s"


def result_html(result: Any) -> str:
    """The run's picture above its table of steps."""
    rows = [
        (
            escape(r.id),
            escape(r.module),
            escape(r.version),
            escape(r.status) + (" (cached)" if r.cache == "hit" else ""),
            str(r.attempts),
            f"{r.start * 1e3:.3f}",
            f"{r.duration * 1e3:.3f}",
            escape(_short(r.error or "")),
        )
        for r in list(result.steps)[:MAX_ROWS]
    ]
    table = _table(("step", "module", "version", "status", "attempts", "start (ms)", "duration (ms)", "error"), rows, len(result.steps), "steps")
    return (
        f"<div>{result.to_svg()}</div>{table}"
        f"<p>output: {_code(_output_repr(result.output))} in {result.duration * 1e3:.3f} ms</p>"
    )


# ----- timelines --------------------------------------------------------------

LANE_H, BAR_H, PLOT_W, RIGHT = 26, 18, 640, 40
#: Width of a character of the timelines' 11 px sans-serif text (an estimate
#: on the wide side, so what is said to fit does).
CHAR_W = 6.5


def ticks(span: float) -> tuple[float, list[float]]:
    """Round ticks from 0 past ``span`` seconds: a step of 1, 2 or 5 times a
    power of ten giving at most 6 intervals, and the ticks up to the first
    one at or after ``span`` (the axis ends there)."""
    import math

    span = span if span > 0 else 1e-6
    raw = span / 6
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    count = max(1, math.ceil(span / step - 1e-9))
    return step, [k * step for k in range(count + 1)]


def tick_label(t: float, step: float) -> str:
    """A tick's value in the unit of its step (µs, ms or s), with the
    decimals the step needs and no more."""
    import math

    unit, name = (1e-6, "µs") if step < 1e-3 else ((1e-3, "ms") if step < 1 else (1.0, "s"))
    decimals = max(0, -math.floor(math.log10(step / unit) + 1e-9))
    return f"{t / unit:.{decimals}f} {name}"


class Bar:
    """One bar of a timeline: a lane, a start and a duration (seconds), a label."""

    __slots__ = ("lane", "start", "duration", "label", "outcome", "tip")

    def __init__(self, lane: str, start: float, duration: float, label: str, outcome: str, tip: str) -> None:
        self.lane, self.start, self.duration, self.label, self.outcome, self.tip = lane, start, duration, label, outcome, tip


class Timeline:
    """Bars over time, one lane per row; a notebook displays it as SVG."""

    def __init__(self, bars: list[Bar], title: str) -> None:
        self.bars = bars
        self.title = title

    @property
    def lanes(self) -> list[str]:
        seen: dict[str, None] = {}
        for b in self.bars:
            seen.setdefault(b.lane, None)
        return list(seen)

    def __repr__(self) -> str:
        return f"<Timeline {self.title!r}: {len(self.bars)} bars in {len(self.lanes)} lanes>"

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def to_svg(self) -> str:
        """The timeline as SVG: lanes named on the left, bars labelled where
        their label fits, an axis of round ticks at their true positions."""
        lanes = self.lanes
        step, marks = ticks(max((b.start + b.duration for b in self.bars), default=0.0))
        scale = PLOT_W / marks[-1]
        left = 8 + max((len(lane) for lane in lanes), default=0) * CHAR_W + 8
        width = max(left + PLOT_W + RIGHT, 8 + len(self.title) * CHAR_W * 1.1 + 8)
        axis_y = 30 + len(lanes) * LANE_H + 4
        height = axis_y + 24
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="mr-timeline" width="{width:.0f}" height="{height}" '
            f'viewBox="0 0 {width:.0f} {height}" font-family="sans-serif" font-size="11">',
            f'<text x="8" y="16" font-weight="bold">{escape(self.title)}</text>',
        ]
        for i, lane in enumerate(lanes):
            y = 30 + i * LANE_H
            out.append(f'<text class="lane" x="8" y="{y + BAR_H - 5}">{escape(lane)}</text>')
            out.append(f'<line x1="{left:.1f}" y1="{y + LANE_H - 3}" x2="{left + PLOT_W:.1f}" y2="{y + LANE_H - 3}" stroke="#eee"/>')
        row = {lane: i for i, lane in enumerate(lanes)}
        for b in self.bars:
            y = 30 + row[b.lane] * LANE_H
            x = left + b.start * scale
            w = max(b.duration * scale, 1.0)
            fill, stroke = COLOURS.get(b.outcome, COLOURS["ok"])
            fits = w >= CHAR_W * len(b.label) + 6
            out.append(
                f'<g class="bar" data-outcome="{escape(b.outcome)}"><title>{escape(b.tip)}</title>'
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{BAR_H}" fill="{fill}" stroke="{stroke}"/>'
                + (f'<text x="{x + 3:.2f}" y="{y + BAR_H - 5}">{escape(b.label)}</text>' if fits else "")
                + "</g>"
            )
        out.append(f'<line x1="{left:.1f}" y1="{axis_y}" x2="{left + PLOT_W:.1f}" y2="{axis_y}" stroke="#555"/>')
        for t in marks:
            x = left + t * scale
            out.append(
                f'<g class="tick" data-seconds="{t!r}"><line x1="{x:.2f}" y1="{axis_y}" x2="{x:.2f}" y2="{axis_y + 4}" stroke="#555"/>'
                f'<text x="{x:.2f}" y="{axis_y + 16}" text-anchor="middle">{escape(tick_label(t, step))}</text></g>'
            )
        out.append("</svg>")
        return "".join(out)


def _lane_order(bar: Bar) -> tuple[int, float]:
    """Bars by lane number (``lane 2`` before ``lane 10``), then by start."""
    return int(bar.lane.rsplit(" ", 1)[-1]), bar.start


def _pack(intervals: list[tuple[float, float, int]]) -> dict[int, int]:
    """A lane for each interval ``(start, end, key)``: the first lane free at
    its start, so intervals in one lane never overlap. Two heaps (lanes busy
    by when they free up, lanes free by number): n log n, not n x lanes."""
    import heapq

    busy: list[tuple[float, int]] = []
    free: list[int] = []
    count = 0
    lanes: dict[int, int] = {}
    for start, end, key in sorted(intervals):
        while busy and busy[0][0] <= start + 1e-9:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, count = count, count + 1
        lanes[key] = lane
        heapq.heappush(busy, (end, lane))
    return lanes


def run_timeline(result: Any) -> Timeline:
    """One bar per step from its start to its end; one lane per step running
    at the same time, so parallel branches, retries and waits show. Time runs
    from the first step's start: what came before it (a registry's one-time
    warm-up on its first run) is not drawn, and the title says how long it was."""
    steps = list(result.steps)
    t0 = min((s.start for s in steps), default=0.0)
    lanes = _pack([(s.start, s.start + s.duration, i) for i, s in enumerate(steps)])
    bars = [
        Bar(
            f"lane {lanes[i] + 1}",
            s.start - t0,
            s.duration,
            s.id,
            _outcome(s),
            f"{s.id} ({s.module}@{s.version}): {_outcome(s)}, {s.attempts} attempt(s), "
            f"{_ms(s.start - t0)} to {_ms(s.start - t0 + s.duration)}" + (f"\n{s.error}" if s.error else ""),
        )
        for i, s in enumerate(steps)
    ]
    bars.sort(key=_lane_order)
    span = max((b.start + b.duration for b in bars), default=0.0)
    title = f"run of {len(steps)} step{'' if len(steps) == 1 else 's'}, {_ms(span)} from the first step"
    if t0 > 0.01 * max(span, 1e-9) and t0 >= 1e-4:
        title += f" ({_ms(t0)} before it, the registry's warm-up, not drawn)"
    return Timeline(bars, title)


def batch_timeline(results: Iterable[Any]) -> Timeline:
    """One bar per run of a batch, in one lane per worker thread (or Dask
    worker process) that ran it; a failed input (an exception in the list,
    from ``errors="return"``) has no timing and is left out."""
    runs = [(i, r) for i, r in enumerate(results) if not isinstance(r, BaseException)]
    if not runs:
        return Timeline([], "empty batch")
    t0 = min(r.started_at for _, r in runs)
    workers: dict[str, str] = {}
    bars = []
    for i, r in runs:
        lane = workers.setdefault(r.worker, f"worker {len(workers) + 1}")
        failed = any(s.status == "failed" for s in r.steps)
        outcome = "failed" if failed else ("cached" if r.steps and all(s.cache == "hit" for s in r.steps) else "ok")
        tip = f"input {i} on {lane}: {_ms(r.duration)}\n" + "\n".join(f"{s.id}: {_outcome(s)} {_ms(s.duration)}" for s in r.steps)
        bars.append(Bar(lane, r.started_at - t0, r.duration, str(i), outcome, tip))
    bars.sort(key=_lane_order)
    span = max(b.start + b.duration for b in bars)
    return Timeline(bars, f"batch of {len(runs)} runs on {len(workers)} worker{'' if len(workers) == 1 else 's'}, {_ms(span)}")
