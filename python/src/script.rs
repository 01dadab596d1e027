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

/// A compiled Rhai test file: its `fn test_*()` functions, each run on its own.
#[pyclass(name = "ScriptTests", module = "module_registry._core", frozen)]
pub struct PyScriptTests {
    inner: module_registry::script::ScriptTests,
}

#[pymethods]
impl PyScriptTests {
    /// The test file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// Its test functions, in the file's order: `(name, line)`.
    #[getter]
    fn tests(&self) -> Vec<(String, Option<usize>)> {
        self.inner
            .tests()
            .iter()
            .map(|t| (t.name.clone(), t.line))
            .collect()
    }

    /// Run test function `name`: returns when it passes, raises (a
    /// ScriptError with the failing line) when it fails.
    fn run(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach_gated(|| self.inner.run(name)).map_err(to_pyerr)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ScriptTests {} ({} tests)>",
            self.inner.path().display(),
            self.inner.tests().len()
        )
    }
}

/// Calls Python `function` with script values; its result back as a value.
fn call_script_function(
    function: &Py<PyAny>,
    name: &str,
    args: Vec<Value>,
) -> module_registry::Result<Value> {
    crate::modules::attach(|py| {
        let args = args
            .into_iter()
            .map(|v| value_to_py(py, v))
            .collect::<PyResult<Vec<_>>>()?;
        let args = pyo3::types::PyTuple::new(py, args)?;
        let out = function.bind(py).call1(args)?;
        py_to_value(&out).map_err(|e| {
            PyValueError::new_err(format!(
                "{name} returned a value scripts cannot take: {}",
                e.value(py)
            ))
        })
    })
    .map_err(module_registry::Error::from)
}

#[pymethods]
impl PyModuleRegistry {
    /// Make Python callable `function` available to every script of this
    /// registry as `name(...)`: any number of positional arguments (up to
    /// 16), converted as module values both ways; under a script's deadline
    /// a call is abandoned when the deadline passes. Needs `admin` under a
    /// policy.
    fn register_script_function(
        &self,
        py: Python<'_>,
        name: &str,
        function: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if !function.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "register_script_function needs a callable, not {}",
                function.get_type().name()?
            )));
        }
        let function = function.clone().unbind();
        let label = name.to_string();
        py.detach_gated(|| {
            self.inner.register_script_function(name, move |args| {
                call_script_function(&function, &label, args)
            })
        })
        .map_err(to_pyerr)
    }

    /// Load the script modules of folder `path`, leaving out its test files
    /// (`test_*.rhai`, `*_test.rhai`).
    fn load_scripts_under_test(
        &self,
        py: Python<'_>,
        path: PathBuf,
    ) -> PyResult<Vec<PyModuleInfo>> {
        let loaded = py
            .detach_gated(|| self.inner.load_scripts_under_test(&path))
            .map_err(to_pyerr)?;
        Ok(infos(loaded))
    }

    /// Write the Rhai language server's definition files (`.d.rhai`) for
    /// everything a script of this registry can call into `folder`;
    /// returns the paths written. A folder that is a file or cannot be
    /// written raises `FileError`.
    fn script_definitions(&self, py: Python<'_>, folder: PathBuf) -> PyResult<Vec<PathBuf>> {
        py.detach_gated(|| self.inner.script_definitions(&folder))
            .map_err(to_pyerr)
    }

    /// The Markdown reference of this registry's script API.
    fn script_reference(&self, py: Python<'_>) -> String {
        py.detach_gated(|| self.inner.script_reference())
    }

    /// Compile the Rhai test file at `path`; `registry` inside its functions is this registry.
    fn load_script_tests(&self, py: Python<'_>, path: PathBuf) -> PyResult<PyScriptTests> {
        let inner = py
            .detach_gated(|| self.inner.load_script_tests(&path))
            .map_err(to_pyerr)?;
        Ok(PyScriptTests { inner })
    }
}
