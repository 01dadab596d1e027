//! Sharing script modules through package indexes, as Helm, Cargo and
//! Terraform users share charts, crates and providers.
//!
//! A package is one script module: its file and the library scripts it
//! imports, each with its SHA-256. An index (`index.json`, see
//! [`PackageIndex`]) lists every version of every package; [`build_index`]
//! writes one for a folder of scripts, [`sign::sign`] signs it (minisign),
//! and [`install`] resolves requirements against it (highest versions not
//! yanked, dependencies included, with the registry's resolver), downloads
//! and verifies every file, then writes them and a lockfile, all or none.
//! [`ModuleRegistry::install`] also registers what it installed.

mod fetch;
mod index;
mod install;
pub mod sign;

pub use self::fetch::{set_http_client, HttpClient, HttpError, MAX_FILE_BYTES, MAX_INDEX_BYTES};
pub use self::index::{build_index, PackageFile, PackageIndex, PackageInfo, INDEX_FORMAT};
pub use self::install::{install, read_lockfile, InstallOptions, LockedPackage, LOCKFILE};

use std::path::{Path, PathBuf};

use crate::access::Permission;
use crate::error::Result;
use crate::info::ModuleInfo;
use crate::registry::ModuleRegistry;

impl ModuleRegistry {
    /// Installs `requests` (name, semver requirement) as
    /// [`install`](fn@install) does, then registers each installed module
    /// (from its file in `options.into`, its imports beside it). Reads and
    /// writes files: under a policy, needs `admin` on `*`.
    pub fn install(
        &self,
        requests: &[(String, String)],
        options: &InstallOptions,
    ) -> Result<Vec<ModuleInfo>> {
        self.authorize(Permission::Admin, "install", None)?;
        let installed = install(requests, options)?;
        let mut registered = Vec::with_capacity(installed.len());
        for package in &installed {
            let module = options.into.join(&package.files[0].path);
            registered.push(self.load_script(module)?);
        }
        Ok(registered)
    }

    /// The package index at `url` (`http(s)://`, `file://` or a path).
    /// Under a policy, needs `admin` on `*` (it reads files and the network).
    pub fn package_index(&self, url: &str) -> Result<PackageIndex> {
        self.authorize(Permission::Admin, "package_index", None)?;
        PackageIndex::load(url)
    }
}

/// Marks `name@version` yanked in the index file at `index_path`.
pub fn yank(index_path: &Path, name: &str, version: &str) -> Result<()> {
    let mut index = PackageIndex::load(&index_path.display().to_string())?;
    index.yank(name, version)?;
    index::write_replacing(index_path, index.to_json()?.as_bytes())
}

/// Signs the file at `path` with the minisign secret key in `key`, writing
/// `path.minisig` (what the standard `minisign -V` checks too); its path.
pub fn sign_file(path: &Path, key: &Path) -> Result<PathBuf> {
    let data = std::fs::read(path).map_err(|source| crate::error::Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let signature = sign::sign(&data, key)?;
    let mut target = path.as_os_str().to_owned();
    target.push(".minisig");
    let target = PathBuf::from(target);
    index::write_replacing(&target, signature.as_bytes())?;
    Ok(target)
}
