//! The one mapping from core errors to Python exceptions.
//!
//! Every exception derives from `ModuleRegistryError`; each kind of core
//! error ([`ErrorKind`], matched exhaustively: a new kind without a class
//! does not build) has its class, and a class has a built-in base where one
//! fits (`FileError` is an `OSError`, `CallTimeoutError` a `TimeoutError`).
//! A Python exception raised inside a Python module comes back as the
//! `__cause__` of a `ModuleFailedError`.

use module_registry::{Error, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException, PyOSError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

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
    WorkflowTypeError,
    WorkflowError,
    "A workflow's types do not fit, found before any step runs: a step takes a type its input does not give, or its config does not fit its module's config type (workflow, step, module, producer, path, expected and found say where and how)."
);
create_exception!(
    module_registry,
    SchemaError,
    ValidationError,
    "A type cannot be read (a bad type expression, a JSON Schema it cannot express), or a value does not fit a type (path, expected and found say where and how; None for a type that cannot be read)."
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

create_exception!(
    module_registry,
    RunInterruptedError,
    ModuleRegistryError,
    "The host asked a run to stop (a Rust embedder's interruption; a KeyboardInterrupt or SystemExit raised inside a module comes back as itself)."
);

/// A class deriving from `ModuleRegistryError` and a built-in exception,
/// made once. Its `str()` is its message (not `OSError`'s `[Errno n] ...`
/// form), and it pickles as every class of the package does.
fn with_builtin_base<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    builtin: Bound<'py, PyType>,
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    cell.get_or_try_init(py, || {
        let bases = PyTuple::new(py, [py.get_type::<ModuleRegistryError>(), builtin])?;
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "module_registry")?;
        namespace.set_item("__doc__", doc)?;
        namespace.set_item(
            "__str__",
            py.get_type::<PyBaseException>().getattr("__str__")?,
        )?;
        let class = py
            .get_type::<PyType>()
            .call1((name, bases, namespace))?
            .cast_into::<PyType>()?;
        Ok(class.unbind())
    })
    .map(|class| class.bind(py).clone())
}

/// `FileError`: a file could not be read or written; also an `OSError`
/// (`errno`, `strerror` and `filename` set where known).
fn file_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    with_builtin_base(
        py,
        &CLASS,
        "FileError",
        py.get_type::<PyOSError>(),
        "A file could not be read or written; also an OSError (errno, strerror, filename).",
    )
}

/// `CallTimeoutError`: a call passed its deadline; also a `TimeoutError`.
fn call_timeout_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    with_builtin_base(
        py,
        &CLASS,
        "CallTimeoutError",
        py.get_type::<PyTimeoutError>(),
        "A call did not return before its deadline and was abandoned; also a TimeoutError.",
    )
}

/// The class every error of `kind` is raised as. Exhaustive on purpose:
/// a kind added to the core fails to build here until it has a class.
pub fn class_of(py: Python<'_>, kind: ErrorKind) -> PyResult<Bound<'_, PyType>> {
    Ok(match kind {
        ErrorKind::InvalidName
        | ErrorKind::InvalidVersion
        | ErrorKind::InvalidRequirement
        | ErrorKind::InvalidConfig
        | ErrorKind::InvalidInput
        | ErrorKind::Serialization => py.get_type::<ValidationError>(),
        ErrorKind::AlreadyRegistered => py.get_type::<AlreadyRegisteredError>(),
        ErrorKind::NotFound => py.get_type::<UnknownModuleError>(),
        ErrorKind::NoImplementation => py.get_type::<NoImplementationError>(),
        ErrorKind::MissingDependency | ErrorKind::DependencyCycle | ErrorKind::ResolutionLimit => {
            py.get_type::<DependencyError>()
        }
        ErrorKind::VersionConflict => py.get_type::<VersionConflictError>(),
        // A panic, and a foreign error (a Rust module's own error type), are
        // failures of code inside a module.
        ErrorKind::ModuleFailed | ErrorKind::Panic | ErrorKind::External => {
            py.get_type::<ModuleFailedError>()
        }
        ErrorKind::InstanceClosed => py.get_type::<InstanceClosedError>(),
        ErrorKind::FeatureDisabled => py.get_type::<FeatureDisabledError>(),
        ErrorKind::Io => file_error(py)?,
        ErrorKind::Script => py.get_type::<ScriptError>(),
        ErrorKind::Workflow => py.get_type::<WorkflowError>(),
        ErrorKind::PermissionDenied => py.get_type::<PermissionDeniedError>(),
        ErrorKind::Integrity | ErrorKind::Signature => py.get_type::<IntegrityError>(),
        ErrorKind::Fetch => py.get_type::<FetchError>(),
        ErrorKind::Timeout => call_timeout_error(py)?,
        ErrorKind::Unavailable => py.get_type::<UnavailableError>(),
        ErrorKind::Interrupted => py.get_type::<RunInterruptedError>(),
        ErrorKind::InvalidSchema | ErrorKind::SchemaMismatch => py.get_type::<SchemaError>(),
        ErrorKind::WorkflowType => py.get_type::<WorkflowTypeError>(),
    })
}

/// Every error kind's code and class: what the test that every class is
/// reachable (and every kind mapped) walks.
#[pyfunction]
pub fn _error_classes(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let classes = PyDict::new(py);
    for kind in ErrorKind::ALL {
        classes.set_item(kind.code(), class_of(py, kind)?)?;
    }
    Ok(classes)
}

/// Converts a core error into the matching Python exception. Should
/// building it fail (an attribute that cannot be set), that failure is
/// what is raised: never a half-built exception.
pub fn to_pyerr(err: Error) -> PyErr {
    Python::attach(|py| {
        // A call refused because the interpreter exits, on a thread other
        // than the main one (a daemon thread: no other runs then), ends that
        // thread quietly, as the exit hook's `SystemExit` does, never with
        // a traceback printed at exit.
        if refused_at_exit(&err) && !on_main_thread(py) {
            return pyo3::exceptions::PySystemExit::new_err(err.to_string());
        }
        convert(py, err).unwrap_or_else(|failure| failure)
    })
}

/// Whether `err`, or an error it was caused by, is the refusal of a call
/// because the interpreter exits.
fn refused_at_exit(err: &Error) -> bool {
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = at {
        if e.to_string().contains(crate::threads::EXITING) {
            return true;
        }
        at = e.source();
    }
    false
}

fn on_main_thread(py: Python<'_>) -> bool {
    let check = || -> PyResult<bool> {
        let threading = py.import("threading")?;
        let main = threading.call_method0("main_thread")?;
        Ok(main.is(&threading.call_method0("current_thread")?))
    };
    check().unwrap_or(true)
}

/// Sets each `(name, value)` on the exception.
fn set_all<'py>(
    exc: &PyErr,
    py: Python<'py>,
    attributes: Vec<(&'static str, Bound<'py, PyAny>)>,
) -> PyResult<()> {
    let value = exc.value(py);
    for (name, attribute) in attributes {
        value.setattr(name, attribute)?;
    }
    Ok(())
}

/// A script error's `script`, `line`, `column`, `value` and `trace`.
fn script_attributes<'py>(
    py: Python<'py>,
    source: &Error,
    attributes: &mut Vec<(&'static str, Bound<'py, PyAny>)>,
) -> PyResult<()> {
    if let Error::Script {
        script,
        line,
        column,
        value,
        trace,
        ..
    } = source
    {
        attributes.push(("script", script.into_pyobject(py)?.into_any()));
        attributes.push(("line", line.into_pyobject(py)?.into_any()));
        attributes.push(("column", column.into_pyobject(py)?.into_any()));
        let thrown = match value {
            // A value that cannot be converted is `None`: the message has its text.
            Some(v) => crate::conversion::value_to_py(py, (**v).clone())
                .unwrap_or_else(|_| py.None().into_bound(py)),
            None => py.None().into_bound(py),
        };
        attributes.push(("value", thrown));
        let frames = trace
            .iter()
            .map(|f| (f.script.as_str(), f.function.as_deref(), f.line, f.column))
            .collect::<Vec<_>>();
        attributes.push(("trace", frames.into_pyobject(py)?.into_any()));
    }
    Ok(())
}

/// The Python exception a core error's source carries, if it is one.
fn python_exception<'a>(
    source: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'a PyErr> {
    source
        .downcast_ref::<crate::modules::PyException>()
        .map(|carried| &carried.err)
        .or_else(|| source.downcast_ref::<PyErr>())
}

fn convert(py: Python<'_>, err: Error) -> PyResult<PyErr> {
    if let Some(original) = carried_back(py, &err) {
        return Ok(original);
    }
    let message = err.report();
    // A script module's own failure is a script error (naming the module and the script).
    let class = match &err {
        Error::ModuleFailed { source, .. } if matches!(&**source, Error::Script { .. }) => {
            py.get_type::<ScriptError>()
        }
        other => class_of(py, other.kind())?,
    };
    let exc = PyErr::from_value(class.call1((message,))?);
    let mut attributes = Vec::new();
    let cause = attributes_of(py, err, &mut attributes)?;
    set_all(&exc, py, attributes)?;
    if let Some(cause) = cause {
        exc.set_cause(py, Some(cause));
    }
    Ok(exc)
}

/// The Python exception `err` carries back as itself: a stop request
/// (KeyboardInterrupt, SystemExit) raised inside a module, whatever wraps
/// it, so that it stops the caller; any Python exception carried through
/// the core.
fn carried_back(py: Python<'_>, err: &Error) -> Option<PyErr> {
    if let Some(Error::Interrupted { source, .. }) = err.interruption() {
        if let Some(original) = python_exception(&**source) {
            return Some(original.clone_ref(py));
        }
    }
    if let Error::External { source } = err {
        if let Some(original) = python_exception(&**source) {
            return Some(original.clone_ref(py));
        }
    }
    None
}

/// The attributes the exception of `err` gets (its fields a handler may
/// need), pushed onto `attributes`; and its cause (the error it wraps),
/// if any.
fn attributes_of<'py>(
    py: Python<'py>,
    err: Error,
    attributes: &mut Vec<(&'static str, Bound<'py, PyAny>)>,
) -> PyResult<Option<PyErr>> {
    let mut cause = None;
    match err {
        Error::ModuleFailed {
            module,
            version,
            operation,
            source,
        } => {
            script_attributes(py, &source, attributes)?;
            attributes.push(("module", module.into_pyobject(py)?.into_any()));
            attributes.push(("version", version.into_pyobject(py)?.into_any()));
            attributes.push(("operation", operation.into_pyobject(py)?.into_any()));
            if !matches!(&*source, Error::Script { .. }) {
                cause = Some(convert(py, *source)?);
            }
        }
        ref script @ Error::Script { .. } => script_attributes(py, script, attributes)?,
        Error::Workflow {
            workflow,
            step,
            source,
            ..
        } => {
            attributes.push(("workflow", workflow.into_pyobject(py)?.into_any()));
            attributes.push(("step", step.into_pyobject(py)?.into_any()));
            if let Some(source) = source {
                cause = Some(convert(py, *source)?);
            }
        }
        Error::PermissionDenied {
            principal,
            operation,
            module,
        } => {
            attributes.push(("principal", principal.into_pyobject(py)?.into_any()));
            attributes.push(("operation", operation.into_pyobject(py)?.into_any()));
            attributes.push(("module", module.into_pyobject(py)?.into_any()));
        }
        Error::Fetch { url, .. } => attributes.push(("url", url.into_pyobject(py)?.into_any())),
        Error::NotFound {
            name, requirement, ..
        } => {
            attributes.push(("name", name.into_pyobject(py)?.into_any()));
            attributes.push(("requirement", requirement.into_pyobject(py)?.into_any()));
        }
        Error::Unavailable { subject, .. } => {
            attributes.push(("subject", subject.into_pyobject(py)?.into_any()));
        }
        Error::Io { path, source } => {
            // As an OSError: errno and strerror when the system gave them.
            if let Some(errno) = source.raw_os_error() {
                let strerror = py.import("os")?.call_method1("strerror", (errno,))?;
                attributes.push(("errno", errno.into_pyobject(py)?.into_any()));
                attributes.push(("strerror", strerror));
            } else {
                attributes.push(("strerror", source.to_string().into_pyobject(py)?.into_any()));
            }
            attributes.push(("filename", path.into_pyobject(py)?.into_any()));
        }
        Error::Timeout { after_ms } => {
            attributes.push(("after_ms", after_ms.into_pyobject(py)?.into_any()));
        }
        Error::SchemaMismatch {
            path,
            expected,
            found,
            call,
        } => {
            attributes.push(("path", path.into_pyobject(py)?.into_any()));
            attributes.push(("expected", expected.into_pyobject(py)?.into_any()));
            attributes.push(("found", found.into_pyobject(py)?.into_any()));
            let call = call.as_deref();
            let module = call.map(|c| c.module.as_str());
            let step = call.and_then(|c| c.step.as_deref());
            let role = call.map(|c| c.role.as_str());
            attributes.push(("module", module.into_pyobject(py)?.into_any()));
            attributes.push(("step", step.into_pyobject(py)?.into_any()));
            attributes.push(("role", role.into_pyobject(py)?.into_any()));
        }
        Error::WorkflowType(e) => {
            attributes.push((
                "workflow",
                e.workflow.as_str().into_pyobject(py)?.into_any(),
            ));
            attributes.push(("step", e.step.as_str().into_pyobject(py)?.into_any()));
            attributes.push(("module", e.module.as_str().into_pyobject(py)?.into_any()));
            attributes.push((
                "producer",
                e.producer.as_deref().into_pyobject(py)?.into_any(),
            ));
            attributes.push(("path", e.path.as_str().into_pyobject(py)?.into_any()));
            attributes.push((
                "expected",
                e.expected.as_str().into_pyobject(py)?.into_any(),
            ));
            attributes.push(("found", e.found.as_str().into_pyobject(py)?.into_any()));
        }
        Error::InvalidSchema { .. } => {
            let none = py.None().into_bound(py);
            for name in ["path", "expected", "found", "module", "step", "role"] {
                attributes.push((name, none.clone()));
            }
        }
        // The other variants carry nothing a handler needs beyond the
        // message (their class is chosen in `convert`, exhaustively, by kind).
        _ => {}
    }
    Ok(cause)
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
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("WorkflowTypeError", py.get_type::<WorkflowTypeError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add("FetchError", py.get_type::<FetchError>())?;
    m.add("UnavailableError", py.get_type::<UnavailableError>())?;
    m.add(
        "PermissionDeniedError",
        py.get_type::<PermissionDeniedError>(),
    )?;
    m.add("RunInterruptedError", py.get_type::<RunInterruptedError>())?;
    m.add("FileError", file_error(py)?)?;
    m.add("CallTimeoutError", call_timeout_error(py)?)?;
    m.add_function(pyo3::wrap_pyfunction!(_error_classes, m)?)?;
    Ok(())
}
