//! `AuditEvent`, `read_audit_file` and the registry's audit methods for Python.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use module_registry::audit::Outcome;
use module_registry::{AuditEvent, ModuleKind};
use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::registry::PyModuleRegistry;
use crate::threads::Detach;

/// One audited operation.
#[pyclass(name = "AuditEvent", module = "module_registry._core", frozen, get_all)]
pub struct PyAuditEvent {
    /// Position in the registry's sequence of events.
    sequence: u64,
    /// Seconds since the Unix epoch.
    time: f64,
    /// The operation (`register`, `unregister`, `create`, ...).
    operation: String,
    /// Who did it.
    principal: String,
    /// `"module"` or `"plugin"`.
    kind: &'static str,
    /// The module concerned.
    module: String,
    /// Its version, when known.
    version: Option<String>,
    /// `"ok"`, `"denied"` or `"error"`.
    outcome: &'static str,
    /// The error message of a failure.
    detail: Option<String>,
}

/// The `&'static str` among `known` equal to `text`.
pub(crate) fn known_str(text: &str, known: &[&'static str], what: &str) -> PyResult<&'static str> {
    known.iter().copied().find(|k| *k == text).ok_or_else(|| {
        to_pyerr(module_registry::Error::Serialization {
            message: format!("{what} must be one of {known:?}, not {text:?}"),
        })
    })
}

/// The constructor's arguments (what a pickled event holds).
type EventArgs = (
    u64,
    f64,
    String,
    String,
    &'static str,
    String,
    Option<String>,
    &'static str,
    Option<String>,
);

#[pymethods]
impl PyAuditEvent {
    /// An event as `audit_events()` gives them (what unpickling builds).
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        sequence: u64,
        time: f64,
        operation: String,
        principal: String,
        kind: &str,
        module: String,
        version: Option<String>,
        outcome: &str,
        detail: Option<String>,
    ) -> PyResult<Self> {
        Ok(PyAuditEvent {
            sequence,
            time,
            operation,
            principal,
            kind: known_str(
                kind,
                &[ModuleKind::Module, ModuleKind::Plugin].map(ModuleKind::as_str),
                "kind",
            )?,
            module,
            version,
            outcome: known_str(
                outcome,
                &[Outcome::Ok, Outcome::Denied, Outcome::Error].map(Outcome::as_str),
                "outcome",
            )?,
            detail,
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, pyo3::types::PyType>, EventArgs) {
        let e = slf.get();
        (
            slf.get_type(),
            (
                e.sequence,
                e.time,
                e.operation.clone(),
                e.principal.clone(),
                e.kind,
                e.module.clone(),
                e.version.clone(),
                e.outcome,
                e.detail.clone(),
            ),
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Self>().is_ok_and(|o| {
            let o = o.get();
            (
                o.sequence,
                o.time.to_bits(),
                &o.operation,
                &o.principal,
                o.kind,
            ) == (
                self.sequence,
                self.time.to_bits(),
                &self.operation,
                &self.principal,
                self.kind,
            ) && (&o.module, &o.version, o.outcome, &o.detail)
                == (&self.module, &self.version, self.outcome, &self.detail)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "AuditEvent(operation={:?}, module={:?}, version={:?}, outcome={:?})",
            self.operation, self.module, self.version, self.outcome
        )
    }
}

impl From<AuditEvent> for PyAuditEvent {
    fn from(e: AuditEvent) -> Self {
        PyAuditEvent {
            sequence: e.sequence,
            time: e
                .time
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            operation: e.operation,
            principal: e.principal,
            kind: e.kind.as_str(),
            module: e.module,
            version: e.version,
            outcome: e.outcome.as_str(),
            detail: e.detail,
        }
    }
}

#[pymethods]
impl PyModuleRegistry {
    /// Append every audit event from now on to `path` as JSON lines (None stops).
    #[pyo3(signature = (path))]
    fn set_audit_file(&self, py: Python<'_>, path: Option<PathBuf>) -> PyResult<()> {
        // Opening a file may wait on the file system: not while holding the GIL.
        py.detach_gated(|| self.inner.set_audit_file(path.as_deref()))
            .map_err(to_pyerr)
    }

    /// How many audit events could not be written to the audit file (a full
    /// disk, say); the first failure of a run also warns on stderr.
    #[getter]
    fn audit_file_failures(&self) -> u64 {
        self.inner.audit_log().file_failures()
    }

    /// Forget every kept audit event (needs admin on "*"; the audit file keeps its lines).
    fn clear_audit(&self) -> PyResult<()> {
        self.inner.clear_audit().map_err(to_pyerr)
    }

    /// The audit events kept (oldest first).
    fn audit_events(&self) -> Vec<PyAuditEvent> {
        self.inner
            .audit_events()
            .into_iter()
            .map(Into::into)
            .collect()
    }
}

/// Read an audit file written by `set_audit_file` back into events.
#[pyfunction]
pub fn read_audit_file(path: PathBuf) -> PyResult<Vec<PyAuditEvent>> {
    let events = module_registry::AuditLog::read_file(path).map_err(to_pyerr)?;
    Ok(events.into_iter().map(Into::into).collect())
}
