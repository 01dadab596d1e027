//! The [`Module`] trait and built instances ([`ModuleInstance`]).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::audit::AuditLog;
use crate::error::{Error, Result};
use crate::registry::ModuleInfo;
use crate::value::Value;

/// A module's behaviour. Implement `process`; `init` and `shutdown` are optional.
///
/// Every method takes `&self`: an instance may be called from several threads
/// at once, so per-instance state lives behind a lock or an atomic.
pub trait Module: Send + Sync {
    /// Called once, before the first `process`, with the per-instance config
    /// and the instances of the module's dependencies.
    fn init(&self, _context: &ModuleContext) -> Result<()> {
        Ok(())
    }

    /// Turns an input into an output.
    fn process(&self, input: Value) -> Result<Value>;

    /// Called exactly once when the instance is closed or dropped.
    fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

/// A module made of one function.
pub struct FnModule {
    handler: Arc<dyn Fn(Value) -> Result<Value> + Send + Sync>,
}

impl FnModule {
    /// Wrap a function.
    pub fn new<F: Fn(Value) -> Result<Value> + Send + Sync + 'static>(f: F) -> Self {
        FnModule {
            handler: Arc::new(f),
        }
    }

    /// Wrap a shared function.
    pub fn from_arc(handler: Arc<dyn Fn(Value) -> Result<Value> + Send + Sync>) -> Self {
        FnModule { handler }
    }
}

impl Module for FnModule {
    fn process(&self, input: Value) -> Result<Value> {
        (self.handler)(input)
    }
}

/// What a module gets in `init`: its declaration, its per-instance config and
/// its dependencies' instances (built before it, shut down after it).
pub struct ModuleContext {
    info: ModuleInfo,
    config: Value,
    dependencies: IndexMap<String, Arc<ModuleInstance>>,
}

impl ModuleContext {
    pub(crate) fn new(
        info: ModuleInfo,
        config: Value,
        dependencies: IndexMap<String, Arc<ModuleInstance>>,
    ) -> Self {
        ModuleContext {
            info,
            config,
            dependencies,
        }
    }

    /// The module's own registered declaration.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The per-instance config (`Value::Null` when none was given).
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The instance of dependency `name`, if the module declared it.
    pub fn dependency(&self, name: &str) -> Option<&Arc<ModuleInstance>> {
        self.dependencies.get(name)
    }

    /// Every dependency instance by name.
    pub fn dependencies(&self) -> &IndexMap<String, Arc<ModuleInstance>> {
        &self.dependencies
    }
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
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(module_failed(info, operation, e)),
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
pub struct ModuleInstance {
    info: ModuleInfo,
    module: Box<dyn Module>,
    state: AtomicU8,
    closed: AtomicBool,
    dependencies: Vec<Arc<ModuleInstance>>,
    audit: Arc<AuditLog>,
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
    ) -> Result<ModuleInstance> {
        let Some(factory) = info.entry().config.get_factory().cloned() else {
            return Err(Error::NoImplementation {
                kind: info.kind(),
                name: info.name().to_string(),
                version: info.version_text().to_string(),
            });
        };
        let module = guarded(&info, "factory", || factory(&info.entry().config))?;
        let instance = ModuleInstance {
            info: info.clone(),
            module,
            state: AtomicU8::new(0),
            closed: AtomicBool::new(false),
            dependencies: owned,
            audit,
        };
        let context = ModuleContext::new(info, config, context_deps);
        match guarded(&instance.info, "init", || instance.module.init(&context)) {
            Ok(()) => {
                instance.state.store(1, Ordering::Release);
                Ok(instance)
            }
            Err(e) => {
                instance.state.store(4, Ordering::Release);
                // Nothing was initialised: skip `shutdown`, but close the dependencies.
                instance.closed.store(true, Ordering::Release);
                for dep in instance.dependencies.iter().rev() {
                    let _ = dep.close();
                }
                Err(e)
            }
        }
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

    /// The dependency instances built for this one, in build order.
    pub fn dependencies(&self) -> &[Arc<ModuleInstance>] {
        &self.dependencies
    }

    /// Runs the module on `input`. Errors and panics inside the module come
    /// back as [`Error::ModuleFailed`] naming the module; the instance stays usable.
    pub fn process(&self, input: impl Into<Value>) -> Result<Value> {
        self.process_value(input.into())
    }

    /// [`process`](Self::process) without the conversion.
    pub fn process_value(&self, input: Value) -> Result<Value> {
        if self.closed.load(Ordering::Acquire) {
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
        let result = guarded(&self.info, "process", || self.module.process(input));
        if let Err(e) = &result {
            self.audit.record_error("process", &self.info, e);
        }
        result
    }

    /// Runs `shutdown` (once; later calls do nothing and return `Ok`), then
    /// closes the dependency instances built for this one, last built first.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = guarded(&self.info, "shutdown", || self.module.shutdown());
        self.state
            .store(if result.is_ok() { 3 } else { 4 }, Ordering::Release);
        if let Err(e) = &result {
            self.audit.record_error("shutdown", &self.info, e);
        }
        let mut first_dep_error = None;
        for dep in self.dependencies.iter().rev() {
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
