//! `ModuleInstance` for Python: a built module, used as a context manager.

use std::sync::Arc;

use module_registry::{Implementation, ModuleInstance, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::conversion::{py_to_value, value_to_py};
use crate::errors::to_pyerr;
use crate::info::PyModuleInfo;
use crate::threads::Detach;

/// A built module. Use it as a context manager, or call `close()`.
#[pyclass(name = "ModuleInstance", module = "module_registry._core", frozen)]
pub struct PyModuleInstance {
    inner: Arc<ModuleInstance>,
    gil: GilPolicy,
    /// Called after each `process` once set (`_observe`: the package's `otel`).
    observer: std::sync::OnceLock<Py<PyAny>>,
}

/// When `process` releases the GIL.
#[derive(Clone, Copy, PartialEq)]
enum GilPolicy {
    /// Python modules need the GIL anyway: keep it.
    Keep,
    /// Native modules shipped with the crate: release it only for inputs
    /// large enough for the work to outweigh the hand-over (~0.1-0.2 µs).
    ReleaseForLargeInputs,
    /// Scripts and other Rust modules may run long: always release it.
    Release,
}

/// Inputs at least this large (bytes or str) are processed without the GIL
/// by the shipped native modules.
const LARGE_INPUT: usize = 16 * 1024;

impl PyModuleInstance {
    pub(crate) fn new(inner: ModuleInstance) -> Self {
        Self::from_shared(Arc::new(inner))
    }

    /// An instance held elsewhere too (a dependency handed to a module).
    pub(crate) fn from_shared(inner: Arc<ModuleInstance>) -> Self {
        let gil = match inner.info().implementation() {
            Implementation::Python(_) => GilPolicy::Keep,
            Implementation::Native => GilPolicy::ReleaseForLargeInputs,
            _ => GilPolicy::Release,
        };
        PyModuleInstance {
            inner,
            gil,
            observer: std::sync::OnceLock::new(),
        }
    }

    /// The instance, shared with work running elsewhere (`aprocess`).
    pub(crate) fn shared(&self) -> Arc<ModuleInstance> {
        self.inner.clone()
    }
}

fn is_large(value: &Value) -> bool {
    match value {
        Value::Bytes(b) => b.len() >= LARGE_INPUT,
        Value::Str(s) => s.len() >= LARGE_INPUT,
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
        _ => false,
    }
}

/// Whether `out` is `input`'s own value and `input` is immutable (exactly
/// `bytes` or `str`), so `input` can be given back as the output.
fn same_as_input(out: &Value, input: &Bound<'_, PyAny>) -> bool {
    match out {
        Value::Bytes(o) => input
            .cast_exact::<PyBytes>()
            .is_ok_and(|b| b.as_bytes() == o.as_slice()),
        Value::Str(o) => input
            .cast_exact::<PyString>()
            .is_ok_and(|s| s.to_str().is_ok_and(|s| s == o)),
        _ => false,
    }
}

impl PyModuleInstance {
    /// `process` itself: converted, run (the GIL released as `gil` says).
    fn run<'py>(&self, py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let input = py_to_value(value)?;
        let release = match self.gil {
            GilPolicy::Keep => false,
            GilPolicy::ReleaseForLargeInputs => is_large(&input),
            GilPolicy::Release => true,
        };
        let out = if release {
            py.detach_gated(|| self.inner.process_value(input))
        } else {
            self.inner.process_value(input)
        }
        .map_err(to_pyerr)?;
        if same_as_input(&out, value) {
            // An output equal to its input of an immutable type (`identity`,
            // a filter passing it on): the input object, not a copy of it.
            return Ok(value.clone());
        }
        value_to_py(py, out)
    }
}

fn epoch_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `process` with its observer told of the call after it (an observer that
/// raises is reported as unraisable: the call's outcome stands).
fn observed<'py>(
    slf: &Bound<'py, PyModuleInstance>,
    observer: &Py<PyAny>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let start = epoch_ns();
    let out = slf.get().run(py, value);
    let end = epoch_ns();
    let error = match &out {
        Ok(_) => py.None(),
        Err(e) => e.value(py).clone().into_any().unbind(),
    };
    if let Err(e) = observer.call1(py, (slf, start, end, error)) {
        e.write_unraisable(py, Some(observer.bind(py)));
    }
    out
}

#[pymethods]
impl PyModuleInstance {
    /// Run the module on `value` and return its output.
    fn process<'py>(
        slf: &Bound<'py, Self>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.get();
        match this.observer.get() {
            None => this.run(slf.py(), value),
            Some(observer) => observed(slf, observer, value),
        }
    }

    /// Has `observer(instance, start_ns, end_ns, error)` called after each
    /// `process` (times in ns since the epoch; `error` the exception or
    /// None). Set once; False if one was set before. For the package's
    /// `otel`, which makes a `call module` span of each call.
    fn _observe(&self, observer: Py<PyAny>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Shut the module down (once; later calls do nothing).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach_gated(|| self.inner.close()).map_err(to_pyerr)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// The module's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The module's version.
    #[getter]
    fn version(&self) -> String {
        self.inner.version().to_string()
    }

    /// `"created"`, `"initialized"`, `"running"`, `"stopped"` or `"failed"`.
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Whether `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The registration it was built from.
    #[getter]
    fn info(&self) -> PyModuleInfo {
        PyModuleInfo {
            inner: self.inner.info().clone(),
        }
    }

    /// Names of the dependency instances built for it, in build order.
    #[getter]
    fn dependencies(&self) -> Vec<String> {
        self.inner
            .dependencies()
            .iter()
            .map(|d| d.name().to_string())
            .collect()
    }

    /// Name, version, state and dependencies (in a notebook).
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        crate::result::display(slf.py(), "instance_html", slf.as_any())
    }

    fn __repr__(&self) -> String {
        format!(
            "<ModuleInstance {}@{} {}>",
            self.inner.name(),
            self.inner.version(),
            self.inner.state()
        )
    }
}
