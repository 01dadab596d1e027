//! What the watcher applies: a folder's files as the registry should hold
//! them (load, reload, remove, reject), the capped read of one file, and
//! the health of the folder itself (gone, replaced, unreadable).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Phase, ReloadCallback, ReloadEvent, ReloadKind, Shared};
use crate::audit::Outcome;
use crate::config::{Implementation, ModuleConfig};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;
use crate::registry::{ModuleRegistry, Replace};

/// What one file of the folder gave.
struct Tracked {
    sha256: String,
    /// `None` for a library (no `MODULE`): imported by the others.
    module: Option<TrackedModule>,
}

struct TrackedModule {
    name: String,
    kind: ModuleKind,
    /// The registrations this file made, one per version, latest last.
    registered: Vec<ModuleInfo>,
}

impl TrackedModule {
    fn latest(&self) -> &ModuleInfo {
        self.registered
            .last()
            .expect("a tracked module registered something")
    }

    /// Whether its latest version imports the library `stem`.
    fn imports(&self, stem: &str) -> bool {
        match self.latest().implementation() {
            Implementation::Rhai(source) => source.imports.iter().any(|i| i.path == stem),
            _ => false,
        }
    }
}

/// Which folder this is, so that another one put at its path is noticed:
/// its device and inode, and its creation time where the file system keeps
/// one (a folder deleted and made again at once often gets the same inode
/// number back).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Identity {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
    created: Option<std::time::SystemTime>,
}

impl Identity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Identity {
                device: metadata.dev(),
                inode: metadata.ino(),
                created: metadata.created().ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Identity {
                created: metadata.created().ok(),
            }
        }
    }
}

pub(super) fn is_script(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "rhai")
}

/// Why a file's text was not read: an error for its `rejected` event, and
/// the key under which the same refusal is not repeated.
struct Unread {
    error: String,
    key: Option<String>,
}

/// Reads a script of at most [`MAX_SCRIPT_BYTES`]: the size is checked
/// before reading and at most one byte past the cap is read (a file
/// growing meanwhile is caught too). Opened without blocking, so a FIFO
/// put in a file's place cannot stall the watch; only regular files are
/// read.
fn read_capped(path: &Path) -> Result<String, Unread> {
    use crate::script::Unreadable;
    crate::script::read_bounded(path).map_err(|why| {
        let key = match &why {
            Unreadable::TooBig(size) => Some(format!(
                "too big: {}",
                size.map_or_else(|| "more than that".to_string(), |n| n.to_string())
            )),
            Unreadable::NotUtf8(bytes, _) => {
                Some(format!("not utf-8: {}", crate::native::sha256_hex(bytes)))
            }
            Unreadable::Io(_) | Unreadable::NotAFile => None,
        };
        Unread {
            error: why.into_error(path).report(),
            key,
        }
    })
}

/// The folder's state as the watcher applied it.
pub(super) struct Folder {
    registry: ModuleRegistry,
    pub(super) dir: PathBuf,
    /// The path the watch was asked for, when it reached `dir` through a
    /// symbolic link: re-pointed, it names another folder.
    named: Option<PathBuf>,
    identity: Identity,
    files: HashMap<PathBuf, Tracked>,
    /// The digest of the text last rejected for a file: the same text is
    /// not rejected again (an editor's save can arrive as several events).
    rejected: HashMap<PathBuf, String>,
    callback: Option<ReloadCallback>,
    shared: Arc<Shared>,
}

impl Folder {
    pub(super) fn new(
        registry: ModuleRegistry,
        dir: PathBuf,
        metadata: &std::fs::Metadata,
        callback: Option<ReloadCallback>,
        shared: Arc<Shared>,
    ) -> Self {
        Folder {
            registry,
            dir,
            named: None,
            identity: Identity::of(metadata),
            files: HashMap::new(),
            rejected: HashMap::new(),
            callback,
            shared,
        }
    }

    /// Watches for `given` (the path asked for) to keep leading to the
    /// folder, when it reached it through a symbolic link.
    pub(super) fn follow_name(&mut self, given: &Path) {
        let absolute = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
        if absolute != self.dir {
            self.named = Some(absolute);
        }
    }

    pub(super) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn emit(&self, event: ReloadEvent) {
        (self.registry.metrics_store()).add(crate::metrics::RELOADS, &[event.kind.as_str()], 1);
        if matches!(event.kind, ReloadKind::Rejected | ReloadKind::Stopped) {
            let operation = match event.kind {
                ReloadKind::Stopped => "watch-stopped",
                _ => "reload-rejected",
            };
            self.registry.audit_log().push(
                operation,
                ModuleKind::Module,
                event
                    .name
                    .as_deref()
                    .unwrap_or(&event.path.display().to_string()),
                event.version.clone(),
                Outcome::Error,
                event.error.clone(),
            );
        }
        if let Some(callback) = &self.callback {
            // A stop asked for meanwhile need not wait for the callback
            // (which may block): nothing is applied once it returns.
            self.shared.set_phase(Phase::Calling);
            // A panicking callback must not end the watch.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&event)));
            self.shared.set_phase(Phase::Applying);
        }
    }

    fn rejected(&self, path: &Path, error: String) {
        let module = self.files.get(path).and_then(|t| t.module.as_ref());
        self.emit(ReloadEvent {
            kind: ReloadKind::Rejected,
            path: path.to_path_buf(),
            name: module.map(|m| m.name.clone()),
            version: module.map(|m| m.latest().version_text().to_string()),
            error: Some(error),
        });
    }

    /// Rejects the text of digest `sha256` at `path`, once.
    fn reject_text(&mut self, path: &Path, sha256: String, error: String) {
        self.rejected.insert(path.to_path_buf(), sha256);
        self.rejected(path, error);
    }

    /// Applies what `path` now holds; `force` reloads even unchanged text
    /// (a library it imports changed). Nothing once the watch is stopping.
    pub(super) fn apply(&mut self, path: &Path, force: bool) {
        if self.shared.stopping() {
            return;
        }
        if !path.is_file() {
            self.remove(path);
            return;
        }
        let source = match read_capped(path) {
            Ok(source) => source,
            Err(Unread { error, key: None }) => return self.rejected(path, error),
            Err(Unread {
                error,
                key: Some(key),
            }) => {
                if self.rejected.get(path) == Some(&key) {
                    return;
                }
                return self.reject_text(path, key, error);
            }
        };
        let sha256 = crate::native::sha256_hex(source.as_bytes());
        if !force
            && (self.files.get(path).is_some_and(|t| t.sha256 == sha256)
                || self.rejected.get(path) == Some(&sha256))
        {
            return;
        }
        self.rejected.remove(path);
        let config = match self
            .registry
            .describe_script_source(path, &source, &self.dir)
        {
            Ok(config) => config,
            Err(e) => return self.reject_text(path, sha256, e.report()),
        };
        let Some(config) = config else {
            return self.apply_library(path, sha256);
        };
        if let Some(error) = self.conflict(path, &config) {
            return self.reject_text(path, sha256, error);
        }
        let existed = self.files.get(path).is_some_and(|t| t.module.is_some());
        let operation = if existed { "reload" } else { "load_script" };
        let info = match self
            .registry
            .register_with_operation(config, Replace::Scripts, operation)
        {
            Ok(info) => info,
            Err(e) => return self.reject_text(path, sha256, e.report()),
        };
        let tracked = self.files.entry(path.to_path_buf()).or_insert(Tracked {
            sha256: String::new(),
            module: None,
        });
        tracked.sha256 = sha256;
        let module = tracked.module.get_or_insert_with(|| TrackedModule {
            name: info.name().to_string(),
            kind: info.kind(),
            registered: Vec::new(),
        });
        module.registered.retain(|r| r.version() != info.version());
        module.registered.push(info.clone());
        self.emit(ReloadEvent {
            kind: if existed {
                ReloadKind::Reloaded
            } else {
                ReloadKind::Loaded
            },
            path: path.to_path_buf(),
            name: Some(info.name().to_string()),
            version: Some(info.version_text().to_string()),
            error: None,
        });
    }

    /// Why `config` (from `path`) may not be applied, if it may not.
    fn conflict(&self, path: &Path, config: &ModuleConfig) -> Option<String> {
        if let Some(module) = self.files.get(path).and_then(|t| t.module.as_ref()) {
            if module.name != config.name() || module.kind != config.kind() {
                return Some(format!(
                    "the file declared {} {:?} and now declares {} {:?}; a watched file keeps \
                     its name (delete it and add a new file to rename a module)",
                    module.kind,
                    module.name,
                    config.kind(),
                    config.name()
                ));
            }
        }
        self.files.iter().find_map(|(other, t)| {
            let m = t.module.as_ref()?;
            let clash = other != path
                && m.name == config.name()
                && m.kind == config.kind()
                && m.registered
                    .iter()
                    .any(|r| r.version_text() == config.version());
            clash.then(|| {
                format!(
                    "{}@{} is already declared by {}",
                    config.name(),
                    config.version(),
                    other.display()
                )
            })
        })
    }

    /// A file without `MODULE`: a library, or a module file emptied.
    fn apply_library(&mut self, path: &Path, sha256: String) {
        if self.files.get(path).is_some_and(|t| t.module.is_some()) {
            return self.reject_text(
                path,
                sha256,
                "the file no longer declares a MODULE (delete it to remove the module)".into(),
            );
        }
        self.files.insert(
            path.to_path_buf(),
            Tracked {
                sha256,
                module: None,
            },
        );
        self.reload_importers(path);
    }

    /// Reloads every module importing the library at `path`.
    fn reload_importers(&mut self, path: &Path) {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            return;
        };
        let mut importers: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(_, t)| t.module.as_ref().is_some_and(|m| m.imports(stem)))
            .map(|(p, _)| p.clone())
            .collect();
        importers.sort();
        for importer in importers {
            self.apply(&importer, true);
        }
    }

    /// `path` is gone: its modules are unregistered (a library's importers
    /// are reloaded, and so rejected while they need it).
    fn remove(&mut self, path: &Path) {
        self.rejected.remove(path);
        let Some(tracked) = self.files.remove(path) else {
            return;
        };
        let Some(module) = tracked.module else {
            return self.reload_importers(path);
        };
        let mut errors = Vec::new();
        for info in &module.registered {
            if let Err(e) = self.registry.unregister_exact(info) {
                errors.push(e.report());
            }
        }
        self.emit(ReloadEvent {
            kind: ReloadKind::Removed,
            path: path.to_path_buf(),
            name: Some(module.name.clone()),
            version: Some(module.latest().version_text().to_string()),
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        });
    }

    /// Reads the whole folder again (at start, and after the system
    /// dropped events: thousands of changes at once): every script file is
    /// applied, every tracked one no longer there removed.
    pub(super) fn rescan(&mut self) -> std::io::Result<()> {
        let mut present: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_script(p) && p.is_file())
            .collect();
        present.sort();
        let mut gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(p))
            .cloned()
            .collect();
        gone.sort();
        for path in present.iter().chain(&gone) {
            self.apply(path, false);
        }
        Ok(())
    }

    /// Why the folder can no longer be watched, if it cannot: gone
    /// (deleted, or renamed away), replaced by a file or by another folder,
    /// or unreadable.
    pub(super) fn problem(&self) -> Option<String> {
        let dir = self.dir.display();
        let metadata = match std::fs::metadata(&self.dir) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(format!("the watched folder {dir} was removed or renamed"))
            }
            Err(e) => return Some(format!("the watched folder {dir} cannot be read: {e}")),
        };
        if !metadata.is_dir() {
            return Some(format!("the watched folder {dir} was replaced by a file"));
        }
        if Identity::of(&metadata) != self.identity {
            return Some(format!(
                "the watched folder {dir} was replaced by another folder (watch the new one)"
            ));
        }
        if let Err(e) = std::fs::read_dir(&self.dir) {
            return Some(format!("the watched folder {dir} cannot be read: {e}"));
        }
        let named = self.named.as_ref()?;
        match std::fs::canonicalize(named) {
            Ok(now) if now == self.dir => None,
            Ok(now) => Some(format!(
                "{} now leads to another folder ({}), not the watched {dir} (watch it anew)",
                named.display(),
                now.display()
            )),
            Err(e) => Some(format!(
                "{} no longer leads to the watched folder {dir}: {e}",
                named.display()
            )),
        }
    }

    /// Ends the watch for `reason`: the modules it loaded are unregistered
    /// (a `removed` event each: the watch can no longer vouch for them),
    /// then a `stopped` event names the reason.
    pub(super) fn end(&mut self, reason: String) {
        let mut paths: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(_, t)| t.module.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        paths.sort();
        for path in paths {
            if self.shared.stopping() {
                break;
            }
            self.remove(&path);
        }
        self.files.clear();
        self.shared.fail(reason.clone());
        self.emit(ReloadEvent {
            kind: ReloadKind::Stopped,
            path: self.dir.clone(),
            name: None,
            version: None,
            error: Some(reason),
        });
    }
}
