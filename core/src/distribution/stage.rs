//! Writing an install into its folder all or nothing: every file is first
//! written into a staging folder of its own inside the install folder, then
//! moved into place; if anything fails (a move, the lockfile), what was
//! moved is moved back, replaced files are restored and folders this
//! install created are removed. No symbolic link is followed: a file is
//! created new (`create_new`), and each folder on the way to a file must
//! be a real folder, not a link.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    move |source| Error::Io { path, source }
}

/// A staging folder inside an install folder, removed when dropped.
pub(crate) struct Staging {
    pub(crate) root: PathBuf,
}

impl Staging {
    /// A new staging folder in `into`, named for this process and call
    /// (never one another thread or process uses).
    pub(crate) fn new(into: &Path) -> Result<Staging> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let root = into.join(format!(
                ".module-registry-install-{}-{n}",
                std::process::id()
            ));
            match std::fs::create_dir(&root) {
                Ok(()) => return Ok(Staging { root }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < u64::MAX => {}
                Err(e) => return Err(io(&root)(e)),
            }
        }
    }

    /// Writes every file (relative path to bytes) into the staging folder.
    pub(crate) fn write(&self, files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        use std::io::Write;
        for (path, bytes) in files {
            let target = self.root.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(io(&target))?;
            file.write_all(bytes).map_err(io(&target))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What one install did to its folder, to undo it.
#[derive(Default)]
struct Undo {
    /// Folders created, in creation order.
    folders: Vec<PathBuf>,
    /// Files moved into place, with where the file they replaced was kept.
    moved: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Undo {
    fn roll_back(self) {
        for (target, kept) in self.moved.into_iter().rev() {
            let _ = std::fs::remove_file(&target);
            if let Some(kept) = kept {
                let _ = std::fs::rename(&kept, &target);
            }
        }
        for folder in self.folders.into_iter().rev() {
            let _ = std::fs::remove_dir(&folder);
        }
    }
}

/// The folders from `into` to `path`'s parent exist as real folders
/// (created where missing, recorded in `undo`); a symbolic link or a file
/// on the way is refused.
fn folders_to(into: &Path, path: &str, undo: &mut Undo) -> Result<()> {
    let mut at = into.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match at.symlink_metadata() {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::Io {
                    path: at.display().to_string(),
                    source: std::io::Error::other(
                        "is a symbolic link or a file, not a folder: nothing is written through it",
                    ),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(io(&at))?;
                undo.folders.push(at.clone());
            }
            Err(e) => return Err(io(&at)(e)),
        }
    }
    Ok(())
}

/// Moves every staged file (relative paths) into `into`, then writes the
/// lockfile with `write_lock`; on any failure undoes all of it.
pub(crate) fn commit(
    staging: &Staging,
    into: &Path,
    paths: &[&str],
    write_lock: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let mut undo = Undo::default();
    let kept = staging.root.join(".replaced");
    let outcome = (|| -> Result<()> {
        std::fs::create_dir(&kept).map_err(io(&kept))?;
        for (n, path) in paths.iter().enumerate() {
            folders_to(into, path, &mut undo)?;
            let target = into.join(path);
            let previous = match target.symlink_metadata() {
                Ok(meta) if meta.is_dir() => {
                    return Err(Error::Io {
                        path: target.display().to_string(),
                        source: std::io::Error::other("is a folder, where a file is installed"),
                    })
                }
                // A file, or a link (moved aside itself, never followed).
                Ok(_) => {
                    let aside = kept.join(n.to_string());
                    std::fs::rename(&target, &aside).map_err(io(&target))?;
                    Some(aside)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io(&target)(e)),
            };
            let moved = std::fs::rename(staging.root.join(path), &target).map_err(io(&target));
            if let Err(e) = moved {
                if let Some(aside) = previous {
                    let _ = std::fs::rename(&aside, &target);
                }
                return Err(e);
            }
            undo.moved.push((target, previous));
        }
        write_lock()
    })();
    if outcome.is_err() {
        undo.roll_back();
    }
    outcome
}
