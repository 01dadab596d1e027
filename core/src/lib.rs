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
//!
//! ## The model
//!
//! - **Declarations and instances.** A [`ModuleConfig`] declares a module
//!   (name, semver version, type, capabilities, metadata, dependencies) and
//!   how to build it: a handler ([`ModuleConfig::with_handler`]), a factory
//!   ([`ModuleConfig::with_factory`]), a Rhai script or, from Python, a
//!   Python function or class. Registering checks everything and returns a
//!   [`ModuleInfo`]; nothing invalid is ever stored, and a failed
//!   registration leaves the registry as it was.
//! - **Lifecycle.** [`ModuleRegistry::create`] (or the
//!   [`InstanceBuilder`] of [`ModuleRegistry::instance`]) builds the
//!   dependencies first, then calls the factory with a [`ModuleContext`]
//!   (the config and the dependency instances), then [`Module::init`].
//!   [`ModuleInstance::process`] may then be called from any number of
//!   threads; [`ModuleInstance::close`] (or dropping it) runs
//!   [`Module::shutdown`] exactly once, after the calls running then, and
//!   closes the dependencies built for it. Shared dependencies
//!   ([`InstanceBuilder::share_dependencies`]) live as long as their last
//!   dependent.
//! - **Threads.** The registry is `Send + Sync` and cheap to clone (clones
//!   share it). Reads never block each other, and no lock is held while
//!   module code runs, so a module may call back into the registry.
//! - **Dependencies** are semver requirements resolved with backtracking
//!   ([`ModuleRegistry::resolve`]): the highest versions that satisfy every
//!   requirement, or a typed error naming the chain, the conflict or the
//!   cycle.
//! - **Discovery** by capability ([`CapabilityQuery`]): required, any-of,
//!   excluded capabilities, type, metadata, version, served from an index.
//! - **Workflows** (feature `workflows`): a [`Workflow`] is a DAG of steps,
//!   each a module or a capability query, with retries, timeouts, fallbacks,
//!   pools and a cache; independent steps run at once. From TOML or JSON
//!   too, and over many inputs at once.
//! - **Scripts** (feature `scripts`): Rhai modules and orchestration scripts,
//!   loaded while the program runs, sandboxed by [`ScriptLimits`] (operations,
//!   depth, sizes, memory, time); scripts reach the registry as `registry`
//!   and call the Rust functions an embedder adds with
//!   [`ModuleRegistry::register_script_functions`]. Folders can be watched
//!   and reloaded (feature `watch`).
//! - **Access control.** With an [`AccessPolicy`] set, every operation is
//!   checked against the calling principal's grants
//!   ([`ModuleRegistry::as_principal`]), and everything is recorded in the
//!   audit log.
//! - **Errors.** Every fallible call returns [`Result`] with the one
//!   [`Error`] enum, a variant per cause, naming the module, version,
//!   requirement or file. Module code returns any error through `?`
//!   ([`BoxError`]); the registry reports it as
//!   [`Error::ModuleFailed`] with the module's own error as its source.
//!   Each level's `Display` says only that level; [`Error::report`] joins
//!   the chain.
//!
//! - **Async and cancellation.** With the `tokio` feature,
//!   `ModuleInstance::process_async` and `ModuleRegistry::run_workflow_async`
//!   run module code on tokio's blocking pool; module code polls
//!   [`call_cancelled`] to stop a call that timed out or was dropped.
//!
//! ## Names
//!
//! One rule for every builder method:
//! - **Records** that are declared and kept ([`ModuleConfig`],
//!   [`PluginConfig`], [`CapabilityQuery`], [`Workflow`]) set a field with
//!   `with_*` (replacing it) and add to a collection with `add_*` (keeping
//!   what is there), as the seed examples spell them.
//! - **Builders of one operation** ([`WorkflowStep`], [`PoolOptions`],
//!   [`InstanceBuilder`], [`RegistryBuilder`]) use the bare field name
//!   (`.retries(2)`, `.config(v)`, `.share_dependencies(true)`), as
//!   `std::thread::Builder` and `std::fs::OpenOptions` do, and end in the
//!   call that does it (`create`, `build`) or are handed to one.
//! - Settings of a registry others may hold change through `set_*`, which
//!   returns a `Result` (it is checked against the policy); settings fixed
//!   at construction go through [`ModuleRegistry::builder`]. No builder
//!   method panics.
//!
//! ## Cargo features
//!
//! `scripts`, `workflows`, `cache-disk`, `pictures`, `compression`,
//! `distribution`, `https` and `watch`, all on by default; without them the
//! crate is the registry, its native modules and nothing else. `workflows`
//! is pure Rust (its step cache is in memory); `cache-disk` adds the cache
//! on disk (SQLite, compiled from C). `tokio` (off by default) adds the
//! async entry points.
#![deny(missing_docs)]

// Records, at the bottom: plain data that imports nothing above it.
pub mod access;
pub mod audit;
pub mod cancel;
pub mod config;
pub mod error;
pub mod info;
pub mod kind;
pub mod limits;
pub mod metrics;
pub mod module;
pub mod query;
pub mod schema;
pub mod threads;
mod trace;
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
#[cfg(feature = "tokio")]
mod tasks;
#[cfg(feature = "workflows")]
pub mod workflow;

pub use access::{AccessPolicy, Permission};
pub use audit::{AuditEvent, AuditLog, Outcome};
#[cfg(feature = "workflows")]
pub use cache::{CacheSettings, CacheStats, CacheStatus, CodeDigest, CodeId, OpaqueToken};
pub use cancel::{call_cancelled, CancelToken};
pub use config::{
    Factory, FactoryFn, Implementation, ImportedScript, ModuleConfig, Origin, PluginConfig,
    PythonCode, ScriptSource,
};
pub use deps::Resolution;
pub use error::{
    BoxError, CheckedCall, Error, ErrorKind, ExternalError, Result, ScriptFrame, WorkflowTypeError,
};
pub use info::ModuleInfo;
pub use instance::{InstanceState, ModuleInstance};
pub use kind::{ModuleKind, ModuleType, PluginType};
pub use limits::ScriptLimits;
pub use live::{InstancePool, PoolOptions, Strategy};
pub use manifest::ManifestOptions;
pub use marketplace::PluginMarketplace;
pub use metrics::MetricsSnapshot;
pub use module::{FnModule, Handler, Module, ModuleContext};
pub use native::{NativeFactory, NativeModule};
#[cfg(feature = "workflows")]
pub use orchestration::WorkflowOrchestration;
pub use query::{CapabilityQuery, PluginDiscoveryQuery, ServiceDiscoveryQuery};
pub use registry::{InstanceBuilder, ModuleRegistry, RegistryBuilder, RegistryView};
pub use schema::{Schema, Validation};
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
    OnError, StepReport, StepStatus, StepText, Workflow, WorkflowResult, WorkflowStep,
};

#[doc(hidden)]
pub use inventory;

/// The Rust examples of the docs (`docs/guides/rust.md`), run as doc tests.
#[cfg(all(doctest, feature = "scripts", feature = "workflows"))]
#[doc = include_str!("../../docs/guides/rust.md")]
struct DocsRustDoctests;
