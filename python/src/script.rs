//! `ScriptLimits` for Python.

use std::path::PathBuf;
use std::time::Duration;

use module_registry::{ScriptLimits, Value};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::conversion::{py_to_value, value_to_py};
use crate::errors::to_pyerr;
use crate::info::{infos, PyModuleInfo};
use crate::registry::PyModuleRegistry;
use crate::threads::Detach;

/// Limits every script runs under. Each field is a number or None (no limit;
/// for the two depths, the most a script stack holds: 4096 calls, 1024
/// expression levels); `timeout` is in seconds, `max_memory` in bytes held
/// at once by a call. Zero is refused
/// (ValidationError), except `max_call_depth=0`, which forbids calling script
/// functions. `ScriptLimits()` gives the safe defaults,
/// `ScriptLimits.unlimited()` lifts every limit.
#[pyclass(
    name = "ScriptLimits",
    module = "module_registry._core",
    eq,
    get_all,
    set_all
)]
#[derive(Clone, PartialEq)]
pub struct PyScriptLimits {
    /// Operations per call.
    pub max_operations: Option<u64>,
    /// Depth of nested function calls.
    pub max_call_depth: Option<usize>,
    /// Depth of nested expressions.
    pub max_expr_depth: Option<usize>,
    /// Length of a string in bytes.
    pub max_string_size: Option<usize>,
    /// Length of an array or blob.
    pub max_array_size: Option<usize>,
    /// Entries in an object map.
    pub max_map_size: Option<usize>,
    /// Bytes a call may hold at once (beyond what it started with).
    pub max_memory: Option<usize>,
    /// Wall-clock seconds per call.
    pub timeout: Option<f64>,
}

impl From<ScriptLimits> for PyScriptLimits {
    fn from(l: ScriptLimits) -> Self {
        PyScriptLimits {
            max_operations: l.max_operations,
            max_call_depth: l.max_call_depth,
            max_expr_depth: l.max_expr_depth,
            max_string_size: l.max_string_size,
            max_array_size: l.max_array_size,
            max_map_size: l.max_map_size,
            max_memory: l.max_memory,
            timeout: l.timeout.map(|d| d.as_secs_f64()),
        }
    }
}

impl PyScriptLimits {
    /// The core limits; a negative or non-finite timeout is a ValueError.
    pub fn to_core(&self) -> PyResult<ScriptLimits> {
        let timeout = match self.timeout {
            None => None,
            Some(t) => match Duration::try_from_secs_f64(t) {
                Ok(d) if t > 0.0 => Some(d),
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "timeout must be a positive number of seconds or None, not {t}"
                    )))
                }
            },
        };
        let limits = ScriptLimits {
            max_operations: self.max_operations,
            max_call_depth: self.max_call_depth,
            max_expr_depth: self.max_expr_depth,
            max_string_size: self.max_string_size,
            max_array_size: self.max_array_size,
            max_map_size: self.max_map_size,
            max_memory: self.max_memory,
            timeout,
        };
        limits.validate().map_err(to_pyerr)?;
        Ok(limits)
    }
}

#[pymethods]
impl PyScriptLimits {
    #[new]
    #[pyo3(signature = (**overrides))]
    fn new(overrides: Option<&Bound<'_, pyo3::types::PyDict>>) -> PyResult<Self> {
        let mut limits: PyScriptLimits = ScriptLimits::default().into();
        if let Some(kw) = overrides {
            for (key, value) in kw.iter() {
                let key: String = key.extract()?;
                match key.as_str() {
                    "max_operations" => limits.max_operations = value.extract()?,
                    "max_call_depth" => limits.max_call_depth = value.extract()?,
                    "max_expr_depth" => limits.max_expr_depth = value.extract()?,
                    "max_string_size" => limits.max_string_size = value.extract()?,
                    "max_array_size" => limits.max_array_size = value.extract()?,
                    "max_map_size" => limits.max_map_size = value.extract()?,
                    "max_memory" => limits.max_memory = value.extract()?,
                    "timeout" => limits.timeout = value.extract()?,
                    other => {
                        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                            "ScriptLimits has no field {other:?}"
                        )))
                    }
                }
            }
        }
        limits.to_core()?;
        Ok(limits)
    }

    /// Pickling: rebuilt by keyword from its fields (checked again on load).
    fn __getnewargs_ex__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, pyo3::types::PyTuple>,
        Bound<'py, pyo3::types::PyDict>,
    )> {
        let fields = pyo3::types::PyDict::new(py);
        fields.set_item("max_operations", self.max_operations)?;
        fields.set_item("max_call_depth", self.max_call_depth)?;
        fields.set_item("max_expr_depth", self.max_expr_depth)?;
        fields.set_item("max_string_size", self.max_string_size)?;
        fields.set_item("max_array_size", self.max_array_size)?;
        fields.set_item("max_map_size", self.max_map_size)?;
        fields.set_item("max_memory", self.max_memory)?;
        fields.set_item("timeout", self.timeout)?;
        Ok((pyo3::types::PyTuple::empty(py), fields))
    }

    /// No limit at all.
    #[staticmethod]
    fn unlimited() -> Self {
        ScriptLimits::unlimited().into()
    }

    fn __repr__(&self) -> String {
        let show = |v: Option<String>| v.unwrap_or_else(|| "None".into());
        format!(
            "ScriptLimits(max_operations={}, max_call_depth={}, max_expr_depth={}, max_string_size={}, max_array_size={}, max_map_size={}, max_memory={}, timeout={})",
            show(self.max_operations.map(|v| v.to_string())),
            show(self.max_call_depth.map(|v| v.to_string())),
            show(self.max_expr_depth.map(|v| v.to_string())),
            show(self.max_string_size.map(|v| v.to_string())),
            show(self.max_array_size.map(|v| v.to_string())),
            show(self.max_map_size.map(|v| v.to_string())),
            show(self.max_memory.map(|v| v.to_string())),
            show(self.timeout.map(|v| v.to_string())),
        )
    }
}

#[pymethods]
impl PyModuleRegistry {
    /// The limits scripts run under.
    #[getter]
    fn script_limits(&self) -> PyScriptLimits {
        self.inner.script_limits().into()
    }

    /// Change the limits scripts run under (for scripts loaded and instances created from now on).
    fn set_script_limits(&self, limits: PyRef<'_, PyScriptLimits>) -> PyResult<()> {
        self.inner
            .set_script_limits(limits.to_core()?)
            .map_err(to_pyerr)
    }

    /// Load one `.rhai` script module; returns its registration. With
    /// `sha256`, a file whose digest differs is refused (ValidationError).
    #[pyo3(signature = (path, sha256=None))]
    fn load_script(
        &self,
        py: Python<'_>,
        path: PathBuf,
        sha256: Option<&str>,
    ) -> PyResult<PyModuleInfo> {
        let inner = py
            .detach_gated(|| self.inner.load_script_pinned(&path, sha256))
            .map_err(to_pyerr)?;
        Ok(PyModuleInfo { inner })
    }

    /// Load every `.rhai` script module of a folder (all or nothing).
    fn load_scripts(&self, py: Python<'_>, path: PathBuf) -> PyResult<Vec<PyModuleInfo>> {
        let loaded = py
            .detach_gated(|| self.inner.load_scripts(&path))
            .map_err(to_pyerr)?;
        Ok(infos(loaded))
    }

    /// Check every `.rhai` file of a folder as `load_scripts` would load
    /// it, registering nothing: one exception (not raised) per bad file.
    fn check_scripts(&self, py: Python<'_>, path: PathBuf) -> PyResult<Vec<Py<PyAny>>> {
        let problems = py
            .detach_gated(|| self.inner.check_scripts(&path))
            .map_err(to_pyerr)?;
        Ok(problems
            .into_iter()
            .map(|e| to_pyerr(e).into_value(py).into_any())
            .collect())
    }

    /// Register the script modules shipped with the package (compiled in;
    /// the files are in `module_registry.bundled_scripts()`).
    fn load_bundled_scripts(&self, py: Python<'_>) -> PyResult<Vec<PyModuleInfo>> {
        let loaded = py
            .detach_gated(|| self.inner.load_bundled_scripts())
            .map_err(to_pyerr)?;
        Ok(infos(loaded))
    }

    /// Register a script module given as source text (refused unless its
    /// SHA-256 is `sha256`, when given).
    #[pyo3(signature = (source, sha256=None))]
    fn register_script(
        &self,
        py: Python<'_>,
        source: &str,
        sha256: Option<&str>,
    ) -> PyResult<PyModuleInfo> {
        let inner = py
            .detach_gated(|| self.inner.register_script_pinned(source, sha256))
            .map_err(to_pyerr)?;
        Ok(PyModuleInfo { inner })
    }

    /// Run an orchestration script (a path to a `.rhai` file, or source text)
    /// with `registry` and `input` bound; returns its last expression.
    #[pyo3(signature = (source_or_path, input=None))]
    fn run_script<'py>(
        &self,
        py: Python<'py>,
        source_or_path: &Bound<'py, PyAny>,
        input: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text: String = match source_or_path.extract::<PathBuf>() {
            Ok(p) if !source_or_path.is_instance_of::<PyString>() => {
                p.to_string_lossy().into_owned()
            }
            _ => source_or_path.extract::<String>()?,
        };
        let input = input.map(py_to_value).transpose()?.unwrap_or(Value::Null);
        let out = py
            .detach_gated(|| self.inner.run_script_source_or_path(&text, input))
            .map_err(to_pyerr)?;
        value_to_py(py, out)
    }
}
