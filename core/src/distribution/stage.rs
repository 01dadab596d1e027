//! Writing an install into its folder all or nothing: every file is first
//! written into a staging folder of its own inside the install folder, then
//! moved into place; if anything fails (a move, the lockfile), what was
//! moved is moved back, replaced files are restored and folders this
//! install created are removed. No symbolic link is followed: a file is
//! created new (`create_new`), and each folder on the way to a file must
//! be a real folder, not a link; it is opened once (`openat` with
//! `O_NOFOLLOW`) and the file moved in through it, so a folder swapped for
//! a link between the check and the move is not followed either.

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
    /// Folders created (each in its parent), in creation order.
    folders: Vec<(dir::Dir, String)>,
    /// Files moved into place (in their folder), with where the file they
    /// replaced was kept.
    moved: Vec<(dir::Dir, String, Option<PathBuf>)>,
}

impl Undo {
    fn roll_back(self) {
        for (folder, name, kept) in self.moved.into_iter().rev() {
            let _ = folder.remove(&name, false);
            if let Some(kept) = kept {
                let _ = folder.rename_in(&kept, &name);
            }
        }
        for (parent, name) in self.folders.into_iter().rev() {
            let _ = parent.remove(&name, true);
        }
    }
}

fn not_a_folder(at: &Path) -> Error {
    Error::Io {
        path: at.display().to_string(),
        source: std::io::Error::other(
            "is a symbolic link or a file, not a folder: nothing is written through it",
        ),
    }
}

/// The folder of `path`'s parent inside `root`, each folder on the way
/// opened without following links (created where missing, recorded in
/// `undo`): a symbolic link or a file on the way is refused, and one put
/// there after this check is never followed (the move goes through the
/// folder opened here, not through the path again).
fn folder_of(root: &dir::Dir, into: &Path, path: &str, undo: &mut Undo) -> Result<dir::Dir> {
    let mut folder = root.clone();
    let mut at = into.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match folder.kind(part) {
            Ok(Some(true)) => {}
            Ok(Some(false)) => return Err(not_a_folder(&at)),
            Ok(None) => {
                folder.make(part).map_err(io(&at))?;
                undo.folders.push((folder.clone(), part.to_string()));
            }
            Err(e) => return Err(io(&at)(e)),
        }
        folder = match folder.child(part) {
            Ok(child) => child,
            Err(e) if dir::is_not_a_folder(&e) => return Err(not_a_folder(&at)),
            Err(e) => return Err(io(&at)(e)),
        };
    }
    Ok(folder)
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
        let root = dir::Dir::open(into).map_err(io(into))?;
        for (n, path) in paths.iter().enumerate() {
            let folder = folder_of(&root, into, path, &mut undo)?;
            let target = into.join(path);
            let name = path.rsplit('/').next().unwrap_or(path);
            let previous = match folder.kind(name) {
                Ok(Some(true)) => {
                    return Err(Error::Io {
                        path: target.display().to_string(),
                        source: std::io::Error::other("is a folder, where a file is installed"),
                    })
                }
                // A file, or a link (moved aside itself, never followed).
                Ok(Some(false)) => {
                    let aside = kept.join(n.to_string());
                    folder.rename_out(name, &aside).map_err(io(&target))?;
                    Some(aside)
                }
                Ok(None) => None,
                Err(e) => return Err(io(&target)(e)),
            };
            if let Err(e) = folder.rename_in(&staging.root.join(path), name) {
                if let Some(aside) = previous {
                    let _ = folder.rename_in(&aside, name);
                }
                return Err(io(&target)(e));
            }
            undo.moved.push((folder, name.to_string(), previous));
        }
        write_lock()
    })();
    if outcome.is_err() {
        undo.roll_back();
    }
    outcome
}

/// A folder the install writes in, and what it does there by name: the
/// `*at` calls on an open folder (std has none of them), each a thin
/// wrapper over one system call on a descriptor it owns.
#[cfg(unix)]
#[allow(unsafe_code)]
mod dir {
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::rc::Rc;

    /// An open folder: names are looked up in it, never through a path
    /// again, so a folder swapped for a link after it was opened is not
    /// followed.
    #[derive(Clone)]
    pub(super) struct Dir(Rc<OwnedFd>);

    fn c(bytes: &[u8]) -> io::Result<CString> {
        CString::new(bytes).map_err(|_| io::Error::other("a name holds a NUL byte"))
    }

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn open_at(at: RawFd, name: &CString, follow: bool) -> io::Result<Dir> {
        let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        // SAFETY: `name` is a NUL-terminated string that outlives the call.
        let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
        check(fd)?;
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(Dir(Rc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// An error opening a child that is a symbolic link or not a folder.
    pub(super) fn is_not_a_folder(e: &io::Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
    }

    impl Dir {
        /// The install folder itself (a link to it is the user's choice).
        pub(super) fn open(path: &Path) -> io::Result<Dir> {
            open_at(libc::AT_FDCWD, &c(path.as_os_str().as_bytes())?, true)
        }

        fn fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }

        /// Folder `name` in this one, a link there not followed.
        pub(super) fn child(&self, name: &str) -> io::Result<Dir> {
            open_at(self.fd(), &c(name.as_bytes())?, false)
        }

        /// `Some(true)` for a folder, `Some(false)` for anything else (a
        /// link is not followed), `None` when nothing has that name.
        pub(super) fn kind(&self, name: &str) -> io::Result<Option<bool>> {
            let name = c(name.as_bytes())?;
            // SAFETY: an all-zero `stat` is a valid value to be written over.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: valid fd, NUL-terminated name, `st` writable.
            let rc = unsafe {
                libc::fstatat(self.fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW)
            };
            match check(rc) {
                Ok(()) => Ok(Some(st.st_mode & libc::S_IFMT == libc::S_IFDIR)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }

        pub(super) fn make(&self, name: &str) -> io::Result<()> {
            let name = c(name.as_bytes())?;
            // SAFETY: valid fd and NUL-terminated name.
            check(unsafe { libc::mkdirat(self.fd(), name.as_ptr(), 0o777) })
        }

        /// Moves `name` in this folder to the path `to`.
        pub(super) fn rename_out(&self, name: &str, to: &Path) -> io::Result<()> {
            let (name, to) = (c(name.as_bytes())?, c(to.as_os_str().as_bytes())?);
            // SAFETY: valid fds and NUL-terminated names.
            check(unsafe { libc::renameat(self.fd(), name.as_ptr(), libc::AT_FDCWD, to.as_ptr()) })
        }

        /// Moves the path `from` to `name` in this folder.
        pub(super) fn rename_in(&self, from: &Path, name: &str) -> io::Result<()> {
            let (from, name) = (c(from.as_os_str().as_bytes())?, c(name.as_bytes())?);
            // SAFETY: valid fds and NUL-terminated names.
            check(unsafe {
                libc::renameat(libc::AT_FDCWD, from.as_ptr(), self.fd(), name.as_ptr())
            })
        }

        /// Removes the file (or, with `folder`, the empty folder) `name`.
        pub(super) fn remove(&self, name: &str, folder: bool) -> io::Result<()> {
            let name = c(name.as_bytes())?;
            let flags = if folder { libc::AT_REMOVEDIR } else { 0 };
            // SAFETY: valid fd and NUL-terminated name.
            check(unsafe { libc::unlinkat(self.fd(), name.as_ptr(), flags) })
        }
    }
}

/// A folder the install writes in, by path (where there is no `openat`).
#[cfg(not(unix))]
mod dir {
    use std::io;
    use std::path::{Path, PathBuf};

    #[derive(Clone)]
    pub(super) struct Dir(PathBuf);

    pub(super) fn is_not_a_folder(_: &io::Error) -> bool {
        false
    }

    impl Dir {
        pub(super) fn open(path: &Path) -> io::Result<Dir> {
            Ok(Dir(path.to_path_buf()))
        }
        pub(super) fn child(&self, name: &str) -> io::Result<Dir> {
            Ok(Dir(self.0.join(name)))
        }
        pub(super) fn kind(&self, name: &str) -> io::Result<Option<bool>> {
            match self.0.join(name).symlink_metadata() {
                Ok(meta) => Ok(Some(meta.is_dir())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }
        pub(super) fn make(&self, name: &str) -> io::Result<()> {
            std::fs::create_dir(self.0.join(name))
        }
        pub(super) fn rename_out(&self, name: &str, to: &Path) -> io::Result<()> {
            std::fs::rename(self.0.join(name), to)
        }
        pub(super) fn rename_in(&self, from: &Path, name: &str) -> io::Result<()> {
            std::fs::rename(from, self.0.join(name))
        }
        pub(super) fn remove(&self, name: &str, folder: bool) -> io::Result<()> {
            match folder {
                true => std::fs::remove_dir(self.0.join(name)),
                false => std::fs::remove_file(self.0.join(name)),
            }
        }
    }
}
