//! Async entry points for tokio hosts (feature `tokio`):
//! [`ModuleInstance::process_async`] and [`ModuleRegistry::run_workflow_async`].
//!
//! Module code never runs on the async workers: each call goes to tokio's
//! blocking pool (`spawn_blocking`), as the caller's principal, and the
//! future is `Send`, so it can be spawned. Dropping the future (a
//! `tokio::time::timeout` that fires, a `select!` that picks another branch)
//! cancels the call's token: module code polling
//! [`call_cancelled`](crate::call_cancelled) can stop, and a workflow run
//! starts no more steps.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> module_registry::Result<()> {
//! use std::sync::Arc;
//! use module_registry::{ModuleConfig, ModuleRegistry, Value, Workflow, WorkflowStep};
//!
//! let registry = ModuleRegistry::new();
//! registry.register(ModuleConfig::new().with_name("double").with_handler(|v: Value| {
//!     Ok(Value::from(v.as_int().unwrap_or(0) * 2))
//! }))?;
//! let double = Arc::new(registry.create("double")?);
//! assert_eq!(double.process_async(21).await?, Value::Int(42));
//!
//! let workflow = Workflow::new("twice")
//!     .step(WorkflowStep::module("a", "double"))
//!     .step(WorkflowStep::module("b", "double").after(["a"]));
//! let result = registry.run_workflow_async(&workflow, 5).await?;
//! assert_eq!(result.output, Value::Int(20));
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

use crate::access::Caller;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::instance::ModuleInstance;
use crate::registry::ModuleRegistry;
use crate::value::Value;
use crate::workflow::{Workflow, WorkflowResult};

/// Cancels its token when dropped before [`disarm`](Self::disarm): the
/// future holding it was dropped while its work was still running.
struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

/// Runs `work` on tokio's blocking pool as the current caller, with a token
/// that dropping the future cancels.
fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce(&CancelToken) -> Result<T> + Send + 'static,
) -> impl Future<Output = Result<T>> + Send + 'static {
    let caller = Caller::current();
    let token = CancelToken::new();
    let guard = CancelOnDrop(Some(token.clone()));
    async move {
        let joined = tokio::task::spawn_blocking(move || caller.enter(|| work(&token))).await;
        guard.disarm();
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::interrupted(e)),
        }
    }
}

impl ModuleInstance {
    /// [`process`](Self::process) for async code: the call runs on tokio's
    /// blocking pool, never on an async worker, as the caller's principal.
    /// Dropping the future cancels the call's token (see
    /// [`call_cancelled`](crate::call_cancelled)); the module's code is not
    /// stopped by force. Must be awaited inside a tokio runtime.
    ///
    /// It is called on an `Arc<ModuleInstance>` (the future owns its share,
    /// so it can outlive the caller's borrow); on a bare instance it does not
    /// compile:
    ///
    /// ```compile_fail
    /// # async fn f() -> module_registry::Result<()> {
    /// let registry = module_registry::ModuleRegistry::with_native_modules();
    /// let instance = registry.create("identity")?;
    /// instance.process_async(1).await?; // error: needs `Arc<ModuleInstance>`
    /// # Ok(()) }
    /// ```
    pub fn process_async(
        self: &Arc<Self>,
        input: impl Into<Value>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        let instance = Arc::clone(self);
        let input = input.into();
        on_blocking_pool(move |token| instance.process_cancellable(input, token))
    }
}

impl ModuleRegistry {
    /// [`run_workflow`](Self::run_workflow) for async code: the run goes to
    /// tokio's blocking pool (its steps to the workflow worker pool, as
    /// always), as the caller's principal. Dropping the future cancels the
    /// run: no step starts after that (those not started are reported
    /// skipped), and a step with a timeout sees
    /// [`call_cancelled`](crate::call_cancelled) when it times out.
    pub fn run_workflow_async(
        &self,
        workflow: &Workflow,
        input: impl Into<Value>,
    ) -> impl Future<Output = Result<WorkflowResult>> + Send + 'static {
        let registry = self.clone();
        let workflow = workflow.clone();
        let input = input.into();
        on_blocking_pool(move |token| {
            crate::cancel::with_call_token(token, || {
                registry.run_workflow_cancellable(&workflow, input, token)
            })
        })
    }
}
