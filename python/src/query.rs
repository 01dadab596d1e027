//! Discovery queries for Python. `CapabilityQuery` holds the one
//! implementation; `ServiceDiscoveryQuery` (modules only) and
//! `PluginDiscoveryQuery` (plugins only) are its subclasses, so every builder
//! method is written once. Builder methods change the query and return it.

use module_registry::{CapabilityQuery, ModuleKind};
use pyo3::prelude::*;

use crate::config::{extract_strings, extract_type};
use crate::errors::to_pyerr;

/// A discovery query over modules and plugins.
#[pyclass(name = "CapabilityQuery", module = "module_registry._core", subclass)]
#[derive(Clone, Default)]
pub struct PyCapabilityQuery {
    pub inner: CapabilityQuery,
}

impl PyCapabilityQuery {
    fn of_kind(kind: ModuleKind) -> Self {
        PyCapabilityQuery {
            inner: CapabilityQuery::new().with_kind(kind),
        }
    }

    /// Replaces the query by `f(query)`.
    fn update(&mut self, f: impl FnOnce(CapabilityQuery) -> CapabilityQuery) {
        self.inner = f(std::mem::take(&mut self.inner));
    }
}

#[pymethods]
impl PyCapabilityQuery {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Every one of these capabilities must be present; returns this query.
    fn with_required_capabilities<'py>(
        mut slf: PyRefMut<'py, Self>,
        capabilities: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let caps = extract_strings(capabilities, "capabilities")?;
        slf.update(|q| q.with_required_capabilities(caps));
        Ok(slf)
    }

    /// At least one of these capabilities must be present; returns this query.
    fn with_any_capabilities<'py>(
        mut slf: PyRefMut<'py, Self>,
        capabilities: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let caps = extract_strings(capabilities, "capabilities")?;
        slf.update(|q| q.with_any_capabilities(caps));
        Ok(slf)
    }

    /// None of these capabilities may be present; returns this query.
    fn with_excluded_capabilities<'py>(
        mut slf: PyRefMut<'py, Self>,
        capabilities: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let caps = extract_strings(capabilities, "capabilities")?;
        slf.update(|q| q.with_excluded_capabilities(caps));
        Ok(slf)
    }

    /// Only this type (a ModuleType or its name); returns this query.
    fn with_type<'py>(
        mut slf: PyRefMut<'py, Self>,
        r#type: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let t = extract_type(r#type)?;
        slf.update(|q| q.with_type(t));
        Ok(slf)
    }

    /// Only versions matching this semver requirement; returns this query.
    fn with_version(mut slf: PyRefMut<'_, Self>, requirement: String) -> PyRefMut<'_, Self> {
        slf.update(|q| q.with_version_req(requirement));
        slf
    }

    /// Only modules whose metadata `key` equals `value`; returns this query.
    fn with_metadata(
        mut slf: PyRefMut<'_, Self>,
        key: String,
        value: String,
    ) -> PyRefMut<'_, Self> {
        slf.update(|q| q.with_metadata(key, value));
        slf
    }

    /// Only modules taking values of this type (a Schema or a type
    /// expression: those whose input type it is assignable to); returns
    /// this query.
    fn with_input<'py>(
        mut slf: PyRefMut<'py, Self>,
        schema: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let schema = crate::schema::PySchema::from_arg(schema)?;
        slf.update(|q| q.with_input(schema));
        Ok(slf)
    }

    /// Only modules giving values of this type (their declared output is
    /// assignable to it; an undeclared output is not); returns this query.
    fn with_output<'py>(
        mut slf: PyRefMut<'py, Self>,
        schema: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let schema = crate::schema::PySchema::from_arg(schema)?;
        slf.update(|q| q.with_output(schema));
        Ok(slf)
    }

    /// Queries of the same class asking the same.
    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> bool {
        other.get_type().is(slf.get_type())
            && other
                .cast::<Self>()
                .is_ok_and(|o| o.borrow().inner == slf.borrow().inner)
    }

    /// Pickled as JSON.
    fn __getstate__(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner).map_err(|e| to_pyerr(e.into()))
    }

    fn __setstate__(&mut self, state: &str) -> PyResult<()> {
        self.inner = serde_json::from_str(state).map_err(|e| {
            to_pyerr(module_registry::Error::Serialization {
                message: format!("invalid pickled query: {e}"),
            })
        })?;
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().name()?;
        Ok(format!("{name}({:?})", slf.borrow().inner))
    }
}

/// A discovery query over modules (services).
#[pyclass(
    name = "ServiceDiscoveryQuery",
    module = "module_registry._core",
    extends = PyCapabilityQuery
)]
pub struct PyServiceDiscoveryQuery;

#[pymethods]
impl PyServiceDiscoveryQuery {
    #[new]
    fn new() -> (Self, PyCapabilityQuery) {
        (
            PyServiceDiscoveryQuery,
            PyCapabilityQuery::of_kind(ModuleKind::Module),
        )
    }

    /// Only services whose `service_type` metadata equals `service_type`; returns this query.
    fn with_service_type(mut slf: PyRefMut<'_, Self>, service_type: String) -> PyRefMut<'_, Self> {
        slf.as_super()
            .update(|q| q.with_metadata("service_type", service_type));
        slf
    }
}

/// A discovery query over plugins.
#[pyclass(
    name = "PluginDiscoveryQuery",
    module = "module_registry._core",
    extends = PyCapabilityQuery
)]
pub struct PyPluginDiscoveryQuery;

#[pymethods]
impl PyPluginDiscoveryQuery {
    #[new]
    fn new() -> (Self, PyCapabilityQuery) {
        (
            PyPluginDiscoveryQuery,
            PyCapabilityQuery::of_kind(ModuleKind::Plugin),
        )
    }
}
