"""Modules written in Python, instances and their lifecycle."""

from __future__ import annotations

import gc
from typing import Any

import pytest

import module_registry as mr
from module_registry import ModuleConfig, ModuleRegistry


def test_function_handler(registry: ModuleRegistry) -> None:
    info = registry.register(ModuleConfig(name="double", capabilities=["math"]), lambda x: x * 2)
    assert info.has_implementation and info.metadata["implementation"] == "python"
    assert registry.create("double").process(21) == 42


class Counter:
    """A class module: built per instance with the config, keeps state."""

    events: list[str] = []

    def __init__(self, config: ModuleConfig) -> None:
        self.name = config.name
        self.count = 0
        self.prefix = ""

    def init(self, config: Any) -> None:
        self.prefix = (config or {}).get("prefix", "")
        Counter.events.append(f"init {self.name}")

    def process(self, value: Any) -> str:
        self.count += 1
        return f"{self.prefix}{value}#{self.count}"

    def shutdown(self) -> None:
        Counter.events.append(f"shutdown {self.name}")


def test_class_handler_lifecycle(registry: ModuleRegistry) -> None:
    Counter.events = []
    registry.register(ModuleConfig(name="counter"), Counter)
    with registry.create("counter", config={"prefix": ">"}) as inst:
        assert inst.state == "initialized"
        assert inst.process("a") == ">a#1"
        assert inst.process("b") == ">b#2"
        assert inst.state == "running"
        other = registry.create("counter")
        assert other.process("c") == "c#1", "each instance has its own object"
        other.close()
    assert inst.closed and inst.state == "stopped"
    inst.close()  # a second close does nothing
    assert Counter.events == ["init counter", "init counter", "shutdown counter", "shutdown counter"]
    with pytest.raises(mr.InstanceClosedError):
        inst.process("late")


def test_dropping_an_instance_shuts_it_down_once(registry: ModuleRegistry) -> None:
    Counter.events = []
    registry.register(ModuleConfig(name="counter"), Counter)
    inst = registry.create("counter")
    del inst
    gc.collect()
    assert Counter.events == ["init counter", "shutdown counter"]


def test_class_without_init_arguments(registry: ModuleRegistry) -> None:
    class Plain:
        def process(self, v: int) -> int:
            return v + 1

    registry.register(ModuleConfig(name="plain"), Plain)
    assert registry.create("plain").process(1) == 2

    class NoProcess:
        pass

    with pytest.raises(TypeError, match="process"):
        registry.register(ModuleConfig(name="np"), NoProcess)


def test_decorator_on_function_and_class(registry: ModuleRegistry) -> None:
    @registry.module(name="shout", version="1.2.0", capabilities=["text"], metadata={"lang": "en"})
    def shout(text: str) -> str:
        return text.upper()

    @registry.module(capabilities=["count"])
    class Word_Counter:
        def process(self, text: str) -> int:
            return len(text.split())

    assert shout("x") == "X", "the decorator returns the function unchanged"
    info = registry.get("shout")
    assert info is not None and info.version == "1.2.0" and info.metadata["lang"] == "en"
    assert registry.create("shout").process("hi") == "HI"
    assert registry.create("word-counter").process("a b c") == 3

    @registry.module(name="plug", kind="plugin")
    def plug(v: Any) -> Any:
        return v

    assert registry.get_plugin("plug") is not None
    with pytest.raises(mr.ValidationError):
        registry.module(name="x", kind="widget")(plug)


def test_exceptions_inside_modules_are_chained(registry: ModuleRegistry) -> None:
    def broken(value: Any) -> Any:
        raise KeyError("missing-key")

    registry.register(ModuleConfig(name="broken", version="2.0.0"), broken)
    inst = registry.create("broken")
    with pytest.raises(mr.ModuleFailedError) as caught:
        inst.process(1)
    err = caught.value
    assert isinstance(err.__cause__, KeyError)
    assert err.__cause__.args == ("missing-key",)
    assert err.module == "broken" and err.version == "2.0.0" and err.operation == "process"
    assert "broken@2.0.0" in str(err)
    # The instance and the registry keep working.
    assert len(registry) == 1
    with pytest.raises(mr.ModuleFailedError):
        inst.process(2)

    class BadInit:
        def init(self, config: Any) -> None:
            raise RuntimeError("no config")

        def process(self, v: Any) -> Any:
            return v

    registry.register(ModuleConfig(name="bad-init"), BadInit)
    with pytest.raises(mr.ModuleFailedError) as caught:
        registry.create("bad-init")
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.operation == "init"

    class BadCtor:
        def __init__(self, config: Any) -> None:
            raise ValueError("ctor")

        def process(self, v: Any) -> Any:
            return v

    registry.register(ModuleConfig(name="bad-ctor"), BadCtor)
    with pytest.raises(mr.ModuleFailedError) as caught:
        registry.create("bad-ctor")
    assert isinstance(caught.value.__cause__, ValueError)


def test_errors_from_native_modules_are_chained_too(native: ModuleRegistry) -> None:
    with pytest.raises(mr.ModuleFailedError) as caught:
        native.create("json-decode").process("{oops")
    assert isinstance(caught.value.__cause__, mr.ValidationError)
    assert "json-decode@1.0.0" in str(caught.value)


def test_create_errors(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="m", version="1.0.0"), lambda v: v)
    registry.register(ModuleConfig(name="decl"))
    with pytest.raises(mr.UnknownModuleError, match="nope"):
        registry.create("nope")
    with pytest.raises(mr.UnknownModuleError, match=r"\^2") as caught:
        registry.create("m", "^2")
    assert caught.value.requirement == "^2"
    with pytest.raises(mr.ValidationError):
        registry.create("m", "not-a-req")
    with pytest.raises(mr.NoImplementationError):
        registry.create("decl")
    with pytest.raises(TypeError):
        registry.create(5)  # type: ignore[arg-type]
    assert registry.create("m", "^1").version == "1.0.0"


def test_dependencies_from_python(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="app", dependencies={"lib": "^1", "tool": "*"}), lambda v: v)
    registry.register(ModuleConfig(name="lib", version="1.0.0"), lambda v: v)
    registry.register(ModuleConfig(name="lib", version="2.0.0"), lambda v: v)
    registry.register(ModuleConfig(name="tool", version="1.0.0", dependencies={"lib": "^2"}), lambda v: v)
    with pytest.raises(mr.VersionConflictError, match="lib") as caught:
        registry.create("app")
    assert isinstance(caught.value, mr.DependencyError)
    registry.register(ModuleConfig(name="tool", version="0.9.0", dependencies={"lib": "^1"}), lambda v: v)
    assert [f"{i.name}@{i.version}" for i in registry.resolve("app")] == ["lib@1.0.0", "tool@0.9.0", "app@0.1.0"]
    inst = registry.create("app")
    assert inst.dependencies == ["lib", "tool"]
    registry.register(ModuleConfig(name="orphan", dependencies={"ghost": "*"}), lambda v: v)
    with pytest.raises(mr.DependencyError, match="ghost"):
        registry.create("orphan")
    registry.register(ModuleConfig(name="c1", dependencies={"c2": "*"}), lambda v: v)
    registry.register(ModuleConfig(name="c2", dependencies={"c1": "*"}), lambda v: v)
    with pytest.raises(mr.DependencyError, match="cycle"):
        registry.create("c1")


def test_native_modules_from_python(native: ModuleRegistry) -> None:
    assert set(mr.ModuleRegistry.native_module_names()) >= {"identity", "sha256", "gzip-compress"}
    assert native.create("identity").process(b"input data") == b"input data"
    assert (
        native.create("sha256").process(b"abc")
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    packed = native.create("gzip-compress", config={"level": 9}).process(b"x" * 1000)
    assert len(packed) < 100
    assert native.create("gzip-decompress").process(packed) == b"x" * 1000
    assert native.create("json-decode").process('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert len(ModuleRegistry()) == 0, "empty by default"


def test_error_classes_form_one_hierarchy() -> None:
    classes = [
        mr.UnknownModuleError,
        mr.AlreadyRegisteredError,
        mr.ValidationError,
        mr.DependencyError,
        mr.VersionConflictError,
        mr.ScriptError,
        mr.WorkflowError,
        mr.PermissionDeniedError,
        mr.ModuleFailedError,
        mr.NoImplementationError,
        mr.InstanceClosedError,
        mr.FeatureDisabledError,
    ]
    for cls in classes:
        assert issubclass(cls, mr.ModuleRegistryError)
        assert cls.__module__ == "module_registry"
    assert issubclass(mr.VersionConflictError, mr.DependencyError)
    assert issubclass(mr.ModuleRegistryError, Exception)
    import builtins

    assert not any(getattr(builtins, cls.__name__, None) is not None for cls in classes)


def test_one_function_registered_under_many_names(registry: ModuleRegistry) -> None:
    def shout(text: str) -> str:
        return text.upper()

    def whisper(text: str) -> str:
        return text.lower()

    for i in range(3):
        registry.register(ModuleConfig(name=f"shout-{i}"), shout)
    registry.register(ModuleConfig(name="whisper"), whisper)
    registry.register(ModuleConfig(name="shout-again"), shout)
    assert [registry.create(f"shout-{i}").process("a") for i in range(3)] == ["A", "A", "A"]
    assert registry.create("whisper").process("A") == "a"
    assert registry.create("shout-again").process("b") == "B"
    # Removing some registrations leaves the others working.
    registry.unregister("shout-0")
    registry.unregister("shout-1")
    assert registry.create("shout-2").process("c") == "C"
    # A function made later at a reused address is its own module.
    for i in range(20):
        registry.register(ModuleConfig(name=f"lambda-{i}"), lambda v, i=i: i)
    assert [registry.create(f"lambda-{i}").process(None) for i in range(20)] == list(range(20))



def test_an_error_from_a_temporary_instance_is_not_lost(registry: ModuleRegistry) -> None:
    shut: list[str] = []

    class Fails:
        def process(self, value: Any) -> Any:
            raise KeyError("boom")

        def shutdown(self) -> None:
            shut.append("down")

    class FailsTwice(Fails):
        def shutdown(self) -> None:
            raise RuntimeError("shutdown failed too")

    registry.register(ModuleConfig(name="fails"), Fails)
    registry.register(ModuleConfig(name="fails-twice"), FailsTwice)
    # The instance is dropped, and shut down, while its error is raised.
    with pytest.raises(mr.ModuleFailedError) as failed:
        registry.create("fails").process(1)
    assert isinstance(failed.value.__cause__, KeyError)
    assert shut == ["down"]
    with pytest.raises(mr.ModuleFailedError) as failed:
        registry.create("fails-twice").process(1)
    assert isinstance(failed.value.__cause__, KeyError), "the process error wins over the shutdown's"


@pytest.mark.parametrize("signal", [KeyboardInterrupt, SystemExit])
def test_a_stop_request_inside_a_module_stops_the_caller(registry: ModuleRegistry, signal: type[BaseException]) -> None:
    calls: list[int] = []

    def stops(value: Any) -> Any:
        calls.append(value)
        raise signal()

    registry.register(ModuleConfig(name="stops"), stops)
    registry.register(ModuleConfig(name="echo"), lambda v: v)
    # Called directly: the signal itself, not a wrapped failure.
    with pytest.raises(signal):
        registry.create("stops").process(1)
    # In a workflow: not retried, not skipped, not replaced by a fallback.
    for workflow in (
        mr.Workflow("w").then("stops", retries=3),
        mr.Workflow("w").then("stops", retries=2, on_error="skip"),
        mr.Workflow("w").then("stops", on_error="fallback", fallback="echo"),
    ):
        calls.clear()
        with pytest.raises(signal):
            registry.run_workflow(workflow, 1)
        assert calls == [1]


def test_async_generators_are_refused_and_async_defs_awaited(registry: ModuleRegistry) -> None:
    async def handler(value: Any) -> Any:
        return value

    async def agen(value: Any) -> Any:
        yield value

    class AsyncGenProcess:
        async def process(self, value: Any) -> Any:
            yield value

    class AsyncProcess:
        async def process(self, value: Any) -> Any:
            return value

    for bad in (agen, AsyncGenProcess):
        with pytest.raises(TypeError, match="async generator"):
            registry.register(ModuleConfig(name="async-one"), bad)
    assert "async-one" not in registry
    registry.register(ModuleConfig(name="async-fn"), handler)
    registry.register(ModuleConfig(name="async-cls"), AsyncProcess)
    assert registry.create("async-fn").process(3) == 3
    assert registry.create("async-cls").process("x") == "x"


def test_a_class_whose_init_takes_no_config_is_built_without_one(registry: ModuleRegistry) -> None:
    class NoConfig:
        def __init__(self) -> None:
            self.step = 10

        def process(self, v: int) -> int:
            return v + self.step

    class KeywordOnly:
        def __init__(self, *, step: int = 5) -> None:
            self.step = step

        def process(self, v: int) -> int:
            return v + self.step

    class TakesConfig:
        def __init__(self, config: mr.ModuleConfig) -> None:
            self.name = config.name

        def process(self, v: Any) -> Any:
            return self.name

    registry.register(ModuleConfig(name="no-config"), NoConfig)
    registry.register(ModuleConfig(name="keyword-only"), KeywordOnly)
    registry.register(ModuleConfig(name="takes-config"), TakesConfig)
    assert registry.create("no-config").process(1) == 11
    assert registry.create("keyword-only").process(1) == 6
    assert registry.create("takes-config").process(None) == "takes-config"


def test_a_function_with_a_second_parameter_gets_its_config() -> None:
    registry = ModuleRegistry()

    def scale(x: Any, config: Any) -> Any:
        return x * (config or {}).get("factor", 1)

    def shift(x: Any, by: Any = 100) -> Any:  # any name; a default when none is given
        return x + by

    registry.register(ModuleConfig(name="scale"), scale)
    registry.register(ModuleConfig(name="shift"), shift)
    assert registry.create("scale", config={"factor": 3}).process(2) == 6
    assert registry.create("scale").process(2) == 2  # a required config parameter gets None
    assert registry.create("shift").process(1) == 101
    assert registry.create("shift", config=5).process(1) == 6
    wf = mr.Workflow("w").step("s", "scale", config={"factor": 10}).step("t", "shift", config=1)
    registry.check_workflow(wf)
    assert registry.run_workflow(wf, 2).output == 21


def test_a_function_of_its_input_alone_given_a_config_is_refused() -> None:
    registry = ModuleRegistry()
    registry.register(ModuleConfig(name="double"), lambda x: x * 2)
    registry.register(ModuleConfig(name="upper"), str.upper)
    for name in ("double", "upper"):
        wf = mr.Workflow("w").step("s", name, config={"factor": 3})
        with pytest.raises(mr.WorkflowError, match="init\\(config\\)"):
            registry.check_workflow(wf)
        with pytest.raises(mr.WorkflowError, match="second parameter"):
            registry.run_workflow(wf, "ab")
        with pytest.raises(mr.ModuleRegistryError, match="of its input alone"):
            registry.create(name, config={"factor": 3})
        # Without a config it runs as before.
        assert registry.run_workflow(mr.Workflow("ok").step("s", name), "ab").output in ("abab", "AB")


def test_a_functions_signature_is_read_once_at_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    registry = ModuleRegistry()

    def scale(x: Any, config: Any) -> Any:
        return x * config

    registry.register(ModuleConfig(name="scale"), scale)
    calls: list[Any] = []
    real = inspect.signature

    def counting(*args: Any, **kwargs: Any) -> inspect.Signature:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counting)
    for n in range(5):
        assert registry.create("scale", config=n).process(2) == 2 * n
    assert registry.run_workflow(mr.Workflow("w").step("s", "scale", config=3), 2).output == 6
    assert calls == []


def test_a_class_without_init_given_a_config_is_refused() -> None:
    registry = ModuleRegistry()

    class Plain:
        def process(self, x: Any) -> Any:
            return x

    class Configured:
        def init(self, config: Any) -> None:
            self.config = config

        def process(self, x: Any) -> Any:
            return [x, self.config]

    registry.register(ModuleConfig(name="plain"), Plain)
    registry.register(ModuleConfig(name="configured"), Configured)
    with pytest.raises(mr.WorkflowError, match="init\\(config\\)"):
        registry.check_workflow(mr.Workflow("w").step("s", "plain", config={"a": 1}))
    with pytest.raises(mr.ModuleRegistryError, match="class without init"):
        registry.create("plain", config={"a": 1})
    assert registry.create("plain").process(1) == 1
    assert registry.run_workflow(mr.Workflow("w").step("s", "configured", config={"a": 1}), 1).output == [1, {"a": 1}]


@pytest.mark.parametrize("name", ["identity", "text-encode", "json-decode", "base64-encode", "base64-decode"])
def test_a_native_module_without_config_given_one_is_refused(name: str) -> None:
    registry = ModuleRegistry(native_modules=True)
    with pytest.raises(mr.ValidationError, match=f"module {name}@1.0.0 was given a config, but it takes no config"):
        registry.create(name, config={"a": 1})
    with pytest.raises(mr.WorkflowError, match="takes no config"):
        registry.check_workflow(mr.Workflow("w").step("s", name, config={"a": 1}))
    assert registry.create(name, config=None) is not None
    # Natives that read a config still get it.
    assert registry.create("json-encode", config={"pretty": True}).process([1]) == "[\n  1\n]"


def test_a_script_without_init_given_a_config_is_refused() -> None:
    registry = ModuleRegistry()
    registry.register_script('const MODULE = #{ name: "plain", version: "1.0.0" };\nfn process(x) { x }\n')
    registry.register_script(
        'const MODULE = #{ name: "configured", version: "1.0.0" };\n'
        "fn init(config) { this.c = config; }\nfn process(x) { [x, this.c] }\n"
    )
    with pytest.raises(mr.ValidationError, match="script without fn init\\(config\\)"):
        registry.create("plain", config={"a": 1})
    with pytest.raises(mr.WorkflowError, match="script without fn init"):
        registry.check_workflow(mr.Workflow("w").step("s", "plain", config={"a": 1}))
    assert registry.create("plain").process(1) == 1
    assert registry.create("configured", config={"a": 1}).process(1) == [1, {"a": 1}]
