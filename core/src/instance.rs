//! Built modules: [`ModuleInstance`] and its lifecycle ([`InstanceState`]).
//! Module code runs here, guarded: an error or a panic fails the call, not
//! the registry.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::audit::AuditLog;
use crate::error::{BoxError, Error, Result};
use crate::info::ModuleInfo;
use crate::module::{Module, ModuleContext};
use crate::schema::Validation;
use crate::value::Value;

/// Why a config given to `info`'s module is refused: it would never see it
/// (the one rule for every implementation, at create and at check time).
pub(crate) fn config_ignored(info: &ModuleInfo) -> String {
    use crate::config::Implementation;
    let how = match info.config().implementation() {
        Implementation::Python(_) => {
            "it is Python code that would never see it (a function of its input alone, or a \
             class without init(config)): give the function a second parameter \
             (def f(input, config)), or make it a class whose init(config) gets it"
        }
        Implementation::Rhai(_) => {
            "it is a script without fn init(config), which is where a script reads its config"
        }
        _ => "it takes no config (it has no init reading one)",
    };
    format!("{info} was given a config, but {how}")
}

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    /// Built by its factory, `init` not run yet.
    Created,
    /// `init` succeeded.
    Initialized,
    /// `process` has been called at least once.
    Running,
    /// Closed; `shutdown` ran and succeeded.
    Stopped,
    /// `init` or `shutdown` failed.
    Failed,
}

impl InstanceState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => InstanceState::Created,
            1 => InstanceState::Initialized,
            2 => InstanceState::Running,
            3 => InstanceState::Stopped,
            _ => InstanceState::Failed,
        }
    }

    /// Lower-case name: `"created"`, `"initialized"`, `"running"`, `"stopped"`, `"failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Created => "created",
            InstanceState::Initialized => "initialized",
            InstanceState::Running => "running",
            InstanceState::Stopped => "stopped",
            InstanceState::Failed => "failed",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs module code, turning an error or a panic into [`Error::ModuleFailed`].
pub(crate) fn guarded<T>(
    info: &ModuleInfo,
    operation: &'static str,
    f: impl FnOnce() -> std::result::Result<T, BoxError>,
) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(module_failed(info, operation, Error::from(e))),
        Err(payload) => Err(module_failed(
            info,
            operation,
            Error::Panic {
                message: panic_message(&*payload),
            },
        )),
    }
}

pub(crate) fn module_failed(info: &ModuleInfo, operation: &'static str, source: Error) -> Error {
    Error::ModuleFailed {
        module: info.name().to_string(),
        version: info.version_text().to_string(),
        operation,
        source: Box::new(source),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// A built module. `process` may be called from many threads; `close` (or
/// dropping the instance) runs `shutdown` exactly once, then closes the
/// dependency instances that were built for it, in reverse build order.
///
/// ```
/// use std::sync::Arc;
/// use module_registry::{Error, InstanceState, ModuleRegistry, Value};
///
/// let registry = ModuleRegistry::with_native_modules();
/// let digest = Arc::new(registry.create("sha256")?);
/// assert_eq!(digest.state(), InstanceState::Initialized);
/// let threads: Vec<_> = (0..4)
///     .map(|i| {
///         let digest = digest.clone();
///         std::thread::spawn(move || digest.process(format!("input {i}")))
///     })
///     .collect();
/// for t in threads {
///     assert_eq!(t.join().unwrap()?.as_str().map(str::len), Some(64));
/// }
/// digest.close()?;
/// assert_eq!(digest.state(), InstanceState::Stopped);
/// assert!(matches!(digest.process("late"), Err(Error::InstanceClosed { .. })));
/// # Ok::<(), module_registry::Error>(())
/// ```
pub struct ModuleInstance {
    info: ModuleInfo,
    module: Box<dyn Module>,
    state: AtomicU8,
    closed: AtomicBool,
    /// Calls of `process` running now.
    calls: AtomicUsize,
    /// `close` came while calls ran: the last call to finish shuts down.
    shutdown_pending: AtomicBool,
    /// The dependency instances it holds: the first `owned` were built for
    /// it (closed with it), the rest are shared with other instances (kept
    /// alive only).
    dependencies: Vec<Arc<ModuleInstance>>,
    owned: usize,
    audit: Arc<AuditLog>,
    /// Its registration's call counters (found at create time).
    metrics: Option<Arc<crate::metrics::ModuleMetrics>>,
    /// The registry's validation mode ([`Validation`](crate::schema::Validation) as its byte).
    validation: Arc<AtomicU8>,
}

impl fmt::Debug for ModuleInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleInstance")
            .field("module", &self.info.name())
            .field("version", &self.info.version_text().to_string())
            .field("state", &self.state())
            .finish()
    }
}

impl ModuleInstance {
    /// Builds and initialises an instance. `owned` are the dependency
    /// instances this one owns (closed after it).
    pub(crate) fn build(
        info: ModuleInfo,
        config: Value,
        context_deps: IndexMap<String, Arc<ModuleInstance>>,
        owned: Vec<Arc<ModuleInstance>>,
        audit: Arc<AuditLog>,
        validation: Arc<AtomicU8>,
    ) -> Result<ModuleInstance> {
        Self::build_sharing(
            info,
            config,
            context_deps,
            owned,
            Vec::new(),
            audit,
            validation,
        )
    }

    /// [`build`](Self::build), also holding `shared` dependency instances
    /// (kept alive, never closed by this one).
    pub(crate) fn build_sharing(
        info: ModuleInfo,
        config: Value,
        context_deps: IndexMap<String, Arc<ModuleInstance>>,
        owned: Vec<Arc<ModuleInstance>>,
        shared: Vec<Arc<ModuleInstance>>,
        audit: Arc<AuditLog>,
        validation: Arc<AtomicU8>,
    ) -> Result<ModuleInstance> {
        let Some(factory) = info.entry().config.get_factory().cloned() else {
            return Err(Error::NoImplementation {
                kind: info.kind(),
                name: info.name().to_string(),
                version: info.version_text().to_string(),
            });
        };
        if !config.is_null() && info.config().ignores_config() {
            return Err(Error::invalid_input(config_ignored(&info)));
        }
        let context = ModuleContext::new(info.clone(), config, context_deps);
        // On failure, dropping `owned` closes the dependencies built for it.
        let module = guarded(&info, "factory", || factory(&context))?;
        let instance = ModuleInstance {
            info,
            module,
            state: AtomicU8::new(0),
            closed: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            shutdown_pending: AtomicBool::new(false),
            owned: owned.len(),
            dependencies: owned.into_iter().chain(shared).collect(),
            audit,
            metrics: None,
            validation,
        };
        match guarded(&instance.info, "init", || instance.module.init(&context)) {
            Ok(()) => {
                instance.state.store(1, Ordering::Release);
                Ok(instance)
            }
            Err(e) => {
                instance.state.store(4, Ordering::Release);
                // Nothing was initialised: skip `shutdown`, but close the dependencies.
                instance.closed.store(true, Ordering::Release);
                for dep in instance.dependencies[..instance.owned].iter().rev() {
                    let _ = dep.close();
                }
                Err(e)
            }
        }
    }

    /// Counts this instance's calls in `metrics`.
    pub(crate) fn counted(mut self, metrics: Arc<crate::metrics::ModuleMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The registered declaration this instance was built from.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        self.info.name()
    }

    /// The module's version.
    pub fn version(&self) -> &semver::Version {
        self.info.version()
    }

    /// Where the instance is in its lifecycle.
    pub fn state(&self) -> InstanceState {
        InstanceState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether `close` has run.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The dependency instances it holds: those built for it, in build
    /// order, then those it shares with other instances.
    pub fn dependencies(&self) -> &[Arc<ModuleInstance>] {
        &self.dependencies
    }

    /// Runs the module on `input`. Errors and panics inside the module come
    /// back as [`Error::ModuleFailed`] naming the module; the instance stays usable.
    pub fn process(&self, input: impl Into<Value>) -> Result<Value> {
        self.process_value(input.into())
    }

    /// [`process`](Self::process) with `token` as the call's cancel token:
    /// module code sees [`call_cancelled`](crate::call_cancelled) turn true
    /// once the token is cancelled (the call is not stopped by force; a
    /// module that never polls runs to its end).
    pub fn process_cancellable(
        &self,
        input: impl Into<Value>,
        token: &crate::cancel::CancelToken,
    ) -> Result<Value> {
        let input = input.into();
        crate::cancel::with_call_token(token, || self.process_value(input))
    }

    /// [`process`](Self::process) without the conversion.
    pub fn process_value(&self, input: Value) -> Result<Value> {
        // Counted first, then checked: `close` either sees this call or
        // this call sees `close`.
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.call_ended();
            return Err(Error::InstanceClosed {
                module: self.info.name().to_string(),
                version: self.info.version_text().to_string(),
            });
        }
        if self.state.load(Ordering::Relaxed) == 1 {
            let _ = self
                .state
                .compare_exchange(1, 2, Ordering::AcqRel, Ordering::Relaxed);
        }
        let info = &self.info;
        let _span = crate::trace::call_module(
            (info.name(), info.version_text(), info.kind().as_str()),
            &crate::access::current_principal,
        );
        let timer = crate::metrics::CallTimer::start(self.metrics.as_deref());
        let mode = Validation::from_u8(self.validation.load(Ordering::Relaxed));
        let result = if mode == Validation::Off {
            guarded(&self.info, "process", || self.module.process(input))
        } else {
            self.process_checked(input, mode)
        };
        timer.finish(&result);
        if let Err(e) = &result {
            crate::trace::call_failed(e);
            self.audit.record_error("process", self.info.subject(), e);
        }
        self.call_ended();
        result
    }

    /// A call with validation on: the input checked against the declared
    /// input type, and with [`Validation::All`] the output against the
    /// output type.
    fn process_checked(&self, input: Value, mode: Validation) -> Result<Value> {
        let label = || format!("{}@{}", self.info.name(), self.info.version_text());
        if !self.info.input().is_any() {
            self.info
                .input()
                .check_call(&input, &label(), None, "input")?;
        }
        let output = guarded(&self.info, "process", || self.module.process(input))?;
        if mode == Validation::All && !self.info.output().is_any() {
            self.info
                .output()
                .check_call(&output, &label(), None, "output")?;
        }
        Ok(output)
    }

    /// The end of a call: the last one out runs a `close` that waited for it.
    fn call_ended(&self) {
        if self.calls.fetch_sub(1, Ordering::SeqCst) == 1
            && self.shutdown_pending.swap(false, Ordering::SeqCst)
        {
            let _ = self.shut_down();
        }
    }

    /// Runs `shutdown` (once; later calls do nothing and return `Ok`), then
    /// closes the dependency instances built for this one, last built first.
    ///
    /// `shutdown` never runs under a call of `process`: while calls run (a
    /// call abandoned at a workflow step's timeout, say), it is left to the
    /// last of them to finish, and `close` returns at once (a failing
    /// `shutdown` then reaches only the audit log).
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.shutdown_pending.store(true, Ordering::SeqCst);
        if self.calls.load(Ordering::SeqCst) > 0 {
            // The last call to end sees the pending shutdown and runs it.
            return Ok(());
        }
        // No call runs; one starting now sees `closed` and may race us for
        // the shutdown: exactly one of us takes it.
        if self.shutdown_pending.swap(false, Ordering::SeqCst) {
            self.shut_down()
        } else {
            Ok(())
        }
    }

    /// `shutdown`, then the dependencies' `close`.
    fn shut_down(&self) -> Result<()> {
        let result = guarded(&self.info, "shutdown", || self.module.shutdown());
        self.state
            .store(if result.is_ok() { 3 } else { 4 }, Ordering::Release);
        if let Err(e) = &result {
            self.audit.record_error("shutdown", self.info.subject(), e);
        }
        let mut first_dep_error = None;
        for dep in self.dependencies[..self.owned].iter().rev() {
            if let Err(e) = dep.close() {
                first_dep_error.get_or_insert(e);
            }
        }
        result.and(first_dep_error.map_or(Ok(()), Err))
    }
}

impl Drop for ModuleInstance {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
