//! Discovery queries: [`CapabilityQuery`], [`ServiceDiscoveryQuery`] and
//! [`PluginDiscoveryQuery`].

use crate::error::Result;
use crate::kind::{ModuleKind, ModuleType};
use crate::validate::validate_name;

/// What to look for. Every condition set must hold:
/// all of `required`, at least one of `any` (when given), none of `excluded`,
/// the type, the kind, the version requirement and each metadata pair.
///
/// An empty query matches everything. Results are ordered by name ascending,
/// then version descending (then modules before plugins).
///
/// ```
/// use module_registry::{CapabilityQuery, ModuleConfig, ModuleRegistry, ModuleType};
///
/// let registry = ModuleRegistry::new();
/// for (name, version, caps) in [
///     ("png", "1.0.0", &["images", "lossless"][..]),
///     ("jpeg", "1.3.0", &["images", "lossy"][..]),
///     ("jpeg", "2.0.0", &["images", "lossy"][..]),
///     ("wav", "1.0.0", &["audio", "lossless"][..]),
/// ] {
///     registry.register(ModuleConfig::new().with_name(name).with_version(version).add_capabilities(caps))?;
/// }
/// let query = CapabilityQuery::new()
///     .with_required_capabilities(["images"])
///     .with_excluded_capabilities(["lossless"])
///     .with_version_req("^1")
///     .with_type(ModuleType::DataProcessor);
/// let found = registry.discover_capabilities(query)?;
/// let names: Vec<String> = found.iter().map(|i| format!("{}@{}", i.name(), i.version())).collect();
/// assert_eq!(names, ["jpeg@1.3.0"]);
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[must_use = "builder methods return the changed value; use it"]
pub struct CapabilityQuery {
    pub(crate) required: Vec<String>,
    pub(crate) any: Vec<String>,
    pub(crate) excluded: Vec<String>,
    pub(crate) module_type: Option<ModuleType>,
    pub(crate) kind: Option<ModuleKind>,
    pub(crate) version_req: Option<String>,
    pub(crate) metadata: Vec<(String, String)>,
    /// Only modules taking values of this type (see [`with_input`](Self::with_input)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) input: Option<crate::schema::Schema>,
    /// Only modules giving values of this type (see [`with_output`](Self::with_output)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output: Option<crate::schema::Schema>,
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

macro_rules! query_builders {
    ($($inner:tt)*) => {
        /// Every one of these capabilities must be present (replaces earlier ones).
        pub fn with_required_capabilities<I, S>(mut self, capabilities: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self $($inner)* .required = strings(capabilities);
            self
        }

        /// At least one of these capabilities must be present (replaces earlier ones).
        pub fn with_any_capabilities<I, S>(mut self, capabilities: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self $($inner)* .any = strings(capabilities);
            self
        }

        /// None of these capabilities may be present (replaces earlier ones).
        pub fn with_excluded_capabilities<I, S>(mut self, capabilities: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self $($inner)* .excluded = strings(capabilities);
            self
        }

        /// Only modules of this type.
        pub fn with_type(mut self, module_type: ModuleType) -> Self {
            self $($inner)* .module_type = Some(module_type);
            self
        }

        /// Only versions matching this semver requirement (`"^1"`, `">=2, <3"`).
        pub fn with_version_req(mut self, requirement: impl Into<String>) -> Self {
            self $($inner)* .version_req = Some(requirement.into());
            self
        }

        /// Same as [`with_version_req`](Self::with_version_req).
        pub fn with_version(self, requirement: impl Into<String>) -> Self {
            self.with_version_req(requirement)
        }

        /// Only modules that take values of type `schema`: those whose
        /// declared input type it is assignable to (a module taking `any`,
        /// or not declaring its input, takes every type).
        pub fn with_input(mut self, schema: crate::schema::Schema) -> Self {
            self $($inner)* .input = Some(schema);
            self
        }

        /// Only modules that give values of type `schema`: those whose
        /// declared output type is assignable to it. A module whose output
        /// is `any` (not declared) is not known to give it, so it matches
        /// only a query for `any`.
        pub fn with_output(mut self, schema: crate::schema::Schema) -> Self {
            self $($inner)* .output = Some(schema);
            self
        }

        /// Only modules whose metadata has `key` equal to `value` (several calls: all must hold).
        pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self $($inner)* .metadata.push((key.into(), value.into()));
            self
        }
    };
}

impl CapabilityQuery {
    /// A query that matches everything.
    pub fn new() -> Self {
        Self::default()
    }

    query_builders!();

    /// Only modules or only plugins (default: both).
    pub fn with_kind(mut self, kind: ModuleKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The kind filter, if any.
    pub fn kind(&self) -> Option<ModuleKind> {
        self.kind
    }

    /// Checks every capability name in the query.
    pub(crate) fn validate(&self) -> Result<()> {
        for cap in self.required.iter().chain(&self.any).chain(&self.excluded) {
            validate_name("capability", cap)?;
        }
        Ok(())
    }
}

/// A discovery query over modules (not plugins), for finding services: a
/// [`CapabilityQuery`] with [`with_service_type`](Self::with_service_type) to
/// match the `service_type` metadata entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDiscoveryQuery {
    inner: CapabilityQuery,
}

impl Default for ServiceDiscoveryQuery {
    fn default() -> Self {
        ServiceDiscoveryQuery {
            inner: CapabilityQuery::new().with_kind(ModuleKind::Module),
        }
    }
}

impl ServiceDiscoveryQuery {
    /// A query over every module.
    pub fn new() -> Self {
        Self::default()
    }

    query_builders!(.inner);

    /// Only modules whose `service_type` metadata equals `service_type`.
    pub fn with_service_type(self, service_type: impl Into<String>) -> Self {
        self.with_metadata("service_type", service_type)
    }

    /// The equivalent capability query.
    pub fn into_query(self) -> CapabilityQuery {
        self.inner
    }
}

/// A discovery query over plugins only.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDiscoveryQuery {
    inner: CapabilityQuery,
}

impl Default for PluginDiscoveryQuery {
    fn default() -> Self {
        PluginDiscoveryQuery {
            inner: CapabilityQuery::new().with_kind(ModuleKind::Plugin),
        }
    }
}

impl PluginDiscoveryQuery {
    /// A query over every plugin.
    pub fn new() -> Self {
        Self::default()
    }

    query_builders!(.inner);

    /// The equivalent capability query.
    pub fn into_query(self) -> CapabilityQuery {
        self.inner
    }
}

impl From<ServiceDiscoveryQuery> for CapabilityQuery {
    fn from(q: ServiceDiscoveryQuery) -> Self {
        q.into_query()
    }
}

impl From<PluginDiscoveryQuery> for CapabilityQuery {
    fn from(q: PluginDiscoveryQuery) -> Self {
        q.into_query()
    }
}
