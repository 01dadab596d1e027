//! [`ModuleInfo`]: the read-only record of one registered declaration.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use semver::{Version, VersionReq};

use crate::config::{Implementation, ModuleConfig};
use crate::kind::{ModuleKind, ModuleType};

/// A registered declaration (validated, normalised, immutable).
pub(crate) struct Entry {
    pub(crate) config: ModuleConfig,
    pub(crate) version: Version,
}

/// A read-only, cheaply cloned view of one registered module or plugin.
#[derive(Clone)]
pub struct ModuleInfo(Arc<Entry>);

impl ModuleInfo {
    /// The record of a validated declaration and its parsed version.
    pub(crate) fn new(config: ModuleConfig, version: Version) -> Self {
        ModuleInfo(Arc::new(Entry { config, version }))
    }

    /// A record held by no registry (what a pickled record becomes): `config`
    /// checked as registering it would be. When it names an implementation
    /// it still says so, but it cannot build instances: its registry does.
    pub fn detached(config: ModuleConfig) -> crate::error::Result<Self> {
        let mut config = config;
        let version = config.validate()?;
        if *config.implementation() != Implementation::Declaration && !config.has_factory() {
            config.set_factory(Some(Arc::new(|context: &crate::ModuleContext| {
                Err(crate::error::Error::InvalidConfig {
                    name: context.info().name().to_string(),
                    reason: "this record is held by no registry (it was unpickled or built \
                             alone): create the module from the registry that holds it"
                        .into(),
                }
                .into())
            })));
        }
        Ok(ModuleInfo::new(config, version))
    }

    pub(crate) fn entry(&self) -> &Entry {
        &self.0
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.0.config.name()
    }

    /// The version.
    pub fn version(&self) -> &Version {
        &self.0.version
    }

    /// The version as text (what `version().to_string()` gives, without
    /// formatting it again).
    pub fn version_text(&self) -> &str {
        self.0.config.version()
    }

    /// The type.
    pub fn module_type(&self) -> &ModuleType {
        self.0.config.module_type()
    }

    /// Module or plugin.
    pub fn kind(&self) -> ModuleKind {
        self.0.config.kind
    }

    /// The capabilities, sorted and without duplicates.
    pub fn capabilities(&self) -> &[Arc<str>] {
        &self.0.config.capabilities
    }

    /// Whether the module has capability `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.0
            .config
            .capabilities
            .binary_search_by(|c| (**c).cmp(capability))
            .is_ok()
    }

    /// The metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        self.0.config.metadata()
    }

    /// What the module takes (`any` when not declared).
    pub fn input(&self) -> &crate::schema::Schema {
        self.0.config.input()
    }

    /// What the module gives (`any` when not declared).
    pub fn output(&self) -> &crate::schema::Schema {
        self.0.config.output()
    }

    /// The type of the module's config (`any` when not declared).
    pub fn config_type(&self) -> &crate::schema::Schema {
        self.0.config.config_type()
    }

    /// The dependencies: name to requirement text.
    pub fn dependencies(&self) -> &BTreeMap<String, String> {
        self.0.config.dependencies()
    }

    /// The dependencies with their parsed requirements.
    pub fn dependency_requirements(&self) -> impl Iterator<Item = (&str, &VersionReq)> {
        self.0
            .config
            .dependencies()
            .keys()
            .map(String::as_str)
            .zip(self.0.config.requirements())
    }

    /// Whether it can be created (it has a factory), rather than being a
    /// declaration only.
    pub fn has_implementation(&self) -> bool {
        self.0.config.has_factory()
    }

    /// How the module is implemented.
    pub fn implementation(&self) -> &Implementation {
        self.0.config.implementation()
    }

    /// The full declaration as registered.
    pub fn config(&self) -> &ModuleConfig {
        &self.0.config
    }

    /// Whether both views are of the very same registration.
    pub fn same_registration(&self, other: &ModuleInfo) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A number telling this registration apart from every other one alive
    /// (registered, or held by a view): equal keys mean
    /// [`same_registration`](Self::same_registration). A key may be used
    /// again once a registration and all its views are gone.
    pub fn registration_key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Kind, name and version: what the audit log records of a registration.
    pub(crate) fn subject(&self) -> (ModuleKind, &str, &Version) {
        (self.kind(), self.name(), self.version())
    }

    /// The registry's order: name ascending, then version descending, then kind.
    pub(crate) fn order(&self, other: &ModuleInfo) -> Ordering {
        self.name()
            .cmp(other.name())
            .then_with(|| other.version().cmp(self.version()))
            .then_with(|| self.kind().cmp(&other.kind()))
    }
}

impl PartialEq for ModuleInfo {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.kind() == other.kind()
                && self.name() == other.name()
                && self.version() == other.version())
    }
}

impl fmt::Debug for ModuleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleInfo")
            .field("kind", &self.kind())
            .field("name", &self.name())
            .field("version", &self.version().to_string())
            .field("type", &self.module_type())
            .field("capabilities", &self.capabilities())
            .field("metadata", self.metadata())
            .field("dependencies", self.dependencies())
            .field("has_implementation", &self.has_implementation())
            .finish()
    }
}

impl fmt::Display for ModuleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}@{}", self.kind(), self.name(), self.version())
    }
}
