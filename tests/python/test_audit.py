"""The audit log and its durable file, from Python."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import module_registry as mr


def double(x: int) -> int:
    """A module-level function: a manifest records it by import path."""
    return x * 2


def test_audit_file_and_reading_it_back(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    registry = mr.ModuleRegistry()
    registry.set_audit_file(path)

    def work(t: int) -> None:
        for i in range(25):
            registry.register(mr.ModuleConfig(name=f"t{t}-{i}"), double)
            registry.create(f"t{t}-{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(mr.UnknownModuleError):
        registry.create("missing")
    registry.set_audit_file(None)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 25 * 2 + 1
    first = json.loads(lines[0])
    assert set(first) >= {"operation", "principal", "module", "version", "outcome", "time"}
    events = mr.read_audit_file(path)
    assert [e.outcome for e in events].count("ok") == 200
    assert events[-1].operation == "create" and events[-1].outcome == "error" and events[-1].module == "missing"
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)


def test_an_audit_file_with_an_impossible_time_is_a_validation_error(tmp_path: Path) -> None:
    line = {
        "sequence": 1,
        "time": 1e308,
        "operation": "register",
        "principal": "system",
        "kind": "module",
        "module": "m",
        "version": "1.0.0",
        "outcome": "ok",
        "detail": None,
    }
    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(mr.ValidationError, match="not a time"):
        mr.read_audit_file(path)


def test_a_fifo_is_not_an_audit_file(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    registry = mr.ModuleRegistry()
    with pytest.raises(mr.ValidationError, match="regular file"):
        registry.set_audit_file(fifo)


def test_audit_file_write_failures_are_counted_and_warned(tmp_path: Path) -> None:
    """A full disk, played by a file-size limit in a child process: every
    lost event is counted, and the first failure warns on stderr."""
    import subprocess
    import sys

    code = f"""
import resource, signal
import module_registry as mr
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
registry = mr.ModuleRegistry()
registry.set_audit_file({str(tmp_path / "audit.jsonl")!r})
for i in range(50):
    registry.register(mr.ModuleConfig(name=f"m{{i}}"))
print(registry.audit_file_failures, len(registry.audit_events()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    failures, kept = map(int, done.stdout.split())
    assert kept == 50 and 0 < failures < 50
    assert done.stderr.count("cannot write to the audit file") == 1, done.stderr
    # What was written reads back whole.
    assert len(mr.read_audit_file(tmp_path / "audit.jsonl")) == 50 - failures
