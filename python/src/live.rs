//! Live modules for Python: `InstancePool`, `ScriptWatcher` and
//! `ReloadEvent`, and the registry's `pool` and `watch_scripts`.

use std::sync::Arc;
use std::time::Duration;

use module_registry::live::{InstancePool, PoolOptions, PoolTarget, Strategy};
use module_registry::{ReloadEvent, ScriptWatcher};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::conversion::{py_to_value, value_to_py};
use crate::errors::{to_pyerr, ValidationError};
use crate::query::PyCapabilityQuery;
use crate::registry::PyModuleRegistry;
use crate::threads::Detach;

/// Several instances behind one thread-safe `process` (see
/// `ModuleRegistry.pool`). Use it as a context manager, or call `close()`.
#[pyclass(name = "InstancePool", module = "module_registry._core", frozen)]
pub struct PyInstancePool {
    pub(crate) inner: InstancePool,
}

#[pymethods]
impl PyInstancePool {
    /// Run a free instance on `value` (waiting while all are busy); a
    /// failure inside the module is retried on another instance up to the
    /// pool's `retries`.
    fn process<'py>(
        &self,
        py: Python<'py>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = py_to_value(value)?;
        // Waiting for a free instance must not hold the GIL (the call being
        // waited for may need it), whatever the module is written in.
        let out = py.detach_gated(|| self.inner.process_value(input));
        value_to_py(py, out.map_err(to_pyerr)?)
    }

    /// One dict per instance: `provider` (`name@version`), `calls`,
    /// `failures`, `state` (`"idle"`, `"busy"`, `"cooling-down"`, `"closed"`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .stats()
            .into_iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("provider", s.provider)?;
                d.set_item("calls", s.calls)?;
                d.set_item("failures", s.failures)?;
                d.set_item("state", s.state)?;
                Ok(d)
            })
            .collect()
    }

    /// `name@version` of each provider.
    #[getter]
    fn providers(&self) -> Vec<String> {
        self.inner.providers()
    }

    /// `"round-robin"` or `"least-busy"`.
    #[getter]
    fn strategy(&self) -> &'static str {
        self.inner.strategy().as_str()
    }

    /// Whether `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Shut every instance down (once; later calls do nothing).
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

    fn __repr__(&self) -> String {
        format!(
            "<InstancePool of {} ({} instances, {})>",
            self.inner.providers().join(", "),
            self.inner.len(),
            self.inner.strategy()
        )
    }
}

/// One thing a `ScriptWatcher` did: `kind` is `"loaded"`, `"reloaded"`,
/// `"removed"`, `"rejected"` or `"stopped"` (the watch ended by itself:
/// its folder is gone, replaced or unreadable); `error` says why a file
/// was rejected or the watch stopped. `path` is the file's (the folder's,
/// for `"stopped"`) real path, as `os.fsdecode` gives it.
#[pyclass(name = "ReloadEvent", module = "module_registry._core", frozen, eq)]
#[derive(PartialEq)]
pub struct PyReloadEvent {
    #[pyo3(get)]
    kind: &'static str,
    path: std::path::PathBuf,
    #[pyo3(get)]
    name: Option<String>,
    #[pyo3(get)]
    version: Option<String>,
    #[pyo3(get)]
    error: Option<String>,
}

impl From<&ReloadEvent> for PyReloadEvent {
    fn from(e: &ReloadEvent) -> Self {
        PyReloadEvent {
            kind: e.kind.as_str(),
            path: e.path.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            error: e.error.clone(),
        }
    }
}

#[pymethods]
impl PyReloadEvent {
    /// The path as a `str` (undecodable bytes as surrogates, as
    /// `os.fsdecode`), so it names the file that exists.
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyString> {
        match self.path.as_os_str().into_pyobject(py) {
            Ok(text) => text,
        }
    }

    fn __repr__(&self) -> String {
        let mut s = format!("<ReloadEvent {} {}", self.kind, self.path.display());
        if let Some(name) = &self.name {
            s.push_str(&format!(
                " {name}@{}",
                self.version.as_deref().unwrap_or("?")
            ));
        }
        if let Some(error) = &self.error {
            s.push_str(&format!(": {error}"));
        }
        s + ">"
    }
}

/// A running watch of a script folder (see `ModuleRegistry.watch_scripts`).
/// Use it as a context manager, or call `stop()`.
#[pyclass(name = "ScriptWatcher", module = "module_registry._core", frozen)]
pub struct PyScriptWatcher {
    inner: Arc<ScriptWatcher>,
}

#[pymethods]
impl PyScriptWatcher {
    /// End the watch; the modules it loaded stay registered.
    fn stop(&self, py: Python<'_>) {
        // The watcher's thread may be waiting for the GIL to call `on_event`.
        let inner = self.inner.clone();
        py.detach_gated(move || inner.stop());
    }

    /// The folder watched (its real path, as `os.fsdecode` gives it).
    #[getter]
    fn folder<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyString> {
        match self.inner.folder().as_os_str().into_pyobject(py) {
            Ok(text) => text,
        }
    }

    /// Whether the watch still runs (False once stopped, or once its folder
    /// could no longer be watched: see `error`).
    #[getter]
    fn running(&self) -> bool {
        self.inner.is_running()
    }

    /// Why the watch ended by itself (its folder removed, renamed,
    /// replaced or made unreadable), or None.
    #[getter]
    fn error(&self) -> Option<String> {
        self.inner.error()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.stop(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "<ScriptWatcher {} {}>",
            self.inner.folder().display(),
            if self.inner.is_running() {
                "running"
            } else {
                "stopped"
            }
        )
    }
}

impl Drop for PyScriptWatcher {
    fn drop(&mut self) {
        // Dropped with the GIL held (by Python's collector): asks the watch
        // to end without waiting for its thread, which may want the GIL.
        self.inner.signal_stop();
    }
}

#[pymethods]
impl PyModuleRegistry {
    /// A pool of instances of `target` (a module name, or a
    /// `CapabilityQuery`: then `size` instances of every provider it finds).
    /// `strategy` is `"round-robin"` or `"least-busy"`; a call failing
    /// inside a module is retried up to `retries` times on another instance
    /// (of another provider when there is one); a provider failing 5 times
    /// in a row rests for `cooldown` seconds. `config` goes to every
    /// instance's `init`.
    #[pyo3(signature = (target, size=4, strategy="round-robin", retries=0, *, cooldown=30.0, config=None))]
    #[allow(clippy::too_many_arguments)]
    fn pool(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        size: usize,
        strategy: &str,
        retries: u32,
        cooldown: f64,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyInstancePool> {
        let target = if let Ok(name) = target.extract::<String>() {
            PoolTarget::from(name)
        } else if let Ok(query) = target.cast::<PyCapabilityQuery>() {
            PoolTarget::Query(query.borrow().inner.clone())
        } else {
            return Err(PyTypeError::new_err(format!(
                "a pool's target is a module name or a CapabilityQuery, not {}",
                target.get_type().name()?
            )));
        };
        let strategy: Strategy = strategy.parse().map_err(to_pyerr)?;
        if !cooldown.is_finite() || cooldown <= 0.0 || cooldown > 1e9 {
            return Err(ValidationError::new_err(format!(
                "cooldown must be a positive number of seconds, not {cooldown}"
            )));
        }
        let mut options = PoolOptions::new(size)
            .strategy(strategy)
            .retries(retries)
            .cooldown(Duration::from_secs_f64(cooldown));
        if let Some(config) = config.filter(|c| !c.is_none()) {
            options = options.config(py_to_value(config)?);
        }
        let pool = py
            .detach_gated(|| self.inner.pool(target, options))
            .map_err(to_pyerr)?;
        Ok(PyInstancePool { inner: pool })
    }

    /// Load every `*.rhai` module in `folder` (a `"loaded"` event each),
    /// then watch it: a new file is loaded, a changed one reloaded (a new
    /// `MODULE.version` is registered beside the old; the same version is
    /// replaced), a deleted one unregistered. A file that fails to compile
    /// or changes its module's name is rejected and the old code keeps
    /// serving. Instances already created keep their code until closed.
    /// `on_event(event)` is called with each `ReloadEvent`, on the
    /// watcher's thread. Needs `admin` under a policy.
    #[pyo3(signature = (folder, on_event=None))]
    fn watch_scripts(
        &self,
        py: Python<'_>,
        folder: std::path::PathBuf,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<PyScriptWatcher> {
        let callback: Option<module_registry::script::watch::ReloadCallback> = on_event.map(|cb| {
            Arc::new(move |event: &ReloadEvent| {
                let _ = crate::threads::try_attach(|py| {
                    let event = PyReloadEvent::from(event);
                    if let Err(e) = cb.call1(py, (event,)) {
                        e.write_unraisable(py, None);
                    }
                });
            }) as module_registry::script::watch::ReloadCallback
        });
        let watcher = py
            .detach_gated(|| self.inner.watch_scripts_with(&folder, callback))
            .map_err(to_pyerr)?;
        Ok(PyScriptWatcher {
            inner: Arc::new(watcher),
        })
    }
}
