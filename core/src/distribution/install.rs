//! Installing packages: resolve, download, verify every digest (and the
//! index's signature) and compile every module, then move the files into
//! the folder and write the lockfile, all or none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fetch::{Location, MAX_FILE_BYTES, MAX_INDEX_BYTES};
use super::index::{version_of, write_replacing, PackageIndex, PackageInfo};
use super::lockfile::{self, FolderLock, LockedPackage, LOCKFILE};
use super::stage::{self, Staging};
use crate::config::ModuleConfig;
use crate::deps::Catalog;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;

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

/// The longest file path a package may name.
const MAX_PATH_BYTES: usize = 255;
/// The most files one install downloads (every package together).
pub(crate) const MAX_INSTALL_FILES: usize = 1024;
/// The most bytes one install downloads (every file together).
pub(crate) const MAX_INSTALL_BYTES: u64 = 64 * 1024 * 1024;

/// Refuses a file path a package may not write. A package writes script
/// files only: each path is relative, of plain names separated by `/`
/// (no `.` or `..`, no name starting with `.`, no `\`, `:` or control
/// character), ending in `.rhai`; the module's own file (`module`, the
/// first) sits at the top of the install folder, the scripts it imports
/// may sit in subfolders (as `import "lib/text"` reads `lib/text.rhai`).
/// So no package can write `conftest.py`, `.git/hooks/pre-commit`, the
/// lockfile, or outside the folder.
pub(crate) fn check_package_path(package: &str, path: &str, module: bool) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::InvalidConfig {
            name: package.to_string(),
            reason: format!("its file path {path:?} is refused: {why}"),
        })
    };
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return refuse("a path is 1 to 255 bytes long");
    }
    let parts: Vec<&str> = path.split('/').collect();
    let plain = |part: &&str| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.chars().any(|c| {
                c.is_control() || matches!(c, '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
            })
    };
    if !parts.iter().all(plain) {
        return refuse(
            "it would be written outside the install folder, or as a hidden or oddly named file \
             (each part of a path is a plain name, not starting with `.`)",
        );
    }
    if !path.ends_with(".rhai") {
        return refuse("a package installs script files (`*.rhai`) only");
    }
    if module && parts.len() > 1 {
        return refuse("the module's own file sits at the top of the install folder");
    }
    Ok(())
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
    let where_ = index
        .location
        .as_ref()
        .map_or_else(|| "the index".to_string(), |l| format!("index {}", l.url()));
    for (name, _) in requests {
        if !index.packages.contains_key(name) {
            return Err(Error::InvalidInput {
                message: format!("package {name:?} is not in {where_}"),
            });
        }
    }
    let mut root = ModuleConfig::new().with_name(ROOT).with_version("0.0.0");
    for (name, requirement) in requests {
        root = root.with_dependency(name.clone(), requirement.clone());
    }
    let root = ModuleInfo::detached(root)?;
    let catalog = IndexCatalog { index, pinned };
    let resolution = crate::deps::resolve(&catalog, &root).map_err(|e| match e {
        Error::MissingDependency {
            dependency,
            requirement,
            chain,
            available,
        } => {
            // The chain without the request's own root (`install@0.0.0`).
            let mut by: Vec<String> = chain.into_iter().skip(1).collect();
            if by.is_empty() {
                by.push("the install request".into());
            }
            if available.is_empty() && !index.packages.contains_key(&dependency) {
                Error::InvalidInput {
                    message: format!(
                        "package {dependency:?} (required by {}) is not in {where_}",
                        by.join(" -> ")
                    ),
                }
            } else {
                Error::MissingDependency {
                    dependency,
                    requirement,
                    chain: by,
                    available,
                }
            }
        }
        other => other,
    })?;
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

/// Reads the index (following redirects: relative file URLs resolve
/// against where it was finally read) and checks its signature.
fn read_index(options: &InstallOptions) -> Result<PackageIndex> {
    let (text, location) = Location::parse(&options.index)?.read_final(MAX_INDEX_BYTES)?;
    if let Some(key) = &options.trusted_key {
        let signature = location
            .signature()
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
    PackageIndex::parse(&text, Some(location))
}

/// Installs `requests` (name, semver requirement) from `options.index`
/// into `options.into`: the highest versions that are not yanked and
/// satisfy every requirement, dependencies included. Every file is
/// downloaded and checked against its digest (and the index against the
/// trusted key), and every module compiled and checked to declare the name
/// and version the index lists, before anything is written; then the files
/// are moved into the folder and `module-registry.lock` is updated (the
/// packages it recorded before are kept). On any error the folder is as it
/// was. Installs into one folder from several threads or processes take
/// turns (a lock on the folder). Returns what was installed, dependencies
/// first.
pub fn install(
    requests: &[(String, String)],
    options: &InstallOptions,
) -> Result<Vec<LockedPackage>> {
    install_checked(requests, options, &|_| Ok(()), &mut |_| Ok(()), &|_| {}).map(|(l, _)| l)
}

/// What [`install_checked`] does once the files are in place, before the
/// lockfile is written: `register` (all or nothing) gives a value, which
/// `unregister` takes back if the lockfile then cannot be written.
pub(crate) type Register<'a, T> = &'a mut dyn FnMut(&[LockedPackage]) -> Result<T>;

/// [`install`], calling `check` with what would be installed once it is
/// downloaded and compiled, before anything is moved, and `register` once
/// the files are in place, before the lockfile is written: an error from
/// either leaves the folder as it was (the files moved are moved back).
pub(crate) fn install_checked<T>(
    requests: &[(String, String)],
    options: &InstallOptions,
    check: &dyn Fn(&[LockedPackage]) -> Result<()>,
    register: Register<'_, T>,
    unregister: &dyn Fn(T),
) -> Result<(Vec<LockedPackage>, T)> {
    let index = read_index(options)?;
    let location = index.location.clone().expect("a read index has a location");
    let guard = FolderLock::acquire(&options.into)?;
    let outcome = install_locked(
        requests, options, &index, &location, check, register, unregister,
    );
    if outcome.is_err() {
        guard.remove_created();
    }
    drop(guard);
    outcome
}

/// What a package installs: each file's path, digest and bytes.
type Files = BTreeMap<String, (String, Vec<u8>)>;

#[allow(clippy::too_many_arguments)]
fn install_locked<T>(
    requests: &[(String, String)],
    options: &InstallOptions,
    index: &PackageIndex,
    location: &Location,
    check: &dyn Fn(&[LockedPackage]) -> Result<()>,
    register: Register<'_, T>,
    unregister: &dyn Fn(T),
) -> Result<(Vec<LockedPackage>, T)> {
    let before = lockfile::existing(&options.into)?;
    let packages = chosen(requests, options, index, &before)?;
    let (files, installed) = download(location, packages)?;
    let mut recorded = still_recorded(before, &installed, &files, options)?;
    recorded.extend(installed.iter().cloned());
    recorded.sort_by(|a, b| a.name.cmp(&b.name));
    let lock = lockfile::render(recorded)?;
    let staging = Staging::new(&options.into)?;
    let bytes: BTreeMap<String, Vec<u8>> = files
        .into_iter()
        .map(|(path, (_, bytes))| (path, bytes))
        .collect();
    staging.write(&bytes)?;
    check_modules(&staging.root, &installed, index)?;
    check(&installed)?;
    let paths: Vec<&str> = bytes.keys().map(String::as_str).collect();
    let mut done = None;
    stage::commit(&staging, &options.into, &paths, || {
        let registered = register(&installed)?;
        if let Err(e) = write_replacing(&options.into.join(LOCKFILE), lock.as_bytes()) {
            unregister(registered);
            return Err(e);
        }
        done = Some(registered);
        Ok(())
    })?;
    let registered = done.expect("a committed install registered its modules");
    Ok((installed, registered))
}

/// The packages to install: with `locked`, exactly the versions the
/// lockfile (`before`) records (each still in the index); else `requests`
/// resolved with the recorded versions pinned.
fn chosen(
    requests: &[(String, String)],
    options: &InstallOptions,
    index: &PackageIndex,
    before: &[LockedPackage],
) -> Result<Vec<(PackageInfo, Option<LockedPackage>)>> {
    if !options.locked {
        let pinned = before
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect();
        return Ok(resolve(index, requests, pinned)?
            .into_iter()
            .map(|p| (p, None))
            .collect());
    }
    if before.is_empty() {
        lockfile::read_lockfile(&options.into.join(LOCKFILE))?;
    }
    before
        .iter()
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
                .map(|p| (p, Some(l.clone())))
        })
        .collect()
}

/// What the lockfile recorded of other packages, kept, unless this install
/// overwrites one of their files with other contents (an error).
fn still_recorded(
    before: Vec<LockedPackage>,
    installed: &[LockedPackage],
    files: &Files,
    options: &InstallOptions,
) -> Result<Vec<LockedPackage>> {
    let mut recorded: Vec<LockedPackage> = Vec::new();
    for old in before {
        if installed.iter().any(|p| p.name == old.name) {
            continue;
        }
        for file in &old.files {
            if let Some((digest, _)) = files.get(&file.path) {
                if *digest != file.sha256 {
                    return Err(Error::InvalidConfig {
                        name: old.name.clone(),
                        reason: format!(
                            "installed before in {}, its file {:?} would be replaced by another \
                             package's file of that name",
                            options.into.display(),
                            file.path
                        ),
                    });
                }
            }
        }
        recorded.push(old);
    }
    Ok(recorded)
}

/// Every file (relative path to digest and bytes), checked against its
/// digest, and what each package installs.
fn download(
    location: &Location,
    packages: Vec<(PackageInfo, Option<LockedPackage>)>,
) -> Result<(Files, Vec<LockedPackage>)> {
    let mut files = Files::new();
    let mut installed = Vec::new();
    let (mut count, mut total) = (0usize, 0u64);
    for (package, locked) in packages {
        let mut entries = Vec::new();
        for (n, file) in package.files.iter().enumerate() {
            check_package_path(&package.name, &file.path, n == 0)?;
            count += 1;
            if count > MAX_INSTALL_FILES {
                return Err(Error::InvalidConfig {
                    name: package.name.clone(),
                    reason: format!(
                        "the install would download more than {MAX_INSTALL_FILES} files"
                    ),
                });
            }
            let source = location.join(&file.url)?;
            let url = source.url();
            if let Some(locked) = &locked {
                check_locked(&package, n, file, locked)?;
            }
            let bytes = read_within(&source, MAX_INSTALL_BYTES - total)?;
            total += bytes.len() as u64;
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
    Ok((files, installed))
}

/// File `n` of `package` as the index lists it is the one the lockfile
/// (`locked`) records: the same path and digest.
fn check_locked(
    package: &PackageInfo,
    n: usize,
    file: &super::PackageFile,
    locked: &LockedPackage,
) -> Result<()> {
    match locked.files.get(n).filter(|f| f.path == file.path) {
        Some(f) if f.sha256 == file.sha256 => Ok(()),
        Some(f) => Err(Error::Integrity {
            subject: format!(
                "{} ({}@{}, locked)",
                file.path, package.name, package.version
            ),
            expected: f.sha256.clone(),
            actual: file.sha256.clone(),
        }),
        None => Err(Error::InvalidConfig {
            name: package.name.clone(),
            reason: format!(
                "the index lists file {:?}, which the lockfile does not",
                file.path
            ),
        }),
    }
}

/// The bytes at `source`, at most a file's cap and the `left` bytes the
/// install may still download (an error naming the install's cap when that
/// is the one passed).
fn read_within(source: &Location, left: u64) -> Result<Vec<u8>> {
    source.read(MAX_FILE_BYTES.min(left)).map_err(|e| match e {
        Error::Fetch { url, reason }
            if left < MAX_FILE_BYTES && reason.contains("larger than the limit") =>
        {
            Error::Fetch {
                url,
                reason: format!(
                    "the install would download more than {MAX_INSTALL_BYTES} bytes in all"
                ),
            }
        }
        other => other,
    })
}

/// Compiles each package's module from the staging folder (its imports
/// beside it) and checks it declares the name, version and dependencies
/// the index lists: a file that matches its digest but does not compile,
/// or that declares another module, is refused before anything is moved.
fn check_modules(staging: &Path, installed: &[LockedPackage], index: &PackageIndex) -> Result<()> {
    let registry = crate::registry::ModuleRegistry::new();
    for package in installed {
        let path = staging.join(&package.files[0].path);
        let shown = format!(
            "{} ({}@{})",
            package.files[0].url, package.name, package.version
        );
        let config = registry
            .describe_script(&path, staging)
            .map_err(|e| Error::InvalidConfig {
                name: package.name.clone(),
                reason: format!("{shown} does not compile: {e}"),
            })?
            .ok_or_else(|| Error::InvalidConfig {
                name: package.name.clone(),
                reason: format!("{shown} declares no MODULE: it is a library, not a module"),
            })?;
        let listed = semver::Version::parse(&package.version).ok();
        let declared = semver::Version::parse(config.version()).ok();
        if config.name() != package.name || listed.is_none() || declared != listed {
            return Err(Error::InvalidConfig {
                name: package.name.clone(),
                reason: format!(
                    "{shown} declares module {}@{}, not the package the index lists",
                    config.name(),
                    config.version()
                ),
            });
        }
        let dependencies = index
            .packages
            .get(&package.name)
            .and_then(|v| v.iter().find(|p| p.version == package.version))
            .map(|p| &p.dependencies);
        if dependencies.is_some_and(|listed| listed != config.dependencies()) {
            return Err(Error::InvalidConfig {
                name: package.name.clone(),
                reason: format!(
                    "{shown} declares other dependencies ({:?}) than the index lists ({:?})",
                    config.dependencies(),
                    dependencies.cloned().unwrap_or_default()
                ),
            });
        }
    }
    Ok(())
}
