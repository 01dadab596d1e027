//! Package indexes for Python: `PackageIndex`, `PackageInfo`, the
//! registry's `install` and `package_index`, and what the CLI calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use module_registry::distribution::{
    self, HttpClient, HttpError, InstallOptions, PackageIndex, PackageInfo,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_pyerr;
use crate::info::{infos, PyModuleInfo};
use crate::registry::PyModuleRegistry;
use crate::schema::PySchema;
use crate::threads::Detach;

/// `http(s)://` package indexes read through Python's `urllib` (the
/// package's `http_fetch` hook, `_http.fetch`), with the proxies and certificates Python
/// is set up with; the wheel carries no TLS stack of its own. The core calls
/// it from threads that hold no lock of its own; it takes the GIL.
struct PythonHttp;

impl HttpClient for PythonHttp {
    fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        self.get_final(url, limit).map(|(body, _)| body)
    }

    fn get_final(&self, url: &str, limit: u64) -> Result<(Vec<u8>, String), HttpError> {
        crate::threads::try_attach(|py| {
            let answer = crate::hooks::hook(py, crate::hooks::Hook::HttpFetch)
                .and_then(|fetch| fetch.call1((url, limit)))
                .map_err(|err| {
                    let reason = err
                        .value(py)
                        .str()
                        .map(|text| text.to_string())
                        .unwrap_or_else(|_| err.to_string());
                    HttpError::Failed(reason)
                })?;
            let (body, final_url) =
                answer
                    .extract::<(Bound<'_, PyAny>, String)>()
                    .map_err(|_| {
                        HttpError::Failed(
                            "the http_fetch hook returned no (bytes, url) pair".into(),
                        )
                    })?;
            let bytes = body
                .cast::<PyBytes>()
                .map_err(|_| HttpError::Failed("the http_fetch hook returned no bytes".into()))?;
            Ok((bytes.as_bytes().to_vec(), final_url))
        })
        .unwrap_or_else(|| {
            Err(HttpError::Failed(
                "the Python interpreter is exiting".into(),
            ))
        })
    }
}

/// Makes every `http(s)://` read of the process go through Python.
pub fn install_http_client() {
    distribution::set_http_client(Some(Arc::new(PythonHttp)));
}

/// One version of one package: a script module and the scripts it imports.
#[pyclass(
    name = "PackageInfo",
    module = "module_registry._core",
    frozen,
    get_all
)]
pub struct PyPackageInfo {
    name: String,
    version: String,
    r#type: String,
    capabilities: Vec<String>,
    description: String,
    license: String,
    /// Each file as a dict: `path`, `url`, `sha256`.
    files: Vec<BTreeMap<&'static str, String>>,
    dependencies: BTreeMap<String, String>,
    yanked: bool,
    /// What the module takes (`any` when its `MODULE` declares nothing).
    input: PySchema,
    /// What it gives.
    output: PySchema,
    /// Its config's type.
    config_type: PySchema,
}

impl From<&PackageInfo> for PyPackageInfo {
    fn from(p: &PackageInfo) -> Self {
        PyPackageInfo {
            name: p.name.clone(),
            version: p.version.clone(),
            r#type: p.module_type.clone(),
            capabilities: p.capabilities.clone(),
            description: p.description.clone(),
            license: p.license.clone(),
            files: p
                .files
                .iter()
                .map(|f| {
                    BTreeMap::from([
                        ("path", f.path.clone()),
                        ("url", f.url.clone()),
                        ("sha256", f.sha256.clone()),
                    ])
                })
                .collect(),
            dependencies: p.dependencies.clone(),
            yanked: p.yanked,
            input: PySchema {
                inner: p.input.clone(),
            },
            output: PySchema {
                inner: p.output.clone(),
            },
            config_type: PySchema {
                inner: p.config_type.clone(),
            },
        }
    }
}

#[pymethods]
impl PyPackageInfo {
    fn __repr__(&self) -> String {
        format!(
            "PackageInfo(name={:?}, version={:?}, license={:?}, capabilities={:?})",
            self.name, self.version, self.license, self.capabilities
        )
    }
}

/// A package index: every version of every package, with each file's digest.
#[pyclass(name = "PackageIndex", module = "module_registry._core", frozen)]
pub struct PyPackageIndex {
    inner: PackageIndex,
}

fn listed(found: Vec<&PackageInfo>) -> Vec<PyPackageInfo> {
    found.into_iter().map(Into::into).collect()
}

#[pymethods]
impl PyPackageIndex {
    /// The highest version of each package that is not yanked.
    fn packages(&self) -> Vec<PyPackageInfo> {
        listed(self.inner.packages())
    }

    /// Packages whose name, description or a capability holds `text` (any case).
    fn search(&self, text: &str) -> Vec<PyPackageInfo> {
        listed(self.inner.search(text))
    }

    /// Packages under `license` (any case).
    fn by_license(&self, license: &str) -> Vec<PyPackageInfo> {
        listed(self.inner.by_license(license))
    }

    /// Every license the packages name, sorted.
    fn licenses(&self) -> Vec<String> {
        self.inner.licenses()
    }

    /// Every version of `name`, yanked ones included, highest first.
    fn versions(&self, name: &str) -> Vec<PyPackageInfo> {
        self.inner
            .packages
            .get(name)
            .map(|v| v.iter().map(Into::into).collect())
            .unwrap_or_default()
    }

    /// When the index was written (RFC 3339).
    #[getter]
    fn generated(&self) -> &str {
        &self.inner.generated
    }

    fn __len__(&self) -> usize {
        self.inner.packages.len()
    }

    /// A table of its package versions (in a notebook).
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        crate::result::display(slf.py(), "index_html", slf.as_any())
    }

    fn __repr__(&self) -> String {
        format!("<PackageIndex of {} packages>", self.inner.packages.len())
    }
}

#[pymethods]
impl PyModuleRegistry {
    /// Install package `name` (and what it depends on) from `index` into
    /// the folder `into`, then register the installed modules; returns
    /// their `ModuleInfo`s, dependencies first. With `trusted_key` (a
    /// minisign `.pub` file) the index must be signed by it.
    #[pyo3(signature = (name, requirement="*", *, index, into, trusted_key=None))]
    fn install(
        &self,
        py: Python<'_>,
        name: &str,
        requirement: &str,
        index: &str,
        into: PathBuf,
        trusted_key: Option<PathBuf>,
    ) -> PyResult<Vec<PyModuleInfo>> {
        let options = InstallOptions {
            index: index.to_string(),
            into,
            trusted_key,
            locked: false,
        };
        let requests = [(name.to_string(), requirement.to_string())];
        let installed = py
            .detach_gated(|| self.inner.install(&requests, &options))
            .map_err(to_pyerr)?;
        Ok(infos(installed))
    }

    /// The package index at `url` (`http(s)://`, `file://` or a path).
    fn package_index(&self, py: Python<'_>, url: &str) -> PyResult<PyPackageIndex> {
        let inner = py
            .detach_gated(|| self.inner.package_index(url))
            .map_err(to_pyerr)?;
        Ok(PyPackageIndex { inner })
    }
}

/// `index build`: writes `dir/index.json`; the number of packages.
#[pyfunction]
#[pyo3(signature = (dir, base_url=None))]
pub fn _build_index(py: Python<'_>, dir: PathBuf, base_url: Option<String>) -> PyResult<usize> {
    let index = py
        .detach_gated(|| distribution::build_index(&dir, base_url.as_deref()))
        .map_err(to_pyerr)?;
    Ok(index.packages.len())
}

/// `index yank`: marks `name@version` yanked in the index file at `path`;
/// a signed index is signed again with `key` (refused without one). The
/// signature written, if any.
#[pyfunction]
#[pyo3(signature = (path, name, version, key=None))]
pub fn _yank(
    path: PathBuf,
    name: &str,
    version: &str,
    key: Option<PathBuf>,
) -> PyResult<Option<PathBuf>> {
    distribution::yank(&path, name, version, key.as_deref()).map_err(to_pyerr)
}

/// `keygen`: writes `PREFIX.key` and `PREFIX.pub`; their paths.
#[pyfunction]
pub fn _keygen(prefix: PathBuf) -> PyResult<(PathBuf, PathBuf)> {
    distribution::sign::keygen(&prefix).map_err(to_pyerr)
}

/// `index sign`: writes `path.minisig`, signed with the key in `key`.
#[pyfunction]
pub fn _sign(path: PathBuf, key: PathBuf) -> PyResult<PathBuf> {
    distribution::sign_file(&path, &key).map_err(to_pyerr)
}

/// `install` without registering: `(name, version, [file paths])` per package.
#[pyfunction]
#[pyo3(signature = (requests, index, into, trusted_key=None, locked=false))]
#[allow(clippy::type_complexity)]
pub fn _install_packages(
    py: Python<'_>,
    requests: Vec<(String, String)>,
    index: String,
    into: PathBuf,
    trusted_key: Option<PathBuf>,
    locked: bool,
) -> PyResult<Vec<(String, String, Vec<String>)>> {
    let options = InstallOptions {
        index,
        into,
        trusted_key,
        locked,
    };
    let installed = py
        .detach_gated(|| distribution::install(&requests, &options))
        .map_err(to_pyerr)?;
    Ok(installed
        .into_iter()
        .map(|p| {
            (
                p.name,
                p.version,
                p.files.into_iter().map(|f| f.path).collect(),
            )
        })
        .collect())
}
