"""Runs one documentation page's ``python`` blocks (``test_docs.py`` starts it).

``python docs_runner.py BLOCKS.json RESULTS.json``: the blocks (a JSON list of
``{"code", "line"}``) run in order in one namespace, as ``__main__``, each
from the repository's root folder; what each printed is written to
RESULTS.json as a list of strings. A block that raises ends the run: its
traceback (naming the page's line) goes to stderr and the exit code is 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(blocks_path: str, results_path: str, page: str) -> int:
    blocks = json.loads(Path(blocks_path).read_text())
    namespace: dict[str, object] = {"__name__": "__main__"}
    printed: list[str] = []
    status = 0
    for block in blocks:
        os.chdir(ROOT)
        out = io.StringIO()
        code = "\n" * (block["line"] - 1) + block["code"]  # tracebacks name the page's lines
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, page, "exec"), namespace)
        except BaseException:
            sys.stderr.write(f"{page}: the block at line {block['line']} failed:\n{traceback.format_exc()}")
            status = 1
        printed.append(out.getvalue())
        if status:
            break
    Path(results_path).write_text(json.dumps(printed))
    return status


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
