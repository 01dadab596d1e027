//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use module_registry::{
    AccessPolicy, Module, ModuleConfig, ModuleContext, ModuleInfo, ModuleType, Permission, Value,
};

/// A module config with a name, a version and capabilities.
pub fn config(name: &str, version: &str, caps: &[&str]) -> ModuleConfig {
    ModuleConfig::new()
        .with_name(name)
        .with_version(version)
        .with_type(ModuleType::DataProcessor)
        .add_capabilities(caps.iter().copied())
}

/// Counts hook calls, shared between a test and the modules it builds.
#[derive(Default, Debug)]
pub struct Counters {
    pub inits: AtomicUsize,
    pub processes: AtomicUsize,
    pub shutdowns: AtomicUsize,
    /// Names in the order their `shutdown` ran.
    pub shutdown_order: parking_lot::Mutex<Vec<String>>,
    /// Names in the order their `init` ran.
    pub init_order: parking_lot::Mutex<Vec<String>>,
}

/// A module that records its hooks and answers with its name and input.
pub struct Recorder {
    pub name: String,
    pub counters: Arc<Counters>,
    pub deps: parking_lot::Mutex<Vec<String>>,
}

impl Module for Recorder {
    fn init(&self, ctx: &ModuleContext) -> std::result::Result<(), module_registry::BoxError> {
        self.counters.inits.fetch_add(1, Ordering::SeqCst);
        self.counters.init_order.lock().push(self.name.clone());
        *self.deps.lock() = ctx.dependencies().keys().cloned().collect();
        Ok(())
    }

    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        self.counters.processes.fetch_add(1, Ordering::SeqCst);
        Ok(Value::List(vec![Value::from(self.name.as_str()), input]))
    }

    fn shutdown(&self) -> std::result::Result<(), module_registry::BoxError> {
        self.counters.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.counters.shutdown_order.lock().push(self.name.clone());
        Ok(())
    }
}

/// A config whose factory builds a [`Recorder`].
pub fn recorded(name: &str, version: &str, counters: &Arc<Counters>) -> ModuleConfig {
    let counters = counters.clone();
    config(name, version, &[]).with_factory(move |cfg| {
        Ok(Box::new(Recorder {
            name: cfg.info().name().to_string(),
            counters: counters.clone(),
            deps: Default::default(),
        }) as Box<dyn Module>)
    })
}

/// A fresh folder for one test, unique to this process.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mr-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A policy with readers, runners, publishers and an administrator.
#[cfg_attr(not(feature = "scripts"), allow(dead_code))]
pub fn policy() -> AccessPolicy {
    let mut p = AccessPolicy::new();
    p.grant("reader", [Permission::Discover], "*").unwrap();
    p.grant("runner", [Permission::Create], "text-*").unwrap();
    p.grant(
        "publisher",
        [Permission::Register, Permission::Unregister],
        "team-*",
    )
    .unwrap();
    p.grant("root", [Permission::Admin], "*").unwrap();
    p.assign("alice", "reader")
        .assign("alice", "runner")
        .assign("alice", "publisher");
    p.assign("bob", "reader");
    p.assign("root", "root");
    p
}

/// `name@version` of each registration, in order.
pub fn names(found: &[ModuleInfo]) -> Vec<String> {
    found
        .iter()
        .map(|i| format!("{}@{}", i.name(), i.version()))
        .collect()
}
