"""Script modules calling their dependencies (`this.deps`), and script errors
carrying the thrown value and the call chain (issue 29)."""

from pathlib import Path

import pytest

import module_registry as mr

LOG_TASK = {
    "log-parse.rhai": """const MODULE = #{ name: "log-parse", version: "1.2.0" };
fn process(line) {
    let parts = line.split(" ");
    #{ level: parts[0], text: line.sub_string(parts[0].len() + 1) }
}
""",
    "log-stats.rhai": """const MODULE = #{ name: "log-stats", version: "1.0.0", dependencies: #{ "log-parse": "^1" } };
fn process(lines) {
    let counts = #{};
    for line in lines {
        let record = this.deps["log-parse"].process(line);
        counts[record.level] = (counts[record.level] ?? 0) + 1;
    }
    counts
}
""",
    "fmt.rhai": "fn pair(k, v) { `${k}=${v}` }\n",
    "log-report.rhai": """import "fmt" as fmt;
const MODULE = #{ name: "log-report", version: "1.0.0", dependencies: #{ "log-stats": "^1" } };
fn process(lines) {
    let counts = this.deps["log-stats"].process(lines);
    let keys = counts.keys();
    keys.sort();
    let out = [];
    for k in keys { out.push(fmt::pair(k, counts[k])); }
    out.reduce(|acc, s| if acc == () { s } else { acc + ", " + s })
}
""",
}


def test_the_three_module_log_task_runs_with_this_deps(tmp_path: Path) -> None:
    for name, text in LOG_TASK.items():
        (tmp_path / name).write_text(text)
    registry = mr.ModuleRegistry()
    registry.load_scripts(str(tmp_path))
    lines = ["ERROR disk full", "INFO started", "ERROR again", "WARN slow"]
    assert registry.create("log-report").process(lines) == "ERROR=2, INFO=1, WARN=1"


def test_a_python_dependency_is_called_from_a_script_module() -> None:
    registry = mr.ModuleRegistry()
    seen: list[object] = []

    @registry.module(name="recorder", version="1.0.0")
    def recorder(x: object) -> object:
        seen.append(x)
        return [x, x]

    registry.register_script(
        """const MODULE = #{ name: "user", version: "1.0.0", dependencies: #{ recorder: "^1" } };
fn process(x) { this.deps["recorder"].process(x) }
"""
    )
    assert registry.create("user").process(3) == [3, 3]
    assert seen == [3]


def test_script_error_carries_the_thrown_value_and_the_trace(tmp_path: Path) -> None:
    (tmp_path / "badlib.rhai").write_text("fn boom(x) {\n    let y = 1;\n    y / x\n}\n")
    (tmp_path / "libfail.rhai").write_text(
        'import "badlib" as b;\nconst MODULE = #{ name: "libfail", version: "1.0.0" };\n\nfn process(x) {\n    b::boom(x)\n}\n'
    )
    registry = mr.ModuleRegistry()
    registry.load_script(str(tmp_path / "libfail.rhai"))
    with pytest.raises(mr.ScriptError) as caught:
        registry.create("libfail").process(0)
    lib, importer = str(tmp_path / "badlib.rhai"), str(tmp_path / "libfail.rhai")
    assert caught.value.script == lib
    assert caught.value.line == 3
    assert caught.value.value is None
    assert caught.value.trace == [(lib, "boom", 3, 7), (importer, "process", 5, 8)]
    assert f"called from {importer} 5:8 (fn process)" in str(caught.value)

    registry.register_script(
        'const MODULE = #{ name: "thrower", version: "1.0.0" };\nfn process(x) { throw #{ code: 42, why: [x] }; }\n'
    )
    with pytest.raises(mr.ScriptError) as thrown:
        registry.create("thrower").process("no")
    assert thrown.value.value == {"code": 42, "why": ["no"]}
    # A script given as text is named by its module's name.
    assert thrown.value.trace == [("thrower", "process", 2, 17)]
    assert thrown.value.script == "thrower"


def test_check_reports_calls_to_functions_that_exist_nowhere(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "typo.rhai").write_text(
        'const MODULE = #{ name: "typo", version: "1.0.0" };\nfn process(x) {\n    lower_chars(x) + helpr(x)\n}\n'
    )
    registry = mr.ModuleRegistry()
    [problem] = registry.check_scripts(str(tmp_path))
    assert isinstance(problem, mr.ScriptError)
    assert (problem.line, problem.column) == (3, 22)
    assert "helpr (3:22)" in str(problem) and "lower_chars" not in str(problem)
    # Loading accepts it (the function may be added later), and once added the check is clean.
    registry.load_scripts(str(tmp_path))
    registry.register_script_function("helpr", lambda x: "!")
    assert registry.check_scripts(str(tmp_path)) == []
    assert registry.create("typo").process("AB") == "ab!"
    proc = subprocess.run(
        [sys.executable, "-m", "module_registry", "check", "--scripts", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "typo.rhai" in proc.stderr and "helpr" in proc.stderr, proc.stderr


def test_an_undefined_variable_is_found_when_the_module_loads() -> None:
    registry = mr.ModuleRegistry()
    with pytest.raises(mr.ScriptError, match="y") as caught:
        registry.register_script('const MODULE = #{ name: "typo", version: "1.0.0" };\nfn process(x) {\n    x + y\n}\n')
    assert (caught.value.line, caught.value.column) == (3, 9)
    assert "typo" not in registry


def test_check_reports_every_bad_script_file_one_line_each(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "a.rhai").write_text('const MODULE = #{ name: "a", version: "1.0.0" };\nfn process(x) { x + }\n')
    (tmp_path / "b.rhai").write_text('const MODULE = #{ name: "b", version: "1.0.0" };\nfn process(x) { nope }\n')
    (tmp_path / "c.rhai").write_text('const MODULE = #{ name: "c", version: "1.0.0" };\nfn process(x) { x }\n')
    (tmp_path / "lib.rhai").write_text("fn helper(x) { x }\n")
    registry = mr.ModuleRegistry()
    problems = registry.check_scripts(str(tmp_path))
    assert [type(p) for p in problems] == [mr.ScriptError, mr.ScriptError]
    assert [Path(p.script).name for p in problems if isinstance(p, mr.ScriptError)] == ["a.rhai", "b.rhai"]
    assert len(registry) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "module_registry", "check", "--scripts", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and "a.rhai" in lines[0] and "syntax error" in lines[0], proc.stderr
    assert "b.rhai" in lines[1] and "nope" in lines[1], proc.stderr
