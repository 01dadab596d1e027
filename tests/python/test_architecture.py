"""The layering rules of ARCHITECTURE.md, checked on the source tree.

The core's modules import one another in one direction; the only cycle is
the one ARCHITECTURE.md names (a declaration, its record, the module trait
and the instance it builds are one concept); the registry does not reach up
into scripts or workflows; no source file grows past the size that marks two
concepts in one file; the core has no pyo3.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "src"
BINDING = ROOT / "python" / "src"

#: The one cycle allowed, and why: see ARCHITECTURE.md, "One concept, four files".
ALLOWED_CYCLE = {"config", "info", "module", "instance"}
#: Past this many lines a file holds two concepts (STYLE.md, habit 16).
MAX_LINES = 600


def top_module(path: Path) -> str:
    """The crate-level module a source file belongs to (`registry/store.rs` -> `registry`)."""
    rel = path.relative_to(CORE)
    return rel.parts[0].removesuffix(".rs")


def imports_of(text: str) -> set[str]:
    """The crate-level modules a file names through `crate::`."""
    # Drop comments so documentation links do not count as imports.
    code = re.sub(r"//[^\n]*", "", text)
    found = set(re.findall(r"crate::([a-z_]+)", code))
    # `use crate::{a, b::c}` groups.
    for group in re.findall(r"crate::\{([^}]*)\}", code):
        found.update(re.findall(r"(?:^|,)\s*([a-z_]+)", group))
    return found


def core_graph() -> dict[str, set[str]]:
    modules = {top_module(p) for p in CORE.rglob("*.rs") if p.name != "lib.rs"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in CORE.rglob("*.rs"):
        if path.name == "lib.rs":
            continue
        me = top_module(path)
        graph[me].update(d for d in imports_of(path.read_text()) if d in modules and d != me)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        v = todo.pop()
        for w in graph[v]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_the_only_import_cycle_is_the_documented_one() -> None:
    cycles = strongly_connected(core_graph())
    assert all(c <= ALLOWED_CYCLE for c in cycles), cycles


def test_the_registry_does_not_reach_up_into_scripts_or_workflows() -> None:
    graph = core_graph()
    below_registry = reachable(graph, "registry")
    assert not below_registry & {"script", "workflow", "orchestration", "manifest"}, below_registry


def test_records_import_no_behaviour() -> None:
    graph = core_graph()
    behaviour = {"registry", "script", "workflow", "orchestration", "manifest", "deps", "native"}
    for record in ("error", "kind", "validate", "limits", "value", "query", "access"):
        assert not reachable(graph, record) & behaviour, record


def test_the_checker_sees_a_cycle_when_there_is_one() -> None:
    # The checker itself must be able to fail.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]
    assert imports_of("use crate::{alpha, beta::Gamma};\n// crate::gamma") == {"alpha", "beta"}


def test_no_source_file_is_a_god_file() -> None:
    too_long = {
        str(p.relative_to(ROOT)): n
        for base in (CORE, BINDING)
        for p in base.rglob("*.rs")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, too_long


def test_the_core_has_no_pyo3() -> None:
    assert "pyo3" not in (ROOT / "core" / "Cargo.toml").read_text()
    for path in CORE.rglob("*.rs"):
        assert "pyo3" not in path.read_text(), path


#: An import of the package (or one of its modules) from Rust: `py.import("module_registry...")`,
#: `PyModule::import(py, "module_registry...")`, `ONCE.import(py, "module_registry...", ..)`, or
#: Python source the extension runs (`"import module_registry..."`, `"from module_registry..."`).
PACKAGE_IMPORT = re.compile(
    r'import\w*\s*\(\s*(?:py\s*,\s*)?"module_registry\b|"\s*(?:import|from)\s+module_registry\b'
)


def package_imports_in(text: str) -> list[str]:
    code = re.sub(r"//[^\n]*", "", text)
    return PACKAGE_IMPORT.findall(code)


def test_the_extension_never_imports_the_package() -> None:
    # The package imports the extension and hands it what it calls back
    # (`_core._set_hooks`, from `_hooks.py`); never the reverse.
    found = {
        str(p.relative_to(ROOT)): hits for p in BINDING.rglob("*.rs") if (hits := package_imports_in(p.read_text()))
    }
    assert not found, found


def test_the_package_import_checker_can_fail() -> None:
    assert package_imports_in('py.import("module_registry._display")?')
    assert package_imports_in('PyModule::import(py, "module_registry")')
    assert package_imports_in('CLASS.import(py, "module_registry._display", "ModuleList")')
    assert package_imports_in('py.run(c"from module_registry import _async", None, None)')
    assert not package_imports_in('#[pyclass(module = "module_registry._core")]')
    assert not package_imports_in('// py.import("module_registry._display")')
    assert not package_imports_in('py.import("inspect")')


#: Starting a thread other than through `module_registry::threads` (`core/src/threads.rs`).
AD_HOC_THREAD = re.compile(r"thread::Builder|thread::spawn\b|\.stack_size\(")
SPAWN_HELPER = CORE / "threads.rs"


def ad_hoc_threads_in(text: str) -> list[str]:
    """Thread starts outside the spawn helper, in a file's non-test code."""
    code = re.sub(r"//[^\n]*", "", text)
    code = re.split(r"#\[cfg\(test\)\]\s*mod tests", code)[0]
    return AD_HOC_THREAD.findall(code)


def test_every_thread_is_started_by_the_one_spawn_helper() -> None:
    # Module code needs more stack than Rust's default 2 MiB: the helper
    # takes the size, so no thread is started with a size chosen on the spot.
    found = {
        str(p.relative_to(ROOT)): hits
        for base in (CORE, BINDING)
        for p in base.rglob("*.rs")
        if p != SPAWN_HELPER and (hits := ad_hoc_threads_in(p.read_text()))
    }
    assert not found, found


def test_the_spawn_checker_can_fail() -> None:
    assert ad_hoc_threads_in("std::thread::Builder::new().stack_size(1 << 20)")
    assert ad_hoc_threads_in("let t = std::thread::spawn(move || ());")
    assert not ad_hoc_threads_in("#[cfg(test)]\nmod tests {\n    std::thread::spawn(|| ());\n}")
    assert not ad_hoc_threads_in("crate::threads::spawn(name, MODULE_THREAD_STACK, f)")


def test_the_feature_check_covers_every_feature() -> None:
    # `make features-check` (part of `make lint`) checks each feature alone.
    manifest = (ROOT / "core" / "Cargo.toml").read_text()
    section = manifest.split("\n[features]\n", 1)[1].split("\n[", 1)[0]
    features = set(re.findall(r"^([a-z][a-z0-9-]*)\s*=", section, re.M)) - {"default"}
    assert {"workflows", "cache-disk", "tokio"} <= features, features
    line = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("CORE_FEATURES :=")
    )
    assert set(line.split(":=")[1].split()) == features
