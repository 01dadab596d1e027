//! [`RegistryView`]: the registry acting as one principal.

use std::fmt;
use std::sync::Arc;

use super::ModuleRegistry;
use crate::access;
use crate::config::{ModuleConfig, PluginConfig};
use crate::error::Result;
use crate::info::ModuleInfo;
use crate::instance::ModuleInstance;
use crate::query::CapabilityQuery;

/// A view of a registry bound to a principal: every call acts as that
/// principal and is checked against the registry's
/// [`AccessPolicy`](crate::AccessPolicy). Made by [`ModuleRegistry::as_principal`].
#[derive(Clone)]
pub struct RegistryView {
    registry: ModuleRegistry,
    principal: Arc<str>,
}

impl fmt::Debug for RegistryView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryView")
            .field("principal", &self.principal)
            .finish()
    }
}

impl RegistryView {
    pub(super) fn new(registry: ModuleRegistry, principal: Arc<str>) -> Self {
        RegistryView {
            registry,
            principal,
        }
    }

    /// The principal this view acts as.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Runs `f` on the registry acting as this view's principal: every call
    /// inside, including those a script or a workflow makes, is checked.
    pub fn with<T>(&self, f: impl FnOnce(&ModuleRegistry) -> T) -> T {
        access::with_principal(Some(self.principal.clone()), || f(&self.registry))
    }

    /// [`ModuleRegistry::register`] as this principal.
    pub fn register(&self, config: ModuleConfig) -> Result<ModuleInfo> {
        self.with(|r| r.register(config))
    }

    /// [`ModuleRegistry::register_plugin`] as this principal.
    pub fn register_plugin(&self, config: PluginConfig) -> Result<ModuleInfo> {
        self.with(|r| r.register_plugin(config))
    }

    /// [`ModuleRegistry::unregister`] as this principal.
    pub fn unregister(&self, name: &str, version: &str) -> Result<ModuleInfo> {
        self.with(|r| r.unregister(name, version))
    }

    /// [`ModuleRegistry::get`] as this principal.
    pub fn get(&self, name: &str) -> Option<ModuleInfo> {
        self.with(|r| r.get(name))
    }

    /// [`ModuleRegistry::list`] as this principal (only what it may discover).
    pub fn list(&self) -> Vec<ModuleInfo> {
        self.with(ModuleRegistry::list)
    }

    /// [`ModuleRegistry::discover`] as this principal (only what it may discover).
    pub fn discover(
        &self,
        query: impl std::borrow::Borrow<CapabilityQuery>,
    ) -> Result<Vec<ModuleInfo>> {
        let query = query.borrow();
        self.with(|r| r.discover(query))
    }

    /// [`ModuleRegistry::create`] as this principal.
    pub fn create(&self, name: &str) -> Result<ModuleInstance> {
        self.with(|r| r.create(name))
    }

    /// [`ModuleRegistry::create_version`] as this principal.
    pub fn create_version(&self, name: &str, requirement: &str) -> Result<ModuleInstance> {
        self.with(|r| r.create_version(name, requirement))
    }
}
