//! The lockfile (`module-registry.lock`) and the lock on an install folder
//! that keeps installs from several threads or processes from losing each
//! other's packages.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fetch::{open_regular, MAX_INDEX_BYTES};
use crate::error::{Error, Result};

/// The lockfile written beside the installed files.
pub const LOCKFILE: &str = "module-registry.lock";

/// The lockfile format this version writes and reads.
const LOCK_FORMAT: u32 = 1;

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

/// The packages `module-registry.lock` at `path` records. A lockfile of
/// another format version, one naming a package twice, or one that is not
/// a regular file (a FIFO, a device, a folder, a symbolic link) is refused.
pub fn read_lockfile(path: &Path) -> Result<Vec<LockedPackage>> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = open_regular(path, false).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    parse_lockfile(path, &bytes)
}

/// [`read_lockfile`] for the lockfile's bytes (`path` names it in errors).
pub(crate) fn parse_lockfile(path: &Path, bytes: &[u8]) -> Result<Vec<LockedPackage>> {
    let bad = |why: String| Error::Serialization {
        message: format!("{} is not a lockfile: {why}", path.display()),
    };
    if bytes.len() as u64 > MAX_INDEX_BYTES {
        return Err(bad(format!(
            "larger than the limit of {MAX_INDEX_BYTES} bytes"
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let lock: Lockfile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    if lock.version != LOCK_FORMAT {
        return Err(bad(format!(
            "it has format version {}; this version reads {LOCK_FORMAT}",
            lock.version
        )));
    }
    let mut names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(format!("it records package {:?} twice", twice[0])));
    }
    for package in &lock.packages {
        crate::validate::validate_name("package name", &package.name)?;
        crate::validate::parse_version(&package.name, &package.version)?;
        for (n, file) in package.files.iter().enumerate() {
            super::install::check_package_path(&package.name, &file.path, n == 0)?;
        }
    }
    Ok(lock.packages)
}

/// What the lockfile in `into` records now: nothing if there is none.
pub(crate) fn existing(into: &Path) -> Result<Vec<LockedPackage>> {
    let path = into.join(LOCKFILE);
    match path.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        _ => read_lockfile(&path),
    }
}

/// The lockfile's text for `packages`.
pub(crate) fn render(packages: Vec<LockedPackage>) -> Result<String> {
    toml::to_string(&Lockfile {
        version: LOCK_FORMAT,
        packages,
    })
    .map_err(|e| Error::Serialization {
        message: format!("cannot write the lockfile: {e}"),
    })
}

/// An exclusive lock on an install folder (an advisory `flock` on the
/// folder itself, so no extra file is left behind), held while one install
/// reads the lockfile, writes its files and writes the lockfile again:
/// installs from several threads or processes into one folder take turns.
pub(crate) struct FolderLock {
    _folder: std::fs::File,
    /// The folders this install created (the install folder and any
    /// missing parents, deepest first): removed again if it fails and they
    /// are still empty.
    pub(crate) created: Vec<PathBuf>,
}

impl FolderLock {
    /// Removes the folders this install created, if still empty.
    pub(crate) fn remove_created(&self) {
        for folder in &self.created {
            if std::fs::remove_dir(folder).is_err() {
                break;
            }
        }
    }

    /// Locks `into`, creating it (and its parents) if missing.
    pub(crate) fn acquire(into: &Path) -> Result<FolderLock> {
        let io = |source| Error::Io {
            path: into.display().to_string(),
            source,
        };
        let mut created = Vec::new();
        for _ in 0..8 {
            if !into.exists() {
                let missing: Vec<PathBuf> = into
                    .ancestors()
                    .take_while(|a| !a.as_os_str().is_empty() && a.symlink_metadata().is_err())
                    .map(Path::to_path_buf)
                    .collect();
                std::fs::create_dir_all(into).map_err(io)?;
                created = missing;
            }
            let folder = match std::fs::File::open(into) {
                Ok(folder) => folder,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            if !folder.metadata().map_err(io)?.is_dir() {
                return Err(io(std::io::Error::other("not a folder")));
            }
            lock_exclusive(&folder).map_err(io)?;
            // Another install may have removed the folder (it created it and
            // failed) while this one waited: lock the folder that is there now.
            if same_file(&folder, into) {
                return Ok(FolderLock {
                    _folder: folder,
                    created,
                });
            }
        }
        Err(io(std::io::Error::other(
            "the folder kept being removed while waiting for its lock",
        )))
    }
}

/// Waits for an exclusive `flock` on `file` (released when it is closed).
/// `File::lock` does the same from Rust 1.89, past this crate's MSRV.
#[cfg(unix)]
#[allow(unsafe_code)]
fn lock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: `flock` on a descriptor this `File` owns and keeps open
        // for the whole call; it reads or writes no memory of ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Without `flock`, installs into one folder are not kept apart.
#[cfg(not(unix))]
fn lock_exclusive(_: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), path.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::File, path: &Path) -> bool {
    path.is_dir()
}
