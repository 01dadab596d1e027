//! Integration tests of the public API of `module_registry`: one module per
//! domain word (ARCHITECTURE.md), plus the shipped natives, concurrency,
//! settings and the examples.

/// Script memory limits are enforced where this is the global allocator.
#[cfg(feature = "scripts")]
#[global_allocator]
static ALLOCATOR: module_registry::ScriptAllocator = module_registry::ScriptAllocator;

mod common;

#[cfg(all(feature = "scripts", feature = "workflows"))]
mod access;
mod audit;
#[cfg(feature = "workflows")]
mod batches;
#[cfg(all(feature = "scripts", feature = "workflows"))]
mod cache;
mod concurrency;
mod deps;
#[cfg(feature = "distribution")]
mod distribution;
mod embedding;
#[cfg(all(feature = "scripts", feature = "workflows", feature = "compression"))]
mod examples;
mod index;
#[cfg(feature = "distribution")]
mod install;
mod instance;
#[cfg(feature = "scripts")]
mod limits;
mod live;
#[cfg(feature = "scripts")]
mod manifest;
#[cfg(feature = "workflows")]
mod metrics;
mod native;
#[cfg(feature = "workflows")]
mod outputs;
#[cfg(feature = "pictures")]
mod picture;
mod query;
mod registry;
mod schema;
#[cfg(feature = "scripts")]
mod script;
#[cfg(feature = "scripts")]
mod script_definitions;
#[cfg(feature = "scripts")]
mod script_deps;
#[cfg(feature = "scripts")]
mod script_errors;
#[cfg(all(feature = "scripts", feature = "workflows"))]
mod script_output;
#[cfg(all(feature = "scripts", feature = "workflows"))]
mod script_testing;
#[cfg(feature = "workflows")]
mod settings;
#[cfg(feature = "tokio")]
mod tasks;
#[cfg(all(feature = "tracing", feature = "workflows"))]
mod trace;
mod values;
#[cfg(feature = "watch")]
mod watch;
#[cfg(feature = "workflows")]
mod workflow;
#[cfg(all(feature = "scripts", feature = "workflows", feature = "compression"))]
mod workflow_types;
