//! The [`Module`] trait (a module's behaviour), [`FnModule`] (a module made
//! of one function) and [`ModuleContext`] (what `init` is given).

use std::sync::Arc;

use indexmap::IndexMap;

use crate::error::Result;
use crate::info::ModuleInfo;
pub use crate::instance::{InstanceState, ModuleInstance};
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
