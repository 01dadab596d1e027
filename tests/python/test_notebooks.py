"""The example notebooks run headless without errors."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "examples" / "notebooks"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = {k for o in outputs for k in o.get("data", {})}
    if path.name == "workflow.ipynb":
        assert "image/svg+xml" in kinds, "the workflow is drawn"
        assert "text/html" in kinds, "the report is a table"
        text = " ".join(o.get("data", {}).get("text/plain", "") for o in outputs)
        assert "notes-on-foxes: 12 words" in text
    if path.name == "dask.ipynb":
        text = " ".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
        assert "2262 PRIMES!" in text and "speed-up" in text
        assert "('WorkflowError', 1)" in text
