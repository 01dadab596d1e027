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


_UPPER = """
import module_registry as mr

def register(registry):
    registry.register(mr.ModuleConfig(name="{name}"), str.upper)
"""


def test_installing_a_package_is_seen_by_the_next_load(site: Path) -> None:
    _install(site, "first-pkg", "mr_first_pkg", _UPPER.format(name="first-upper"), "first = mr_first_pkg:register")
    assert mr.ModuleRegistry().load_entry_points(group=GROUP).loaded == ["first"]
    # A second install adds a dist-info folder, changing the site folder's time.
    _install(site, "second-pkg", "mr_second_pkg", _UPPER.format(name="second-upper"), "second = mr_second_pkg:register")
    registry = mr.ModuleRegistry()
    assert registry.load_entry_points(group=GROUP).loaded == ["first", "second"]
    assert registry.create("second-upper").process("x") == "X"
    for name in ["mr_first_pkg", "mr_second_pkg"]:
        sys.modules.pop(name, None)


def test_refresh_rescans_what_the_cache_cannot_see(site: Path) -> None:
    code = _UPPER.format(name="third-upper") + _UPPER.format(name="again-upper").replace("def register", "def register_again")
    _install(site, "third-pkg", "mr_third_pkg", code, "third = mr_third_pkg:register")
    assert mr.ModuleRegistry().load_entry_points(group=GROUP).loaded == ["third"]
    # Editing an installed package's entry points in place leaves the site
    # folder's time alone: the cached list stays until refresh=True.
    entry_file = site / "third-pkg-1.0.dist-info" / "entry_points.txt"
    entry_file.write_text(f"[{GROUP}]\nthird = mr_third_pkg:register\nagain = mr_third_pkg:register_again\n")
    assert mr.ModuleRegistry().load_entry_points(group=GROUP).loaded == ["third"]
    assert mr.ModuleRegistry().load_entry_points(group=GROUP, refresh=True).loaded == ["again", "third"]
    sys.modules.pop("mr_third_pkg", None)


def test_rollback_undoes_only_the_failing_packages_own_work(site: Path) -> None:
    """While a package installs (and then fails), another thread registers a
    module: the rollback removes the package's module, never the other."""
    _install(
        site,
        "slow-pkg",
        "mr_slow_pkg",
        """
        import threading
        import module_registry as mr

        started = threading.Event()
        proceed = threading.Event()

        def register(registry):
            registry.register(mr.ModuleConfig(name="slow-first"))
            started.set()
            proceed.wait(10)
            raise RuntimeError("failed after registering")
        """,
        "slow = mr_slow_pkg:register",
    )
    import threading

    registry = mr.ModuleRegistry()
    reports: list[mr.EntryPointReport] = []
    loader = threading.Thread(target=lambda: reports.append(registry.load_entry_points(group=GROUP)))
    loader.start()
    import mr_slow_pkg  # type: ignore[import-not-found]

    assert mr_slow_pkg.started.wait(10)
    registry.register(mr.ModuleConfig(name="other-thread"))
    mr_slow_pkg.proceed.set()
    loader.join()
    sys.modules.pop("mr_slow_pkg", None)
    assert [name for name, _ in reports[0].failed] == ["slow"]
    assert "slow-first" not in registry
    assert "other-thread" in registry
