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
        if "Client()" in block:
            continue  # the Dask recipe runs in test_readme_dask_recipe_runs
        exec(compile(block, str(README), "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "['text-stats', 'word-count']"
    assert out[1] == "4"
    assert len(out[2]) == 64
    assert out[4] == "hello-world"
    assert out[5] == "['digest', 'size']"
    assert out[6] == "[('zip', 'ok', 1), ('digest', 'ok', 1), ('size', 'ok', 1), ('both', 'ok', 1)]"
    assert out[7] == "aGk="
    assert out[8] == "miss hit 1"
    # The hot-reload recipe watches the shipped scripts folder: one event per module.
    loaded = [line for line in out[9:] if line.startswith("<ReloadEvent loaded")]
    assert any("slugify@" in line for line in loaded), out[9:]


def test_readme_dask_recipe_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The Scale out recipe, on a cluster of two processes on 127.0.0.1
    instead of Dask's default (all cores, a dashboard port)."""
    pytest.importorskip("distributed")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "Client()" in b]
    assert len(blocks) == 1
    local = 'Client(LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None))'
    code = "from dask.distributed import LocalCluster\n" + blocks[0].replace("Client()", local)
    scope: dict[str, object] = {}
    try:
        exec(compile(code, str(README), "exec"), scope)
        assert capsys.readouterr().out.splitlines()[-1] == "3"
    finally:
        client = scope.get("client")
        if client is not None:
            cluster = client.cluster  # type: ignore[attr-defined]
            client.close()  # type: ignore[attr-defined]
            cluster.close()
