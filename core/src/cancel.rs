//! Cancelling work: a [`CancelToken`] shared by whoever asks and whoever
//! runs, and the token of the module call running on this thread, which
//! module code polls with [`call_cancelled`].
//!
//! A workflow run or a batch holding a token stops between steps when it is
//! cancelled; a call made with
//! [`ModuleInstance::process_cancellable`](crate::ModuleInstance::process_cancellable)
//! (what a step with a timeout, an abandoned async call or a cancelled run
//! uses) makes its token the *current call's* token, so a long module can
//! notice and stop early:
//!
//! ```
//! use module_registry::{call_cancelled, CancelToken, ModuleConfig, ModuleRegistry, Value};
//!
//! let registry = ModuleRegistry::new();
//! registry.register(ModuleConfig::new().with_name("count").with_handler(|n: Value| {
//!     let n = n.as_int().unwrap_or(0);
//!     for i in 0..n {
//!         if call_cancelled() {
//!             return Ok(Value::from(format!("stopped at {i}")));
//!         }
//!     }
//!     Ok(Value::from("done"))
//! }))?;
//! let instance = registry.create("count")?;
//! assert_eq!(instance.process(3)?, Value::from("done"));
//! let token = CancelToken::new();
//! token.cancel();
//! assert_eq!(instance.process_cancellable(3, &token)?, Value::from("stopped at 0"));
//! assert!(!call_cancelled()); // outside a call: never cancelled
//! # Ok::<(), module_registry::Error>(())
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A request to stop, shared by its clones: [`cancel`](Self::cancel) on one
/// is seen by all. Used by workflow runs and batches (steps not started are
/// reported [`Skipped`](crate::StepStatus::Skipped) with the error
/// `"cancelled before it started"`, and a batch starts no more inputs) and by
/// module calls ([`call_cancelled`]).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the work holding this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

thread_local! {
    /// The token of the module call running on this thread, if it has one.
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Whether the module call running on this thread was cancelled: its step
/// timed out, its run or batch was cancelled, or the future of its async
/// call was dropped. `false` outside a call and for a call made without a
/// token (a plain `process`); a call made inside a cancelled call (a
/// dependency's) sees the outer call's token unless it has its own.
pub fn call_cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(CancelToken::is_cancelled))
}

/// Runs `f` with `token` as the current call's token, then puts back the
/// one before (calls nest).
pub(crate) fn with_call_token<T>(token: &CancelToken, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<CancelToken>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(token.clone()));
    let _restore = Restore(previous);
    f()
}
