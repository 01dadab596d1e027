//! Dependency resolution for Python: `ModuleRegistry.resolve`.

use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::info::{infos, PyModuleInfo};
use crate::registry::{parse_kind, PyModuleRegistry};
use crate::threads::Detach;

#[pymethods]
impl PyModuleRegistry {
    /// The dependency tree of `name` resolved to concrete versions, in build
    /// order (dependencies first, `name` last).
    #[pyo3(signature = (name, version=None, kind="module"))]
    fn resolve(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
        kind: &str,
    ) -> PyResult<Vec<PyModuleInfo>> {
        let kind = parse_kind(kind)?;
        let resolution = py
            .detach_gated(|| self.inner.resolve(kind, name, version))
            .map_err(to_pyerr)?;
        Ok(infos(resolution.modules().to_vec()))
    }
}
