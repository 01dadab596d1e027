//! Manifests for Python: `export_manifest`, the hook `load_manifest` uses,
//! and what pickling a registry reads (its fingerprint, its Python handlers).

use std::path::PathBuf;

use module_registry::ManifestOptions;
use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::modules::{python_handler, with_python_handler};
use crate::registry::PyModuleRegistry;

/// Kind, name, version and the handler (None: a factory given in Rust code).
type CodeModule<'py> = (&'static str, String, String, Option<Bound<'py, PyAny>>);

#[pymethods]
impl PyModuleRegistry {
    /// Every declaration, script source and setting as JSON.
    fn export_manifest(&self) -> PyResult<String> {
        self.inner.export_manifest().map_err(to_pyerr)
    }

    /// The core's digest of the manifest (Python handlers by name only;
    /// the package adds their code).
    fn _fingerprint(&self) -> PyResult<String> {
        self.inner.fingerprint().map_err(to_pyerr)
    }

    /// `(kind, name, version, handler)` for every module the manifest
    /// cannot rebuild alone: the handler of a Python module, or None for a
    /// factory given in Rust code. In the registry's order.
    fn _code_modules<'py>(&self, py: Python<'py>) -> PyResult<Vec<CodeModule<'py>>> {
        Ok(self
            .inner
            .code_modules()
            .map_err(to_pyerr)?
            .iter()
            .map(|info| {
                (
                    info.kind().as_str(),
                    info.name().to_string(),
                    info.version_text().to_string(),
                    python_handler(py, info.config()),
                )
            })
            .collect())
    }

    /// Apply a manifest to this registry, all or nothing; `resolve(name,
    /// import_path, version, kind)` returns the handler of each Python module
    /// (import_path None for factories given in code), called only once the
    /// whole manifest is checked and its import paths are under `allow_imports`.
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
                    .call1((
                        config.name(),
                        import_path,
                        config.version(),
                        config.kind().as_str(),
                    ))
                    .map_err(module_registry::Error::external)?;
                with_python_handler(config, &handler).map_err(module_registry::Error::external)
            })
            .map_err(to_pyerr)
    }
}
