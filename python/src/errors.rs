//! The one mapping from core errors to Python exceptions.
//!
//! Every exception derives from `ModuleRegistryError`. A Python exception
//! raised inside a Python module comes back as the `__cause__` of a
//! `ModuleFailedError`.

use module_registry::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    module_registry,
    ModuleRegistryError,
    PyException,
    "Base class of every error raised by module_registry."
);
create_exception!(
    module_registry,
    UnknownModuleError,
    ModuleRegistryError,
    "No module of that name, or none whose version satisfies the requirement."
);
create_exception!(
    module_registry,
    AlreadyRegisteredError,
    ModuleRegistryError,
    "The same name and version is already registered."
);
create_exception!(
    module_registry,
    ValidationError,
    ModuleRegistryError,
    "A name, version, requirement, capability or config is invalid."
);
create_exception!(
    module_registry,
    DependencyError,
    ModuleRegistryError,
    "Dependencies cannot be resolved: missing, cyclic or too complex."
);
create_exception!(
    module_registry,
    VersionConflictError,
    DependencyError,
    "Dependency requirements that no single version satisfies together."
);
create_exception!(
    module_registry,
    NoImplementationError,
    ModuleRegistryError,
    "The module is a declaration only and cannot be created."
);
create_exception!(
    module_registry,
    ModuleFailedError,
    ModuleRegistryError,
    "Code inside a module failed; the original exception is the __cause__."
);
create_exception!(
    module_registry,
    InstanceClosedError,
    ModuleRegistryError,
    "The instance was used after close()."
);
create_exception!(
    module_registry,
    FeatureDisabledError,
    ModuleRegistryError,
    "A registry feature is switched off."
);
create_exception!(
    module_registry,
    ScriptError,
    ModuleRegistryError,
    "A script failed to load or run."
);
create_exception!(
    module_registry,
    WorkflowError,
    ModuleRegistryError,
    "A workflow is invalid or one of its steps failed."
);
create_exception!(
    module_registry,
    IntegrityError,
    ValidationError,
    "Content does not match its digest, or a signature does not verify."
);
create_exception!(
    module_registry,
    FetchError,
    ModuleRegistryError,
    "A package index or file could not be downloaded or read."
);
create_exception!(
    module_registry,
    UnavailableError,
    ModuleRegistryError,
    "An instance pool has no instance to call: closed, or every provider is cooling down."
);
create_exception!(
    module_registry,
    PermissionDeniedError,
    ModuleRegistryError,
    "The principal lacks the permission for the operation."
);

/// Converts a core error into the matching Python exception.
pub fn to_pyerr(err: Error) -> PyErr {
    Python::attach(|py| convert(py, err))
}

fn convert(py: Python<'_>, err: Error) -> PyErr {
    // A stop request (KeyboardInterrupt, SystemExit) raised inside a module
    // comes back as itself, whatever wraps it, so that it stops the caller.
    if let Some(Error::Interrupted { source, .. }) = err.interruption() {
        if let Some(original) = source.downcast_ref::<PyErr>() {
            return original.clone_ref(py);
        }
    }
    let message = err.report();
    match err {
        Error::External { source, .. } => match source.downcast_ref::<PyErr>() {
            Some(original) => original.clone_ref(py),
            None => ModuleRegistryError::new_err(message),
        },
        Error::ModuleFailed {
            module,
            version,
            operation,
            source,
        } => {
            // A script module's own failure is a script error (naming the module and the script).
            let exc = if let Error::Script {
                script,
                line,
                column,
                ..
            } = &*source
            {
                let exc = ScriptError::new_err(message);
                let value = exc.value(py);
                let _ = value.setattr("script", script);
                let _ = value.setattr("line", *line);
                let _ = value.setattr("column", *column);
                exc
            } else {
                ModuleFailedError::new_err(message)
            };
            let value = exc.value(py);
            let _ = value.setattr("module", module);
            let _ = value.setattr("version", version);
            let _ = value.setattr("operation", operation);
            if !matches!(&*source, Error::Script { .. }) {
                exc.set_cause(py, Some(convert(py, *source)));
            }
            exc
        }
        Error::Script {
            script,
            line,
            column,
            ..
        } => {
            let exc = ScriptError::new_err(message);
            let value = exc.value(py);
            let _ = value.setattr("script", script);
            let _ = value.setattr("line", line);
            let _ = value.setattr("column", column);
            exc
        }
        Error::Workflow {
            workflow,
            step,
            source,
            ..
        } => {
            let exc = WorkflowError::new_err(message);
            let value = exc.value(py);
            let _ = value.setattr("workflow", workflow);
            let _ = value.setattr("step", step);
            if let Some(source) = source {
                exc.set_cause(py, Some(convert(py, *source)));
            }
            exc
        }
        Error::PermissionDenied {
            principal,
            operation,
            module,
        } => {
            let exc = PermissionDeniedError::new_err(message);
            let value = exc.value(py);
            let _ = value.setattr("principal", principal);
            let _ = value.setattr("operation", operation);
            let _ = value.setattr("module", module);
            exc
        }
        Error::Integrity { .. } | Error::Signature { .. } => IntegrityError::new_err(message),
        Error::Fetch { url, .. } => {
            let exc = FetchError::new_err(message);
            let _ = exc.value(py).setattr("url", url);
            exc
        }
        Error::Panic { .. } => ModuleFailedError::new_err(message),
        Error::NotFound {
            name, requirement, ..
        } => {
            let exc = UnknownModuleError::new_err(message);
            let value = exc.value(py);
            let _ = value.setattr("name", name);
            let _ = value.setattr("requirement", requirement);
            exc
        }
        Error::AlreadyRegistered { .. } => AlreadyRegisteredError::new_err(message),
        Error::InvalidName { .. }
        | Error::InvalidVersion { .. }
        | Error::InvalidRequirement { .. }
        | Error::InvalidConfig { .. }
        | Error::InvalidInput { .. }
        | Error::Serialization { .. } => ValidationError::new_err(message),
        Error::VersionConflict { .. } => VersionConflictError::new_err(message),
        Error::MissingDependency { .. }
        | Error::DependencyCycle { .. }
        | Error::ResolutionLimit { .. } => DependencyError::new_err(message),
        Error::NoImplementation { .. } => NoImplementationError::new_err(message),
        Error::InstanceClosed { .. } => InstanceClosedError::new_err(message),
        Error::FeatureDisabled { .. } => FeatureDisabledError::new_err(message),
        Error::Unavailable { subject, .. } => {
            let exc = UnavailableError::new_err(message);
            let _ = exc.value(py).setattr("subject", subject);
            exc
        }
        _ => ModuleRegistryError::new_err(message),
    }
}

/// Adds every exception class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ModuleRegistryError", py.get_type::<ModuleRegistryError>())?;
    m.add("UnknownModuleError", py.get_type::<UnknownModuleError>())?;
    m.add(
        "AlreadyRegisteredError",
        py.get_type::<AlreadyRegisteredError>(),
    )?;
    m.add("ValidationError", py.get_type::<ValidationError>())?;
    m.add("DependencyError", py.get_type::<DependencyError>())?;
    m.add(
        "VersionConflictError",
        py.get_type::<VersionConflictError>(),
    )?;
    m.add(
        "NoImplementationError",
        py.get_type::<NoImplementationError>(),
    )?;
    m.add("ModuleFailedError", py.get_type::<ModuleFailedError>())?;
    m.add("InstanceClosedError", py.get_type::<InstanceClosedError>())?;
    m.add(
        "FeatureDisabledError",
        py.get_type::<FeatureDisabledError>(),
    )?;
    m.add("ScriptError", py.get_type::<ScriptError>())?;
    m.add("WorkflowError", py.get_type::<WorkflowError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add("FetchError", py.get_type::<FetchError>())?;
    m.add("UnavailableError", py.get_type::<UnavailableError>())?;
    m.add(
        "PermissionDeniedError",
        py.get_type::<PermissionDeniedError>(),
    )?;
    Ok(())
}
