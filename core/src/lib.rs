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

pub mod access;
pub mod audit;
pub mod config;
pub mod deps;
pub mod error;
pub mod manifest;
pub mod marketplace;
pub mod module;
pub mod native;
pub mod orchestration;
pub mod query;
pub mod registry;
pub mod script;
pub mod value;
pub mod workflow;

pub use access::{AccessPolicy, Permission};
pub use audit::{AuditEvent, AuditLog, Outcome};
pub use config::{
    Factory, Implementation, ModuleConfig, ModuleKind, ModuleType, PluginConfig, PluginType,
    ScriptSource,
};
pub use deps::Resolution;
pub use error::{Error, Result};
pub use marketplace::PluginMarketplace;
pub use module::{FnModule, InstanceState, Module, ModuleContext, ModuleInstance};
pub use native::NativeModule;
pub use orchestration::WorkflowOrchestration;
pub use query::{CapabilityQuery, PluginDiscoveryQuery, ServiceDiscoveryQuery};
pub use registry::{ModuleInfo, ModuleRegistry, RegistryView};
pub use script::ScriptLimits;
pub use value::{Opaque, Value, ValueMap};
pub use workflow::{OnError, StepReport, StepStatus, Workflow, WorkflowResult, WorkflowStep};

#[doc(hidden)]
pub use inventory;

/// The README's Rust examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
