//! `ModuleType`, `ModuleConfig` and `PluginConfig` for Python.

use std::collections::BTreeMap;

use module_registry::{ModuleConfig, ModuleKind, ModuleType};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::schema::PySchema;

/// What a module is for: `ModuleType.DataProcessor`, `.Security`, `.Network`,
/// `.Storage`, `.Compute`, `.Analytics`, `.Monitoring`, `.Integration`, or
/// `ModuleType.custom("name")`.
#[pyclass(
    name = "ModuleType",
    module = "module_registry._core",
    frozen,
    eq,
    hash
)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyModuleType {
    pub inner: ModuleType,
}

#[allow(non_snake_case)]
#[pymethods]
impl PyModuleType {
    #[classattr]
    fn DataProcessor() -> Self {
        ModuleType::DataProcessor.into()
    }
    #[classattr]
    fn Security() -> Self {
        ModuleType::Security.into()
    }
    #[classattr]
    fn Network() -> Self {
        ModuleType::Network.into()
    }
    #[classattr]
    fn Storage() -> Self {
        ModuleType::Storage.into()
    }
    #[classattr]
    fn Compute() -> Self {
        ModuleType::Compute.into()
    }
    #[classattr]
    fn Analytics() -> Self {
        ModuleType::Analytics.into()
    }
    #[classattr]
    fn Monitoring() -> Self {
        ModuleType::Monitoring.into()
    }
    #[classattr]
    fn Integration() -> Self {
        ModuleType::Integration.into()
    }

    /// The type called `name` (a named type when the name is one of theirs).
    #[staticmethod]
    fn custom(name: &str) -> PyResult<Self> {
        Ok(name
            .parse::<ModuleType>()
            .map_err(crate::errors::to_pyerr)?
            .into())
    }

    /// The type's name, e.g. `"DataProcessor"`.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Whether this is a custom type.
    #[getter]
    fn is_custom(&self) -> bool {
        matches!(self.inner, ModuleType::Custom(_))
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            ModuleType::Custom(n) => format!("ModuleType.custom({n:?})"),
            named => format!("ModuleType.{}", named.name()),
        }
    }

    fn __str__(&self) -> &str {
        self.inner.name()
    }

    /// Pickles as `ModuleType.custom(name)` (which gives named types back).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((
            py.get_type::<Self>().getattr("custom")?,
            (self.inner.name().to_string(),),
        ))
    }
}

impl From<ModuleType> for PyModuleType {
    fn from(inner: ModuleType) -> Self {
        PyModuleType { inner }
    }
}

/// A `ModuleType`, or its name as a str.
pub fn extract_type(obj: &Bound<'_, PyAny>) -> PyResult<ModuleType> {
    if let Ok(t) = obj.cast::<PyModuleType>() {
        return Ok(t.get().inner.clone());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_cow()?
            .parse::<ModuleType>()
            .map_err(crate::errors::to_pyerr);
    }
    Err(PyTypeError::new_err(format!(
        "type must be a ModuleType or a str, not {}",
        obj.get_type().name()?
    )))
}

/// A list (tuple, set, ...) of str; a lone str is refused, since iterating it
/// would give its characters.
pub fn extract_strings(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a list of str, not a str (write [{:?}])",
            obj.extract::<String>()?
        )));
    }
    let mut out = Vec::new();
    for (i, item) in obj.try_iter()?.enumerate() {
        let item = item?;
        match item.cast::<PyString>() {
            Ok(s) => out.push(s.to_cow()?.into_owned()),
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "{what}[{i}] must be a str, not {}",
                    item.get_type().name()?
                )))
            }
        }
    }
    Ok(out)
}

/// A dict of str to str.
pub fn extract_str_map(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<BTreeMap<String, String>> {
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a dict of str to str")))?;
    let mut out = BTreeMap::new();
    for (k, v) in dict.iter() {
        let (Ok(k), Ok(v)) = (k.cast::<PyString>(), v.cast::<PyString>()) else {
            return Err(PyTypeError::new_err(format!(
                "{what} must map str to str; found {} -> {}",
                k.repr()?,
                v.repr()?
            )));
        };
        out.insert(k.to_cow()?.into_owned(), v.to_cow()?.into_owned());
    }
    Ok(out)
}

fn describe(config: &ModuleConfig) -> String {
    let caps: Vec<&str> = config.capabilities().collect();
    format!(
        "name={:?}, version={:?}, type={}, capabilities={:?}",
        config.name(),
        config.version(),
        config.module_type(),
        caps
    )
}

/// A config's constructor arguments: name, version, type, capabilities,
/// metadata, dependencies, input, output, config type (the types as type
/// expressions, `None` when not declared).
pub type ConfigArgs = (
    Option<String>,
    String,
    String,
    Vec<String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A declared type's text, `None` for `any` (not declared).
fn type_text(schema: &module_registry::Schema) -> Option<String> {
    (!schema.is_any()).then(|| schema.to_string())
}

/// Sets the declared types from constructor arguments (a `Schema` or its text each).
pub fn with_types(
    mut config: ModuleConfig,
    input: Option<&Bound<'_, PyAny>>,
    output: Option<&Bound<'_, PyAny>>,
    config_type: Option<&Bound<'_, PyAny>>,
) -> PyResult<ModuleConfig> {
    if let Some(t) = input.filter(|t| !t.is_none()) {
        config = config.with_input(PySchema::from_arg(t)?);
    }
    if let Some(t) = output.filter(|t| !t.is_none()) {
        config = config.with_output(PySchema::from_arg(t)?);
    }
    if let Some(t) = config_type.filter(|t| !t.is_none()) {
        config = config.with_config_type(PySchema::from_arg(t)?);
    }
    Ok(config)
}

pub fn config_args(config: &ModuleConfig) -> ConfigArgs {
    (
        Some(config.name().to_string()).filter(|n| !n.is_empty()),
        config.version().to_string(),
        config.module_type().name().to_string(),
        config.capabilities().map(str::to_string).collect(),
        config.metadata().clone(),
        config.dependencies().clone(),
        type_text(config.input()),
        type_text(config.output()),
        type_text(config.config_type()),
    )
}

macro_rules! config_class {
    ($rust:ident, $pyname:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $pyname, module = "module_registry._core")]
        #[derive(Clone)]
        pub struct $rust {
            pub inner: ModuleConfig,
        }

        #[pymethods]
        impl $rust {
            #[new]
            #[pyo3(
                signature = (name=None, version=None, r#type=None, capabilities=None, metadata=None, dependencies=None, input=None, output=None, config_type=None),
                text_signature = "(name=None, version=None, type=None, capabilities=None, metadata=None, dependencies=None, input=None, output=None, config_type=None)"
            )]
            #[allow(clippy::too_many_arguments)]
            fn new(
                name: Option<String>,
                version: Option<String>,
                r#type: Option<&Bound<'_, PyAny>>,
                capabilities: Option<&Bound<'_, PyAny>>,
                metadata: Option<&Bound<'_, PyAny>>,
                dependencies: Option<&Bound<'_, PyAny>>,
                input: Option<&Bound<'_, PyAny>>,
                output: Option<&Bound<'_, PyAny>>,
                config_type: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Self> {
                let mut c = ModuleConfig::new().with_kind($kind);
                if let Some(n) = name {
                    c = c.with_name(n);
                }
                if let Some(v) = version {
                    c = c.with_version(v);
                }
                if let Some(t) = r#type {
                    c = c.with_type(extract_type(t)?);
                }
                if let Some(caps) = capabilities {
                    c = c.add_capabilities(extract_strings(caps, "capabilities")?);
                }
                if let Some(m) = metadata {
                    for (k, v) in extract_str_map(m, "metadata")? {
                        c = c.with_metadata(k, v);
                    }
                }
                if let Some(d) = dependencies {
                    for (k, v) in extract_str_map(d, "dependencies")? {
                        c = c.with_dependency(k, v);
                    }
                }
                let c = with_types(c, input, output, config_type)?;
                Ok(Self { inner: c })
            }

            /// Declare what the module takes (a Schema or a type expression); returns this config.
            fn with_input<'py>(mut slf: PyRefMut<'py, Self>, input: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let t = PySchema::from_arg(input)?;
                slf.inner = std::mem::take(&mut slf.inner).with_input(t);
                Ok(slf)
            }

            /// Declare what the module gives (a Schema or a type expression); returns this config.
            fn with_output<'py>(mut slf: PyRefMut<'py, Self>, output: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let t = PySchema::from_arg(output)?;
                slf.inner = std::mem::take(&mut slf.inner).with_output(t);
                Ok(slf)
            }

            /// Declare the type of the module's config (a Schema or a type expression); returns this config.
            fn with_config_type<'py>(mut slf: PyRefMut<'py, Self>, config_type: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let t = PySchema::from_arg(config_type)?;
                slf.inner = std::mem::take(&mut slf.inner).with_config_type(t);
                Ok(slf)
            }

            /// What the module takes (`any` when not declared).
            #[getter]
            fn input(&self) -> PySchema {
                PySchema { inner: self.inner.input().clone() }
            }

            /// What the module gives (`any` when not declared).
            #[getter]
            fn output(&self) -> PySchema {
                PySchema { inner: self.inner.output().clone() }
            }

            /// The type of the module's config (`any` when not declared).
            #[getter]
            fn config_type(&self) -> PySchema {
                PySchema { inner: self.inner.config_type().clone() }
            }

            /// Set the name; returns this config.
            fn with_name(mut slf: PyRefMut<'_, Self>, name: String) -> PyRefMut<'_, Self> {
                slf.inner = std::mem::take(&mut slf.inner).with_name(name);
                slf
            }

            /// Set the semver version; returns this config.
            fn with_version(mut slf: PyRefMut<'_, Self>, version: String) -> PyRefMut<'_, Self> {
                slf.inner = std::mem::take(&mut slf.inner).with_version(version);
                slf
            }

            /// Set the type (a ModuleType or its name); returns this config.
            fn with_type<'py>(mut slf: PyRefMut<'py, Self>, r#type: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let t = extract_type(r#type)?;
                slf.inner = std::mem::take(&mut slf.inner).with_type(t);
                Ok(slf)
            }

            /// Add a capability; returns this config.
            fn add_capability(mut slf: PyRefMut<'_, Self>, capability: String) -> PyRefMut<'_, Self> {
                slf.inner = std::mem::take(&mut slf.inner).add_capability(capability);
                slf
            }

            /// Set a metadata entry; returns this config.
            fn with_metadata(mut slf: PyRefMut<'_, Self>, key: String, value: String) -> PyRefMut<'_, Self> {
                slf.inner = std::mem::take(&mut slf.inner).with_metadata(key, value);
                slf
            }

            /// Depend on module `name` in versions matching `requirement`; returns this config.
            fn with_dependency(mut slf: PyRefMut<'_, Self>, name: String, requirement: String) -> PyRefMut<'_, Self> {
                slf.inner = std::mem::take(&mut slf.inner).with_dependency(name, requirement);
                slf
            }

            /// The name (None when unset).
            #[getter]
            fn name(&self) -> Option<&str> {
                Some(self.inner.name()).filter(|n| !n.is_empty())
            }

            /// The version text.
            #[getter]
            fn version(&self) -> &str {
                self.inner.version()
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

            /// The capabilities as added.
            #[getter]
            fn capabilities(&self) -> Vec<String> {
                self.inner.capabilities().map(str::to_string).collect()
            }

            /// The metadata.
            #[getter]
            fn metadata(&self) -> BTreeMap<String, String> {
                self.inner.metadata().clone()
            }

            /// The dependencies: name -> requirement.
            #[getter]
            fn dependencies(&self) -> BTreeMap<String, String> {
                self.inner.dependencies().clone()
            }

            fn __repr__(&self) -> String {
                format!("{}({})", $pyname, describe(&self.inner))
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                other.cast::<Self>().is_ok_and(|o| o.borrow().inner == self.inner)
            }

            /// Pickles as the constructor's arguments.
            #[allow(clippy::type_complexity)]
            fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, pyo3::types::PyType>, ConfigArgs)> {
                Ok((slf.get_type(), config_args(&slf.borrow().inner)))
            }
        }
    };
}

config_class!(
    PyModuleConfig,
    "ModuleConfig",
    ModuleKind::Module,
    "The declaration of a module. Builder methods change the config and return it."
);
config_class!(
    PyPluginConfig,
    "PluginConfig",
    ModuleKind::Plugin,
    "The declaration of a plugin. Builder methods change the config and return it."
);

/// The core config behind a `ModuleConfig` or `PluginConfig`.
pub fn extract_config(obj: &Bound<'_, PyAny>) -> PyResult<ModuleConfig> {
    if let Ok(c) = obj.cast::<PyModuleConfig>() {
        return Ok(c.borrow().inner.clone());
    }
    if let Ok(c) = obj.cast::<PyPluginConfig>() {
        return Ok(c.borrow().inner.clone());
    }
    Err(PyTypeError::new_err(format!(
        "config must be a ModuleConfig or a PluginConfig, not {}",
        obj.get_type().name()?
    )))
}
