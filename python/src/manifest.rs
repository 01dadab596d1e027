//! Manifests for Python: `export_manifest` and the hook `load_manifest` uses.

use std::path::PathBuf;

use module_registry::ManifestOptions;
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

    /// Apply a manifest to this registry, all or nothing; `resolve(name,
    /// import_path)` returns the handler of each Python module (import_path
    /// None for factories given in code), called only once the whole
    /// manifest is checked and its import paths are under `allow_imports`.
    #[pyo3(signature = (text, resolve, allow_imports = Vec::new(), script_folders = Vec::new()))]
    fn _load_manifest(
        &self,
        text: &str,
        resolve: &Bound<'_, PyAny>,
        allow_imports: Vec<String>,
        script_folders: Vec<PathBuf>,
    ) -> PyResult<()> {
        let options = ManifestOptions {
            allow_imports,
            script_folders,
        };
        self.inner
            .load_manifest_with(text, &options, |config, import_path| {
                let handler = resolve
                    .call1((config.name(), import_path))
                    .map_err(module_registry::Error::external)?;
                with_python_handler(config, &handler).map_err(module_registry::Error::external)
            })
            .map_err(to_pyerr)
    }
}
