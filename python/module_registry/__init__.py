"""module_registry: a registry of modules with semver versions, capability
discovery and dependency resolution, backed by a Rust core.

>>> from module_registry import ModuleRegistry, ModuleConfig
>>> registry = ModuleRegistry()
>>> info = registry.register(ModuleConfig(name="upper", capabilities=["text"]), str.upper)
>>> registry.create("upper").process("hi")
'HI'
"""

# Only what ``__all__`` lists (and the submodules) is public: the names the
# annotations need exist for type checkers only, and this flag is deleted.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import pathlib
    from os import PathLike
    from typing import Iterable, Optional, Union

    from ._display import Timeline
del TYPE_CHECKING

from ._core import (
    AccessPolicy,
    AlreadyRegisteredError,
    AuditEvent,
    CallTimeoutError,
    CapabilityQuery,
    DependencyError,
    FeatureDisabledError,
    FetchError,
    FileError,
    InstanceClosedError,
    InstancePool,
    IntegrityError,
    ModuleConfig,
    ModuleFailedError,
    ModuleInfo,
    ModuleInstance,
    ModuleRegistryError,
    ModuleType,
    NoImplementationError,
    OpaqueValue,
    PackageIndex,
    PackageInfo,
    PermissionDeniedError,
    PluginConfig,
    PluginDiscoveryQuery,
    ReloadEvent,
    RunInterruptedError,
    Schema,
    SchemaError,
    ScriptError,
    ScriptLimits,
    ScriptTests,
    ScriptWatcher,
    ServiceDiscoveryQuery,
    UnavailableError,
    UnknownModuleError,
    StepReport,
    ValidationError,
    VersionConflictError,
    Workflow,
    WorkflowError,
    WorkflowResult,
    WorkflowTypeError,
    __version__,
    read_audit_file,
)
from . import _hooks  # noqa: F401 - hands the extension what it calls back in the package
from ._display import ModuleList
from ._registry import EntryPointReport, ModuleRegistry, RegistryView
from . import _pickling  # noqa: F401 - exceptions keep their cause through a pickle
from . import _exit  # noqa: F401 - the extension's threads stop before the interpreter does

#: Plugins use the same vocabulary of types as modules.
PluginType = ModuleType


def timeline(results: "Iterable[WorkflowResult | BaseException]") -> "Timeline":
    """A batch's runs drawn over time (a notebook shows it as a picture):
    one bar per run, one lane per worker thread or Dask worker process that
    ran it (``WorkflowResult.worker``). Failed inputs of an
    ``errors="return"`` batch have no timing and are left out. For one
    run's steps, see ``WorkflowResult.timeline()``."""
    from ._display import batch_timeline

    return batch_timeline(results)


def bundled_scripts() -> "pathlib.Path":
    """The folder of the script modules shipped in this package (what
    ``ModuleRegistry(bundled_scripts=True)`` registers; ``load_scripts`` it
    to read them from the files)."""
    import pathlib

    return pathlib.Path(__file__).resolve().parent / "scripts"


def build_index(folder: "Union[str, PathLike[str]]", base_url: "Optional[str]" = None) -> "pathlib.Path":
    """Write ``folder/index.json``, the package index of the script modules in
    ``folder`` (extending the index already there; each version's files are
    kept under ``NAME/VERSION/``), and return its path. ``base_url`` is where
    the files will be served; without it, file URLs are relative to the
    index. What ``module-registry index build`` does."""
    import pathlib

    from . import _core

    _core._build_index(folder, base_url)
    return pathlib.Path(folder) / "index.json"


def sign_index(index_path: "Union[str, PathLike[str]]", secret_key_path: "Union[str, PathLike[str]]") -> "pathlib.Path":
    """Sign an index with a minisign secret key (from :func:`keygen`) and
    return the signature's path, ``index_path`` + ``.minisig``; an install
    given the public key (``trusted_key=``) refuses an index it did not
    sign. What ``module-registry index sign`` does."""
    import pathlib

    from . import _core

    return pathlib.Path(_core._sign(index_path, secret_key_path))


def keygen(prefix: "Union[str, PathLike[str]]") -> "tuple[pathlib.Path, pathlib.Path]":
    """Write a new minisign key pair, ``prefix.key`` (the secret key, not
    encrypted: keep it private) and ``prefix.pub``, creating missing parent
    folders, and return their paths ``(secret_key_path, public_key_path)``.
    An existing key is never overwritten (a ``ValidationError``). What
    ``module-registry keygen`` does."""
    import pathlib

    from . import _core

    pathlib.Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    secret, public = _core._keygen(prefix)
    return pathlib.Path(secret), pathlib.Path(public)

__all__ = [
    "AccessPolicy",
    "AlreadyRegisteredError",
    "AuditEvent",
    "CallTimeoutError",
    "CapabilityQuery",
    "DependencyError",
    "EntryPointReport",
    "FeatureDisabledError",
    "FetchError",
    "FileError",
    "InstanceClosedError",
    "InstancePool",
    "IntegrityError",
    "ModuleConfig",
    "ModuleFailedError",
    "ModuleInfo",
    "ModuleInstance",
    "ModuleList",
    "ModuleRegistry",
    "ModuleRegistryError",
    "ModuleType",
    "NoImplementationError",
    "OpaqueValue",
    "PackageIndex",
    "PackageInfo",
    "PermissionDeniedError",
    "PluginConfig",
    "PluginDiscoveryQuery",
    "PluginType",
    "RegistryView",
    "ReloadEvent",
    "RunInterruptedError",
    "Schema",
    "SchemaError",
    "ScriptError",
    "ScriptLimits",
    "ScriptTests",
    "ScriptWatcher",
    "ServiceDiscoveryQuery",
    "StepReport",
    "UnavailableError",
    "UnknownModuleError",
    "ValidationError",
    "VersionConflictError",
    "Workflow",
    "WorkflowError",
    "WorkflowTypeError",
    "WorkflowResult",
    "__version__",
    "build_index",
    "bundled_scripts",
    "keygen",
    "read_audit_file",
    "sign_index",
    "timeline",
]
