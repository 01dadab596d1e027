//! # module-registry
//!
//! A registry of modules: declare them with a name, a semver version, a type,
//! capabilities, metadata and dependencies; find them by capability; create
//! instances (dependencies first); and run data through them.
//!
//! ```
//! use module_registry::{CapabilityQuery, ModuleConfig, ModuleRegistry, ModuleType, Value};
//!
//! let registry = ModuleRegistry::new();
//! registry.register(
//!     ModuleConfig::new()
//!         .with_name("upper")
//!         .with_version("1.0.0")
//!         .with_type(ModuleType::DataProcessor)
//!         .add_capability("text")
//!         .with_handler(|input| Ok(Value::Str(input.as_str().unwrap_or_default().to_uppercase()))),
//! )?;
//!
//! let found = registry.discover_capabilities(CapabilityQuery::new().with_required_capabilities(vec!["text"]))?;
//! assert_eq!(found[0].name(), "upper");
//!
//! let instance = registry.create("upper")?;
//! assert_eq!(instance.process("hello")?, Value::from("HELLO"));
//! # Ok::<(), module_registry::Error>(())
//! ```
//!
//! Native modules declared with [`native_module!`] anywhere in the program are
//! found at compile time: [`ModuleRegistry::with_native_modules`] registers them
//! all (the crate ships `identity`, JSON, UTF-8 text, SHA-256, gzip and base64
//! modules).
#![deny(missing_docs)]

// Records, at the bottom: plain data that imports nothing above it.
pub mod access;
pub mod audit;
pub mod config;
pub mod error;
pub mod info;
pub mod kind;
pub mod limits;
pub mod module;
pub mod query;
pub mod validate;
pub mod value;
// Behaviour on single modules and declarations.
pub mod deps;
pub mod instance;
pub mod marketplace;
pub mod native;
// The store, its indexes and the facade.
pub mod registry;
// Layers that use the registry through its API.
#[cfg(feature = "workflows")]
pub mod cache;
#[cfg(feature = "distribution")]
pub mod distribution;
pub mod live;
pub mod manifest;
#[cfg(feature = "workflows")]
pub mod orchestration;
#[cfg(feature = "scripts")]
pub mod script;
#[cfg(feature = "workflows")]
pub mod workflow;

pub use access::{AccessPolicy, Permission};
pub use audit::{AuditEvent, AuditLog, Outcome};
#[cfg(feature = "workflows")]
pub use cache::{CacheSettings, CacheStats, CacheStatus, CodeDigest, OpaqueToken};
pub use config::{
    Factory, FactoryFn, Implementation, ImportedScript, ModuleConfig, Origin, PluginConfig,
    PythonCode, ScriptSource,
};
pub use deps::Resolution;
pub use error::{BoxError, Error, ExternalError, Result};
pub use info::ModuleInfo;
pub use instance::{InstanceState, ModuleInstance};
pub use kind::{ModuleKind, ModuleType, PluginType};
pub use limits::ScriptLimits;
pub use live::{InstancePool, PoolOptions, Strategy};
pub use manifest::ManifestOptions;
pub use marketplace::PluginMarketplace;
pub use module::{FnModule, Handler, Module, ModuleContext};
pub use native::{NativeFactory, NativeModule};
#[cfg(feature = "workflows")]
pub use orchestration::WorkflowOrchestration;
pub use query::{CapabilityQuery, PluginDiscoveryQuery, ServiceDiscoveryQuery};
pub use registry::{InstanceBuilder, ModuleRegistry, RegistryView};
#[cfg(feature = "watch")]
pub use script::watch::{ReloadEvent, ReloadKind, ScriptWatcher};
#[cfg(feature = "scripts")]
pub use script::{memory_limit_enforced, ScriptAllocator};
pub use value::{from_value, to_value, Opaque, Value, ValueMap};

/// Re-exported: `ValueMap` is an `IndexMap`.
pub use indexmap;
/// Re-exported with the `scripts` feature: script functions registered by
/// embedders take a `rhai::Engine`, and script values are `rhai::Dynamic`.
#[cfg(feature = "scripts")]
pub use rhai;
/// Re-exported: its types appear in this crate's API (versions, requirements).
pub use semver;
#[cfg(feature = "workflows")]
pub use workflow::{
    CancelToken, OnError, StepReport, StepStatus, Workflow, WorkflowResult, WorkflowStep,
};

#[doc(hidden)]
pub use inventory;

/// The README's Rust examples, run as doc tests.
#[cfg(all(doctest, feature = "scripts", feature = "workflows"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
