"""pytest plugin (entry point ``pytest11``): Rhai test functions as tests.

``pytest --rhai-scripts DIR`` (or ``rhai_scripts = DIR`` in the ini file;
either may name several folders) loads the script modules of ``DIR`` into a
fresh registry and collects every ``fn test_*()`` (no parameters) of its
test files, ``test_*.rhai`` and ``*_test.rhai``, as one test each. Inside a
test function ``registry`` is that registry, as in an orchestration script
(``registry.create("name").process(x)``); ``assert(cond, message)`` and
``assert_eq(a, b)`` fail it, as do ``throw`` and any error, reported at the
script's line. Each test runs under the registry's script limits, so one
that never ends fails at the operation limit or the timeout. A
``conftest.py`` may prepare each registry before its modules load with the
hook ``pytest_rhai_registry(registry, folder)`` (limits, Python modules,
``register_script_function``).

Without the option the plugin does nothing: it adds the option and leaves
every file to pytest (nothing of the extension runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from . import ModuleRegistry, ScriptError, ScriptTests

_FOLDERS = pytest.StashKey[list[Path]]()
_REGISTRIES = pytest.StashKey[dict[Path, Union["ModuleRegistry", BaseException]]]()


class _HookSpecs:
    @pytest.hookspec
    def pytest_rhai_registry(self, registry: "ModuleRegistry", folder: Path) -> None:
        """Prepare the registry of Rhai script folder ``folder`` before its
        modules load (set limits, register Python modules or functions)."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_HookSpecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rhai", "Rhai script modules (module-registry)")
    group.addoption(
        "--rhai-scripts",
        action="append",
        dest="rhai_scripts",
        metavar="DIR",
        default=None,
        help="load DIR's Rhai script modules and run the fn test_*() of its "
        "test_*.rhai and *_test.rhai files (may be given more than once)",
    )
    parser.addini(
        "rhai_scripts",
        type="paths",
        default=[],
        help="folders of Rhai script modules whose test files are collected (as --rhai-scripts)",
    )


def _folders(config: pytest.Config) -> list[Path]:
    given = config.getoption("rhai_scripts") or []
    invoked = Path(config.invocation_params.dir)
    folders = [invoked / p for p in given] or list(config.getini("rhai_scripts"))
    return [Path(f).resolve() for f in folders]


def _covered(folder: Path, args: list[str], root: Path) -> bool:
    for arg in args:
        path = (root / arg.split("::")[0]).resolve()
        if folder == path or path in folder.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    folders = _folders(config)
    if not folders:
        return
    for folder in folders:
        if not folder.is_dir():
            raise pytest.UsageError(f"--rhai-scripts: {folder} is not a folder")
    config.stash[_FOLDERS] = folders
    config.stash[_REGISTRIES] = {}
    # Paths given on the command line are what the user asked for; else
    # (testpaths, the current folder) the script folders are collected too.
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        root = Path(config.invocation_params.dir)
        for folder in folders:
            if not _covered(folder, config.args, root):
                config.args.append(str(folder))


def _is_test_file(path: Path) -> bool:
    stem = path.name[: -len(".rhai")]
    return path.suffix == ".rhai" and (stem.startswith("test_") or stem.endswith("_test"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional[pytest.Collector]:
    folders = parent.config.stash.get(_FOLDERS, None)
    if not folders or not _is_test_file(file_path):
        return None
    if file_path.parent.resolve() not in folders:
        return None
    return RhaiTestFile.from_parent(parent, path=file_path)


def _registry_for(config: pytest.Config, folder: Path) -> "ModuleRegistry":
    """The folder's registry, made and loaded once per session."""
    registries = config.stash[_REGISTRIES]
    found = registries.get(folder)
    if found is None:
        from . import ModuleRegistry

        registry = ModuleRegistry()
        try:
            config.hook.pytest_rhai_registry(registry=registry, folder=folder)
            registry.load_scripts_under_test(folder)
            found = registry
        except Exception as exc:  # every test file of the folder reports it
            found = exc
        registries[folder] = found
    if isinstance(found, BaseException):
        raise found
    return found


def _where(error: "ScriptError") -> str:
    """``file:line:column: message`` (what editors and terminals link)."""
    where = str(error.script)
    if error.line is not None:
        where += f":{error.line}"
        if error.column is not None:
            where += f":{error.column}"
    text = str(error)
    said = f"script error in {error.script}"
    if text.startswith(said):
        text = text[len(said) :]
        if error.line is not None:
            text = text.removeprefix(f" at {error.line}:{error.column}")
        text = text.removeprefix(": ")
    return f"{where}: {text}"


def _describe(excinfo: "ExceptionInfo[BaseException]") -> Optional[str]:
    from . import ScriptError

    if isinstance(excinfo.value, ScriptError):
        return _where(excinfo.value)
    return None


class RhaiTestFile(pytest.File):
    """A Rhai test file: one item per ``fn test_*()``."""

    def collect(self) -> Iterator[pytest.Item]:
        registry = _registry_for(self.config, self.path.parent.resolve())
        tests = registry.load_script_tests(self.path)
        for name, line in tests.tests:
            yield RhaiTestItem.from_parent(self, name=name, tests=tests, line=line)

    def repr_failure(
        self, excinfo: "ExceptionInfo[BaseException]", style: Any = None
    ) -> "Union[str, TerminalRepr]":
        return _describe(excinfo) or super().repr_failure(excinfo)


class RhaiTestItem(pytest.Item):
    """One ``fn test_*()`` of a Rhai test file."""

    def __init__(self, *, tests: "ScriptTests", line: Optional[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tests = tests
        self.line = line

    def runtest(self) -> None:
        self.tests.run(self.name)

    def repr_failure(
        self, excinfo: "ExceptionInfo[BaseException]", style: Any = None
    ) -> "Union[str, TerminalRepr]":
        return _describe(excinfo) or super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, Optional[int], str]:
        return self.path, None if self.line is None else self.line - 1, f"rhai {self.name}"
