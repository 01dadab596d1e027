"""Every page of the documentation site runs as written.

The convention (``docs/development.md`` says it for page authors):

- the fenced ```` ```python ```` blocks of a page under ``docs/`` run in
  order, in one namespace (as ``__main__``), each from the repository's root
  folder, in a process of their own with the dev virtualenv's interpreter;
- a ```` ```text title="Output" ```` block right after a python block is
  what that block prints, line by line (trailing spaces aside); ``...`` in
  a line stands for any text, and a line that is only ``...`` for any lines;
- every other language (``pycon``, ``text``, ``rust``, ``rhai``, ``toml``,
  ``console``, ``sh``, ...) does not run here: the Rust blocks of
  ``docs/guides/rust.md`` are the crate's doc tests, and every other block
  is run or checked by ``test_docs_blocks.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```([\w+-]*)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def page_blocks(page: Path) -> list[tuple[str, str, str, int]]:
    """(language, attributes, body, line) of each top-level fenced block."""
    text = page.read_text()
    return [(m[1], m[2], m[3], text.count("\n", 0, m.start()) + 2) for m in FENCE.finditer(text)]


def python_blocks(page: Path) -> list[tuple[str, int, str | None]]:
    """Each python block with its line and the output the page shows for it."""
    text = page.read_text()
    found: list[tuple[str, int, str | None]] = []
    matches = list(FENCE.finditer(text))
    for i, m in enumerate(matches):
        if m[1] != "python":
            continue
        expected = None
        nxt = matches[i + 1] if i + 1 < len(matches) else None
        if nxt and nxt[1] == "text" and 'title="Output"' in nxt[2] and not text[m.end() : nxt.start()].strip():
            expected = nxt[3]
        found.append((m[3], text.count("\n", 0, m.start()) + 2, expected))
    return found


def matches_output(expected: str, printed: str) -> bool:
    """``printed`` is what ``expected`` shows (``...`` any text; a lone ``...`` line any lines)."""
    parts = []
    for line in expected.rstrip("\n").split("\n"):
        line = line.rstrip()
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(p) for p in line.split("...")) + r"[ \t]*\n")
    lines = "\n".join(x.rstrip() for x in printed.rstrip("\n").split("\n")) + "\n"
    return re.fullmatch("".join(parts), lines, re.S) is not None


RUNNABLE = [p for p in PAGES if python_blocks(p)]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_runs(page: Path, tmp_path: Path) -> None:
    blocks = python_blocks(page)
    (tmp_path / "blocks.json").write_text(json.dumps([{"code": c, "line": n} for c, n, _ in blocks]))
    rel = page.relative_to(ROOT).as_posix()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("docs_runner.py")), str(tmp_path / "blocks.json"), str(tmp_path / "out.json"), rel],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads((tmp_path / "out.json").read_text())
    for (code, line, expected), out in zip(blocks, printed):
        if expected is not None:
            assert matches_output(expected, out), f"{rel}:{line}: the block printed\n{out}\nwhere the page shows\n{expected}"


def test_output_convention() -> None:
    assert matches_output("a\n...\nz\n", "a\nb\nc\nz\n")
    assert matches_output("x = ... done\n", "x = 42 done\n")
    assert not matches_output("a\nz\n", "a\nb\nz\n")
    assert not matches_output("x = 1\n", "x = 12\n")


def test_every_fence_has_a_language() -> None:
    for page in PAGES:
        for lang, _, body, line in page_blocks(page):
            assert lang, f"{page.relative_to(ROOT)}:{line}: a code block without a language"


# What the README held before it became a front page: each section is now
# a page or a section of the site (nothing was dropped on the way).
README_SECTIONS_MOVED = [
    "Install", "Python quickstart", "Rust quickstart", "Rhai scripts",
    "Dependencies inside script modules, and errors", "Workflows", "Caching",
    "Sharing script modules", "Scale out", "Live modules", "Typed interfaces",
    "What it does", "Performance", "Security and reliability", "Development",
    "Layout", "Licence",
]


def test_readme_sections_live_on_in_the_docs() -> None:
    headings = {
        m.strip() for page in PAGES for m in re.findall(r"^#{1,6} (.+?)(?: \{.*\})?$", page.read_text(), re.M)
    }
    missing = [h for h in README_SECTIONS_MOVED if h not in headings]
    assert not missing, f"README sections with no heading in docs/: {missing}"


def _hooks() -> object:
    import importlib.util

    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_has_every_command_and_option() -> None:
    """The generated page names every command, subcommand and option of the
    parser, with each default that ``--help`` shows."""
    import argparse

    from module_registry import cli

    page = _hooks().cli_markdown()  # type: ignore[attr-defined]

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        assert f"`{' '.join(path)}` {{ #{'-'.join(path)} }}" in page, path
        for action in parser._actions:
            for flag in [] if isinstance(action, argparse._HelpAction) else action.option_strings:
                assert f"`{flag}" in page.split(f"{{ #{'-'.join(path)} }}", 1)[1], (path, flag)
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, path + [name])

    walk(cli.parser(), ["module-registry"])
    assert "| `--input-limit` `MIB` | `64` |" in page


def test_top_pages_link_into_the_repository() -> None:
    """The pages taken from the top of the repository keep working links:
    a link to a file of the clone becomes one to the repository."""
    hooks = _hooks()
    images: list[Path] = []
    text = hooks._relink("[map](ARCHITECTURE.md) [a](#x) [w](https://x.org) ![p](benches/scaling.png)", ROOT / "README.md", images)  # type: ignore[attr-defined]
    assert "(https://github.com/module-registry/module-registry/blob/main/ARCHITECTURE.md)" in text
    assert "[a](#x)" in text and "[w](https://x.org)" in text


def test_pages_still_to_come_leave_the_nav_and_their_links() -> None:
    """A page other work adds is in the nav and linked only once its file is
    there; until then the nav drops it and a link to it is left as its text."""
    hooks = _hooks()
    missing = frozenset({"guides/observability.md"})
    nav = [
        {"Home": "index.md"},
        {"Guides": [{"Workflows": "guides/workflows.md"}, {"Observability": "guides/observability.md"}]},
        {"Later": [{"Observability": "guides/observability.md"}]},
    ]
    assert hooks.prune_nav(nav, missing) == [  # type: ignore[attr-defined]
        {"Home": "index.md"},
        {"Guides": [{"Workflows": "guides/workflows.md"}]},
    ]
    text = "see [Observability](observability.md#audit), [Caching](caching.md) and ![x](observability.md)"
    assert hooks.unlink_missing(text, "guides/live-host.md", missing) == (  # type: ignore[attr-defined]
        "see Observability, [Caching](caching.md) and ![x](observability.md)"
    )
    assert hooks.unlink_missing("[o](guides/observability.md)", "index.md", missing) == "o"  # type: ignore[attr-defined]
    assert hooks.unlink_missing("[o](observability.md)", "index.md", missing) == "[o](observability.md)"  # type: ignore[attr-defined]
    # Every optional page that is there is in mkdocs.yml's nav, so it shows once merged.
    nav_text = (ROOT / "mkdocs.yml").read_text()
    for page in hooks.OPTIONAL_PAGES:  # type: ignore[attr-defined]
        assert f": {page}\n" in nav_text, page


def test_the_rust_guide_is_the_crates_doc_tests() -> None:
    """The Rust blocks of the Rust guide run as the crate's doc tests
    (``cargo test --doc``), so they compile and run as written; none is kept
    out with ``ignore`` or ``no_run``."""
    lib = (ROOT / "core" / "src" / "lib.rs").read_text()
    assert '#[doc = include_str!("../../docs/guides/rust.md")]' in lib
    langs = [lang + attrs for page in PAGES for lang, attrs, _, _ in page_blocks(page) if lang.startswith("rust")]
    assert langs and all(lang == "rust" for lang in langs), langs
    rust_pages = {page.relative_to(DOCS).as_posix() for page in PAGES for lang, *_ in page_blocks(page) if lang == "rust"}
    assert rust_pages == {"guides/rust.md"}, rust_pages


def test_the_site_builds_strict_with_every_public_name(tmp_path: Path) -> None:
    """``mkdocs build --strict`` (what ``make docs`` runs, here without
    running the notebooks) passes: no broken link, reference or anchor; the
    Python API page documents every public name of the package, and the CLI
    page every command."""
    pytest.importorskip("mkdocs")
    import os

    import module_registry
    from module_registry import cli

    env = {**os.environ, "MODULE_REGISTRY_DOCS_NOTEBOOKS": "0", "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    api = (site / "reference" / "python-api" / "index.html").read_text()
    documented = set(re.findall(r'<h2 id="module_registry\.([A-Za-z_]\w*)"', api))
    public = {name for name in module_registry.__all__ if not name.startswith("_")}
    assert public <= documented, sorted(public - documented)
    page = (site / "reference" / "cli" / "index.html").read_text()
    for command in cli.parser()._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
        assert f'id="module-registry-{command}"' in page, command
    assert (site / "notebooks" / "workflow" / "index.html").is_file()


def test_the_script_limits_table_is_the_defaults() -> None:
    """Each row of the ``ScriptLimits`` table in the settings reference names
    a field and its default as ``ScriptLimits()`` has it, and no field is
    left out."""
    import module_registry as mr

    text = (DOCS / "reference" / "settings.md").read_text().split("## `ScriptLimits`", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| `([\d_.]+)`", text, re.M))
    limits = mr.ScriptLimits()
    fields = {name for name in dir(limits) if not name.startswith("_") and name != "unlimited"}
    assert set(rows) == fields, (sorted(rows), sorted(fields))
    for name, shown in rows.items():
        assert float(shown.replace("_", "")) == getattr(limits, name), (name, shown)


def _keys_the_loader_takes(data: dict[str, object]) -> set[str]:
    """The keys the workflow loader accepts where ``data`` has an unknown
    one (its error lists them)."""
    from module_registry import ValidationError, Workflow

    with pytest.raises(ValidationError, match="unknown field `bogus`") as err:
        Workflow.from_dict(data)
    return set(re.findall(r"`(\w+)`", str(err.value).split("expected one of", 1)[1]))


def test_the_workflow_format_tables_are_the_keys_the_loader_takes() -> None:
    """The key tables of the workflow file format reference list exactly the
    keys a workflow file may have, for the workflow and for a step."""
    text = (DOCS / "reference" / "workflow-format.md").read_text()

    def table(section: str) -> set[str]:
        body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
        return set(re.findall(r"^\| `(\w+)` \|", body, re.M))

    assert table("The workflow") == _keys_the_loader_takes({"name": "w", "steps": [], "bogus": 1})
    assert table("A step") == _keys_the_loader_takes({"name": "w", "steps": [{"id": "a", "module": "m", "bogus": 1}]})
