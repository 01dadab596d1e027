//! Declarations: [`ModuleConfig`] and [`PluginConfig`], and how a module is
//! implemented ([`Implementation`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

mod extras;
mod types;

use crate::error::{BoxError, Error, Result};
use crate::kind::NAMED_TYPES;
pub use crate::kind::{ModuleKind, ModuleType, PluginType};
use crate::module::{FnModule, Module, ModuleContext};
use crate::validate::validate_metadata_key;
pub use crate::validate::{parse_requirement, parse_version, validate_name, MAX_NAME_LEN};
use crate::value::Value;

pub(crate) use self::extras::Extras;
use self::extras::Rare;

/// How a registered module is implemented: what a manifest records so the
/// registry can be rebuilt.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Implementation {
    /// A declaration only: discoverable, not creatable.
    #[default]
    Declaration,
    /// A native module found at compile time (rebuilt from the program by name and version).
    Native,
    /// A Rhai script (its source travels with it).
    Rhai(Arc<ScriptSource>),
    /// A Python object (see [`PythonCode`]).
    Python(Arc<PythonCode>),
    /// A factory given in code, which a manifest cannot carry.
    Custom,
}

/// The Python object a module is built from, as the core keeps it.
#[derive(Debug, Clone, Default)]
pub struct PythonCode {
    /// `package.module:qualified.name` when the object can be imported back
    /// by that path, else `None` (a lambda, a function defined in `__main__`).
    pub import_path: Option<Arc<str>>,
    /// The object itself, opaque to the core: the binding that registered
    /// it gets it back (to pickle the registry, say).
    pub origin: Option<Origin>,
    /// The object would never see an instance config (a function of its
    /// input alone, with no second parameter; a class without `init`), so
    /// one given to it is refused (when a workflow is checked, and when an
    /// instance is built).
    pub ignores_config: bool,
}

impl PartialEq for PythonCode {
    /// By import path: the objects themselves are code, not compared.
    fn eq(&self, other: &Self) -> bool {
        self.import_path == other.import_path
    }
}

impl Implementation {
    /// A Python object known by `import_path` (if any), the object itself not kept.
    pub fn python(import_path: Option<&str>) -> Self {
        Implementation::Python(Arc::new(PythonCode {
            import_path: import_path.map(Into::into),
            origin: None,
            ignores_config: false,
        }))
    }

    /// `"declaration"`, `"native"`, `"rhai"`, `"python"` or `"custom"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Implementation::Declaration => "declaration",
            Implementation::Native => "native",
            Implementation::Rhai(_) => "rhai",
            Implementation::Python(_) => "python",
            Implementation::Custom => "custom",
        }
    }
}

/// The source of a script module.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptSource {
    /// The script text.
    pub source: String,
    /// The file it was loaded from, if any.
    pub path: Option<String>,
    /// Lower-case hex SHA-256 of `source`.
    pub sha256: String,
    /// Every script it imports, directly or through others, by import path.
    pub imports: Vec<ImportedScript>,
}

/// A script another script imports (`import "html"`), as it was read when
/// the importing script was compiled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedScript {
    /// The path as the `import` names it (`"html"`).
    pub path: String,
    /// The script text.
    pub source: String,
    /// Lower-case hex SHA-256 of `source`.
    pub sha256: String,
}

/// Builds a module instance from its declaration.
pub type Factory = Arc<FactoryFn>;

/// The object a binding built a module from (for Python, its handler),
/// kept in [`PythonCode`]: the core never looks inside it.
pub type Origin = Arc<dyn std::any::Any + Send + Sync>;

/// The function a [`Factory`] shares (for holding one weakly, say): given
/// the module's context (its declaration, the per-instance config and its
/// dependencies' instances), it builds the module.
pub type FactoryFn = dyn Fn(&ModuleContext) -> std::result::Result<Box<dyn Module>, BoxError>
    + Send
    + Sync
    + 'static;

/// The declaration of a module: who it is, what it can do, what it needs and
/// (optionally) how to build it.
///
/// Builders take and return the config by value, so they chain from a
/// temporary and also work in a loop (`config = config.add_capability(c)`).
/// Nothing is checked until the config is registered, where every problem
/// becomes a typed [`Error`].
///
/// ```
/// use module_registry::{Error, ModuleConfig, ModuleRegistry, ModuleType, Value};
///
/// let config = ModuleConfig::new()
///     .with_name("resize")
///     .with_version("2.1.0")
///     .with_type(ModuleType::DataProcessor)
///     .add_capabilities(["images", "resizing"])
///     .with_metadata("license", "MIT")
///     .with_handler(|input| Ok(input));
/// let registry = ModuleRegistry::new();
/// let info = registry.register(config.clone())?;
/// assert_eq!(info.version().to_string(), "2.1.0");
/// // Registering the same name and version again is refused; the registry is unchanged.
/// assert!(matches!(registry.register(config), Err(Error::AlreadyRegistered { .. })));
/// // An invalid name is a typed error naming it.
/// let err = registry.register(ModuleConfig::new().with_name("Bad Name")).unwrap_err();
/// assert!(matches!(err, Error::InvalidName { .. }), "{err}");
/// assert_eq!(registry.len(), 1);
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "builder methods return the changed value; use it"]
pub struct ModuleConfig {
    /// The name followed by the version text, in one allocation (a registry
    /// may hold 100,000 of these).
    text: Box<str>,
    /// Where the name ends in `text`.
    name_len: u32,
    /// Whether a version was set (else it is the default, `0.1.0`).
    has_version: bool,
    pub(crate) kind: ModuleKind,
    /// Index of a named type in `NAMED_TYPES`, or `CUSTOM_TYPE` when the
    /// type is custom (kept in `extras`).
    type_index: u8,
    pub(crate) capabilities: Vec<Arc<str>>,
    /// Everything most declarations leave empty, boxed so that a plain
    /// declaration stays small (a registry may hold 100,000 of them).
    pub(crate) extras: Option<Box<Extras>>,
}

const CUSTOM_TYPE: u8 = u8::MAX;
const DEFAULT_VERSION: &str = "0.1.0";
/// Names are kept up to this many bytes (the valid ones have at most 128).
const MAX_STORED_NAME: usize = 64 * 1024;
static EMPTY_MAP: BTreeMap<String, String> = BTreeMap::new();
static DECLARATION: Implementation = Implementation::Declaration;

impl Default for ModuleConfig {
    fn default() -> Self {
        ModuleConfig {
            text: Box::default(),
            name_len: 0,
            has_version: false,
            kind: ModuleKind::Module,
            type_index: 0,
            capabilities: Vec::new(),
            extras: None,
        }
    }
}

impl PartialEq for ModuleConfig {
    /// Equal declarations: kind, name, version, type, capabilities (as
    /// added), metadata, dependencies, implementation and the three types. The factory and
    /// the origin are code, not compared.
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.name_text() == other.name_text()
            && self.version_text() == other.version_text()
            && self.get_type() == other.get_type()
            && self.capabilities == other.capabilities
            && self.get_metadata() == other.get_metadata()
            && self.get_dependencies() == other.get_dependencies()
            && self.get_implementation() == other.get_implementation()
            && self.same_types(other)
    }
}

impl fmt::Debug for ModuleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleConfig")
            .field("name", &self.name_text())
            .field("version", &self.version_text())
            .field("type", self.get_type())
            .field("kind", &self.kind)
            .field("capabilities", &self.capabilities)
            .field("metadata", self.get_metadata())
            .field("dependencies", self.get_dependencies())
            .field("has_factory", &self.get_factory().is_some())
            .finish()
    }
}

/// Field access shared by the builders of [`ModuleConfig`] and [`PluginConfig`].
impl ModuleConfig {
    fn name_text(&self) -> &str {
        &self.text[..self.name_len as usize]
    }

    fn version_text(&self) -> &str {
        if self.has_version {
            &self.text[self.name_len as usize..]
        } else {
            DEFAULT_VERSION
        }
    }

    /// Replaces the name and the version text (`None`: the default).
    fn set_text(&mut self, name: &str, version: Option<&str>) {
        // A name past 64 KiB (far past the 128-byte limit, so it fails
        // validation anyway) is cut at a character boundary there, so that
        // its length fits the 32-bit field.
        let mut end = name.len().min(MAX_STORED_NAME);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let name = &name[..end];
        let mut text = String::with_capacity(name.len() + version.map_or(0, str::len));
        text.push_str(name);
        text.push_str(version.unwrap_or(""));
        self.text = text.into_boxed_str();
        self.name_len = u32::try_from(name.len()).expect("at most 64 KiB");
        self.has_version = version.is_some();
    }

    fn set_name(&mut self, name: &str) {
        let version = self.has_version.then(|| self.version_text().to_string());
        self.set_text(name, version.as_deref());
    }

    fn set_version(&mut self, version: &str) {
        let name = self.name_text().to_string();
        self.set_text(&name, Some(version));
    }

    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    fn set_type(&mut self, module_type: ModuleType) {
        match NAMED_TYPES.iter().position(|(t, _)| *t == module_type) {
            Some(i) => {
                self.type_index = i as u8;
                if let Some(rare) = self.extras.as_mut().and_then(|e| e.rare.as_mut()) {
                    rare.custom_type = None;
                }
            }
            None => {
                self.type_index = CUSTOM_TYPE;
                self.extras_mut().rare_mut().custom_type = Some(module_type);
            }
        }
    }

    fn get_type(&self) -> &ModuleType {
        match (self.type_index, self.rare()) {
            (CUSTOM_TYPE, Some(rare)) => rare
                .custom_type
                .as_ref()
                .expect("a custom type is kept in extras"),
            (i, _) => &NAMED_TYPES[usize::from(i)].0,
        }
    }

    fn get_metadata(&self) -> &BTreeMap<String, String> {
        self.extras.as_ref().map_or(&EMPTY_MAP, |e| &e.metadata)
    }

    fn rare(&self) -> Option<&Rare> {
        self.extras.as_ref().and_then(|e| e.rare.as_deref())
    }

    fn get_dependencies(&self) -> &BTreeMap<String, String> {
        self.rare().map_or(&EMPTY_MAP, |r| &r.dependencies)
    }

    pub(crate) fn requirements(&self) -> &[semver::VersionReq] {
        self.rare().map_or(&[], |r| &r.requirements)
    }

    pub(crate) fn get_factory(&self) -> Option<&Factory> {
        self.extras.as_ref().and_then(|e| e.factory.as_ref())
    }

    fn get_implementation(&self) -> &Implementation {
        self.extras
            .as_ref()
            .map_or(&DECLARATION, |e| &e.implementation)
    }

    /// Records the implementation. This is the one place the `implementation`
    /// metadata label (`"native"`, `"rhai"`, `"python"`) is written: it is
    /// derived from the enum, which is what the code reads.
    fn set_implementation(&mut self, implementation: Implementation) {
        if matches!(
            implementation,
            Implementation::Native | Implementation::Rhai(_) | Implementation::Python(_)
        ) {
            self.extras_mut().set_label(implementation.kind());
        }
        if implementation != Implementation::Declaration || self.extras.is_some() {
            self.extras_mut().implementation = implementation;
        }
    }

    pub(crate) fn set_factory(&mut self, factory: Option<Factory>) {
        if factory.is_some() || self.extras.is_some() {
            let extras = self.extras_mut();
            extras.factory = factory;
            extras.ignores_config = false; // said again for the new factory
            if extras.factory.is_some() && extras.implementation == Implementation::Declaration {
                extras.implementation = Implementation::Custom;
            }
        }
    }
}

macro_rules! builder_methods {
    ($($inner:tt)*) => {
        /// Set the name (`[a-z0-9][a-z0-9._-]{0,127}`, checked on registration).
        pub fn with_name(mut self, name: impl Into<String>) -> Self {
            self $($inner)* .set_name(&name.into());
            self
        }

        /// Set the semver version (default `0.1.0`, checked on registration).
        pub fn with_version(mut self, version: impl Into<String>) -> Self {
            self $($inner)* .set_version(&version.into());
            self
        }

        /// Set the type.
        pub fn with_type(mut self, module_type: ModuleType) -> Self {
            self $($inner)* .set_type(module_type);
            self
        }

        /// Add one capability (duplicates are ignored).
        pub fn add_capability(mut self, capability: impl AsRef<str>) -> Self {
            self $($inner)* .capabilities.push(Arc::from(capability.as_ref()));
            self
        }

        /// Add several capabilities.
        pub fn add_capabilities<I, S>(mut self, capabilities: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: AsRef<str>,
        {
            self $($inner)* .capabilities
                .extend(capabilities.into_iter().map(|c| Arc::from(c.as_ref())));
            self
        }

        /// Set a metadata entry (a later value for the same key wins).
        pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            Arc::make_mut(&mut self $($inner)* .extras_mut().metadata).insert(key.into(), value.into());
            self
        }

        /// Depend on another module: `requirement` is a semver requirement
        /// such as `"^1.2"` (checked on registration).
        pub fn with_dependency(mut self, name: impl Into<String>, requirement: impl Into<String>) -> Self {
            self $($inner)* .extras_mut().rare_mut().dependencies.insert(name.into(), requirement.into());
            self
        }

        /// Set the factory that builds instances of this module. It gets the
        /// module's [`ModuleContext`]: its declaration, the per-instance
        /// config and its dependencies' instances, built before it.
        pub fn with_factory<F>(mut self, factory: F) -> Self
        where
            F: Fn(&ModuleContext) -> std::result::Result<Box<dyn Module>, BoxError> + Send + Sync + 'static,
        {
            self $($inner)* .set_factory(Some(Arc::new(factory)));
            self
        }

        /// Set a factory that may be shared with other declarations: many
        /// modules built the same way hold one `Arc`, not one copy each.
        pub fn with_shared_factory(mut self, factory: Factory) -> Self {
            self $($inner)* .set_factory(Some(factory));
            self
        }

        /// Record how the module is implemented (kept in manifests).
        pub fn with_implementation(mut self, implementation: Implementation) -> Self {
            self $($inner)* .set_implementation(implementation);
            self
        }

        /// How the module is implemented.
        pub fn implementation(&self) -> &Implementation {
            self $($inner)* .get_implementation()
        }

        /// Implement the module with a plain function called on every `process`.
        /// The function sees no config, so one given to the module is refused
        /// (as with [`without_config`](ModuleConfig::without_config)); a module
        /// that reads its config is built with a factory
        /// ([`with_factory`](Self::with_factory)) or [`ModuleConfig::typed`].
        pub fn with_handler<F>(self, handler: F) -> Self
        where
            F: Fn(Value) -> std::result::Result<Value, BoxError> + Send + Sync + 'static,
        {
            let handler = Arc::new(handler);
            let mut me = self
                .with_factory(move |_| Ok(Box::new(FnModule::from_arc(handler.clone())) as Box<dyn Module>));
            me $($inner)* .extras_mut().ignores_config = true;
            me
        }

        /// The name as set (empty when unset).
        pub fn name(&self) -> &str {
            self $($inner)* .name_text()
        }

        /// The version text as set.
        pub fn version(&self) -> &str {
            self $($inner)* .version_text()
        }

        /// The type.
        pub fn module_type(&self) -> &ModuleType {
            self $($inner)* .get_type()
        }

        /// The capabilities as added.
        pub fn capabilities(&self) -> impl Iterator<Item = &str> {
            self $($inner)* .capabilities.iter().map(|c| &**c)
        }

        /// The metadata.
        pub fn metadata(&self) -> &BTreeMap<String, String> {
            self $($inner)* .get_metadata()
        }

        /// The dependencies, name to requirement text.
        pub fn dependencies(&self) -> &BTreeMap<String, String> {
            self $($inner)* .get_dependencies()
        }

        /// Whether the config carries a factory (otherwise it is a declaration only).
        pub fn has_factory(&self) -> bool {
            self $($inner)* .get_factory().is_some()
        }
    };
}

impl ModuleConfig {
    /// An empty declaration (version `0.1.0`, type `DataProcessor`).
    pub fn new() -> Self {
        Self::default()
    }

    builder_methods!();

    /// Module or plugin.
    pub fn kind(&self) -> ModuleKind {
        self.kind
    }

    /// Checks every field and returns the parsed version. The config is
    /// normalised: capabilities sorted and deduplicated, dependency
    /// requirements parsed, and empty extras dropped.
    pub(crate) fn validate(&mut self) -> Result<semver::Version> {
        if self.name_len == 0 {
            return Err(Error::InvalidConfig {
                name: "<unnamed>".to_string(),
                reason: "the name is missing; set it with with_name(..)".into(),
            });
        }
        validate_name("module name", self.name_text())?;
        let version = parse_version(self.name_text(), self.version_text())?;
        let text = self.version_text();
        if self.has_version && text.len() != text.trim().len() {
            // Kept as it reads back: the text of the parsed version.
            let trimmed = text.trim().to_string();
            self.set_version(&trimmed);
        }
        for cap in &self.capabilities {
            validate_name("capability", cap)?;
        }
        self.capabilities.sort_unstable();
        self.capabilities.dedup();
        let name = &self.text[..self.name_len as usize];
        let Some(extras) = &mut self.extras else {
            return Ok(version);
        };
        for key in extras.metadata.keys() {
            validate_metadata_key(key)?;
        }
        if let Some(rare) = &mut extras.rare {
            let mut reqs = Vec::with_capacity(rare.dependencies.len());
            for (dep, req) in &rare.dependencies {
                validate_name("dependency name", dep)?;
                if dep == name {
                    return Err(Error::InvalidConfig {
                        name: name.to_string(),
                        reason: "a module cannot depend on itself".into(),
                    });
                }
                reqs.push(parse_requirement(dep, req)?);
            }
            rare.requirements = reqs.into_boxed_slice();
            if let Some(ModuleType::Custom(t)) = &rare.custom_type {
                if t.trim().is_empty() {
                    return Err(Error::InvalidConfig {
                        name: name.to_string(),
                        reason: "custom module type must not be empty".into(),
                    });
                }
            }
            if rare.is_empty() {
                extras.rare = None;
            }
        }
        if extras.is_empty() {
            self.extras = None;
        }
        Ok(version)
    }
}

impl ModuleConfig {
    /// Change the namespace this declaration registers into.
    pub fn with_kind(mut self, kind: ModuleKind) -> Self {
        self.kind = kind;
        self
    }
}

mod plugin;
pub use self::plugin::PluginConfig;

#[cfg(test)]
mod tests;
