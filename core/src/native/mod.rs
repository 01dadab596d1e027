//! Native modules found at compile time.
//!
//! Declare a native module anywhere in a crate linked into the program with
//! [`native_module!`](crate::native_module); [`ModuleRegistry::with_native_modules`](crate::ModuleRegistry::with_native_modules)
//! registers every one of them, without a list kept by hand. Collection uses
//! the `inventory` crate, so it also works inside a Python extension.
//!
//! ```
//! use module_registry::{native_module, BoxError, Module, ModuleContext, NativeModule, Value, ModuleRegistry};
//!
//! struct Shout;
//! impl Module for Shout {
//!     fn process(&self, input: Value) -> Result<Value, BoxError> {
//!         Ok(Value::Str(input.as_str().unwrap_or_default().to_uppercase()))
//!     }
//! }
//! fn shout(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> { Ok(Box::new(Shout)) }
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
use crate::error::BoxError;
use crate::kind::{ModuleKind, ModuleType};
use crate::module::{Module, ModuleContext};

/// What builds a native module's instance: a plain function of the
/// module's [`ModuleContext`] (config and dependencies).
pub type NativeFactory = fn(&ModuleContext) -> std::result::Result<Box<dyn Module>, BoxError>;

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
    pub factory: NativeFactory,
    /// The module path of the declaration (`module_path!()` where
    /// [`native_module!`](crate::native_module) was written); its first part
    /// is the declaring crate, which
    /// [`ModuleRegistry::with_crate_native_modules`](crate::ModuleRegistry::with_crate_native_modules)
    /// selects by. Empty for a declaration made without the macro.
    pub module_path: &'static str,
    /// The module takes no instance config (its factory and `init` never
    /// read one): a config given to it is refused, not ignored. See
    /// [`without_config`](Self::without_config).
    pub ignores_config: bool,
    /// The types it takes, gives and is configured with, as type
    /// expressions (`"bytes | str"`); empty is `any`. See
    /// [`with_types`](Self::with_types).
    pub types: [&'static str; 3],
}

/// Whether `name` follows the naming rule (`[a-z0-9][a-z0-9._-]{0,127}`),
/// checked in a constant context.
const fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > crate::validate::MAX_NAME_LEN {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || (i > 0 && matches!(c, b'.' | b'_' | b'-'));
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `version` is `MAJOR.MINOR.PATCH` (numbers without leading
/// zeros), optionally followed by `-pre` and `+build` parts of ASCII
/// letters, digits, `.` and `-`: semver's shape, checked in a constant
/// context (the registry parses it fully when registering).
const fn valid_version(version: &str) -> bool {
    let b = version.as_bytes();
    let mut i = 0;
    let mut part = 0;
    while part < 3 {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || (i - start > 1 && b[start] == b'0') {
            return false;
        }
        part += 1;
        if part < 3 {
            if i >= b.len() || b[i] != b'.' {
                return false;
            }
            i += 1;
        }
    }
    if i < b.len() && !matches!(b[i], b'-' | b'+') {
        return false;
    }
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+')) {
            return false;
        }
        i += 1;
    }
    true
}

impl NativeModule {
    /// A `DataProcessor` module with no capabilities, metadata or dependencies.
    ///
    /// An invalid name or version is refused where it is written: inside
    /// [`native_module!`](crate::native_module) (a constant) it is a compile
    /// error; called at run time, this panics.
    ///
    /// ```compile_fail
    /// use module_registry::{native_module, BoxError, FnModule, Module, ModuleContext, NativeModule};
    /// fn make(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> { Ok(Box::new(FnModule::new(Ok))) }
    /// native_module!(NativeModule::new("Bad_Name", "1.0.0", make)); // error: invalid name
    /// ```
    pub const fn new(name: &'static str, version: &'static str, factory: NativeFactory) -> Self {
        assert!(
            valid_name(name),
            "invalid native module name: use 1 to 128 of lowercase ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"
        );
        assert!(
            valid_version(version),
            "invalid native module version: use semver, MAJOR.MINOR.PATCH with optional -pre and +build parts"
        );
        NativeModule {
            name,
            version,
            module_type: "DataProcessor",
            kind: ModuleKind::Module,
            capabilities: &[],
            metadata: &[],
            dependencies: &[],
            factory,
            module_path: "",
            ignores_config: false,
            types: ["", "", ""],
        }
    }

    /// Declare that the module reads no config: one given to it is then
    /// refused at check and create time ([`ModuleConfig::without_config`](crate::ModuleConfig::without_config)).
    pub const fn without_config(mut self) -> Self {
        self.ignores_config = true;
        self
    }

    /// Declare the types it takes and gives, as type expressions
    /// (`with_types("bytes | str", "str")`), checked when registered.
    pub const fn with_types(mut self, input: &'static str, output: &'static str) -> Self {
        self.types[0] = input;
        self.types[1] = output;
        self
    }

    /// Declare the type of its config, as a type expression.
    pub const fn with_config_type(mut self, config_type: &'static str) -> Self {
        self.types[2] = config_type;
        self
    }

    /// Record where the declaration was written ([`native_module!`](crate::native_module)
    /// does this with `module_path!()`).
    #[doc(hidden)]
    pub const fn declared_in(mut self, module_path: &'static str) -> Self {
        self.module_path = module_path;
        self
    }

    /// The crate that declared it: the first part of
    /// [`module_path`](Self::module_path) (`"module_registry"` for the
    /// natives this crate ships).
    pub fn crate_name(&self) -> &'static str {
        self.module_path.split("::").next().unwrap_or("")
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

    /// Set the type. A custom type is given by name with
    /// [`with_custom_type`](Self::with_custom_type) (a constant needs a
    /// `&'static str`); `ModuleType::Custom` here is a compile error.
    pub const fn with_type(mut self, module_type: ModuleType) -> Self {
        self.module_type = match &module_type {
            ModuleType::DataProcessor => "DataProcessor",
            ModuleType::Security => "Security",
            ModuleType::Network => "Network",
            ModuleType::Storage => "Storage",
            ModuleType::Compute => "Compute",
            ModuleType::Analytics => "Analytics",
            ModuleType::Monitoring => "Monitoring",
            ModuleType::Integration => "Integration",
            ModuleType::Custom(_) => {
                panic!("a native module's custom type is set with with_custom_type(\"Name\")")
            }
        };
        std::mem::forget(module_type);
        self
    }

    /// Set a custom type by name.
    pub const fn with_custom_type(mut self, name: &'static str) -> Self {
        self.module_type = name;
        self
    }

    /// Make it a plugin.
    pub const fn as_plugin(mut self) -> Self {
        self.kind = ModuleKind::Plugin;
        self
    }

    /// The declaration as a [`ModuleConfig`], its types read: a type
    /// expression that does not parse is an [`Error::InvalidSchema`](crate::Error::InvalidSchema)
    /// naming the module.
    pub fn try_to_config(&self) -> crate::error::Result<ModuleConfig> {
        let mut config = self.to_config();
        let read = |text: &str| -> crate::error::Result<crate::schema::Schema> {
            if text.is_empty() {
                return Ok(crate::schema::Schema::any());
            }
            crate::schema::Schema::parse(text).map_err(|e| crate::error::Error::InvalidSchema {
                schema: text.chars().take(80).collect(),
                reason: format!("native module {:?}: {}", self.name, e),
            })
        };
        config = config
            .with_input(read(self.types[0])?)
            .with_output(read(self.types[1])?)
            .with_config_type(read(self.types[2])?);
        Ok(config)
    }

    /// The declaration as a [`ModuleConfig`] (validated when registered),
    /// without its types ([`try_to_config`](Self::try_to_config) reads them).
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
        if self.ignores_config {
            config = config.without_config();
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
/// The argument is a constant [`NativeModule`] expression: an invalid name
/// or version in it is a compile error. The declaring crate must be linked
/// into the program: a plugin crate nothing references is left out by the
/// linker (reference it with `use plugin_crate as _;`).
///
/// ```
/// use module_registry::{native_module, BoxError, FnModule, Module, ModuleContext, ModuleRegistry, ModuleType, NativeModule, Value};
///
/// fn checksum(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
///     Ok(Box::new(FnModule::new(|input: Value| {
///         let bytes: Vec<u8> = input.try_into()?;
///         Ok(Value::from(bytes.iter().map(|b| *b as i64).sum::<i64>()))
///     })))
/// }
///
/// native_module!(NativeModule::new("doc-checksum", "1.0.0", checksum)
///     .with_type(ModuleType::Security)
///     .with_capabilities(&["checksum"])
///     .with_dependencies(&[("sha256", "^1")]));
///
/// let registry = ModuleRegistry::try_with_native_modules()?;
/// let sum = registry.create("doc-checksum")?.process(vec![1u8, 2, 3])?;
/// assert_eq!(sum, Value::Int(6));
/// # Ok::<(), module_registry::Error>(())
/// ```
#[macro_export]
macro_rules! native_module {
    ($declaration:expr) => {
        $crate::inventory::submit! { ($declaration).declared_in(::core::module_path!()) }
    };
}

/// Every native module linked into the program, by name then version.
pub fn native_modules() -> Vec<&'static NativeModule> {
    let mut all: Vec<&'static NativeModule> = inventory::iter::<NativeModule>.into_iter().collect();
    all.sort_by(|a, b| a.name.cmp(b.name).then_with(|| a.version.cmp(b.version)));
    all
}

/// The names of the native modules this crate ships (`identity`,
/// `json-encode`, `sha256`, ...), sorted, each once: what
/// [`ModuleRegistry::with_native_modules`](crate::ModuleRegistry::with_native_modules)
/// adds beside a program's own natives, and
/// [`ModuleRegistry::with_crate_native_modules`](crate::ModuleRegistry::with_crate_native_modules)
/// leaves out unless asked for `"module_registry"`.
///
/// ```
/// let names = module_registry::native::builtin_native_modules();
/// assert!(names.contains(&"sha256") && names.contains(&"identity"));
/// ```
pub fn builtin_native_modules() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = native_modules()
        .into_iter()
        .filter(|m| m.crate_name() == env!("CARGO_CRATE_NAME"))
        .map(|m| m.name)
        .collect();
    names.dedup();
    names
}

/// The declarations of every linked native module for which `keep` holds,
/// as configs.
pub(crate) fn configs_where(
    keep: impl Fn(&NativeModule) -> bool,
) -> crate::error::Result<Vec<ModuleConfig>> {
    native_modules()
        .into_iter()
        .filter(|m| keep(m))
        .map(NativeModule::try_to_config)
        .collect()
}

pub(crate) fn configs() -> crate::error::Result<Vec<ModuleConfig>> {
    configs_where(|_| true)
}
