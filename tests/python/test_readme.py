"""Every code block of the README (the front page) runs as written.

The README keeps the install, the two commands and one example each in
Python and Rhai; everything else is in the docs site (``docs/``), whose
python blocks ``test_docs.py`` runs, and whose other blocks
``test_docs_blocks.py`` runs. Here:

- the ``python`` block runs with the virtualenv's interpreter from an empty
  folder outside the clone, as a user who installed the package would, and
  prints what its comments say;
- the ``rhai`` block is registered and run through the registry;
- the install and ``make`` blocks build releases or run this very suite, so
  they are checked without running them: the targets and extras they name
  exist.

``test_every_block_is_checked`` fails for a block none of these covers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

BLOCKS: list[tuple[str, str]] = re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), re.S | re.M)


def blocks(lang: str, marker: str = "") -> list[str]:
    return [body for tag, body in BLOCKS if tag == lang and marker in body]


def block(lang: str, marker: str) -> str:
    (found,) = blocks(lang, marker)
    return found


# Which test covers each block: a marker of the block's text, by language.
COVERED = {
    "python": {"registry.run_workflow(wf": "test_python_example"},
    "sh": {
        "git clone": "test_install_blocks",
        "pip install module-registry": "test_install_blocks",
        "make demo": "test_make_block",
    },
    "rhai": {"const MODULE": "test_rhai_block"},
}


def test_every_block_is_checked() -> None:
    assert BLOCKS
    for tag, body in BLOCKS:
        assert tag, f"a README block without a language:\n{body}"
        markers = [m for m in COVERED.get(tag, {}) if m in body]
        assert len(markers) == 1, f"no test (or more than one) covers this {tag!r} block:\n{body}"


def env(warnings: str = "error") -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONWARNINGS": warnings}


def run_python(code: str, folder: Path, warnings: str = "error") -> subprocess.CompletedProcess[str]:
    script = folder / "block.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=300, env=env(warnings)
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_python_example(tmp_path: Path) -> None:
    """The example prints what its comments say."""
    code = block("python", "registry.run_workflow(wf")
    out = run_python(code, tmp_path).stdout.splitlines()
    expected = [line.split("# ", 1)[1] for line in code.splitlines() if line.startswith("print(") and "# " in line]
    assert out == expected


def test_rhai_block() -> None:
    import module_registry as mr

    registry = mr.ModuleRegistry(native_modules=True, bundled_scripts=True)
    registry.register_script(block("rhai", "const MODULE"))
    counter = registry.create("counter", config=2)
    assert [counter.process(None) for _ in range(3)] == [2, 4, 6]
    assert "gives 2, then 4, 6" in README.read_text()


def test_readme_is_a_front_page() -> None:
    """At most ~8 KB, and it links into the docs site (every link to a
    file of the clone names one that exists)."""
    text = README.read_text()
    assert len(text.encode()) <= 8 * 1024
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        assert (ROOT / link).exists(), f"the README links to {link}, which does not exist"


def test_install_blocks() -> None:
    """The install blocks build a release or need the package index: what
    they name is checked instead (the package's name and extras, the
    ``dist`` target)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^name = "module-registry"$', pyproject, re.M)
    extras = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    assert re.search(r"^progress = ", extras, re.M) and re.search(r"^dask = ", extras, re.M)
    assert "pip install ." in block("sh", "git clone")
    make = subprocess.run(["make", "-n", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert make.returncode == 0 and "maturin build --release" in make.stdout, make.stderr
    assert "dist/module_registry-*.whl" in README.read_text()
    assert "git clone" in (ROOT / "docs" / "getting-started.md").read_text()


def test_make_block() -> None:
    """``make demo`` and ``make test`` exist (running them here would build
    the extension again, or run this suite inside itself); the demo runs the
    shipped workflow with a report."""
    code = block("sh", "make demo")
    assert [line.split("#")[0].strip() for line in code.splitlines()] == ["make demo", "make test"]
    make = subprocess.run(["make", "-n", "demo", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert make.returncode == 0, make.stderr
    assert "module-registry run examples/workflows/text-report.toml" in make.stdout and "--report" in make.stdout
