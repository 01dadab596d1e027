"""The example notebooks run headless without errors."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "examples" / "notebooks"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    """Each notebook, run in an empty folder outside the clone: it needs only
    the installed package (no clone paths, no private API)."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    for clone_only in ("_core", "parents[", "Path.cwd()", "'scripts'", '"scripts"', "load_scripts("):
        assert clone_only not in code, f"{path.name} uses {clone_only!r}: it would work only inside a clone"
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = {k for o in outputs for k in o.get("data", {})}
    if path.name == "workflow.ipynb":
        assert "image/svg+xml" in kinds, "the workflow is drawn"
        assert "text/html" in kinds, "the report is a table"
        text = " ".join(o.get("data", {}).get("text/plain", "") for o in outputs)
        assert "notes-on-foxes: 12 words" in text
        check_displays(nb)

    if path.name == "dask.ipynb":
        text = " ".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
        assert "2262 PRIMES!" in text and "speed-up" in text
        assert "('WorkflowError', 1)" in text


def shown(nb: Any, starts: str, mimetype: str) -> str:
    """What the code cell starting with ``starts`` displayed as ``mimetype``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(starts):
            for o in cell.get("outputs", []):
                if mimetype in o.get("data", {}):
                    return str(o["data"][mimetype])
    raise AssertionError(f"no {mimetype} from the cell starting {starts!r}")


def svgs_in(html: str) -> list[ET.Element]:
    """Every SVG picture in ``html``, parsed (so each is valid XML)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg.*?</svg>", html, re.S)]


def check_displays(nb: Any) -> None:
    """Each display of the notebook experience, by mimetype and content."""
    ns = "{http://www.w3.org/2000/svg}"

    def groups(svg: ET.Element, cls: str) -> list[ET.Element]:
        return [g for g in svg.iter(f"{ns}g") if g.get("class") == cls]

    assert "<table" in shown(nb, "registry", "text/html") and "slugify" in shown(nb, "registry", "text/html")
    assert "<table" in shown(nb, "found = registry.discover", "text/html")
    assert "headline" in shown(nb, "@registry.module(name='headline'", "text/html")
    instance = shown(nb, "instance = registry.create", "text/html")
    assert "slugify" in instance and "initialized" in instance
    # The run: its picture (one node per step, each ok) above the table.
    (run,) = svgs_in(shown(nb, "post = {", "text/html"))
    steps = groups(run, "step")
    assert len(steps) == 6 and {g.get("data-outcome") for g in steps} == {"ok"}
    # Its timeline: one bar per step; the parallel branches take several lanes.
    timeline = ET.fromstring(shown(nb, "result.timeline()", "image/svg+xml"))
    assert len(groups(timeline, "bar")) == 6
    # Outcomes other than ok, with the error on hover.
    (shaky,) = svgs_in(shown(nb, "@registry.module(name='flaky'", "text/html"))
    outcomes = {g.get("data-step"): g.get("data-outcome") for g in groups(shaky, "step")}
    assert outcomes == {"slug": "ok", "try": "skipped", "other": "fallback", "both": "ok"}
    tips = [g.findtext(f"{ns}title") or "" for g in groups(shaky, "step")]
    assert any("flaky is down today" in t for t in tips)
    (cached,) = svgs_in(shown(nb, "registry.set_cache", "text/html"))
    assert {g.get("data-outcome") for g in groups(cached, "step")} == {"cached"}
    # A batch on a pool of three: one bar per input, one lane per worker.
    batch = ET.fromstring(shown(nb, "wide = ", "image/svg+xml"))
    assert len(groups(batch, "bar")) == 12
    # As many lanes as workers that took inputs: on a loaded machine one of
    # the pool's three may take none.
    title = batch.findtext(f"{ns}text") or ""
    assert re.search(r"batch of 12 runs on [123] workers?", title), title
    policy = shown(nb, "policy = (", "text/html")
    assert "alice" in policy and "text-*" in policy
    index = shown(nb, "import shutil", "text/html")
    assert "slugify" in index and "text-stats" in index


def test_examples_readme_lists_every_notebook() -> None:
    listed = (NOTEBOOKS.parent / "README.md").read_text()
    for path in NOTEBOOKS.glob("*.ipynb"):
        assert f"notebooks/{path.name}" in listed, f"examples/README.md does not list {path.name}"


def test_the_public_namespace_is_what_all_lists() -> None:
    """``dir(module_registry)`` holds ``__all__``, dunder names and the
    package's own submodules, nothing else (no ``annotations``,
    ``TYPE_CHECKING``, or names imported for the package's own use)."""
    import types

    import module_registry as mr

    assert len(set(mr.__all__)) == len(mr.__all__)
    assert not set(mr.__all__) - set(dir(mr)), "__all__ names something missing"
    extra = set(dir(mr)) - set(mr.__all__)
    leaked = {
        name
        for name in extra
        if not (name.startswith("__") and name.endswith("__"))
        # pytest's assertion rewriting adds these to every module of a
        # distribution that ships a pytest plugin (ours does): not names a
        # user can type.
        and not name.startswith("@py")
        and not (isinstance(getattr(mr, name), types.ModuleType) and getattr(mr, name).__name__ == f"module_registry.{name}")
    }
    assert not leaked, f"not in __all__: {sorted(leaked)}"
    assert "annotations" not in dir(mr) and "TYPE_CHECKING" not in dir(mr)


def test_the_public_index_functions(tmp_path: Path) -> None:
    """``build_index``, ``keygen`` and ``sign_index``: what the CLI does, from
    Python, as the notebook uses them; a signed index installs with its key."""
    import shutil

    import module_registry as mr

    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shutil.copy(mr.bundled_scripts() / "slugify.rhai", shelf)
    index = mr.build_index(shelf)
    assert index == shelf / "index.json" and index.is_file()
    secret, public = mr.keygen(tmp_path / "keys" / "team")  # the folder is created
    assert (secret, public) == (tmp_path / "keys" / "team.key", tmp_path / "keys" / "team.pub")
    assert secret.is_file() and public.is_file()
    signature = mr.sign_index(index, secret)
    assert signature == shelf / "index.json.minisig" and signature.is_file()
    registry = mr.ModuleRegistry()
    registry.install("slugify", "^1", index=index.as_uri(), into=tmp_path / "modules", trusted_key=public)
    assert registry.create("slugify").process("Hello World") == "hello-world"
    with pytest.raises(mr.ValidationError, match="never overwritten"):
        mr.keygen(tmp_path / "keys" / "team")
