"""What scripts print goes to ``logging`` (logger ``module_registry.script``);
Python functions scripts call (``register_script_function``); ``assert`` and
``assert_eq`` seen from Python."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import module_registry as mr
from module_registry import ModuleRegistry, ScriptError, ScriptLimits

LOGGER = "module_registry.script"


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def test_print_and_debug_are_records_with_where_they_came_from(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    (tmp_path / "util.rhai").write_text('fn shout(x) {\n    print(x + "!");\n}\n')
    (tmp_path / "greeter.rhai").write_text(
        'import "util" as util;\n'
        'const MODULE = #{ name: "greeter", version: "1.0.0" };\n'
        "fn process(x) {\n  print(`hi ${x}`);\n    debug(x);\n  util::shout(x);\n  x\n}\n"
    )
    registry = ModuleRegistry()
    registry.load_scripts(tmp_path)
    script = str(tmp_path / "greeter.rhai")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        registry.create("greeter").process("bob")
        registry.run_script('print("from orchestration")')
    seen = [
        (r.levelno, r.getMessage(), r.rhai_module, r.rhai_script, r.rhai_line, r.rhai_column)  # type: ignore[attr-defined]
        for r in ours(caplog)
    ]
    assert seen == [
        (logging.INFO, "hi bob", "greeter", script, 4, 3),
        (logging.DEBUG, '"bob"', "greeter", script, 5, 5),
        (logging.INFO, "bob!", "greeter", "util", 2, 5),
        (logging.INFO, "from orchestration", None, "<script>", 1, 1),
    ]


def test_a_script_given_as_text_is_named_by_its_module(caplog: pytest.LogCaptureFixture) -> None:
    registry = ModuleRegistry()
    registry.register_script('const MODULE = #{ name: "texty", version: "1.0.0" };\nfn process(x) {\n  print(x);\n  x.nope()\n}\n')
    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(ScriptError) as caught:
        registry.create("texty").process("hi")
    assert [(r.getMessage(), r.rhai_script, r.rhai_line) for r in ours(caplog)] == [("hi", "texty", 3)]  # type: ignore[attr-defined]
    assert caught.value.script == "texty" and "<source>" not in str(caught.value)


def test_the_logger_level_decides_and_text_is_not_formatted(caplog: pytest.LogCaptureFixture) -> None:
    registry = ModuleRegistry()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        registry.run_script('print("100% %s %d"); debug("hidden")')
    assert [r.getMessage() for r in ours(caplog)] == ["100% %s %d"]


def test_a_failing_handler_does_not_fail_the_script(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler down")

        def handleError(self, record: logging.LogRecord) -> None:
            raise  # what a careless handler does

    logger = logging.getLogger(LOGGER)
    broken = Broken()
    logger.addHandler(broken)
    unraisable: list[Any] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            assert ModuleRegistry().run_script('print("a"); 7') == 7
    finally:
        sys.unraisablehook = old_hook
        logger.removeHandler(broken)
    assert [str(u.exc_value) for u in unraisable] == ["handler down"]


def test_a_print_in_shutdown_when_python_drops_the_instance() -> None:
    # The instance is dropped with the GIL held; its script prints from a
    # script stack, which hands the line to another thread: no deadlock.
    code = textwrap.dedent(
        """
        import gc, logging, sys
        import module_registry as mr
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
        r = mr.ModuleRegistry()
        r.register_script('const MODULE = #{ name: "bye" };\\nfn process(x) { x }\\nfn shutdown() { print("bye"); }')
        inst = r.create("bye")
        inst.process(1)
        del inst
        gc.collect()
        print("after")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["bye", "after"]


def test_printing_scripts_at_interpreter_exit_do_not_crash() -> None:
    code = textwrap.dedent(
        """
        import logging, threading, time
        import module_registry as mr
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        r = mr.ModuleRegistry(script_limits=mr.ScriptLimits(timeout=None, max_operations=None))
        def spin():
            r.run_script('loop { print("tick"); }')
        for _ in range(2):
            threading.Thread(target=spin, daemon=True).start()
        time.sleep(0.3)
        print("exiting")
        """
    )
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "Fatal" not in out.stderr and "exiting" in out.stdout


def test_a_print_flood_is_handed_on_line_by_line(caplog: pytest.LogCaptureFixture) -> None:
    registry = ModuleRegistry(script_limits=ScriptLimits(timeout=None))
    counted = [0]

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            counted[0] += 1

    logger = logging.getLogger(LOGGER)
    handler = Count()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            # 1,000,000 lines under the default operation limit.
            out = registry.run_script("let n = 0; for i in 0..1000000 { print(i); n += 1; } n")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert out == 1_000_000 and counted == [1_000_000]


def test_the_cli_shows_script_output_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from module_registry.cli import main

    script = tmp_path / "talk.rhai"
    script.write_text('print("hello");\ndebug(42);\n1 + 1')
    assert main(["script", str(script)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "2"
    assert err.splitlines() == ["[rhai] hello", f"[rhai debug] {script}:2:1: 42"]
    # The logger is left as it was.
    assert not logging.getLogger(LOGGER).handlers


def test_a_python_function_scripts_call_with_any_number_of_arguments() -> None:
    registry = ModuleRegistry()
    registry.register_script_function("gather", lambda *args: list(args))
    assert registry.run_script("gather()") == []
    assert registry.run_script('gather(1, "a", 2.5, [true], #{k: ()}, blob(1))') == [
        1,
        "a",
        2.5,
        [True],
        {"k": None},
        b"\x00",
    ]
    registry.register_script_function("shape", lambda x: {"len": len(x), "first": x[0]})
    registry.register_script('const MODULE = #{ name: "user" };\nfn process(x) { shape(x).first }')
    assert registry.create("user").process(["z", "y"]) == "z"
    # An object with no value form passes through scripts unchanged.
    token = object()
    registry.register_script_function("token", lambda: token)
    registry.register_script_function("same", lambda x: x is token)
    assert registry.run_script("same(token())") is True


def test_a_python_function_that_raises_blocks_or_returns_junk_fails_the_script() -> None:
    registry = ModuleRegistry(script_limits=ScriptLimits(timeout=0.3))

    def boom(x: Any) -> None:
        raise ValueError(f"bad {x}")

    def junk() -> list[Any]:
        loop: list[Any] = []
        loop.append(loop)
        return loop

    registry.register_script_function("boom", boom)
    registry.register_script_function("stuck", lambda: time.sleep(3))
    registry.register_script_function("junk", junk)
    with pytest.raises(ScriptError) as raised:
        registry.run_script("let a = 1;\nboom(a)")
    assert raised.value.line == 2
    assert "boom(): ValueError: bad 1" in str(raised.value)
    with pytest.raises(ScriptError, match="timed out"):
        registry.run_script("stuck()")
    with pytest.raises(ScriptError, match="junk returned a value scripts cannot take"):
        registry.run_script("junk()")
    # The registry goes on working.
    registry.register_script_function("one", lambda: 1)
    assert registry.run_script("one()") == 1


def test_register_script_function_checks_its_arguments_and_the_caller() -> None:
    registry = ModuleRegistry()
    with pytest.raises(TypeError, match="callable"):
        registry.register_script_function("f", 42)  # type: ignore[arg-type]
    for bad in ["", "1x", "a-b", "fn", "print"]:
        with pytest.raises(mr.ValidationError):
            registry.register_script_function(bad, print)
    registry.set_policy(
        mr.AccessPolicy().grant("root", ["admin"]).grant("reader", ["discover"]).assign("alice", "reader")
    )
    with pytest.raises(mr.PermissionDeniedError):
        registry.as_principal("alice").register_script_function("f", print)


def test_assert_and_assert_eq_fail_scripts_with_their_line() -> None:
    registry = ModuleRegistry()
    assert registry.run_script('assert(true, "fine"); assert_eq([1, 2], [1, 2]); 3') == 3
    with pytest.raises(ScriptError) as raised:
        registry.run_script('let x = 1;\nassert_eq(x, 2, "x is two")')
    assert raised.value.line == 2
    assert "assertion failed: x is two (left: 1, right: 2)" in str(raised.value)
