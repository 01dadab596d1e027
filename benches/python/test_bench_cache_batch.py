"""A text pipeline whose steps are cached, from an empty cache: in memory
only, and with the disk cache on (every output also written to the SQLite
file, in batched transactions). The pipeline: markdown texts of 0.5-5 KB to
HTML, then the HTML's statistics (the shipped `markdown` and `text-stats`).
The target: the disk side at most 1.2x the memory side.
`benches/python/cache_batch.py` gives the ratio interleaved in one run, and
with `--cheap` the same for two native `sha256` steps (~1 µs each), where
the cache's own cost is all there is to see.

Disabled by default: under `make test` every benchmark runs once as a test
and checks its result; `make bench` measures them.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

import module_registry as mr

sys.path.insert(0, str(Path(__file__).parent))
from shipped_peers import markdown, markdown_texts, text_stats  # noqa: E402

#: Distinct inputs: every step of the first run misses and is written.
INPUTS = [f"{t}\n{n}\n" for n, t in enumerate(markdown_texts(50) * 6)]
WORKFLOW = mr.Workflow("pipeline").then("markdown", cache=True).then("text-stats", cache=True)
CHEAP_INPUTS = [f"title number {n}" for n in range(4000)]
CHEAP = mr.Workflow("cheap").then("sha256", cache=True).then("sha256", id="again", cache=True)


def make_registry() -> mr.ModuleRegistry:
    return mr.ModuleRegistry(native_modules=True, bundled_scripts=True)


def run_fresh(registry: mr.ModuleRegistry, folder: Any, cheap: bool = False) -> list[Any]:
    """The batch on an empty cache (a new folder for the disk side)."""
    if folder is None:
        registry.set_cache()
    else:
        registry.set_cache(path=folder)
    inputs = CHEAP_INPUTS if cheap else INPUTS
    results = registry.run_workflow_batch(CHEAP if cheap else WORKFLOW, inputs)
    stats = registry.cache_stats()
    assert stats["misses"] == 2 * len(inputs) and stats["hits"] == 0
    return results


def _bench(benchmark: Any, on_disk: bool) -> None:
    registry = make_registry()
    with tempfile.TemporaryDirectory() as tmp:
        folders = (Path(tmp) / str(n) for n in itertools.count())
        results = benchmark.pedantic(
            lambda: run_fresh(registry, next(folders) if on_disk else None), rounds=5, iterations=1
        )
        assert results[7].output == text_stats(markdown(INPUTS[7]))
        if on_disk:
            assert registry.cache_stats()["entries"] == 2 * len(INPUTS)


def test_cached_batch_memory_only(benchmark: Any) -> None:
    _bench(benchmark, on_disk=False)


def test_cached_batch_disk_cache(benchmark: Any) -> None:
    _bench(benchmark, on_disk=True)
