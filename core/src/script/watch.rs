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
//! closed; calls running finish on it. A script file is read only up to
//! [`MAX_SCRIPT_BYTES`].
//!
//! When the folder itself can no longer be watched (deleted, renamed away,
//! replaced by a file or by another folder, made unreadable), the watch
//! ends: the modules it loaded are unregistered (a `removed` event each),
//! a `stopped` event says why, [`ScriptWatcher::is_running`] turns false
//! and [`ScriptWatcher::error`] keeps the reason.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use parking_lot::{Condvar, Mutex};

use crate::access::{Caller, Permission};
use crate::error::{Error, Result};
use crate::registry::ModuleRegistry;

mod folder;

use folder::{is_script, Folder};

/// The largest script file a watch reads (as every script read): a larger
/// one is rejected unread, with an event naming the cap.
pub use super::MAX_SCRIPT_BYTES;

/// How often the folder itself is checked when no event comes (a parent
/// folder renamed sends none).
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

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
    /// The watch ended by itself: its folder can no longer be watched
    /// (`error` says why; `path` is the folder).
    Stopped,
}

impl ReloadKind {
    /// `"loaded"`, `"reloaded"`, `"removed"`, `"rejected"` or `"stopped"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadKind::Loaded => "loaded",
            ReloadKind::Reloaded => "reloaded",
            ReloadKind::Removed => "removed",
            ReloadKind::Rejected => "rejected",
            ReloadKind::Stopped => "stopped",
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

/// What the worker is doing, so that [`ScriptWatcher::stop`] waits for a
/// change being applied but not for a callback (which may block).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Waiting for the next change.
    Idle,
    /// Applying a change to the registry.
    Applying,
    /// In the callback.
    Calling,
    /// Ended.
    Done,
}

/// What the watcher's handle and its thread share.
struct Shared {
    stopped: AtomicBool,
    /// Why the watch ended by itself.
    error: Mutex<Option<String>>,
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock() = phase;
        self.changed.notify_all();
    }

    /// Enters `Applying` unless the watch is stopping (checked under the
    /// phase's lock, so a stop either sees the change coming or prevents it).
    fn begin(&self) -> bool {
        let mut phase = self.phase.lock();
        if self.stopping() {
            return false;
        }
        *phase = Phase::Applying;
        true
    }

    /// The watch ended by itself, for `reason`.
    fn fail(&self, reason: String) {
        self.error.lock().get_or_insert(reason);
        self.stopped.store(true, Ordering::Release);
    }
}

/// A running watch of a script folder; [`stop`](Self::stop) ends it
/// (dropping it asks it to end without waiting: see
/// [`signal_stop`](Self::signal_stop)). The modules it loaded stay registered.
pub struct ScriptWatcher {
    dir: PathBuf,
    debouncer: Mutex<Option<Debouncer<RecommendedWatcher, RecommendedCache>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_id: ThreadId,
    shared: Arc<Shared>,
}

impl fmt::Debug for ScriptWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptWatcher")
            .field("folder", &self.dir)
            .field("running", &self.is_running())
            .field("error", &self.error())
            .finish()
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
        let metadata = std::fs::metadata(&dir).map_err(io)?;
        if !metadata.is_dir() {
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
        let shared = Arc::new(Shared {
            stopped: AtomicBool::new(false),
            error: Mutex::new(None),
            phase: Mutex::new(Phase::Applying),
            changed: Condvar::new(),
        });
        let mut folder = Folder::new(
            self.clone(),
            dir.clone(),
            &metadata,
            on_event,
            shared.clone(),
        );
        folder.follow_name(given);
        folder.rescan().map_err(io)?;
        shared.set_phase(Phase::Idle);
        let caller = Caller::current().without_span();
        let worker = crate::threads::spawn(
            "module-registry-watch",
            crate::threads::MODULE_THREAD_STACK,
            move || {
                let shared = folder.shared();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    caller.enter(|| run(folder, rx))
                }));
                if ran.is_err() {
                    shared.fail("the watcher's thread panicked".into());
                    shared.set_phase(Phase::Done);
                }
            },
        )
        .map_err(|e| Error::invalid_input(format!("cannot start the watcher thread: {e}")))?;
        Ok(ScriptWatcher {
            dir,
            worker_id: worker.thread().id(),
            debouncer: Mutex::new(Some(debouncer)),
            worker: Mutex::new(Some(worker)),
            shared,
        })
    }
}

/// The watcher's thread: applies each settled batch of changes, and ends
/// the watch when its folder can no longer be watched.
fn run(mut folder: Folder, rx: mpsc::Receiver<DebounceEventResult>) {
    let shared = folder.shared();
    loop {
        let batch = match rx.recv_timeout(HEALTH_INTERVAL) {
            Ok(batch) => Some(batch),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if !shared.stopping() {
                    shared.fail("the folder's change notifications ended".into());
                }
                break;
            }
        };
        if !shared.begin() {
            break;
        }
        if let Some(reason) = folder.problem() {
            folder.end(reason);
            break;
        }
        // The system dropped events (thousands of changes at once), or the
        // watch reported an error: read the whole folder again.
        let events = match batch {
            None => {
                shared.set_phase(Phase::Idle);
                continue;
            }
            Some(Ok(events)) if !events.iter().any(|e| e.need_rescan()) => Some(events),
            Some(_) => None,
        };
        let Some(events) = events else {
            if let Err(e) = folder.rescan() {
                let reason = format!(
                    "the watched folder {} cannot be read: {e}",
                    folder.dir.display()
                );
                folder.end(reason);
                break;
            }
            shared.set_phase(Phase::Idle);
            continue;
        };
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
            folder.apply(&path, false);
        }
        shared.set_phase(Phase::Idle);
    }
    shared.set_phase(Phase::Done);
}

impl ScriptWatcher {
    /// The folder watched (its canonical path).
    pub fn folder(&self) -> &Path {
        &self.dir
    }

    /// Whether the watch still runs (false once stopped, or once it ended
    /// by itself: see [`error`](Self::error)).
    pub fn is_running(&self) -> bool {
        !self.shared.stopping()
    }

    /// Why the watch ended by itself (its folder was removed, renamed,
    /// replaced or made unreadable), if it did.
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().clone()
    }

    /// Ends the watch (once; later calls do nothing): no change is applied
    /// after this returns. A change being applied completes first; a
    /// callback running is not waited for (it may block), and nothing is
    /// applied after it returns. Called from the watcher's own callback,
    /// it returns at once.
    pub fn stop(&self) {
        self.signal_stop();
        if std::thread::current().id() == self.worker_id {
            return;
        }
        let mut phase = self.shared.phase.lock();
        while *phase == Phase::Applying {
            self.shared.changed.wait(&mut phase);
        }
        let in_callback = *phase == Phase::Calling;
        drop(phase);
        if in_callback {
            // Its thread ends when the callback returns.
            return;
        }
        if let Some(worker) = self.worker.lock().take() {
            if worker.join().is_err() {
                self.shared.fail("the watcher's thread panicked".into());
            }
        }
    }

    /// Asks the watch to end without waiting for anything: what dropping
    /// it does (a binding's handle, dropped by a garbage collector, must
    /// not wait for the watcher's thread, which may need that collector's
    /// lock to call back).
    pub fn signal_stop(&self) {
        {
            let _phase = self.shared.phase.lock();
            self.shared.stopped.store(true, Ordering::Release);
        }
        if let Some(debouncer) = self.debouncer.lock().take() {
            // Ends the debouncer's thread, which drops the channel's
            // sender: the worker's loop ends.
            debouncer.stop_nonblocking();
        }
    }
}

impl Drop for ScriptWatcher {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_debouncer_full::notify::event::{Event, Flag};
    use notify_debouncer_full::DebouncedEvent;

    /// The run loop on a folder, fed by hand: what the system would send.
    fn feed(label: &str, batches: Vec<DebounceEventResult>) -> (ModuleRegistry, Vec<ReloadKind>) {
        let dir = std::env::temp_dir().join(format!("mr-watch-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let registry = ModuleRegistry::new();
        let shared = Arc::new(Shared {
            stopped: AtomicBool::new(false),
            error: Mutex::new(None),
            phase: Mutex::new(Phase::Idle),
            changed: Condvar::new(),
        });
        let seen: Arc<Mutex<Vec<ReloadKind>>> = Arc::default();
        let sink = seen.clone();
        let callback: ReloadCallback = Arc::new(move |e: &ReloadEvent| sink.lock().push(e.kind));
        let metadata = std::fs::metadata(&dir).unwrap();
        let folder = Folder::new(
            registry.clone(),
            dir.clone(),
            &metadata,
            Some(callback),
            shared,
        );
        // Files written while no event said so (the system dropped them).
        for i in 0..3 {
            std::fs::write(
                dir.join(format!("m{i}.rhai")),
                format!("const MODULE = #{{ name: \"{label}-{i}\" }};\nfn process(x) {{ x }}\n"),
            )
            .unwrap();
        }
        let (tx, rx) = mpsc::channel();
        for batch in batches {
            tx.send(batch).unwrap();
        }
        drop(tx);
        run(folder, rx);
        std::fs::remove_dir_all(&dir).unwrap();
        let kinds = seen.lock().clone();
        (registry, kinds)
    }

    #[test]
    fn dropped_events_make_the_folder_read_again() {
        let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        let batch = Ok(vec![DebouncedEvent::new(
            overflow,
            std::time::Instant::now(),
        )]);
        let (registry, kinds) = feed("rescan", vec![batch]);
        assert_eq!(kinds, [ReloadKind::Loaded; 3]);
        assert_eq!(registry.list().len(), 3);
    }

    #[test]
    fn a_watch_error_makes_the_folder_read_again() {
        let error = notify_debouncer_full::notify::Error::generic("lost track");
        let (registry, kinds) = feed("error", vec![Err(vec![error])]);
        assert_eq!(kinds, [ReloadKind::Loaded; 3]);
        assert_eq!(registry.list().len(), 3);
    }
}
