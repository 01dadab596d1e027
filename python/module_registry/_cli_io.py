"""What the ``module-registry`` command reads and writes: inputs and
workflow files read within a limit (an endless ``/dev/zero`` or pipe is
refused once the limit is read, never read whole), JSON output, tables, and
the report of a run (``run --report``)."""

from __future__ import annotations

import argparse
import base64
import math
import json
import os
import stat
import sys
from typing import Any, Iterator, Optional, Sequence

from . import ModuleRegistryError, Workflow, WorkflowResult

PROG = "module-registry"


#: The most an input (``--input FILE``, ``--input -``) or a workflow file may
#: hold, in MiB, unless ``--input-limit`` says otherwise.
INPUT_LIMIT_MIB = 64


class CliError(Exception):
    """A failure to report on one line."""


#: The key of the one-key JSON object that stands for bytes, both ways: an
#: output's bytes are written ``{"$bytes": "<base64>"}`` (standard alphabet,
#: padded), and such an object in an input is read back as those bytes, so
#: bytes never look like text and a printed output can be fed back in.
BYTES_KEY = "$bytes"


def _jsonable(value: Any, raw_bytes: bool) -> Any:
    if isinstance(value, bytes):
        return {BYTES_KEY: base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_jsonable(v, raw_bytes) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, raw_bytes) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        # As the core's JSON form: JSON numbers are finite.
        raise CliError(f"the output holds {value!r}, which has no JSON form (JSON numbers are finite)")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CliError(f"the output holds a {type(value).__name__}, which has no JSON form")


def _limit_bytes(args: argparse.Namespace) -> int:
    mib = getattr(args, "input_limit", INPUT_LIMIT_MIB)
    if not 0 < mib < 1024 * 1024:  # also refuses NaN and infinity
        raise CliError(f"--input-limit must be a number of MiB above 0 and below 1048576, not {mib}")
    return max(1, round(mib * 1024 * 1024))


def _mib(limit: int) -> str:
    return f"{limit / (1024 * 1024):.3g} MiB"


def _read_bytes(source: str, limit: int, what: str = "input", flag: bool = True) -> bytes:
    """At most ``limit`` bytes of ``source`` (a path, or ``-`` for stdin): a
    longer one (``/dev/zero``, an endless pipe) is refused once the limit is
    read, never read whole."""
    where = "stdin" if source == "-" else source
    try:
        if source == "-":
            if sys.stdin is None:
                raise CliError("cannot read input from stdin: this process has none")
            if sys.stdin.isatty():
                print(f"{PROG}: reading JSON input from stdin (end it with Ctrl-D)", file=sys.stderr, flush=True)
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(source, "rb") as f:
                data = f.read(limit + 1)
    except OSError as exc:
        raise CliError(f"cannot read {what} {source}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        more = " (a larger --input-limit MIB reads it)" if flag else ""
        raise CliError(f"{what} {where} is larger than {_mib(limit)}, the limit{more}")
    return data


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"input {where} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def _bytes_hook(where: str) -> Any:
    """The ``object_pairs_hook`` reading ``{"$bytes": "<base64>"}`` as bytes."""

    def hook(pairs: list[tuple[str, Any]]) -> Any:
        if len(pairs) == 1 and pairs[0][0] == BYTES_KEY:
            text = pairs[0][1]
            if not isinstance(text, str):
                raise CliError(f'{where}: {{"{BYTES_KEY}": ...}} stands for bytes and must hold base64 text, not {json.dumps(text)[:40]}')
            try:
                return base64.b64decode(text, validate=True)
            except ValueError as exc:
                raise CliError(f'{where}: {{"{BYTES_KEY}": ...}} stands for bytes and must hold base64 text: {exc}') from exc
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise CliError(f"{where} gives the key {json.dumps(key)} twice in one object")
            seen[key] = value
        return seen

    return hook


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_bytes_hook(where.rstrip(",")))
    except json.JSONDecodeError as exc:
        raise CliError(f"{where} is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise CliError(f"{where} nests too deeply to read") from exc


def _read_input(args: argparse.Namespace) -> Any:
    """The run's input: ``--input-text`` as it is, ``--input`` parsed as
    JSON, else ``None``."""
    if args.input_text is not None:
        return args.input_text
    source: Optional[str] = args.input
    if source is None:
        return None
    where = "stdin" if source == "-" else source
    return _parse_json(_text(_read_bytes(source, _limit_bytes(args)), where), f"input {where}")


def _iter_lines(source: str, limit: int) -> Iterator[Any]:
    """One JSON value per non-empty line of a ``.jsonl`` file, read as they
    are asked for (``run --batch`` streams them): only the line being read
    is held. The file as a whole is held to ``limit`` bytes: a regular
    file's size is checked before its first line, anything else (a pipe,
    ``/dev/zero``) is refused once the limit is read, a line never read
    past it."""
    more = " (a larger --input-limit MIB reads it)"
    try:
        f = open(source, "rb")
    except OSError as exc:
        raise CliError(f"cannot read input {source}: {exc.strerror or exc}") from exc
    with f:
        too_big = CliError(f"input {source} is larger than {_mib(limit)}, the limit{more}")
        try:
            mode = os.fstat(f.fileno())
            if stat.S_ISREG(mode.st_mode) and mode.st_size > limit:
                raise too_big
            read = number = 0
            while True:
                raw = f.readline(limit - read + 1)
                if not raw:
                    return
                read += len(raw)
                if read > limit:
                    raise too_big
                number += 1
                line = _text(raw, f"{source}, line {number}")
                if line.strip():
                    yield _parse_json(line, f"input {source}, line {number},")
        except OSError as exc:
            raise CliError(f"cannot read input {source}: {exc.strerror or exc}") from exc


class BatchTally:
    """What the report of a batch needs, added up as its results stream past
    (``add`` each one; none is kept): the number of runs, each step's
    statuses and time, the first errors and the first output."""

    def __init__(self) -> None:
        self.runs = 0
        self.first_output: Any = None
        #: step id -> (module label, {status: count}, total seconds)
        self.steps: dict[str, tuple[str, dict[str, int], list[float]]] = {}
        self.errors: list[tuple[str, str]] = []

    def add(self, result: WorkflowResult) -> None:
        if self.runs == 0:
            self.first_output = result.output
        self.runs += 1
        for step in result.steps:
            entry = self.steps.get(step.id)
            if entry is None:
                label = f"{step.module}@{step.version}" if step.module else "-"
                entry = self.steps[step.id] = (label, {}, [0.0])
            entry[1][step.status] = entry[1].get(step.status, 0) + 1
            entry[2][0] += step.duration
            if step.error and len(self.errors) < 5:
                self.errors.append((step.id, step.error))


def _load_workflow(path: str, limit: Optional[int] = None) -> Workflow:
    """``Workflow.load``, bounded: a file larger than ``limit`` is refused, and
    a pipe or device (``<(...)``, ``/dev/stdin``) is read up to the limit."""
    flag = limit is not None
    limit = INPUT_LIMIT_MIB * 1024 * 1024 if limit is None else limit
    more = " (a larger --input-limit MIB reads it)" if flag else ""
    try:
        mode = os.stat(path)
    except OSError:
        return Workflow.load(path)  # its own error names the path
    if stat.S_ISREG(mode.st_mode):
        if mode.st_size > limit:
            raise CliError(f"workflow file {path} is larger than {_mib(limit)}, the limit{more}")
        return Workflow.load(path)
    if stat.S_ISDIR(mode.st_mode):
        return Workflow.load(path)
    import tempfile

    data = _read_bytes(path, limit, what="workflow file", flag=flag)
    with tempfile.TemporaryDirectory(prefix="module-registry-") as folder:
        copy = os.path.join(folder, os.path.basename(path) or "workflow")
        with open(copy, "wb") as f:
            f.write(data)
        try:
            return Workflow.load(copy)
        except ModuleRegistryError as exc:
            raise CliError(str(exc).replace(copy, path)) from exc


def _write(value: Any, raw: bool) -> None:
    if raw and isinstance(value, bytes):
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
        return
    if raw and isinstance(value, str):
        sys.stdout.write(value)
        return
    json.dump(_jsonable(value, raw), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _short(value: Any, width: int = 100) -> str:
    try:
        text = json.dumps(_jsonable(value, False), ensure_ascii=False)
    except CliError:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= width else text[: width - 3] + "..."


def _report(path: str, workflow: Workflow, results: Sequence[WorkflowResult], seconds: float, batch: bool) -> None:
    """What ran, on stderr: one row per step (for a batch, its runs added
    up), the statuses, the times, and the output."""
    if batch:
        tally = BatchTally()
        for result in results:
            tally.add(result)
        _report_batch(path, workflow, tally, seconds)
        return
    out = sys.stderr
    steps: dict[str, list[Any]] = {}
    for result in results:
        for step in result.steps:
            steps.setdefault(step.id, []).append(step)
    counts: dict[str, int] = {}
    for reports in steps.values():
        for step in reports:
            counts[step.status] = counts.get(step.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    first = min((s.start for reports in steps.values() for s in reports), default=0.0)
    # A registry's first run sets up what later runs reuse before its first step starts.
    before = f" ({_duration(first)} of it before the first step: a first run's set-up)" if first > 1e-3 else ""
    print(f"\n{workflow.name} ({path}): {len(steps)} steps: {summary or 'none run'}, in {_duration(seconds)}{before}", file=out)
    cached = any(s.cache != "off" for reports in steps.values() for s in reports)
    header = ["step", "module", "status", "attempts", "start", "time"] + (["cache"] if cached else [])
    rows: list[tuple[str, ...]] = []
    # Starts are counted from the first step's.
    for sid, (s,) in steps.items():
        row = (sid, f"{s.module}@{s.version}" if s.module else "-", s.status, str(s.attempts),
               _duration(s.start - first), _duration(s.duration))
        rows.append(row + ((s.cache,) if cached else ()))
    _table(header, rows, out=out, indent="  ")
    errors = [(sid, s.error) for sid, reports in steps.items() for s in reports if s.error]
    for sid, error in errors[:5]:
        print(f"  {sid}: {' '.join(str(error).split())}", file=out)
    print(f"  output (on stdout): {_short(results[0].output)}", file=out)


def _report_batch(path: str, workflow: Workflow, tally: BatchTally, seconds: float) -> None:
    """The report of a batch (see `_report`) from its `BatchTally`."""
    out = sys.stderr
    counts: dict[str, int] = {}
    for _, states, _ in tally.steps.values():
        for status, n in states.items():
            counts[status] = counts.get(status, 0) + n
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"\n{workflow.name} ({path}): {tally.runs} inputs, {len(tally.steps)} steps: {summary or 'none run'}, in {_duration(seconds)}", file=out)
    header = ["step", "module", "status", "mean time", "total time"]
    rows: list[tuple[str, ...]] = []
    for sid, (label, states, total) in tally.steps.items():
        runs = sum(states.values())
        rows.append((sid, label, ", ".join(f"{n} {k}" for k, n in states.items()), _duration(total[0] / runs), _duration(total[0])))
    _table(header, rows, out=out, indent="  ")
    for sid, error in tally.errors:
        print(f"  {sid}: {' '.join(str(error).split())}", file=out)
    print(f"  outputs: {tally.runs} on stdout, the first {_short(tally.first_output) if tally.runs else '-'}", file=out)


def _table(header: list[str], rows: Sequence[tuple[str, ...]], out: Any = None, indent: str = "") -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for row in [tuple(header), *rows]:
        print(indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out or sys.stdout)


class MetricsServer:
    """``watch --metrics-port``: ``GET /metrics`` on 127.0.0.1 answers with
    the registry's metrics in the Prometheus text format (0.0.4), read at
    each request; anything else is 404. Served from a daemon thread until
    ``close()``. Port 0 takes a free port (``port`` says which)."""

    def __init__(self, registry: Any, port: int) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                body = registry.metrics_text().encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server name
                pass  # scrapes are not events worth a line

        if not 0 <= port <= 65535:
            raise CliError(f"--metrics-port must be a port from 0 to 65535, not {port}")
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as e:
            raise CliError(f"cannot serve metrics on 127.0.0.1:{port}: {e.strerror or e}") from None
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        # Not a thread that runs module code: the stdlib's server loop.
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
