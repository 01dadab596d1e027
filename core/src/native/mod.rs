//! Native modules found at compile time.
//!
//! Declare a native module anywhere in a crate linked into the program with
//! [`native_module!`](crate::native_module); [`ModuleRegistry::with_native_modules`](crate::ModuleRegistry::with_native_modules)
//! registers every one of them, without a list kept by hand. Collection uses
//! the `inventory` crate, so it also works inside a Python extension.
//!
//! ```
//! use module_registry::{native_module, Module, ModuleConfig, NativeModule, Result, Value, ModuleRegistry};
//!
//! struct Shout;
//! impl Module for Shout {
//!     fn process(&self, input: Value) -> Result<Value> {
//!         Ok(Value::Str(input.as_str().unwrap_or_default().to_uppercase()))
//!     }
//! }
//! fn shout(_: &ModuleConfig) -> Result<Box<dyn Module>> { Ok(Box::new(Shout)) }
//!
//! native_module!(NativeModule::new("doc-shout", "1.0.0", shout).with_capabilities(&["text"]));
//!
//! let registry = ModuleRegistry::with_native_modules();
//! let out = registry.create("doc-shout")?.process("hi")?;
//! assert_eq!(out, Value::from("HI"));
//! # Ok::<(), module_registry::Error>(())
//! ```

mod builtins;
#[cfg(feature = "compression")]
mod gzip;

use crate::config::ModuleConfig;
use crate::error::Result;
use crate::kind::{ModuleKind, ModuleType};
use crate::module::Module;

/// A native module's static declaration, collected at link time.
#[derive(Debug, Clone, Copy)]
pub struct NativeModule {
    /// Name (`[a-z0-9][a-z0-9._-]{0,127}`).
    pub name: &'static str,
    /// Semver version.
    pub version: &'static str,
    /// A [`ModuleType`] name (`"DataProcessor"`, ... or a custom name).
    pub module_type: &'static str,
    /// Module or plugin.
    pub kind: ModuleKind,
    /// Capabilities.
    pub capabilities: &'static [&'static str],
    /// Metadata pairs.
    pub metadata: &'static [(&'static str, &'static str)],
    /// Dependencies: (name, requirement).
    pub dependencies: &'static [(&'static str, &'static str)],
    /// Builds an instance.
    pub factory: fn(&ModuleConfig) -> Result<Box<dyn Module>>,
}

impl NativeModule {
    /// A `DataProcessor` module with no capabilities, metadata or dependencies.
    pub const fn new(
        name: &'static str,
        version: &'static str,
        factory: fn(&ModuleConfig) -> Result<Box<dyn Module>>,
    ) -> Self {
        NativeModule {
            name,
            version,
            module_type: "DataProcessor",
            kind: ModuleKind::Module,
            capabilities: &[],
            metadata: &[],
            dependencies: &[],
            factory,
        }
    }

    /// Set the capabilities.
    pub const fn with_capabilities(mut self, capabilities: &'static [&'static str]) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Set the metadata.
    pub const fn with_metadata(
        mut self,
        metadata: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.metadata = metadata;
        self
    }

    /// Set the dependencies.
    pub const fn with_dependencies(
        mut self,
        dependencies: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.dependencies = dependencies;
        self
    }

    /// Set the type by name.
    pub const fn with_type(mut self, module_type: &'static str) -> Self {
        self.module_type = module_type;
        self
    }

    /// Make it a plugin.
    pub const fn as_plugin(mut self) -> Self {
        self.kind = ModuleKind::Plugin;
        self
    }

    /// The declaration as a [`ModuleConfig`] (validated when registered).
    pub fn to_config(&self) -> ModuleConfig {
        let factory = self.factory;
        let mut config = ModuleConfig::new()
            .with_kind(self.kind)
            .with_name(self.name)
            .with_version(self.version)
            .with_type(ModuleType::custom(self.module_type))
            .add_capabilities(self.capabilities.iter().copied())
            .with_factory(factory)
            .with_implementation(crate::config::Implementation::Native);
        for (k, v) in self.metadata {
            config = config.with_metadata(*k, *v);
        }
        for (name, req) in self.dependencies {
            config = config.with_dependency(*name, *req);
        }
        config
    }
}

inventory::collect!(NativeModule);

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    builtins::hex(&sha2::Sha256::digest(data))
}

/// Declares a native module, found by [`ModuleRegistry::with_native_modules`](crate::ModuleRegistry::with_native_modules).
/// The argument is a constant [`NativeModule`] expression.
#[macro_export]
macro_rules! native_module {
    ($declaration:expr) => {
        $crate::inventory::submit! { $declaration }
    };
}

/// Every native module linked into the program, by name then version.
pub fn native_modules() -> Vec<&'static NativeModule> {
    let mut all: Vec<&'static NativeModule> = inventory::iter::<NativeModule>.into_iter().collect();
    all.sort_by(|a, b| a.name.cmp(b.name).then_with(|| a.version.cmp(b.version)));
    all
}

pub(crate) fn configs() -> Vec<ModuleConfig> {
    native_modules()
        .into_iter()
        .map(NativeModule::to_config)
        .collect()
}
