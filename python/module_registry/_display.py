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


def modules_html(infos: Sequence[Any], title: Optional[str] = None) -> str:
    """One row per module name: its versions (highest first), and the type,
    kind, capabilities and implementation of its highest version."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for info in infos:
        groups.setdefault((info.kind, info.name), []).append(info)
    rows = []
    for (kind, name), versions in list(groups.items())[:MAX_ROWS]:
        top = versions[0]
        rows.append(
            (
                f"<b>{escape(name)}</b>",
                ", ".join(escape(v.version) for v in versions),
                escape(top.type.name),
                escape(kind),
                ", ".join(_code(c) for c in sorted(top.capabilities)),
                escape(top.implementation),
            )
        )
    caption = f"<p>{escape(title)}: " if title else "<p>"
    caption += f"{len(infos)} registration{'' if len(infos) == 1 else 's'} of {len(groups)} name{'' if len(groups) == 1 else 's'}</p>"
    header = ("name", "versions", "type", "kind", "capabilities", "implementation")
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

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 62, 60, 24, 16


def _outcome(report: Any) -> str:
    if report is None:
        return "not run"
    if report.cache == "hit":
        return "cached"
    return str(report.status)


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1e3:.2f} s"


#: What ``Workflow.edges()`` calls the workflow's own input and output: not
#: possible step ids, so steps named ``input`` or ``output`` are nodes of their own.
INPUT, OUTPUT = "(input)", "(output)"


def _layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Each node's column: the longest path to it from the input. One pass in
    topological order (Kahn's), so a long chain declared in any order is
    linear; nodes on a cycle (not from a checked workflow) stay in column 0."""
    layer = {n: 0 for n in nodes}
    pending = {n: 0 for n in nodes}
    after: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        after[a].append(b)
        pending[b] += 1
    ready = [n for n in nodes if pending[n] == 0]
    while ready:
        a = ready.pop()
        for b in after[a]:
            if layer[b] < layer[a] + 1:
                layer[b] = layer[a] + 1
            pending[b] -= 1
            if pending[b] == 0:
                ready.append(b)
    return layer


def run_svg(result: Any) -> str:
    """The workflow of ``result`` with each step coloured by its outcome, its
    attempts and duration written on it, and its error on hover."""
    workflow = result.workflow
    reports = {r.id: r for r in result.steps}
    if workflow is not None:
        edges = [tuple(e) for e in workflow.edges()]
        ids = list(workflow.step_ids)
    else:  # a result built by hand: its steps in a row
        ids = list(dict.fromkeys(r.id for r in result.steps))
        chain = [INPUT, *ids, OUTPUT]
        edges = list(zip(chain, chain[1:]))
    nodes = [INPUT, *ids, OUTPUT]
    layer = _layers(nodes, edges)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n], []).append(n)
    height = max(len(c) for c in columns.values()) * (NODE_H + GAP_Y) - GAP_Y + 2 * PAD
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        top = (height - (len(members) * (NODE_H + GAP_Y) - GAP_Y)) / 2
        for row, n in enumerate(members):
            pos[n] = (PAD + col * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y))
    width = PAD * 2 + (max(columns) + 1) * (NODE_W + GAP_X) - GAP_X
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        '<defs><marker id="mr-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for a, b in edges:
        (ax, ay), (bx, by) = pos[a], pos[b]
        out.append(
            f'<line class="edge" x1="{ax + NODE_W}" y1="{ay + NODE_H / 2}" x2="{bx}" y2="{by + NODE_H / 2}" '
            'stroke="#555" stroke-width="1.2" marker-end="url(#mr-arrow)"/>'
        )
    for n in nodes:
        x, y = pos[n]
        if n in (INPUT, OUTPUT):
            out.append(
                f'<g class="end"><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{NODE_H / 2}" '
                f'fill="#f5f5f5" stroke="#777"/><text x="{x + NODE_W / 2}" y="{y + NODE_H / 2 + 4}" '
                f'text-anchor="middle">{"input" if n == INPUT else "output"}</text></g>'
            )
            continue
        report = reports.get(n)
        outcome = _outcome(report)
        fill, stroke = COLOURS[outcome]
        if report is None:
            lines = [n, "", "not run"]
            tip = f"{n}: not run"
        else:
            attempts = f"{report.attempts} attempt{'' if report.attempts == 1 else 's'}"
            lines = [n, f"{report.module}@{report.version}", f"{outcome} · {attempts} · {_ms(report.duration)}"]
            tip = f"{n}: {outcome}" + (f"\n{_short(report.error)}" if report.error else "")
        bold = ' font-weight="bold"'
        texts = "".join(
            f'<text x="{x + 10}" y="{y + 18 + 17 * i}"{bold if i == 0 else ""}>{escape(t)}</text>'
            for i, t in enumerate(lines)
        )
        out.append(
            f'<g class="step" data-step="{escape(n)}" data-outcome="{escape(outcome)}"><title>{escape(tip)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="1.5"/>{texts}</g>'
        )
    out.append("</svg>")
    return "".join(out)


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
        f"<div>{run_svg(result)}</div>{table}"
        f"<p>output: {_code(_output_repr(result.output))} in {result.duration * 1e3:.3f} ms</p>"
    )


# ----- timelines --------------------------------------------------------------

LANE_H, BAR_H, LABEL_W, PLOT_W = 26, 18, 150, 640


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
        lanes = self.lanes
        end = max((b.start + b.duration for b in self.bars), default=0.0) or 1e-6
        scale = PLOT_W / end
        height = 40 + len(lanes) * LANE_H + 30
        width = LABEL_W + PLOT_W + 20
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            'font-family="sans-serif" font-size="11">',
            f'<text x="4" y="16" font-weight="bold">{escape(self.title)}</text>',
        ]
        for i, lane in enumerate(lanes):
            y = 30 + i * LANE_H
            out.append(f'<text x="4" y="{y + BAR_H - 4}">{escape(lane)}</text>')
            out.append(f'<line x1="{LABEL_W}" y1="{y + LANE_H - 3}" x2="{LABEL_W + PLOT_W}" y2="{y + LANE_H - 3}" stroke="#eee"/>')
        row = {lane: i for i, lane in enumerate(lanes)}
        for b in self.bars:
            y = 30 + row[b.lane] * LANE_H
            x = LABEL_W + b.start * scale
            w = max(b.duration * scale, 1.0)
            fill, stroke = COLOURS.get(b.outcome, COLOURS["ok"])
            out.append(
                f'<g class="bar" data-outcome="{escape(b.outcome)}"><title>{escape(b.tip)}</title>'
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{BAR_H}" fill="{fill}" stroke="{stroke}"/>'
                + (f'<text x="{x + 3:.2f}" y="{y + BAR_H - 5}">{escape(b.label)}</text>' if w > 7 * len(b.label) else "")
                + "</g>"
            )
        axis_y = 30 + len(lanes) * LANE_H + 4
        out.append(f'<line x1="{LABEL_W}" y1="{axis_y}" x2="{LABEL_W + PLOT_W}" y2="{axis_y}" stroke="#555"/>')
        for k in range(5):
            t = end * k / 4
            x = LABEL_W + t * scale
            out.append(f'<text x="{x:.2f}" y="{axis_y + 16}" text-anchor="middle">{escape(_ms(t))}</text>')
        out.append("</svg>")
        return "".join(out)


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
    at the same time, so parallel branches, retries and waits show."""
    steps = list(result.steps)
    lanes = _pack([(s.start, s.start + s.duration, i) for i, s in enumerate(steps)])
    bars = [
        Bar(
            f"lane {lanes[i] + 1}",
            s.start,
            s.duration,
            s.id,
            _outcome(s),
            f"{s.id} ({s.module}@{s.version}): {_outcome(s)}, {s.attempts} attempt(s), "
            f"{_ms(s.start)} to {_ms(s.start + s.duration)}" + (f"\n{s.error}" if s.error else ""),
        )
        for i, s in enumerate(steps)
    ]
    bars.sort(key=lambda b: (b.lane, b.start))
    return Timeline(bars, f"run of {len(steps)} steps, {_ms(result.duration)}")


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
        tip = f"input {i} on {r.worker}: {_ms(r.duration)}\n" + "\n".join(f"{s.id}: {_outcome(s)} {_ms(s.duration)}" for s in r.steps)
        bars.append(Bar(lane, r.started_at - t0, r.duration, str(i), outcome, tip))
    bars.sort(key=lambda b: (b.lane, b.start))
    span = max(b.start + b.duration for b in bars)
    return Timeline(bars, f"batch of {len(runs)} runs on {len(workers)} worker{'' if len(workers) == 1 else 's'}, {_ms(span)}")
