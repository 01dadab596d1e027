"""module_registry: a registry of modules with semver versions, capability
discovery and dependency resolution, backed by a Rust core.

>>> from module_registry import ModuleRegistry, ModuleConfig
>>> registry = ModuleRegistry()
>>> info = registry.register(ModuleConfig(name="upper", capabilities=["text"]), str.upper)
>>> registry.create("upper").process("hi")
'HI'
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import pathlib
    from typing import Iterable

    from ._display import Timeline

from ._core import (
    AccessPolicy,
    AlreadyRegisteredError,
    AuditEvent,
    CapabilityQuery,
    DependencyError,
    FeatureDisabledError,
    FetchError,
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
    ScriptError,
    ScriptLimits,
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
    __version__,
    read_audit_file,
)
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

__all__ = [
    "AccessPolicy",
    "AlreadyRegisteredError",
    "AuditEvent",
    "CapabilityQuery",
    "DependencyError",
    "EntryPointReport",
    "FeatureDisabledError",
    "FetchError",
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
    "ScriptError",
    "ScriptLimits",
    "ScriptWatcher",
    "ServiceDiscoveryQuery",
    "StepReport",
    "UnavailableError",
    "UnknownModuleError",
    "ValidationError",
    "VersionConflictError",
    "Workflow",
    "WorkflowError",
    "WorkflowResult",
    "__version__",
    "bundled_scripts",
    "read_audit_file",
    "timeline",
]
