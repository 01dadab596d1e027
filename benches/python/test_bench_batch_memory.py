"""Peak memory of large batches (`batch_memory.py`, each mode in a fresh
interpreter), checked as a count of bytes, not a time: under `make test`
(`bench-smoke`) it runs on 200,000 inputs; `python
benches/python/batch_memory.py` gives the 1,000,000-input figures of
docs/guides/streaming-batches.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("batch_memory.py")
INPUTS = 200_000


def test_streamed_batches_stay_flat_and_kept_results_small() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", "--inputs", str(INPUTS), "baseline", "run", "iter", "iter-gen", "cli"],
        capture_output=True, text=True, timeout=600, check=True,
    )
    figures = json.loads(proc.stdout)
    base = figures["baseline"]["peak_mb"]
    # Iterated: only the window in flight is held (the results are dropped).
    for mode in ("iter", "iter-gen", "cli"):
        assert figures[mode]["peak_mb"] <= base + 20, figures
    # Kept: at most 200 B a one-step result, its output and list slot included.
    assert figures["run"]["bytes_per_result"] <= 200, figures
