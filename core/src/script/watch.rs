//! Script modules reloaded as their files change: a folder watched with
//! `notify` (events debounced, so that an editor's truncate-and-write,
//! write-and-rename or delete-and-create ends in one reload).
//!
//! What the folder's files say is applied one file at a time, each under
//! the registry's usual all-or-nothing registration: a new file is loaded, a
//! changed one reloaded (same version: replaced; new version: registered
//! beside the old), a deleted one unregistered. A changed file that does
//! not compile, or declares another name than before, is rejected: the old
//! code keeps serving. Instances already built keep their code until
//! closed; calls running finish on it.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use parking_lot::Mutex;

use crate::access::{Caller, Permission};
use crate::audit::Outcome;
use crate::config::{Implementation, ModuleConfig};
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;
use crate::registry::{ModuleRegistry, Replace};

/// The stack of the watcher's thread, which compiles scripts: a main
/// thread's size (only the pages used are committed).
const WATCH_THREAD_STACK: usize = 64 * 1024 * 1024;

/// How long a file must be quiet before its events are acted on.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// What happened to a watched file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadKind {
    /// A module was loaded (at start, or a new file).
    Loaded,
    /// A changed file was loaded again.
    Reloaded,
    /// A deleted file's modules were unregistered.
    Removed,
    /// A file was not applied; the old version (if any) keeps serving.
    Rejected,
}

impl ReloadKind {
    /// `"loaded"`, `"reloaded"`, `"removed"` or `"rejected"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadKind::Loaded => "loaded",
            ReloadKind::Reloaded => "reloaded",
            ReloadKind::Removed => "removed",
            ReloadKind::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ReloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a [`ScriptWatcher`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadEvent {
    /// What happened.
    pub kind: ReloadKind,
    /// The file.
    pub path: PathBuf,
    /// The module's name, when known.
    pub name: Option<String>,
    /// The module's version, when known.
    pub version: Option<String>,
    /// Why a file was rejected.
    pub error: Option<String>,
}

impl fmt::Display for ReloadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.path.display())?;
        if let Some(name) = &self.name {
            write!(f, " ({name}")?;
            if let Some(version) = &self.version {
                write!(f, "@{version}")?;
            }
            f.write_str(")")?;
        }
        if let Some(error) = &self.error {
            write!(f, ": {error}")?;
        }
        Ok(())
    }
}

/// What the watcher calls with each event (on its own thread, no lock held).
pub type ReloadCallback = Arc<dyn Fn(&ReloadEvent) + Send + Sync>;

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

/// The folder's state as the watcher applied it.
struct Folder {
    registry: ModuleRegistry,
    dir: PathBuf,
    files: HashMap<PathBuf, Tracked>,
    /// The digest of the text last rejected for a file: the same text is
    /// not rejected again (an editor's save can arrive as several events).
    rejected: HashMap<PathBuf, String>,
    callback: Option<ReloadCallback>,
}

/// A running watch of a script folder; [`stop`](Self::stop) (or dropping it)
/// ends it. The modules it loaded stay registered.
pub struct ScriptWatcher {
    dir: PathBuf,
    debouncer: Mutex<Option<Debouncer<RecommendedWatcher, RecommendedCache>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_id: ThreadId,
    stopped: Arc<AtomicBool>,
}

impl fmt::Debug for ScriptWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptWatcher")
            .field("folder", &self.dir)
            .field("running", &self.is_running())
            .finish()
    }
}

fn is_script(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "rhai")
}

impl Folder {
    fn emit(&self, event: ReloadEvent) {
        if event.kind == ReloadKind::Rejected {
            self.registry.audit_log().push(
                "reload-rejected",
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
            // A panicking callback must not end the watch.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&event)));
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
    /// (a library it imports changed).
    fn apply(&mut self, path: &Path, force: bool) {
        if !path.is_file() {
            self.remove(path);
            return;
        }
        let source = match crate::script::read(path) {
            Ok(source) => source,
            Err(e) => return self.rejected(path, e.report()),
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
}

impl ModuleRegistry {
    /// Loads every `*.rhai` module in `dir` (a `loaded` event each, a
    /// `rejected` one for a file that fails), then watches the folder and
    /// applies each change as it settles, calling `on_event` on the
    /// watcher's thread for each. Needs `admin` under a policy (it reads
    /// files); the watch acts as the principal that started it.
    ///
    /// ```no_run
    /// use module_registry::ModuleRegistry;
    ///
    /// let registry = ModuleRegistry::new();
    /// let watcher = registry.watch_scripts("scripts", |event| println!("{event}"))?;
    /// // ... edit scripts/*.rhai: new `create` calls get the new code ...
    /// watcher.stop();
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn watch_scripts(
        &self,
        dir: impl AsRef<Path>,
        on_event: impl Fn(&ReloadEvent) + Send + Sync + 'static,
    ) -> Result<ScriptWatcher> {
        self.watch_scripts_with(dir, Some(Arc::new(on_event)))
    }

    /// [`watch_scripts`](Self::watch_scripts) with an optional callback.
    pub fn watch_scripts_with(
        &self,
        dir: impl AsRef<Path>,
        on_event: Option<ReloadCallback>,
    ) -> Result<ScriptWatcher> {
        self.authorize(Permission::Admin, "watch_scripts", None)?;
        let given = dir.as_ref();
        let io = |source| Error::Io {
            path: given.display().to_string(),
            source,
        };
        let dir = std::fs::canonicalize(given).map_err(io)?;
        if !dir.is_dir() {
            return Err(Error::invalid_input(format!(
                "{} is not a folder",
                given.display()
            )));
        }
        let (tx, rx) = mpsc::channel::<DebounceEventResult>();
        // Watch first, then load: a file written meanwhile is seen twice
        // (the second time unchanged, so ignored) rather than never.
        let mut debouncer = new_debouncer(DEBOUNCE, Some(DEBOUNCE / 4), tx)
            .map_err(|e| Error::invalid_input(format!("cannot watch {}: {e}", dir.display())))?;
        debouncer
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| Error::invalid_input(format!("cannot watch {}: {e}", dir.display())))?;
        let mut folder = Folder {
            registry: self.clone(),
            dir: dir.clone(),
            files: HashMap::new(),
            rejected: HashMap::new(),
            callback: on_event,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_script(p))
            .collect();
        paths.sort();
        for path in &paths {
            folder.apply(path, false);
        }
        let stopped = Arc::new(AtomicBool::new(false));
        let caller = Caller::current();
        let flag = stopped.clone();
        let worker = std::thread::Builder::new()
            .name("module-registry-watch".into())
            .stack_size(WATCH_THREAD_STACK)
            .spawn(move || caller.enter(|| run(folder, rx, &flag)))
            .map_err(|e| Error::invalid_input(format!("cannot start the watcher thread: {e}")))?;
        Ok(ScriptWatcher {
            dir,
            worker_id: worker.thread().id(),
            debouncer: Mutex::new(Some(debouncer)),
            worker: Mutex::new(Some(worker)),
            stopped,
        })
    }
}

/// The watcher's thread: applies each settled batch of changes.
fn run(mut folder: Folder, rx: mpsc::Receiver<DebounceEventResult>, stopped: &AtomicBool) {
    for batch in rx {
        if stopped.load(Ordering::Acquire) {
            break;
        }
        let Ok(events) = batch else { continue };
        // Reading a file is an event too (`Access`): reacting to it would
        // read the file again, forever.
        let paths: BTreeSet<PathBuf> = events
            .iter()
            .filter(|e| !matches!(e.kind, EventKind::Access(_)))
            .flat_map(|e| e.paths.iter())
            .filter(|p| is_script(p) && p.parent() == Some(folder.dir.as_path()))
            .cloned()
            .collect();
        for path in paths {
            if stopped.load(Ordering::Acquire) {
                return;
            }
            folder.apply(&path, false);
        }
    }
}

impl ScriptWatcher {
    /// The folder watched (its canonical path).
    pub fn folder(&self) -> &Path {
        &self.dir
    }

    /// Whether the watch still runs.
    pub fn is_running(&self) -> bool {
        !self.stopped.load(Ordering::Acquire)
    }

    /// Ends the watch (once; later calls do nothing): no change is applied
    /// after this returns, except when called from the watcher's own
    /// callback, where the change being applied completes first.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(debouncer) = self.debouncer.lock().take() {
            // Ends the debouncer's thread, which drops the channel's
            // sender: the worker's loop ends.
            debouncer.stop();
        }
        if std::thread::current().id() == self.worker_id {
            return;
        }
        if let Some(worker) = self.worker.lock().take() {
            let _ = worker.join();
        }
    }
}

impl Drop for ScriptWatcher {
    fn drop(&mut self) {
        self.stop();
    }
}
