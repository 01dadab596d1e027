"""Rhai script modules and orchestration scripts from Python."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import module_registry as mr

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture
def shipped() -> mr.ModuleRegistry:
    registry = mr.ModuleRegistry(native_modules=True)
    registry.load_scripts(SCRIPTS)
    return registry


def test_folder_loads_in_one_call() -> None:
    registry = mr.ModuleRegistry()
    loaded = registry.load_scripts(SCRIPTS)
    assert [i.name for i in loaded] == ["csv-records", "json-pick", "markdown", "slugify", "template", "text-stats"]
    assert all(i.metadata["implementation"] == "rhai" for i in loaded)
    assert registry.load_scripts(str(SCRIPTS))  # str paths too; reloading replaces
    assert len(registry) == 6


def test_every_shipped_script_works(shipped: mr.ModuleRegistry) -> None:
    assert shipped.create("markdown").process("# Hi\n\n*x*") == "<h1>Hi</h1>\n<p><em>x</em></p>"
    stats = shipped.create("text-stats").process(b"a b a\nc")
    assert stats["words"] == 4 and stats["lines"] == 2 and stats["top_words"][0] == ["a", 2]
    assert shipped.create("csv-records").process("x,y\n1,2\n") == [{"x": "1", "y": "2"}]
    assert shipped.create("json-pick").process({"data": {"a": [{"b": 7}]}, "path": "a[0].b"}) == 7
    assert shipped.create("template", config={"template": "Hi {{name}}"}).process({"name": "<Ada>"}) == "Hi &lt;Ada&gt;"
    assert shipped.create("slugify").process("Hello, World!") == "hello-world"


def test_orchestration_scripts(shipped: mr.ModuleRegistry) -> None:
    report = shipped.run_script(SCRIPTS / "orchestration" / "text-report.rhai", "Title\nbody text")
    assert report["slug"] == "title" and report["stats"]["words"] == 3 and len(report["sha256"]) == 64
    post = shipped.run_script(str(SCRIPTS / "orchestration" / "publish.rhai"), {"title": "A B", "body": "x"})
    assert post["path"] == "posts/a-b.html" and "<p>x</p>" in post["html"]


def test_scripts_call_python_modules_and_python_calls_scripts(registry: mr.ModuleRegistry) -> None:
    registry.register(mr.ModuleConfig(name="py-double", capabilities=["math"]), lambda x: x * 2)
    registry.register_script(
        """
        const MODULE = #{ name: "script-inc", version: "1.0.0", capabilities: ["math"] };
        fn process(x) { x + 1 }
        """
    )
    out = registry.run_script(
        """
        let names = registry.discover(["math"]).map(|m| m.name);
        let doubled = registry.create("py-double").process(input);
        #{ names: names, result: registry.create("script-inc").process(doubled) }
        """,
        20,
    )
    assert out == {"names": ["py-double", "script-inc"], "result": 41}
    assert registry.create("script-inc").process(1) == 2

    class Frame:
        pass

    frame = Frame()
    assert registry.run_script("input", frame) is frame
    assert registry.run_script("input", b"\x00\x01") == b"\x00\x01"


def test_script_errors_name_the_script_and_position(registry: mr.ModuleRegistry) -> None:
    with pytest.raises(mr.ScriptError, match=r"<source> at 2:\d+: syntax error") as caught:
        registry.register_script('const MODULE = #{ name: "x" };\nfn process(x) { x + }')
    assert caught.value.line == 2
    registry.register_script('const MODULE = #{ name: "bad-prop" };\nfn process(x) {\n  x.nope\n}')
    with pytest.raises(mr.ScriptError, match=r"at 3:\d+") as caught:
        registry.create("bad-prop").process(1)
    assert caught.value.module == "bad-prop"  # type: ignore[attr-defined]
    with pytest.raises(mr.ScriptError, match="declares no MODULE"):
        registry.register_script("fn process(x) { x }")
    with pytest.raises(mr.ModuleRegistryError, match="missing.rhai"):
        registry.run_script("missing.rhai")
    assert len(registry) == 1


def test_runaway_scripts_end(registry: mr.ModuleRegistry) -> None:
    registry.set_script_limits(mr.ScriptLimits(max_operations=200_000, timeout=None))
    with pytest.raises(mr.ScriptError, match=r"<script> at 1:\d+: too many operations"):
        registry.run_script("loop { }")
    with pytest.raises(mr.ScriptError, match="call stack overflow"):
        registry.run_script("fn f(n) { f(n + 1) } f(0)")
    with pytest.raises(mr.ScriptError, match="exceeds the size limit"):
        registry.run_script('let s = "x"; loop { s += s; }')
    registry.set_script_limits(mr.ScriptLimits(max_operations=None, timeout=0.2))
    start = time.monotonic()
    with pytest.raises(mr.ScriptError, match="timed out"):
        registry.run_script("loop { }")
    assert time.monotonic() - start < 5
    assert registry.run_script("6 * 7") == 42


def test_script_limits_values() -> None:
    default = mr.ScriptLimits()
    assert default.max_operations == 10_000_000 and default.timeout == 5.0
    unlimited = mr.ScriptLimits.unlimited()
    assert unlimited.max_operations is None and unlimited.timeout is None
    custom = mr.ScriptLimits(max_string_size=None, timeout=1.5)
    assert custom.max_string_size is None and custom.max_operations == 10_000_000
    custom.max_map_size = 10
    registry = mr.ModuleRegistry(script_limits=custom)
    assert registry.script_limits == custom
    assert "max_map_size=10" in repr(registry.script_limits)
    with pytest.raises(TypeError):
        mr.ScriptLimits(max_loops=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        mr.ScriptLimits(timeout=-1)
    registry.set_script_limits(mr.ScriptLimits.unlimited())
    assert registry.script_limits == mr.ScriptLimits.unlimited()


def test_reload_while_instances_run_in_threads(registry: mr.ModuleRegistry) -> None:
    def source(tag: str) -> str:
        return f'const MODULE = #{{ name: "tagged", version: "1.0.0" }}; fn process(x) {{ "{tag}" }}'

    registry.register_script(source("first"))
    old = registry.create("tagged")
    errors: list[Any] = []

    def hammer() -> None:
        for _ in range(200):
            if old.process(None) != "first":
                errors.append("old instance changed code")

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(10):
        registry.register_script(source(f"reload-{i}"))
    for t in threads:
        t.join()
    assert errors == []
    assert registry.create("tagged").process(None) == "reload-9"
    assert len(registry) == 1


def test_load_script_from_a_file(tmp_path: Path, registry: mr.ModuleRegistry) -> None:
    (tmp_path / "util.rhai").write_text("fn shout(s) { s.to_upper() }")
    (tmp_path / "loud.rhai").write_text(
        'import "util" as util;\nconst MODULE = #{ name: "loud", version: "0.2.0" };\nfn process(x) { util::shout(x) }'
    )
    info = registry.load_script(tmp_path / "loud.rhai")
    assert info.name == "loud" and info.version == "0.2.0"
    assert info.metadata["script"].endswith("loud.rhai")
    assert registry.create("loud").process("hey") == "HEY"


def test_deeply_nested_script_values_are_typed_errors() -> None:
    registry = mr.ModuleRegistry()
    with pytest.raises(mr.ScriptError, match="nests deeper than 256"):
        registry.run_script("let a = []; for i in 0..2000 { a = [a]; } a")
    registry.register_script('const MODULE = #{ name: "nester" }; fn process(n) { let a = []; for i in 0..n { a = [a]; } a }')
    nester = registry.create("nester")
    assert nester.process(3) == [[[[]]]]
    with pytest.raises(mr.ModuleFailedError) as failed:
        nester.process(2000)
    assert "nests deeper than 256" in str(failed.value)
    # The same module in a workflow runs on a worker thread.
    with pytest.raises(mr.WorkflowError):
        registry.run_workflow(mr.Workflow("w").then("nester"), 2000)


def test_a_timeout_too_large_for_a_clock_is_a_clear_error() -> None:
    for bad in (1e20, float("inf"), float("nan"), -1.0, 0.0):
        with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
            mr.ScriptLimits(timeout=bad)


DEEP = "let a = []; for i in 0..8000 { a = [take(a)]; }"


@pytest.mark.parametrize("stack_kib", [None, 256])
def test_deep_values_and_calls_inside_a_script_do_not_crash(stack_kib: int | None) -> None:
    """Printing, comparing and dropping a value 8,000 levels deep recurses in
    Rhai (about 13 MiB of stack): it runs on a stack sized for the limits,
    whatever the calling thread has (the main thread, or a 256 KiB one)."""
    out: list[Any] = []

    def run() -> None:
        # A generous deadline: the point is the stack, and a development
        # build on a loaded machine takes seconds over these values.
        registry = mr.ModuleRegistry(script_limits=mr.ScriptLimits(max_call_depth=3000, timeout=120))
        out.append(registry.run_script(DEEP + " let b = a; [a == b, a.to_string().len()]"))
        recursion = "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } } f(2990)"
        out.append(registry.run_script(recursion))
        registry.register_script('const MODULE = #{ name: "hoarder" }; fn process(x) { ' + DEEP + " this.kept = a; 1 }")
        hoarder = registry.create("hoarder")
        out.append(hoarder.process(None))
        del hoarder

    if stack_kib is None:
        run()
    else:
        previous = threading.stack_size(stack_kib * 1024)
        try:
            thread = threading.Thread(target=run)
            thread.start()
            thread.join()
        finally:
            threading.stack_size(previous)
    assert out == [[True, 16002], 2990, 1]


def test_limits_that_cannot_mean_what_they_say_are_refused() -> None:
    for field in ("max_operations", "max_expr_depth", "max_string_size", "max_array_size", "max_map_size"):
        with pytest.raises(mr.ValidationError, match=f"{field} of 0 would stop every script"):
            mr.ScriptLimits(**{field: 0})
    with pytest.raises(mr.ValidationError, match="at most 4096"):
        mr.ScriptLimits(max_call_depth=100_000)
    # Zero calls is a real limit: no script function may be called.
    registry = mr.ModuleRegistry(script_limits=mr.ScriptLimits(max_call_depth=0))
    assert registry.run_script("1 + 1") == 2
    with pytest.raises(mr.ScriptError, match="call stack overflow"):
        registry.run_script("fn f() { 1 } f()")


def test_a_slow_python_module_called_from_a_script_ends_at_the_scripts_deadline() -> None:
    released = threading.Event()
    calls: list[str] = []

    def slow(x: Any) -> Any:
        calls.append("started")
        released.wait(30)
        calls.append("finished")
        return x

    registry = mr.ModuleRegistry(script_limits=mr.ScriptLimits(timeout=0.3))
    registry.register(mr.ModuleConfig(name="slow"), slow)
    with pytest.raises(mr.ScriptError, match="timed out"):
        registry.run_script('registry.create("slow").process(1)')
    # The script ended while the module was still running.
    assert calls == ["started"]
    released.set()
    # A quick Python module called from a script still answers.
    registry.register(mr.ModuleConfig(name="quick"), lambda x: x + 1)
    assert registry.run_script('registry.create("quick").process(41)') == 42


def test_a_script_holding_too_much_memory_ends() -> None:
    hoard = 'let m = #{}; for i in 0..1000 { let s = "yy"; for j in 0..19 { s += s; } m["k" + i] = s; } m.len()'
    registry = mr.ModuleRegistry(script_limits=mr.ScriptLimits(max_memory=32 << 20))
    with pytest.raises(mr.ScriptError, match="out of memory: held more than the limit of 33554432 bytes"):
        registry.run_script(hoard)
    assert mr.ScriptLimits().max_memory == 256 << 20
    with pytest.raises(mr.ValidationError, match="max_memory of 0"):
        mr.ScriptLimits(max_memory=0)


def test_python_called_from_a_script_never_runs_on_the_script_stack() -> None:
    """With no deadline, a script calls a Python module where it is; Python
    code then runs back on the calling thread's own stack, not on the stack
    reserved for the script (CPython may judge recursion by the thread's
    stack), and with no thread hop: the same thread, a script called from
    there and Python's recursion limit work as they do outside a script."""
    import sys

    seen: list[int] = []

    def where(x: Any) -> Any:
        seen.append(threading.get_ident())

        def down(n: int) -> int:
            return down(n + 1)

        with pytest.raises(RecursionError):
            down(0)
        return registry.run_script('registry.create("where").process(input * 2)', x * 2) if x < 3 else x

    registry = mr.ModuleRegistry(script_limits=mr.ScriptLimits(timeout=None))
    registry.register(mr.ModuleConfig(name="where"), where)
    assert registry.run_script('registry.create("where").process(1)') == 4
    assert seen == [threading.get_ident()] * 2, sys.getrecursionlimit()


def test_script_limits_pickle() -> None:
    import pickle

    for limits in (mr.ScriptLimits(), mr.ScriptLimits.unlimited(), mr.ScriptLimits(max_memory=1 << 20, timeout=0.25)):
        for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
            back = pickle.loads(pickle.dumps(limits, protocol=protocol))
            assert back == limits and back is not limits


def test_bundled_scripts_come_with_the_installed_package() -> None:
    folder = mr.bundled_scripts()
    # The package's own folder: in site-packages for the wheel (`make
    # wheel-test`), the source tree for the development build.
    assert folder.parent == Path(mr.__file__).resolve().parent
    assert (folder / "markdown.rhai").is_file() and (folder / "html.rhai").is_file()
    bundled = mr.ModuleRegistry(native_modules=True, bundled_scripts=True)
    from_files = mr.ModuleRegistry()
    from_files.load_scripts(folder)
    scripts = [(i.name, i.version) for i in bundled.list() if i.metadata.get("implementation") == "rhai"]
    assert scripts == [(i.name, i.version) for i in from_files.list()]
    assert bundled.create("markdown").process("# Hi") == from_files.create("markdown").process("# Hi")
    assert bundled.get("identity") is not None
    assert mr.ModuleRegistry(bundled_scripts=True).get("identity") is None


# --- values scripts cannot read (issue 26) ------------------------------------


def test_numpy_and_subclassed_text_reach_the_shipped_scripts_as_text(shipped: mr.ModuleRegistry) -> None:
    import numpy as np

    class Name(str):
        pass

    slugify = shipped.create("slugify")
    assert slugify.process(np.str_("Hello World")) == "hello-world"
    assert slugify.process(Name("Hello World")) == "hello-world"
    assert [slugify.process(x) for x in np.arange(3)] == ["0", "1", "2"]
    batch = shipped.run_workflow_batch(mr.Workflow("slugs").then("slugify"), np.arange(3))
    assert [r.output for r in batch] == ["0", "1", "2"]
    template = shipped.create("template", config={"template": "score={{score}} ok={{ok}}"})
    assert template.process({"score": np.float64(0.5), "ok": np.bool_(True)}) == "score=0.5 ok=true"


def test_a_script_given_an_object_it_cannot_read_fails_naming_its_type(shipped: mr.ModuleRegistry) -> None:
    import numpy as np

    with pytest.raises(mr.ScriptError, match=r"slugify takes text \(str or UTF-8 bytes\), not Python numpy.ndarray") as info:
        shipped.create("slugify").process(np.arange(3))
    assert "slugify" in str(info.value) and "opaque\n" not in str(info.value)
    with pytest.raises(mr.ScriptError, match=r"Python numpy.ndarray"):
        shipped.create("template", config={"template": "score={{score}}"}).process({"score": np.arange(2)})
    with pytest.raises(mr.ScriptError, match=r"Python numpy.ndarray"):
        shipped.create("text-stats").process(np.arange(2))


def test_objects_passed_through_a_script_come_back_the_same(registry: mr.ModuleRegistry) -> None:
    class Frame:
        pass

    frame = Frame()
    registry.register_script(
        'const MODULE = #{ name: "keep", version: "1.0.0" };\n'
        "fn process(input) { #{ frame: input.frame, both: [input.frame, input.frame], type: input.frame.type_name } }"
    )
    out = registry.create("keep").process({"frame": frame})
    assert out["frame"] is frame and out["both"][1] is frame
    assert out["type"].endswith("Frame")
    with pytest.raises(mr.ScriptError, match=r"Frame\) was used as a number"):
        registry.run_script("input + 1", frame)


@pytest.mark.parametrize("name", ["slugify", "text-stats", "markdown", "csv-records"])
def test_a_text_script_refuses_what_is_not_text(shipped: mr.ModuleRegistry, name: str) -> None:
    module = shipped.create(name)
    # Bytes holding UTF-8 are text: the right answer, never their hex.
    assert module.process(b"Hello World") == module.process("Hello World")
    for value, kind in [([1, 2], "a list"), ({"a": 1}, "a map"), (None, "null"), (True, "a bool")]:
        with pytest.raises(mr.ScriptError, match=f"{name} takes text .*not {kind}"):
            module.process(value)
    for broken in [b"\xff\xfe", b"ok \xf0\x9f\x98"]:  # the second as long as its U+FFFD
        with pytest.raises(mr.ScriptError, match=f"{name}: the bytes given are not UTF-8 text"):
            module.process(broken)


def test_slugify_of_bytes_is_the_slug_of_their_text(shipped: mr.ModuleRegistry) -> None:
    assert shipped.create("slugify").process("Été à Paris".encode()) == "ete-a-paris"
    assert shipped.create("slugify").process(3) == "3"  # numbers are written out


def test_a_template_value_that_is_not_text_is_refused(shipped: mr.ModuleRegistry) -> None:
    template = shipped.create("template", config={"template": "hi {{a}}"})
    assert template.process({"a": b"Bob"}) == "hi Bob"
    assert template.process({"a": 3}) == "hi 3"
    for value, kind in [(b"\xff", "bytes that are not UTF-8"), ([1], "a list"), ({"x": 1}, "a map"), (None, "null")]:
        with pytest.raises(mr.ScriptError, match=f"value of \\{{\\{{a\\}}\\}} is {kind}"):
            template.process({"a": value})


@pytest.mark.parametrize("bad", [-1, 0, 1_000_001, 10**30, "5", 2.5, True, [3]])
def test_slugify_max_length_must_be_a_sensible_integer(shipped: mr.ModuleRegistry, bad: Any) -> None:
    with pytest.raises(mr.ScriptError, match="config.max_length must be an integer from 1 to 1000000"):
        shipped.create("slugify", config={"max_length": bad})
    # A cut that falls just before a dash keeps the last word whole.
    assert shipped.create("slugify", config={"max_length": 9}).process("hello big world") == "hello-big"
    assert shipped.create("slugify", config={"max_length": 10}).process("hello big world") == "hello-big"
    assert shipped.create("slugify", config={"max_length": 8}).process("hello big world") == "hello"
    assert shipped.create("slugify", config={"max_length": None}).process("a b") == "a-b"


def test_shipped_script_configs_of_the_wrong_kind_are_refused(shipped: mr.ModuleRegistry) -> None:
    with pytest.raises(mr.ScriptError, match="slugify: config must be a map"):
        shipped.create("slugify", config="x")
    with pytest.raises(mr.ScriptError, match="config.top must be an integer of 0 or more, not -1"):
        shipped.create("text-stats", config={"top": -1})
    with pytest.raises(mr.ScriptError, match="config.top must be an integer of 0 or more, not string"):
        shipped.create("text-stats", config={"top": "3"})
    with pytest.raises(mr.ScriptError, match="config.delimiter must be one character, not 0 characters"):
        shipped.create("csv-records", config={"delimiter": ""})
    with pytest.raises(mr.ScriptError, match="config.delimiter must be one character, not i64"):
        shipped.create("csv-records", config={"delimiter": 3})
    assert shipped.create("csv-records", config={"delimiter": ";"}).process("a;b\n1;2") == [{"a": "1", "b": "2"}]


@pytest.mark.parametrize("name", ["slugify", "text-stats", "markdown", "csv-records"])
def test_a_missing_value_nan_is_not_the_text_nan(shipped: mr.ModuleRegistry, name: str) -> None:
    import numpy as np

    # A column of titles with a gap (pandas reads it as NaN) must not slug to "nan".
    for value in [float("nan"), np.float64("nan"), float("inf")]:
        with pytest.raises(mr.ScriptError, match=f"{name} takes text .*not the float (NaN|inf)"):
            shipped.create(name).process(value)
    with pytest.raises(mr.ScriptError, match="value of \\{\\{a\\}\\} is the float NaN"):
        shipped.create("template", config={"template": "{{a}}"}).process({"a": float("nan")})
