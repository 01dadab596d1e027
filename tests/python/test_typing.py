"""The stubs catch mistakes users make: a user script with planted mistakes
is type-checked (`mypy --strict`) and each mistake is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

SCRIPT = '''\
import module_registry as mr

registry = mr.ModuleRegistry(native_modules=True)
registry.register(mr.ModuleConfig(name="up", capabilities=["text"]), str.upper)
found: list[mr.ModuleInfo] = registry.discover(capabilities=["text"])
view = registry.as_principal("alice")
view.create("up").process("fine")
mr.ModuleConfig(capabilities="text")  # MISTAKE: a bare str is its letters
mr.CapabilityQuery().with_required_capabilities("text")  # MISTAKE
registry.discover(capabilities="text")  # MISTAKE
view.crate("up")  # MISTAKE: a typo on a view
registry.create(42)  # MISTAKE: a name is a str
mr.Workflow("w").step("a", "up", pool="4")  # MISTAKE
'''


def test_planted_mistakes_are_each_reported(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    out, err, status = api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(script)])
    assert status == 1, out + err
    reported = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    planted = {n for n, line in enumerate(SCRIPT.splitlines(), 1) if "# MISTAKE" in line}
    assert reported == planted, out
