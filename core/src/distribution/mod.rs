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
mod location;
mod lockfile;
pub mod sign;
mod stage;

pub use self::fetch::{set_http_client, HttpClient, HttpError, MAX_FILE_BYTES, MAX_INDEX_BYTES};
pub use self::index::{build_index, PackageFile, PackageIndex, PackageInfo, INDEX_FORMAT};
pub use self::install::{install, InstallOptions};
pub use self::lockfile::{read_lockfile, LockedPackage, LOCKFILE};

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
        // A package already registered at that version is refused before
        // anything is written (registering it afterwards would fail).
        let taken = |packages: &[LockedPackage]| {
            for package in packages {
                let taken = self
                    .versions(crate::kind::ModuleKind::Module, &package.name)
                    .iter()
                    .any(|i| i.version().to_string() == package.version);
                if taken {
                    return Err(crate::error::Error::AlreadyRegistered {
                        kind: crate::kind::ModuleKind::Module,
                        name: package.name.clone(),
                        version: package.version.clone(),
                    });
                }
            }
            Ok(())
        };
        // Registered once the files are in place and before the lockfile is
        // written, all or nothing: a module that fails to register (another
        // thread took its name and version since the check, a policy) moves
        // every file back, so the folder is as it was.
        let mut register = |installed: &[LockedPackage]| {
            let mut registered = Vec::with_capacity(installed.len());
            for package in installed {
                // Pinned to the digest just checked: a file changed on disk
                // since is refused, not registered.
                let file = &package.files[0];
                let module = options.into.join(&file.path);
                match self.load_script_pinned(module, Some(&file.sha256)) {
                    Ok(info) => registered.push(info),
                    Err(e) => {
                        self.unregister_all(&registered);
                        return Err(e);
                    }
                }
            }
            Ok(registered)
        };
        let unregister = |registered: Vec<ModuleInfo>| self.unregister_all(&registered);
        let (_, registered) =
            install::install_checked(requests, options, &taken, &mut register, &unregister)?;
        Ok(registered)
    }

    /// Takes back modules an install registered (an install that failed after).
    fn unregister_all(&self, registered: &[ModuleInfo]) {
        for info in registered.iter().rev() {
            let _ = self.unregister_exact(info);
        }
    }

    /// The package index at `url` (`http(s)://`, `file://` or a path).
    /// Under a policy, needs `admin` on `*` (it reads files and the network).
    pub fn package_index(&self, url: &str) -> Result<PackageIndex> {
        self.authorize(Permission::Admin, "package_index", None)?;
        PackageIndex::load(url)
    }
}

/// Marks `name@version` yanked in the index file at `index_path`.
///
/// A signed index (`index_path.minisig` exists) is signed again with the
/// secret key `key`; without one it is refused and left as it is: yanking
/// changes the index, so its signature would no longer hold and every
/// install checking it would fail as "not signed by the trusted key".
/// Given a key, an unsigned index is signed too. Returns the signature
/// written, if any.
pub fn yank(
    index_path: &Path,
    name: &str,
    version: &str,
    key: Option<&Path>,
) -> Result<Option<PathBuf>> {
    let location = fetch::Location::File(index_path.to_path_buf());
    let mut index = PackageIndex::parse(&location.read(MAX_INDEX_BYTES)?, Some(location))?;
    index.yank(name, version)?;
    let text = index.to_json()?;
    let signature_path = signature_path(index_path);
    let signature = match key {
        Some(key) => Some(sign::sign(text.as_bytes(), key)?),
        None if signature_path.exists() => {
            return Err(crate::error::Error::Signature {
                subject: index_path.display().to_string(),
                reason: format!(
                    "the index is signed ({}): yanking changes it, so that signature would \
                     no longer hold; give the secret key to sign it again",
                    signature_path.display()
                ),
            })
        }
        None => None,
    };
    index::write_replacing(index_path, text.as_bytes())?;
    match signature {
        Some(signature) => {
            index::write_replacing(&signature_path, signature.as_bytes())?;
            Ok(Some(signature_path))
        }
        None => Ok(None),
    }
}

fn signature_path(path: &Path) -> PathBuf {
    let mut target = path.as_os_str().to_owned();
    target.push(".minisig");
    PathBuf::from(target)
}

/// Signs the file at `path` with the minisign secret key in `key`, writing
/// `path.minisig` (what the standard `minisign -V` checks too); its path.
pub fn sign_file(path: &Path, key: &Path) -> Result<PathBuf> {
    let data = fetch::Location::File(path.to_path_buf()).read(MAX_INDEX_BYTES)?;
    let signature = sign::sign(&data, key)?;
    let target = signature_path(path);
    index::write_replacing(&target, signature.as_bytes())?;
    Ok(target)
}
