//! Integration tests of the public API of `module_registry`, one module per domain.

mod common;
mod concurrency;
mod dependencies;
mod discovery;
mod examples;
mod lifecycle;
mod native;
mod registration;
mod scripts;
mod security;
mod settings;
mod workflows;
