"""The pytest plugin: Rhai test functions collected and run as pytest tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PARSE = """\
const MODULE = #{ name: "log-parse", version: "1.0.0" };
fn process(line) {
    let parts = line.split(" ");
    #{ level: parts[0], text: parts[1] }
}
"""

TESTS = """\
fn test_parses_the_level() {
    let parsed = registry.create("log-parse").process("WARN disk");
    assert_eq(parsed.level, "WARN");
}

fn test_parses_the_text() {
    let parsed = registry.create("log-parse").process("INFO ok");
    assert_eq(parsed.text, "full", "the text");
}

fn helper() { }
"""


def project(pytester: pytest.Pytester, tests: str = TESTS, name: str = "test_parse.rhai") -> Path:
    scripts = pytester.mkdir("scripts")
    (scripts / "log-parse.rhai").write_text(PARSE)
    (scripts / name).write_text(tests)
    return scripts


def test_rhai_tests_pass_and_fail_with_the_scripts_position(pytester: pytest.Pytester) -> None:
    scripts = project(pytester)
    result = pytester.runpytest("--rhai-scripts", "scripts", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*scripts/test_parse.rhai::test_parses_the_level PASSED*",
            "*scripts/test_parse.rhai::test_parses_the_text FAILED*",
            f"{scripts / 'test_parse.rhai'}:8:5: Runtime error: assertion failed: the text (left: \"ok\", right: \"full\")",
        ]
    )


def test_the_ini_option_and_x_test_files(pytester: pytest.Pytester) -> None:
    project(pytester, name="parse_test.rhai")
    pytester.makeini("[pytest]\nrhai_scripts = scripts\n")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    # The script folder is collected beside the usual tests.
    result.assert_outcomes(passed=2, failed=1)


def test_a_test_that_never_ends_fails_at_the_limits(pytester: pytest.Pytester) -> None:
    project(pytester, tests="fn test_forever() {\n    loop { }\n}\n")
    pytester.makeconftest(
        textwrap.dedent(
            """
            import module_registry as mr

            def pytest_rhai_registry(registry, folder):
                registry.set_script_limits(mr.ScriptLimits(max_operations=100_000))
            """
        )
    )
    result = pytester.runpytest("--rhai-scripts", "scripts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_parse.rhai*too many operations: exceeded the limit of 100000*"])


def test_the_conftest_hook_can_add_python_functions(pytester: pytest.Pytester) -> None:
    project(pytester, tests='fn test_host() { assert_eq(host_double(21), 42); }\n')
    pytester.makeconftest(
        "def pytest_rhai_registry(registry, folder):\n"
        "    registry.register_script_function('host_double', lambda x: x * 2)\n"
    )
    pytester.runpytest("--rhai-scripts", "scripts").assert_outcomes(passed=1)


def test_broken_files_are_collection_errors_with_their_position(pytester: pytest.Pytester) -> None:
    scripts = project(pytester, tests="fn test_a() {\n  let = 1;\n}\n")
    result = pytester.runpytest("--rhai-scripts", "scripts")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"{scripts / 'test_parse.rhai'}:2:*syntax error*"])
    # A broken module: every test file of the folder says so.
    (scripts / "test_parse.rhai").write_text(TESTS)
    (scripts / "broken.rhai").write_text("const MODULE = #{ name: \"broken\" };\nfn process(x) { x +* 1 }\n")
    result = pytester.runpytest("--rhai-scripts", "scripts")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*broken.rhai*syntax error*"])


def test_without_the_option_rhai_files_are_left_alone(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # Naming the folder on the command line collects only what pytest finds there (no .py tests).
    result = pytester.runpytest("scripts")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_folder_that_is_not_one_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rhai-scripts", "missing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rhai-scripts: *missing is not a folder*"])
