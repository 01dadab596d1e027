//! Integration tests of the public API of `module_registry`, one module per domain.

mod common;
mod concurrency;
mod dependencies;
mod discovery;
#[cfg(all(feature = "scripts", feature = "workflows", feature = "compression"))]
mod examples;
mod lifecycle;
mod native;
mod registration;
#[cfg(feature = "scripts")]
mod scripts;
#[cfg(all(feature = "scripts", feature = "workflows"))]
mod security;
#[cfg(feature = "workflows")]
mod settings;
#[cfg(feature = "workflows")]
mod workflows;
