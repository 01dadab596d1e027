"""Every core error reaches Python as a class of its own meaning, under
ModuleRegistryError, with a built-in base where one fits (as pydantic-core's
test_all_errors_covered checks its error types)."""

from __future__ import annotations

import errno
import inspect
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

import module_registry as mr
from module_registry import _core


def exported_classes() -> dict[str, type[BaseException]]:
    return {
        name: obj
        for name in mr.__all__
        if inspect.isclass(obj := getattr(mr, name)) and issubclass(obj, BaseException)
    }


def test_every_error_kind_has_a_class_and_every_class_is_reachable() -> None:
    by_kind = _core._error_classes()
    # Each kind of the core's errors is mapped (the binding's match on them is
    # exhaustive: a new kind without a class does not build), to a class
    # under ModuleRegistryError that the package exports.
    assert len(by_kind) == 31 and "io" in by_kind and "interrupted" in by_kind
    assert by_kind["workflow_type"] is mr.WorkflowTypeError
    exported = exported_classes()
    for code, cls in by_kind.items():
        assert issubclass(cls, mr.ModuleRegistryError), code
        assert exported.get(cls.__name__) is cls, f"{code} -> {cls.__name__} is not exported"
    # And every exception class the package exports is raised for some kind
    # (the base class is raised for none: each kind has its own meaning).
    reachable: set[type[BaseException]] = set(by_kind.values())
    for name, exported_class in exported.items():
        assert issubclass(exported_class, mr.ModuleRegistryError), name
        if exported_class is not mr.ModuleRegistryError:
            assert exported_class in reachable, f"{name} is raised for no kind of error"
    assert mr.ModuleRegistryError not in reachable
    # No kind falls back to the base class any more.
    assert by_kind["io"] is mr.FileError and by_kind["timeout"] is mr.CallTimeoutError
    assert by_kind["interrupted"] is mr.RunInterruptedError


def test_builtin_bases_where_they_fit() -> None:
    assert issubclass(mr.FileError, OSError) and issubclass(mr.FileError, mr.ModuleRegistryError)
    assert issubclass(mr.CallTimeoutError, TimeoutError)
    assert issubclass(mr.CallTimeoutError, mr.ModuleRegistryError)
    # The existing hierarchy is kept.
    assert issubclass(mr.VersionConflictError, mr.DependencyError)
    assert issubclass(mr.IntegrityError, mr.ValidationError)
    assert mr.FileError.__module__ == "module_registry"


def test_an_io_failure_is_an_oserror_with_its_errno(tmp_path: Path) -> None:
    registry = mr.ModuleRegistry()
    missing = tmp_path / "missing.rhai"
    with pytest.raises(OSError) as caught:
        registry.load_script(missing)
    err = caught.value
    assert isinstance(err, mr.FileError) and isinstance(err, mr.ModuleRegistryError)
    assert err.errno == errno.ENOENT and err.strerror and err.filename == str(missing)
    # Its text is the registry's message, not OSError's "[Errno 2] ..." form.
    assert str(err).startswith(f"i/o error on {missing}") and "No such file" in str(err)
    # It travels through a pickle as every error of the package does.
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is mr.FileError and str(again) == str(err)


def test_a_timed_out_step_is_a_timeout_error() -> None:
    registry = mr.ModuleRegistry()
    release = threading.Event()

    def stuck(x: Any) -> Any:
        release.wait(10)
        return x

    registry.register(mr.ModuleConfig(name="stuck"), stuck)
    try:
        with pytest.raises(mr.WorkflowError) as caught:
            registry.run_workflow(mr.Workflow("w").then("stuck", timeout_ms=50), 1)
    finally:
        release.set()
    cause = caught.value.__cause__
    assert isinstance(cause, TimeoutError) and isinstance(cause, mr.CallTimeoutError)
    assert cause.after_ms == 50


def test_attributes_are_set_on_every_mapped_error() -> None:
    registry = mr.ModuleRegistry()
    with pytest.raises(mr.UnknownModuleError) as caught:
        registry.create("nothing")
    assert (caught.value.name, caught.value.requirement) == ("nothing", None)
