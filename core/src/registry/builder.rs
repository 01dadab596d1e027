//! [`RegistryBuilder`]: the settings fixed when a registry is made.

use std::sync::atomic::Ordering;

use super::ModuleRegistry;
use crate::error::Result;
use crate::native;

/// Which native modules a built registry starts with.
#[derive(Debug, Clone, Default)]
enum Natives {
    #[default]
    None,
    All,
    Crates(Vec<String>),
}

/// Makes a [`ModuleRegistry`] with its construction-time settings, from
/// [`ModuleRegistry::builder`]. Nothing here can touch a registry someone
/// else holds, so nothing panics; [`build`](Self::build) reports what cannot
/// be registered.
///
/// ```
/// use module_registry::ModuleRegistry;
///
/// let registry = ModuleRegistry::builder()
///     .native_modules()
///     .workflow_orchestration(false)
///     .plugin_marketplace(true)
///     .audit_capacity(100)
///     .build()?;
/// assert!(registry.get("sha256").is_some());
/// assert!(!registry.workflow_orchestration_enabled());
/// assert!(registry.plugin_marketplace_enabled());
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RegistryBuilder {
    orchestration: bool,
    marketplace: bool,
    audit_capacity: Option<usize>,
    natives: Natives,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            orchestration: true,
            marketplace: false,
            audit_capacity: None,
            natives: Natives::None,
        }
    }
}

impl RegistryBuilder {
    /// Workflow orchestration on or off (on by default); see
    /// [`ModuleRegistry::set_workflow_orchestration`].
    pub fn workflow_orchestration(mut self, enabled: bool) -> Self {
        self.orchestration = enabled;
        self
    }

    /// The plugin marketplace on or off (off by default); see
    /// [`ModuleRegistry::set_plugin_marketplace`].
    pub fn plugin_marketplace(mut self, enabled: bool) -> Self {
        self.marketplace = enabled;
        self
    }

    /// Keep at most `capacity` audit events (default
    /// [`DEFAULT_AUDIT_CAPACITY`](crate::audit::DEFAULT_AUDIT_CAPACITY)).
    pub fn audit_capacity(mut self, capacity: usize) -> Self {
        self.audit_capacity = Some(capacity);
        self
    }

    /// Start with every native module linked into the program, as
    /// [`ModuleRegistry::with_native_modules`] does.
    pub fn native_modules(mut self) -> Self {
        self.natives = Natives::All;
        self
    }

    /// Start with only the native modules declared in these crates, as
    /// [`ModuleRegistry::with_crate_native_modules`] does.
    pub fn crate_native_modules(mut self, crates: &[&str]) -> Self {
        self.natives = Natives::Crates(crates.iter().map(|c| c.to_string()).collect());
        self
    }

    /// The registry, or an error listing every native declaration that
    /// cannot be registered.
    pub fn build(self) -> Result<ModuleRegistry> {
        let registry = match &self.natives {
            Natives::None => ModuleRegistry::new(),
            Natives::All => ModuleRegistry::registry_of_natives(native::configs()?)?,
            Natives::Crates(crates) => {
                ModuleRegistry::registry_of_natives(native::configs_where(|m| {
                    crates.iter().any(|c| c == m.crate_name())
                })?)?
            }
        };
        let inner = &registry.inner;
        inner
            .workflow_orchestration
            .store(self.orchestration, Ordering::Release);
        inner
            .plugin_marketplace
            .store(self.marketplace, Ordering::Release);
        if let Some(capacity) = self.audit_capacity {
            inner.audit.set_capacity(capacity);
        }
        Ok(registry)
    }
}

impl ModuleRegistry {
    /// A [`RegistryBuilder`]: construction-time settings (orchestration,
    /// marketplace, audit capacity, native modules), then
    /// [`build`](RegistryBuilder::build).
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }
}
