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
