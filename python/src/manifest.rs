//! Manifests for Python: `export_manifest` and the hook `load_manifest` uses.

use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::modules::with_python_handler;
use crate::registry::PyModuleRegistry;

#[pymethods]
impl PyModuleRegistry {
    /// Every declaration, script source and setting as JSON.
    fn export_manifest(&self) -> PyResult<String> {
        self.inner.export_manifest().map_err(to_pyerr)
    }

    /// Apply a manifest to this registry; `resolve(import_path)` returns the
    /// handler of each Python module (None for factories given in code).
    fn _load_manifest(&self, text: &str, resolve: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner
            .load_manifest(text, |config, import_path| {
                let handler = resolve
                    .call1((config.name(), import_path))
                    .map_err(module_registry::Error::external)?;
                with_python_handler(config, &handler).map_err(module_registry::Error::external)
            })
            .map_err(to_pyerr)
    }
}
