//! `ModuleInfo` for Python: the read-only record of one registration.

use std::sync::Arc;

use module_registry::{
    Implementation, ImportedScript, ModuleConfig, ModuleInfo, ModuleType, ScriptSource,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet};

use crate::config::{config_args, ConfigArgs, PyModuleType};

/// A registered module or plugin (read-only). Discovery, `get`, `list` and
/// `versions` hand out one object per registration, so the same registration
/// is the same object; it can be weakly referenced.
#[pyclass(name = "ModuleInfo", module = "module_registry._core", frozen, weakref)]
pub struct PyModuleInfo {
    pub inner: ModuleInfo,
}

#[pymethods]
impl PyModuleInfo {
    /// The name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The version, as text.
    #[getter]
    fn version(&self) -> &str {
        self.inner.version_text()
    }

    /// The type.
    #[getter(r#type)]
    fn module_type(&self) -> PyModuleType {
        self.inner.module_type().clone().into()
    }

    /// `"module"` or `"plugin"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind().as_str()
    }

    /// What the module takes (`any` when not declared).
    #[getter]
    fn input(&self) -> crate::schema::PySchema {
        crate::schema::PySchema {
            inner: self.inner.input().clone(),
        }
    }

    /// What the module gives (`any` when not declared).
    #[getter]
    fn output(&self) -> crate::schema::PySchema {
        crate::schema::PySchema {
            inner: self.inner.output().clone(),
        }
    }

    /// The type of the module's config (`any` when not declared).
    #[getter]
    fn config_type(&self) -> crate::schema::PySchema {
        crate::schema::PySchema {
            inner: self.inner.config_type().clone(),
        }
    }

    /// The capabilities.
    #[getter]
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, self.inner.capabilities().iter().map(|c| &**c))
    }

    /// The metadata.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.metadata() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The dependencies: name -> requirement.
    #[getter]
    fn dependencies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.dependencies() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Whether it can be created (it is not a declaration only).
    #[getter]
    fn has_implementation(&self) -> bool {
        self.inner.has_implementation()
    }

    /// `"declaration"`, `"native"`, `"rhai"`, `"python"` or `"custom"`.
    #[getter]
    fn implementation(&self) -> &'static str {
        self.inner.implementation().kind()
    }

    /// A table of its fields (in a notebook).
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        crate::result::display(slf.py(), "info_html", slf.as_any())
    }

    fn __repr__(&self) -> String {
        let caps: Vec<&str> = self.inner.capabilities().iter().map(|c| &**c).collect();
        // Declared types are shown (`input="str" -> output="int"`); untyped
        // records read as before.
        let (input, output) = (self.inner.input(), self.inner.output());
        let types = if input.is_any() && output.is_any() {
            String::new()
        } else {
            format!(", types=\"{input} -> {output}\"")
        };
        format!(
            "ModuleInfo(name={:?}, version=\"{}\", kind=\"{}\", type={}, capabilities={:?}{types})",
            self.inner.name(),
            self.inner.version(),
            self.inner.kind(),
            self.inner.module_type(),
            caps
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyModuleInfo>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    /// Pickles as its declaration and implementation; unpickled, it is a
    /// record held by no registry (its registry builds the module).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, InfoState)> {
        let config = self.inner.config();
        let implementation = match config.implementation() {
            Implementation::Rhai(s) => (
                "rhai",
                Some(s.source.clone()),
                s.path.clone(),
                Some(s.sha256.clone()),
                s.imports
                    .iter()
                    .map(|i| (i.path.clone(), i.source.clone(), i.sha256.clone()))
                    .collect(),
            ),
            Implementation::Python(code) => (
                "python",
                code.import_path.as_deref().map(str::to_string),
                None,
                None,
                Vec::new(),
            ),
            other => (other.kind(), None, None, None, Vec::new()),
        };
        let rebuild = REBUILD
            .get(py)
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("_core is not initialised"))?
            .bind(py)
            .clone();
        Ok((rebuild, (self.kind(), config_args(config), implementation)))
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.inner.kind(), self.inner.name(), self.inner.version()).hash(&mut h);
        h.finish()
    }
}

/// What a pickled `ModuleInfo` holds: kind, the config's arguments, and the
/// implementation (its kind, up to three texts, and a script's imports as
/// `(path, source, sha256)`).
type InfoState = (&'static str, ConfigArgs, ImplementationState<&'static str>);

type ImplementationState<K> = (
    K,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<(String, String, String)>,
);

/// `_core._module_info` as the module holds it (pickle names it by
/// reference), kept when the extension is initialised.
pub(crate) static REBUILD: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// Rebuilds a pickled `ModuleInfo` (a record held by no registry).
#[pyfunction]
pub fn _module_info(
    kind: &str,
    config: ConfigArgs,
    implementation: ImplementationState<String>,
) -> PyResult<PyModuleInfo> {
    let (
        name,
        version,
        module_type,
        capabilities,
        metadata,
        dependencies,
        input,
        output,
        config_type,
    ) = config;
    let mut c = ModuleConfig::new()
        .with_kind(crate::registry::parse_kind(kind)?)
        .with_name(name.unwrap_or_default())
        .with_version(version)
        .with_type(ModuleType::custom(module_type))
        .add_capabilities(capabilities);
    for (k, v) in metadata {
        c = c.with_metadata(k, v);
    }
    for (k, v) in dependencies {
        c = c.with_dependency(k, v);
    }
    let parse = |text: Option<String>| -> PyResult<module_registry::Schema> {
        text.map_or(Ok(module_registry::Schema::any()), |t| {
            module_registry::Schema::parse(&t).map_err(crate::errors::to_pyerr)
        })
    };
    let c = c
        .with_input(parse(input)?)
        .with_output(parse(output)?)
        .with_config_type(parse(config_type)?);
    let (kind, a, b, c3, imports) = implementation;
    let implementation = match (kind.as_str(), a, c3) {
        ("declaration", ..) => Implementation::Declaration,
        ("native", ..) => Implementation::Native,
        ("custom", ..) => Implementation::Custom,
        ("python", path, _) => Implementation::python(path.as_deref()),
        ("rhai", Some(source), Some(sha256)) => Implementation::Rhai(Arc::new(ScriptSource {
            source,
            path: b,
            sha256,
            imports: imports
                .into_iter()
                .map(|(path, source, sha256)| ImportedScript {
                    path,
                    source,
                    sha256,
                })
                .collect(),
        })),
        (other, ..) => {
            return Err(crate::errors::to_pyerr(
                module_registry::Error::Serialization {
                    message: format!(
                        "a pickled ModuleInfo names an unknown implementation {other:?}"
                    ),
                },
            ))
        }
    };
    let inner = ModuleInfo::detached(c.with_implementation(implementation))
        .map_err(crate::errors::to_pyerr)?;
    Ok(PyModuleInfo { inner })
}

pub(crate) fn infos(list: Vec<ModuleInfo>) -> Vec<PyModuleInfo> {
    list.into_iter()
        .map(|inner| PyModuleInfo { inner })
        .collect()
}

/// A `module_registry.ModuleList` of `items` (a list a notebook shows as a table).
pub(crate) fn module_list(py: Python<'_>, items: Vec<Py<PyModuleInfo>>) -> PyResult<Py<PyAny>> {
    let class = crate::hooks::hook(py, crate::hooks::Hook::Display)?.getattr("ModuleList")?;
    Ok(class
        .call1((pyo3::types::PyList::new(py, items)?,))?
        .unbind())
}
