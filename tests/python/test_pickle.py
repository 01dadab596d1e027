"""Every public object pickles and compares equal after a round trip; a
registry pickles as what rebuilds it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import module_registry as mr

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
PROTOCOLS = range(2, pickle.HIGHEST_PROTOCOL + 1)


def roundtrip(obj: Any) -> Any:
    back = None
    for protocol in PROTOCOLS:
        back = pickle.loads(pickle.dumps(obj, protocol=protocol))
        assert back == obj, (protocol, back, obj)
        assert back is not obj
    return back


# An importable handler: pickled by reference.
def shout(text: str) -> str:
    return text.upper() + "!"


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def process(self, x: Any) -> int:
        self.n += 1
        return self.n


names = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
small_text = st.text(max_size=20)
str_maps = st.dictionaries(names, small_text, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    name=names,
    version=st.sampled_from(["0.1.0", "1.2.3", "2.0.0-rc.1", "not a version"]),
    type_=st.sampled_from(["DataProcessor", "Security", "my-type"]),
    capabilities=st.lists(names, max_size=4),
    metadata=str_maps,
    dependencies=st.dictionaries(names, st.sampled_from(["^1", ">=0.1, <2", "*"]), max_size=3),
    plugin=st.booleans(),
)
def test_configs_roundtrip(
    name: str,
    version: str,
    type_: str,
    capabilities: list[str],
    metadata: dict[str, str],
    dependencies: dict[str, str],
    plugin: bool,
) -> None:
    cls = mr.PluginConfig if plugin else mr.ModuleConfig
    config = cls(
        name=name,
        version=version,
        type=type_,
        capabilities=capabilities,
        metadata=metadata,
        dependencies=dependencies,
    )
    back = roundtrip(config)
    assert type(back) is cls
    assert (back.name, back.version, back.type, back.capabilities, back.metadata, back.dependencies) == (
        name,
        version,
        mr.ModuleType.custom(type_),
        capabilities,
        metadata,
        dependencies,
    )
    assert back != cls(name=name + "x", version=version)


def test_config_without_name_and_types_roundtrip() -> None:
    roundtrip(mr.ModuleConfig())
    for t in (mr.ModuleType.Security, mr.ModuleType.custom("odd-type")):
        assert roundtrip(t) is not None


@settings(max_examples=40, deadline=None)
@given(
    required=st.lists(names, max_size=3),
    any_=st.lists(names, max_size=3),
    excluded=st.lists(names, max_size=3),
    version=st.none() | st.sampled_from(["^1", ">=2"]),
    metadata=st.lists(st.tuples(names, small_text), max_size=3),
    cls=st.sampled_from([mr.CapabilityQuery, mr.ServiceDiscoveryQuery, mr.PluginDiscoveryQuery]),
)
def test_queries_roundtrip(
    required: list[str],
    any_: list[str],
    excluded: list[str],
    version: str | None,
    metadata: list[tuple[str, str]],
    cls: type[mr.CapabilityQuery],
) -> None:
    query = cls().with_required_capabilities(required).with_any_capabilities(any_)
    query = query.with_excluded_capabilities(excluded).with_type("Security")
    if version is not None:
        query = query.with_version(version)
    for key, value in metadata:
        query = query.with_metadata(key, value)
    back = roundtrip(query)
    assert type(back) is cls
    # The same question gets the same answer.
    registry = mr.ModuleRegistry(native_modules=True)
    assert registry.discover_capabilities(back) == registry.discover_capabilities(query)
    assert back != cls().with_required_capabilities([*required, "other-cap"])


def test_query_kinds_are_not_equal_across_classes() -> None:
    assert mr.CapabilityQuery() != mr.PluginDiscoveryQuery()
    with pytest.raises(mr.ValidationError, match="invalid pickled query"):
        mr.CapabilityQuery().__setstate__('{"required": 3}')


def test_access_policy_roundtrip() -> None:
    policy = mr.AccessPolicy().grant("reader", ["discover", "create"], "text-*").grant("root", ["admin"])
    policy.assign("alice", "reader").assign("bob", "root")
    back = roundtrip(policy)
    assert back.allows("alice", "create", "text-upper") and not back.allows("alice", "create", "json")
    assert back.roles_of("bob") == ["root"]
    assert back != mr.AccessPolicy()
    with pytest.raises(mr.ValidationError, match="invalid module pattern"):
        mr.AccessPolicy().__setstate__('{"roles": {"r": [{"permissions": ["create"], "modules": "["}]}, "principals": {}}')


def test_workflow_and_results_roundtrip(native: mr.ModuleRegistry) -> None:
    native.register(mr.ModuleConfig(name="shout"), shout)
    workflow = mr.Workflow("wf", output="b").step("a", "shout").step("b", "json-encode", after=["a"], retries=2, config={"k": [1, 2.5]})
    back = roundtrip(workflow)
    assert back.to_dict() == workflow.to_dict() and back.name == "wf"
    result = native.run_workflow(workflow, "hi")
    back_result = roundtrip(result)
    assert back_result.output == '"HI!"' and back_result.step("a") == result.step("a")
    for report in result.steps:
        assert roundtrip(report).id == report.id
    assert result != native.run_workflow(workflow, "other")


def test_result_with_opaque_and_bytes_output_roundtrip(registry: mr.ModuleRegistry) -> None:
    registry.register(mr.ModuleConfig(name="raw"), lambda x: b"\x00\xff" + bytes(x))
    result = registry.run_workflow(mr.Workflow("w").then("raw"), b"ab")
    assert roundtrip(result).output == b"\x00\xffab"


def test_step_report_and_event_constructors_check_their_words() -> None:
    with pytest.raises(mr.ValidationError, match="status must be one of"):
        mr.StepReport("a", "m", "1.0.0", "exploded", 1, 0.0, 0.1)
    with pytest.raises(mr.ValidationError, match="outcome must be one of"):
        mr.AuditEvent(1, 0.0, "register", "system", "module", "m", None, "maybe", None)


def test_audit_events_roundtrip(native: mr.ModuleRegistry) -> None:
    native.create("identity").process(1)
    events = native.audit_events()
    assert events
    for event in events:
        back = roundtrip(event)
        assert (back.operation, back.module, back.time) == (event.operation, event.module, event.time)


def test_module_info_roundtrip_is_a_detached_record(native: mr.ModuleRegistry) -> None:
    native.load_script(SCRIPTS / "slugify.rhai")
    native.register(mr.ModuleConfig(name="shout", dependencies={"identity": "^1"}), shout)
    native.register(mr.PluginConfig(name="decl", capabilities=["x"], metadata={"a": "b"}))
    for info in native.list():
        back = roundtrip(info)
        assert (back.kind, back.type, back.capabilities, back.metadata, back.dependencies) == (
            info.kind,
            info.type,
            info.capabilities,
            info.metadata,
            info.dependencies,
        )
        assert back.has_implementation == info.has_implementation


def test_exceptions_roundtrip_with_attributes_and_cause(native: mr.ModuleRegistry) -> None:
    def fail(x: Any) -> Any:
        raise KeyError("deep")

    native.register(mr.ModuleConfig(name="fail"), fail)
    caught: list[BaseException] = []
    for call in (
        lambda: native.run_workflow(mr.Workflow("w").then("fail"), 1),
        lambda: native.create("missing"),
        lambda: native.create("fail").process(1),
        lambda: native.run_script("let x = ;"),
        lambda: native.as_principal("eve").create("identity"),
    ):
        with pytest.raises(mr.ModuleRegistryError) as info:
            native.set_policy(mr.AccessPolicy())
            try:
                call()
            finally:
                native.set_policy(None)
        caught.append(info.value)
    for exc in caught:
        for protocol in PROTOCOLS:
            back = pickle.loads(pickle.dumps(exc, protocol=protocol))
            assert type(back) is type(exc) and back.args == exc.args
            assert vars(back) == vars(exc)
    workflow_error = caught[0]
    assert isinstance(workflow_error, mr.WorkflowError) and workflow_error.step == "fail"
    back = pickle.loads(pickle.dumps(workflow_error))
    # The module's own error travels as the cause (through ModuleFailedError).
    assert isinstance(back.__cause__, mr.ModuleFailedError)
    assert isinstance(back.__cause__.__cause__, KeyError)


def test_a_cause_that_cannot_be_pickled_travels_as_text() -> None:
    class Local(Exception):
        pass

    import copyreg

    from module_registry._pickling import _reduce_error

    exc = mr.WorkflowError("outer")
    exc.__cause__ = Local("inner reason")
    rebuild, args = _reduce_error(exc)
    back = rebuild(*args)
    assert isinstance(back.__cause__, mr.ModuleRegistryError)
    assert "Local: inner reason" in str(back.__cause__)
    if mr.WorkflowError not in copyreg.dispatch_table:  # tblib (with dask) installs its own
        back = pickle.loads(pickle.dumps(exc))
        assert "Local: inner reason" in str(back.__cause__)


# --- registries ---------------------------------------------------------------


def test_registry_roundtrip_rebuilds_every_kind_of_module() -> None:
    registry = mr.ModuleRegistry(native_modules=True, script_limits=mr.ScriptLimits(max_operations=123_456))
    registry.load_scripts(SCRIPTS)  # markdown imports html from its folder
    registry.register(mr.ModuleConfig(name="shout", version="2.0.0", capabilities=["text"]), shout)
    registry.register(mr.ModuleConfig(name="counter"), Counter)
    offset = 7
    registry.register(mr.ModuleConfig(name="closure"), lambda x: x + offset)
    registry.register(mr.PluginConfig(name="decl", capabilities=["c"]))
    source = 'const MODULE = #{ name: "pinned", version: "1.0.0" }; fn process(x) { x * 3 }'
    import hashlib

    registry.register_script(source, sha256=hashlib.sha256(source.encode()).hexdigest())
    registry.set_policy(mr.AccessPolicy().grant("r", ["discover"]).assign("alice", "r"))
    registry.with_plugin_marketplace(True)
    back = roundtrip(registry)
    assert type(back) is mr.ModuleRegistry
    assert back.fingerprint() == registry.fingerprint()
    assert [(i.kind, i.name, i.version) for i in back.list()] == [(i.kind, i.name, i.version) for i in registry.list()]
    assert back.create("shout").process("a") == "A!"
    assert back.create("closure").process(1) == 8
    counter = back.create("counter")
    assert [counter.process(None) for _ in range(3)] == [1, 2, 3]
    assert back.create("pinned").process(2) == 6
    assert back.create("markdown").process("# T") == registry.create("markdown").process("# T")
    assert back.script_limits.max_operations == 123_456
    assert back.as_principal("alice").discover(capabilities=["text"])
    with pytest.raises(mr.PermissionDeniedError):
        back.as_principal("alice").create("shout")
    # The audit log does not travel.
    assert not [e for e in back.audit_events() if e.operation == "create" and e.module == "shout" and e.sequence < 2]


def test_fingerprint_changes_with_what_would_be_rebuilt(registry: mr.ModuleRegistry) -> None:
    seen = {registry.fingerprint()}

    def add(x: Any) -> Any:
        return x + 1

    registry.register(mr.ModuleConfig(name="f"), add)
    seen.add(registry.fingerprint())

    def add_two(x: Any) -> Any:
        return x + 2

    registry.replace(mr.ModuleConfig(name="f"), add_two)  # same name and version, other code
    seen.add(registry.fingerprint())
    registry.register(mr.ModuleConfig(name="g", capabilities=["a"]))
    seen.add(registry.fingerprint())
    registry.set_script_limits(mr.ScriptLimits(max_operations=99))
    seen.add(registry.fingerprint())
    registry.set_policy(mr.AccessPolicy())
    seen.add(registry.fingerprint())
    assert len(seen) == 6
    same = registry.fingerprint()
    assert registry.fingerprint() == same  # stable
    registry.create("f").process(1)  # instances and the audit log are not part of it
    assert registry.fingerprint() == same
    n = 5

    def closes(x: Any) -> Any:
        return x + n

    other = mr.ModuleRegistry()
    other.register(mr.ModuleConfig(name="h"), closes)
    before = other.fingerprint()
    n = 6  # the closure now holds another value
    assert other.fingerprint() != before


def test_registry_equality_is_by_content() -> None:
    a, b = mr.ModuleRegistry(native_modules=True), mr.ModuleRegistry(native_modules=True)
    assert a == b and a != mr.ModuleRegistry()
    b.register(mr.ModuleConfig(name="extra"))
    assert a != b
    with pytest.raises(TypeError):
        hash(a)


def test_unpicklable_handler_names_the_module(registry: mr.ModuleRegistry) -> None:
    import threading

    lock = threading.Lock()
    registry.register(mr.ModuleConfig(name="holds-a-lock", version="1.2.0"), lambda x: (lock, x)[1])
    with pytest.raises(pickle.PicklingError, match=r"module holds-a-lock@1\.2\.0 cannot be pickled"):
        pickle.dumps(registry)


def test_pickling_needs_admin(native: mr.ModuleRegistry) -> None:
    native.set_policy(mr.AccessPolicy().grant("r", ["discover"]).assign("alice", "r"))
    with pytest.raises(mr.PermissionDeniedError):
        mr._core.call_as("alice", pickle.dumps, native)
    assert pickle.loads(pickle.dumps(native)) == native


def test_a_tampered_pickle_is_refused_as_a_whole() -> None:
    registry = mr.ModuleRegistry()
    registry.register_script('const MODULE = #{ name: "s", version: "1.0.0" }; fn process(x) { x }')
    cls, (kind, state) = registry.__reduce__()
    fmt, manifest, code, allow, cache = state
    with pytest.raises(pickle.UnpicklingError, match="another layout"):
        cls(kind, (99, manifest, code, allow, cache))
    with pytest.raises(mr.ValidationError, match="sha256|digest|integrity|expected"):
        cls(kind, (fmt, manifest.replace("fn process(x) { x }", "fn process(x) { x + 1 }"), code, allow, cache))


def load_importing_scripts(folder: Path, twice: str) -> mr.ModuleRegistry:
    """`top` imports `mid`, which imports `lib` (whose `twice` is given)."""
    folder.mkdir(exist_ok=True)
    (folder / "lib.rhai").write_text(f"fn twice(x) {{ {twice} }}")
    (folder / "mid.rhai").write_text('import "lib" as lib; fn quad(x) { lib::twice(lib::twice(x)) }')
    (folder / "top.rhai").write_text(
        'import "mid" as mid; const MODULE = #{ name: "top", version: "1.0.0" }; fn process(x) { mid::quad(x) }'
    )
    registry = mr.ModuleRegistry()
    registry.load_scripts(folder)
    return registry


def test_a_script_travels_with_the_scripts_it_imports(tmp_path: Path) -> None:
    registry = load_importing_scripts(tmp_path, "x * 2")
    blob = pickle.dumps(registry)
    before = registry.fingerprint()
    for f in tmp_path.iterdir():
        f.unlink()
    tmp_path.rmdir()
    back = pickle.loads(blob)  # the folder is gone: the imports travelled
    assert back.create("top").process(3) == 12
    assert back.fingerprint() == before
    # Editing an imported file (through another script) changes the fingerprint.
    edited = load_importing_scripts(tmp_path, "x * 2 + 0")
    assert edited.fingerprint() != before
    assert load_importing_scripts(tmp_path, "x * 2").fingerprint() == before


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=80, deadline=None)
@given(value=values)
def test_results_of_any_value_roundtrip(value: Any) -> None:
    registry = mr.ModuleRegistry(native_modules=True)
    result = registry.run_workflow(mr.Workflow("id").then("identity"), value)
    back = roundtrip(result)
    assert back.output == value and back.steps == result.steps


def test_a_worker_failure_with_a_local_exception_class_comes_back_as_text() -> None:
    import concurrent.futures
    import multiprocessing

    class Odd(Exception):
        pass

    def fail(x: Any) -> Any:
        raise Odd(f"odd input {x}")

    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="fail"), fail)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
        out = registry.run_workflow_batch(mr.Workflow("w").then("fail"), [1, 2], executor=pool, errors="return")
    assert [type(r) for r in out] == [mr.WorkflowError, mr.WorkflowError]
    assert [r.index for r in out] == [0, 1]
    module_error = out[1].__cause__
    assert isinstance(module_error, mr.ModuleFailedError)
    assert "Odd: odd input 2" in str(module_error.__cause__)


class Scaler:
    """A callable object: its state is part of what the registry runs."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor


def scaled(factor: int) -> mr.ModuleRegistry:
    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="scale"), Scaler(factor))
    return registry


def test_fingerprints_see_state_globals_and_bound_methods() -> None:
    assert scaled(2) != scaled(3)  # were equal
    assert scaled(2) == scaled(2) and scaled(2).fingerprint() == scaled(2).fingerprint()

    class A:
        def run(self, x: int) -> int:
            return x

    class B:
        def run(self, x: int) -> int:
            return x

    a, b = mr.ModuleRegistry(), mr.ModuleRegistry()
    a.register(mr.ModuleConfig(name="m"), A().run)
    b.register(mr.ModuleConfig(name="m"), B().run)
    assert a != b
    ns: dict[str, Any] = {"__name__": "notebook", "LIMIT": 1}
    exec("def f(x):\n    return min(x, LIMIT)\n", ns)
    c = mr.ModuleRegistry()
    c.register(mr.ModuleConfig(name="f"), ns["f"])
    before = c.fingerprint()
    ns["LIMIT"] = 2
    assert c.fingerprint() != before
    # A copy rebuilt from the pickle still has the same fingerprint.
    assert pickle.loads(pickle.dumps(c)).fingerprint() == c.fingerprint()
    assert pickle.loads(pickle.dumps(scaled(2))).fingerprint() == scaled(2).fingerprint()


def test_an_undigestable_handler_gives_a_fingerprint_matching_no_other() -> None:
    def numbers() -> Any:
        n = 0
        while True:
            n += 1
            yield n

    counter = numbers()  # a generator cannot be reduced: no digest

    def numbered(x: int) -> Any:
        return (x, next(counter))

    registry = mr.ModuleRegistry()
    registry.register(mr.ModuleConfig(name="n"), numbered)
    assert registry.fingerprint() != registry.fingerprint()
    assert registry == registry  # itself, still


def test_a_second_batch_on_the_same_process_pool_runs_the_second_registry() -> None:
    import concurrent.futures
    import multiprocessing

    wf = mr.Workflow("w").then("scale")
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        first = scaled(2).run_workflow_batch(wf, [1, 2, 3, 4], executor=pool, chunk_size=1)
        second = scaled(3).run_workflow_batch(wf, [1, 2, 3, 4], executor=pool, chunk_size=1)
        assert [r.output for r in first] == [2, 4, 6, 8]
        assert [r.output for r in second] == [3, 6, 9, 12]  # was [2, 4, 6, 8]
        # A helper redefined (as in a notebook) reaches the workers.
        ns: dict[str, Any] = {"__name__": "notebook"}
        exec("def helper(x):\n    return x + 1\n\ndef f(x):\n    return helper(x)\n", ns)
        registry = mr.ModuleRegistry()
        registry.register(mr.ModuleConfig(name="f"), ns["f"])
        fwf = mr.Workflow("f").then("f")
        assert [r.output for r in registry.run_workflow_batch(fwf, [1, 2], executor=pool, chunk_size=1)] == [2, 3]
        exec("def helper(x):\n    return x + 100\n", ns)
        assert [r.output for r in registry.run_workflow_batch(fwf, [1, 2], executor=pool, chunk_size=1)] == [101, 102]
