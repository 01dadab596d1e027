"""The README's Python quickstart runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_quickstart_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has a Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "['word-count']"
    assert out[1] == "4"
    assert len(out[2]) == 64
    assert out[4] == "['digest', 'size']"
    assert out[5] == "[('zip', 'ok', 1), ('digest', 'ok', 1), ('size', 'ok', 1), ('both', 'ok', 1)]"
    assert out[6] == "aGk="
