"""Modules declared by installed packages under an entry-point group."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

import module_registry as mr

GROUP = "module_registry.test_plugins"


def _install(site: Path, dist: str, module: str, code: str, entry: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{entry}\n")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in ["mr_good_pkg", "mr_broken_pkg", "mr_half_pkg"]:
        sys.modules.pop(name, None)


def test_load_entry_points(site: Path) -> None:
    _install(
        site,
        "good-pkg",
        "mr_good_pkg",
        """
        import module_registry as mr

        def register(registry):
            registry.register(mr.ModuleConfig(name="good-upper", capabilities=["text"]), str.upper)
        """,
        "good = mr_good_pkg:register",
    )
    _install(site, "broken-pkg", "mr_broken_pkg", "raise ImportError('broken on import')\n", "broken = mr_broken_pkg:register")
    _install(
        site,
        "half-pkg",
        "mr_half_pkg",
        """
        import module_registry as mr

        def register(registry):
            registry.register(mr.ModuleConfig(name="half-first"))
            registry.register(mr.ModuleConfig(name="Half Bad"))
        """,
        "half = mr_half_pkg:register",
    )
    registry = mr.ModuleRegistry()
    report = registry.load_entry_points(group=GROUP)
    assert report.loaded == ["good"]
    failed = dict(report.failed)
    assert set(failed) == {"broken", "half"}
    assert isinstance(failed["broken"], ImportError)
    assert isinstance(failed["half"], mr.ValidationError)
    assert registry.create("good-upper").process("hi") == "HI"
    # What the half-broken package registered before failing was taken back.
    assert "half-first" not in registry
    assert len(registry) == 1


def test_no_entry_points_is_an_empty_report() -> None:
    report = mr.ModuleRegistry().load_entry_points(group="module_registry.none_here")
    assert report.loaded == [] and report.failed == []
