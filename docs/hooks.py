"""MkDocs hooks: the pages generated at build time.

- ``reference/cli.md``: the command line reference, from the argparse parser
  of ``module_registry.cli`` (every command, its usage and every option with
  its default), so it cannot drift from ``--help``;
- ``performance.md``, ``architecture.md``, ``changelog.md``: the pages kept
  at the top of the repository (``benches/README.md``, ``ARCHITECTURE.md``,
  ``CHANGELOG.md``), their links to files of the repository turned into
  links to the repository (images beside the page are copied);
- ``notebooks/*.ipynb``: ``examples/notebooks`` run headless (nbclient, in an
  empty folder, as the tests run them), so the site shows their outputs;
  mkdocs-jupyter renders them. ``MODULE_REGISTRY_DOCS_NOTEBOOKS=0`` skips
  running them (the pages then show the cells without outputs).

The pages other work adds (``OPTIONAL_PAGES``) are in the nav, and linked
from other pages, only when their file is there: until then the nav leaves
them out and a link to one is left as its text, so the build stays strict.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
REPO = "https://github.com/module-registry/module-registry/blob/main"
TOP_PAGES = {
    "performance.md": ROOT / "benches" / "README.md",
    "architecture.md": ROOT / "ARCHITECTURE.md",
    "changelog.md": ROOT / "CHANGELOG.md",
}
NOTEBOOKS = ROOT / "examples" / "notebooks"
DOCS = ROOT / "docs"
OPTIONAL_PAGES = frozenset(
    {
        "guides/observability.md",
        "guides/typed-interfaces.md",
        "guides/streaming-batches.md",
        "guides/script-editor.md",
        "reference/script-api.md",
    }
)


# ---- the pages that may not be there yet ---------------------------------------


def missing_pages(docs: Path = DOCS) -> frozenset[str]:
    """The optional pages whose file is not (yet) in ``docs``."""
    return frozenset(page for page in OPTIONAL_PAGES if not (docs / page).is_file())


def prune_nav(nav: Any, missing: frozenset[str]) -> Any:
    """``nav`` without the entries naming a missing page (a section left
    empty goes too)."""
    if isinstance(nav, list):
        kept = [prune_nav(item, missing) for item in nav]
        return [item for item in kept if item is not None]
    if isinstance(nav, dict):
        out = {}
        for title, value in nav.items():
            pruned = prune_nav(value, missing)
            if pruned is not None and pruned != []:
                out[title] = pruned
        return out or None
    if isinstance(nav, str) and nav in missing:
        return None
    return nav


def unlink_missing(markdown: str, page: str, missing: frozenset[str]) -> str:
    """The links of ``page`` (a path under docs/) to a missing page become
    their text."""
    if not missing:
        return markdown

    def fix(m: re.Match[str]) -> str:
        target = m[2].partition("#")[0]
        if not target or re.match(r"^[a-z]+:", target):
            return m[0]
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page), target))
        return m[1] if resolved in missing else m[0]

    return re.sub(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)", fix, markdown)


# ---- the command line reference -------------------------------------------------


def _option_row(action: argparse.Action) -> str:
    names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
    if action.option_strings and action.nargs != 0:
        metavar = action.metavar or action.dest.upper()
        names += f" `{metavar if isinstance(metavar, str) else ' '.join(metavar)}`"
    default = action.default
    shown = "" if default in (None, False, [], argparse.SUPPRESS) else f"`{default}`"
    text = (action.help or "").replace("%(default)s", str(default)).replace("%%", "%").replace("|", "\\|")
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        text += " (one of " + ", ".join(f"`{c}`" for c in action.choices) + ")"
    return f"| {names} | {shown} | {text} |"


def _command(parser: argparse.ArgumentParser, path: list[str], out: list[str]) -> None:
    level = "#" * min(len(path) + 1, 4)
    title = " ".join(path)
    out += [f"{level} `{title}`", ""]
    if parser.description:
        out += [parser.description, ""]
    usage = parser.format_usage().removeprefix("usage: ").strip()
    out += ["```text", usage, "```", ""]
    rows = [
        _option_row(a)
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and a.help != argparse.SUPPRESS
    ]
    if rows:
        out += ["| argument | default | what it does |", "|---|---|---|", *rows, ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            out += ["| command | what it does |", "|---|---|"]
            out += [f"| [`{name}`](#{_anchor(path + [name])}) | {helps.get(name, '')} |" for name in action.choices]
            out.append("")
            for name, sub in action.choices.items():
                _command(sub, path + [name], out)
    if parser.epilog:
        out += [parser.epilog, ""]


def _anchor(path: list[str]) -> str:
    return "-".join(path)


def cli_markdown() -> str:
    """The command line reference page, from the parser itself."""
    from module_registry import cli

    parser = cli.parser()
    out = [
        "# Command line",
        "",
        "Generated from the command's argparse parser when the site is built "
        "(`docs/hooks.py`): every command and option, with its default. "
        "`module-registry --help` and `module-registry COMMAND --help` print the same. "
        "The command is installed with the package; `python -m module_registry` is the same program.",
        "",
    ]
    _command(parser, [parser.prog], out)
    text = "\n".join(out)
    # Headings as plain anchors: "## `module-registry run`" -> #module-registry-run.
    return re.sub(r"^(#+) `([^`]+)`$", lambda m: f"{m[1]} `{m[2]}` {{ #{m[2].replace(' ', '-')} }}", text, flags=re.M)


# ---- the pages kept at the top of the repository --------------------------------


def _relink(text: str, source: Path, images: list[Path]) -> str:
    """Links to repository files become links into the repository; images
    beside the page are copied into the site (``images`` collects them)."""

    def fix(m: re.Match[str]) -> str:
        bang, label, target = m[1], m[2], m[3]
        if re.match(r"^[a-z]+:|^#", target):
            return m[0]
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve()
        if bang and resolved.is_file():
            images.append(resolved)
            return f"![{label}]({resolved.name})"
        rel = resolved.relative_to(ROOT).as_posix()
        return f"{bang}[{label}]({REPO}/{rel}{'#' + anchor if anchor else ''})"

    return re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", fix, text)


# ---- the notebooks, run --------------------------------------------------------


def _run_notebooks(into: Path) -> list[Path]:
    import nbformat
    from nbclient import NotebookClient

    done = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if os.environ.get("MODULE_REGISTRY_DOCS_NOTEBOOKS", "1") != "0":
            with tempfile.TemporaryDirectory() as folder:
                client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": folder}})
                client.execute()
        target = into / "notebooks" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        done.append(target)
    return done


# ---- the hook ------------------------------------------------------------------

_BUILD: dict[str, Any] = {}


def on_config(config: Any) -> Any:
    if config["nav"] is not None:
        config["nav"] = prune_nav(config["nav"], missing_pages(Path(config["docs_dir"])))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return unlink_missing(markdown, page.file.src_uri, missing_pages(Path(config["docs_dir"])))


@event_priority(100)  # before mkdocs-jupyter's on_files, which takes the notebooks
def on_files(files: Files, config: Any) -> Files:
    gen = Path(tempfile.mkdtemp(prefix="module-registry-docs-"))
    _BUILD["dir"] = gen
    files.append(File.generated(config, "reference/cli.md", content=cli_markdown()))
    for name, source in TOP_PAGES.items():
        images: list[Path] = []
        files.append(File.generated(config, name, content=_relink(source.read_text(), source, images)))
        for image in images:
            files.append(File.generated(config, image.name, abs_src_path=str(image)))
    for nb in _run_notebooks(gen):
        files.append(File(f"notebooks/{nb.name}", str(gen), config["site_dir"], config["use_directory_urls"]))
    return files


def on_post_build(config: Any) -> None:
    gen = _BUILD.pop("dir", None)
    if gen is not None:
        shutil.rmtree(gen, ignore_errors=True)
