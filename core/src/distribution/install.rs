//! Installing packages: resolve, download, verify every digest (and the
//! index's signature), then write the files and the lockfile, all or none.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fetch::{Location, MAX_FILE_BYTES, MAX_INDEX_BYTES};
use super::index::{version_of, write_replacing, PackageIndex, PackageInfo};
use crate::config::ModuleConfig;
use crate::deps::Catalog;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;

/// The lockfile written beside the installed files.
pub const LOCKFILE: &str = "module-registry.lock";

/// What to install, and from where.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// The package index (`http(s)://`, `file://` or a path).
    pub index: String,
    /// The folder the files are written into (created if missing).
    pub into: PathBuf,
    /// A minisign public key file: the index must carry a valid signature
    /// by it (`index.json.minisig`), or nothing is installed.
    pub trusted_key: Option<PathBuf>,
    /// Install exactly what `into/module-registry.lock` says (requests are
    /// ignored), failing if any digest differs.
    pub locked: bool,
}

/// A package that was installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its files (the module's first), with absolute URLs.
    pub files: Vec<super::PackageFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lockfile {
    version: u32,
    #[serde(default, rename = "package")]
    packages: Vec<LockedPackage>,
}

/// Refuses a file path that would be written outside the install folder.
pub(crate) fn check_relative(package: &str, path: &str) -> Result<()> {
    let p = Path::new(path);
    let inside = !path.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !path.contains('\\');
    if inside {
        return Ok(());
    }
    Err(Error::InvalidConfig {
        name: package.to_string(),
        reason: format!("its file path {path:?} would be written outside the install folder"),
    })
}

/// The index as a catalog for the core's resolver: every version not
/// yanked, highest first (a yanked one only when `pinned` names it).
struct IndexCatalog<'a> {
    index: &'a PackageIndex,
    pinned: BTreeMap<String, String>,
}

impl Catalog for IndexCatalog<'_> {
    fn candidates(&self, _: ModuleKind, name: &str) -> Option<(ModuleKind, Vec<ModuleInfo>)> {
        let versions = self.index.packages.get(name)?;
        let mut found: Vec<&PackageInfo> = versions
            .iter()
            .filter(|p| !p.yanked || self.pinned.get(name) == Some(&p.version))
            .collect();
        found.sort_by_key(|p| std::cmp::Reverse(version_of(p)));
        let infos = found
            .into_iter()
            .filter_map(|p| record(p).ok())
            .collect::<Vec<_>>();
        (!infos.is_empty()).then_some((ModuleKind::Module, infos))
    }
}

/// A package as a record the resolver reads (name, version, dependencies).
fn record(package: &PackageInfo) -> Result<ModuleInfo> {
    let mut config = ModuleConfig::new()
        .with_name(package.name.clone())
        .with_version(package.version.clone());
    for (name, requirement) in &package.dependencies {
        config = config.with_dependency(name.clone(), requirement.clone());
    }
    ModuleInfo::detached(config)
}

/// The name of the request that roots a resolution (never a package name:
/// package names cannot hold `:`).
const ROOT: &str = "install";

/// The packages `requests` (name, requirement) need, dependencies first.
fn resolve(
    index: &PackageIndex,
    requests: &[(String, String)],
    pinned: BTreeMap<String, String>,
) -> Result<Vec<PackageInfo>> {
    let mut root = ModuleConfig::new().with_name(ROOT).with_version("0.0.0");
    for (name, requirement) in requests {
        root = root.with_dependency(name.clone(), requirement.clone());
    }
    let root = ModuleInfo::detached(root)?;
    let catalog = IndexCatalog { index, pinned };
    let resolution = crate::deps::resolve(&catalog, &root)?;
    let mut chosen = Vec::new();
    for info in resolution.modules() {
        if info.same_registration(&root) {
            continue;
        }
        let package = index.packages[info.name()]
            .iter()
            .find(|p| version_of(p) == *info.version())
            .expect("the resolver chose a listed version");
        chosen.push(package.clone());
    }
    Ok(chosen)
}

/// Installs `requests` (name, semver requirement) from `options.index`
/// into `options.into`: the highest versions that are not yanked and
/// satisfy every requirement, dependencies included. Every file is
/// downloaded and checked against its digest (and the index against the
/// trusted key) before anything is written; then the files and
/// `module-registry.lock` are moved into the folder. On any error the
/// folder is as it was. Returns what was installed, dependencies first.
pub fn install(
    requests: &[(String, String)],
    options: &InstallOptions,
) -> Result<Vec<LockedPackage>> {
    let location = Location::parse(&options.index)?;
    let text = location.read(MAX_INDEX_BYTES)?;
    if let Some(key) = &options.trusted_key {
        let signature_location = location.join(&format!("{}.minisig", file_name(&location)))?;
        let signature = signature_location
            .read(64 * 1024)
            .map_err(|e| Error::Signature {
                subject: location.url(),
                reason: format!("no signature could be read ({e})"),
            })?;
        let signature = String::from_utf8(signature).map_err(|_| Error::Signature {
            subject: location.url(),
            reason: "the signature is not text".into(),
        })?;
        super::sign::verify(&text, &signature, key, &location.url())?;
    }
    let index = PackageIndex::parse(&text, Some(location.clone()))?;
    let lock_path = options.into.join(LOCKFILE);
    let packages = if options.locked {
        let locked = read_lockfile(&lock_path)?;
        locked
            .into_iter()
            .map(|l| {
                index
                    .packages
                    .get(&l.name)
                    .and_then(|v| v.iter().find(|p| p.version == l.version))
                    .cloned()
                    .ok_or_else(|| Error::NotFound {
                        kind: ModuleKind::Module,
                        name: l.name.clone(),
                        requirement: Some(format!("={} (locked)", l.version)),
                        available: Vec::new(),
                    })
                    .map(|p| (p, Some(l)))
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        let pinned = read_lockfile(&lock_path)
            .map(|l| l.into_iter().map(|p| (p.name, p.version)).collect())
            .unwrap_or_default();
        resolve(&index, requests, pinned)?
            .into_iter()
            .map(|p| (p, None))
            .collect()
    };
    // Download and verify everything first.
    let mut files: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    let mut installed = Vec::new();
    for (package, locked) in packages {
        let mut entries = Vec::new();
        for (n, file) in package.files.iter().enumerate() {
            check_relative(&package.name, &file.path)?;
            let source = location.join(&file.url)?;
            let url = source.url();
            if let Some(locked) = &locked {
                let pinned = locked.files.get(n).filter(|f| f.path == file.path);
                match pinned {
                    Some(f) if f.sha256 == file.sha256 => {}
                    Some(f) => {
                        return Err(Error::Integrity {
                            subject: format!(
                                "{} ({}@{}, locked)",
                                file.path, package.name, package.version
                            ),
                            expected: f.sha256.clone(),
                            actual: file.sha256.clone(),
                        })
                    }
                    None => {
                        return Err(Error::InvalidConfig {
                            name: package.name.clone(),
                            reason: format!(
                                "the index lists file {:?}, which the lockfile does not",
                                file.path
                            ),
                        })
                    }
                }
            }
            let bytes = source.read(MAX_FILE_BYTES)?;
            let actual = crate::native::sha256_hex(&bytes);
            if actual != file.sha256.to_ascii_lowercase() {
                return Err(Error::Integrity {
                    subject: format!("{url} ({}@{})", package.name, package.version),
                    expected: file.sha256.clone(),
                    actual,
                });
            }
            match files.get(&file.path) {
                Some((digest, _)) if *digest != actual => {
                    return Err(Error::InvalidConfig {
                        name: package.name.clone(),
                        reason: format!(
                        "its file {:?} differs from the file of that name another package installs",
                        file.path
                    ),
                    })
                }
                _ => {
                    files.insert(file.path.clone(), (actual.clone(), bytes));
                }
            }
            entries.push(super::PackageFile {
                path: file.path.clone(),
                url,
                sha256: actual,
            });
        }
        installed.push(LockedPackage {
            name: package.name.clone(),
            version: package.version.clone(),
            files: entries,
        });
    }
    let lock = toml::to_string(&Lockfile {
        version: 1,
        packages: installed.clone(),
    })
    .map_err(|e| Error::Serialization {
        message: format!("cannot write the lockfile: {e}"),
    })?;
    write_all(&options.into, &files, lock.as_bytes())?;
    Ok(installed)
}

/// The packages `module-registry.lock` at `path` records.
pub fn read_lockfile(path: &Path) -> Result<Vec<LockedPackage>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let lock: Lockfile = toml::from_str(&text).map_err(|e| Error::Serialization {
        message: format!("{} is not a lockfile: {e}", path.display()),
    })?;
    Ok(lock.packages)
}

fn file_name(location: &Location) -> String {
    match location {
        Location::File(path) => path
            .file_name()
            .map_or_else(|| "index.json".into(), |n| n.to_string_lossy().into_owned()),
        Location::Http(url) => url.rsplit('/').next().unwrap_or("index.json").to_string(),
    }
}

/// Writes every file into a temporary folder inside `into`, then moves
/// them (and the lockfile) into place; on failure the temporary folder is
/// removed and `into` keeps what it had.
fn write_all(into: &Path, files: &BTreeMap<String, (String, Vec<u8>)>, lock: &[u8]) -> Result<()> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(into).map_err(io(into))?;
    let staging = into.join(format!(".module-registry-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let staged = (|| -> Result<()> {
        for (path, (_, bytes)) in files {
            let target = staging.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&target, bytes).map_err(io(&target))?;
        }
        for path in files.keys() {
            let target = into.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::rename(staging.join(path), &target).map_err(io(&target))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    staged?;
    write_replacing(&into.join(LOCKFILE), lock)
}
