//! `ModuleInfo` for Python: the read-only record of one registration.

use module_registry::ModuleInfo;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet};

use crate::config::PyModuleType;

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

    fn __repr__(&self) -> String {
        let caps: Vec<&str> = self.inner.capabilities().iter().map(|c| &**c).collect();
        format!(
            "ModuleInfo(name={:?}, version=\"{}\", kind=\"{}\", type={}, capabilities={:?})",
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

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.inner.kind(), self.inner.name(), self.inner.version()).hash(&mut h);
        h.finish()
    }
}

pub(crate) fn infos(list: Vec<ModuleInfo>) -> Vec<PyModuleInfo> {
    list.into_iter()
        .map(|inner| PyModuleInfo { inner })
        .collect()
}
