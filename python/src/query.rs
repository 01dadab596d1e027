//! Discovery queries for Python. Builder methods change the query and return it.

use module_registry::{CapabilityQuery, ModuleKind};
use pyo3::prelude::*;

use crate::config::{extract_strings, extract_type};

macro_rules! query_class {
    ($rust:ident, $pyname:literal, $kind:expr, $doc:literal, { $($extra:tt)* }) => {
        #[doc = $doc]
        #[pyclass(name = $pyname, module = "module_registry._core")]
        #[derive(Clone)]
        pub struct $rust {
            pub inner: CapabilityQuery,
        }

        #[pymethods]
        impl $rust {
            #[new]
            fn new() -> Self {
                let kind: Option<ModuleKind> = $kind;
                let inner = match kind {
                    Some(k) => CapabilityQuery::new().with_kind(k),
                    None => CapabilityQuery::new(),
                };
                Self { inner }
            }

            /// Every one of these capabilities must be present; returns this query.
            fn with_required_capabilities<'py>(mut slf: PyRefMut<'py, Self>, capabilities: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let caps = extract_strings(capabilities, "capabilities")?;
                slf.inner = std::mem::take(&mut slf.inner).with_required_capabilities(caps);
                Ok(slf)
            }

            /// At least one of these capabilities must be present; returns this query.
            fn with_any_capabilities<'py>(mut slf: PyRefMut<'py, Self>, capabilities: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let caps = extract_strings(capabilities, "capabilities")?;
                slf.inner = std::mem::take(&mut slf.inner).with_any_capabilities(caps);
                Ok(slf)
            }

            /// None of these capabilities may be present; returns this query.
            fn with_excluded_capabilities<'py>(mut slf: PyRefMut<'py, Self>, capabilities: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let caps = extract_strings(capabilities, "capabilities")?;
                slf.inner = std::mem::take(&mut slf.inner).with_excluded_capabilities(caps);
                Ok(slf)
            }

            /// Only this type (a ModuleType or its name); returns this query.
            fn with_type<'py>(mut slf: PyRefMut<'py, Self>, r#type: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
                let t = extract_type(r#type)?;
                slf.inner = std::mem::take(&mut slf.inner).with_type(t);
                Ok(slf)
            }

            /// Only versions matching this semver requirement; returns this query.
            fn with_version(mut slf: PyRefMut<'_, Self>, requirement: String) -> PyRefMut<'_, Self> {
                slf.inner = std::mem::take(&mut slf.inner).with_version_req(requirement);
                slf
            }

            /// Only modules whose metadata `key` equals `value`; returns this query.
            fn with_metadata(mut slf: PyRefMut<'_, Self>, key: String, value: String) -> PyRefMut<'_, Self> {
                slf.inner = std::mem::take(&mut slf.inner).with_metadata(key, value);
                slf
            }

            fn __repr__(&self) -> String {
                format!("{}({:?})", $pyname, self.inner)
            }

            $($extra)*
        }
    };
}

query_class!(
    PyCapabilityQuery,
    "CapabilityQuery",
    None,
    "A discovery query over modules and plugins.",
    {}
);
query_class!(
    PyServiceDiscoveryQuery,
    "ServiceDiscoveryQuery",
    Some(ModuleKind::Module),
    "A discovery query over modules (services).",
    {
        /// Only services whose `service_type` metadata equals `service_type`; returns this query.
        fn with_service_type(
            mut slf: PyRefMut<'_, Self>,
            service_type: String,
        ) -> PyRefMut<'_, Self> {
            slf.inner = std::mem::take(&mut slf.inner).with_metadata("service_type", service_type);
            slf
        }
    }
);
query_class!(
    PyPluginDiscoveryQuery,
    "PluginDiscoveryQuery",
    Some(ModuleKind::Plugin),
    "A discovery query over plugins.",
    {}
);
