//! Live modules: what a long-running host needs beyond `create` and
//! `process`. [`InstancePool`] spreads calls over several instances (of one
//! module, or of every provider of a capability), retries failures on
//! another instance and rests a provider that keeps failing;
//! [`ScriptWatcher`] (feature `watch`) reloads script modules as their files
//! change.
//!
//! This layer uses the registry through its API, as `workflow/` does; the
//! registry does not know it.

pub mod pool;
#[cfg(feature = "watch")]
pub mod watch;

pub use pool::{InstancePool, PoolOptions, PoolSlotStats, PoolTarget, Strategy};
#[cfg(feature = "watch")]
pub use watch::{ReloadCallback, ReloadEvent, ReloadKind, ScriptWatcher};

/// The stack of the watcher's thread, which compiles scripts: a main
/// thread's size (only the pages used are committed).
#[cfg(feature = "watch")]
pub(crate) const WATCH_THREAD_STACK: usize = 64 * 1024 * 1024;
