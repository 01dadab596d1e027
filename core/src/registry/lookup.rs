//! Finding registrations: by name and requirement, by listing, by
//! capability query; resolving dependencies; the marketplace listing; and the
//! audit log.

use super::ModuleRegistry;
use crate::access::Permission;
use crate::audit::{AuditEvent, AuditLog};
use crate::config::parse_requirement;
use crate::deps::{self, Resolution};
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;
use crate::marketplace::PluginMarketplace;
use crate::query::{CapabilityQuery, PluginDiscoveryQuery, ServiceDiscoveryQuery};

impl ModuleRegistry {
    // ----- lookup ---------------------------------------------------------

    /// The highest release of module `name` (a pre-release only when it has
    /// no release), if registered.
    pub fn get(&self, name: &str) -> Option<ModuleInfo> {
        self.get_matching(ModuleKind::Module, name, None)
            .ok()
            .flatten()
    }

    /// [`get`](Self::get) for plugins.
    pub fn get_plugin(&self, name: &str) -> Option<ModuleInfo> {
        self.get_matching(ModuleKind::Plugin, name, None)
            .ok()
            .flatten()
    }

    /// The highest version of `name` in the `kind` namespace that satisfies
    /// `requirement` (as [`get`](Self::get) when `None`).
    pub fn find(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
    ) -> Result<ModuleInfo> {
        self.authorize(Permission::Discover, "get", Some(name))?;
        let req = requirement
            .map(|r| parse_requirement(name, r))
            .transpose()?;
        self.inner
            .state
            .read()
            .select(kind, name, req.as_ref(), requirement)
    }

    /// Like [`find`](Self::find), but `None` when there is no match or the
    /// current principal may not discover it; an invalid requirement is still an error.
    pub fn get_matching(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
    ) -> Result<Option<ModuleInfo>> {
        if !self.allowed(Permission::Discover, Some(name)) {
            return Ok(None);
        }
        match self.find(kind, name, requirement) {
            Ok(info) => Ok(Some(info)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every registered version of `name` in the `kind` namespace, highest first.
    pub fn versions(&self, kind: ModuleKind, name: &str) -> Vec<ModuleInfo> {
        if !self.allowed(Permission::Discover, Some(name)) {
            return Vec::new();
        }
        let state = self.inner.state.read();
        state
            .versions(kind, name)
            .map(|ids| ids.iter().map(|&id| state.info(id).clone()).collect())
            .unwrap_or_default()
    }

    /// Every registration, modules and plugins, by name then version descending.
    pub fn list(&self) -> Vec<ModuleInfo> {
        let all = self
            .inner
            .state
            .read()
            .discover(&CapabilityQuery::new(), None);
        self.visible(all)
    }

    /// How many registrations (every version of every module and plugin).
    pub fn len(&self) -> usize {
        self.inner.state.read().len
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `info` is still registered: this very registration, not a
    /// later one of the same name and version.
    pub fn is_registered(&self, info: &ModuleInfo) -> bool {
        let state = self.inner.state.read();
        state
            .versions(info.kind(), info.name())
            .is_some_and(|ids| ids.iter().any(|&id| state.info(id).same_registration(info)))
    }

    /// Whether a module or plugin named `name` is registered (and, under a
    /// policy, the current principal may discover it).
    pub fn contains(&self, name: &str) -> bool {
        if !self.allowed(Permission::Discover, Some(name)) {
            return false;
        }
        let state = self.inner.state.read();
        [ModuleKind::Module, ModuleKind::Plugin]
            .into_iter()
            .any(|kind| state.versions(kind, name).is_some())
    }

    // ----- discovery ------------------------------------------------------

    /// Modules and plugins matching `query`, by name ascending then version
    /// descending. Uses the capability index: the cost follows the size of
    /// the rarest required capability, not the registry's.
    /// Takes the query by value or by reference (`discover(&q)`, `discover(q)`).
    pub fn discover(
        &self,
        query: impl std::borrow::Borrow<CapabilityQuery>,
    ) -> Result<Vec<ModuleInfo>> {
        let query = query.borrow();
        query.validate()?;
        let req = query
            .version_req
            .as_deref()
            .map(|r| parse_requirement("discovery query", r))
            .transpose()?;
        self.authorize(Permission::Discover, "discover", None)?;
        let found = self.inner.state.read().discover(query, req.as_ref());
        Ok(self.visible(found))
    }

    /// [`discover`](Self::discover), under the seed examples' name; by value
    /// or by reference.
    pub fn discover_capabilities(
        &self,
        query: impl std::borrow::Borrow<CapabilityQuery>,
    ) -> Result<Vec<ModuleInfo>> {
        self.discover(query)
    }

    /// Modules (not plugins) matching a service query.
    pub fn discover_services(&self, query: ServiceDiscoveryQuery) -> Result<Vec<ModuleInfo>> {
        self.discover(&query.into_query())
    }

    /// Plugins matching a plugin query.
    pub fn discover_plugins(&self, query: PluginDiscoveryQuery) -> Result<Vec<ModuleInfo>> {
        self.discover(&query.into_query())
    }

    // ----- dependencies ---------------------------------------------------

    /// Resolves the dependency tree of `name` (highest version satisfying
    /// `requirement`) to concrete versions, in build order.
    pub fn resolve(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
    ) -> Result<Resolution> {
        self.authorize(Permission::Discover, "resolve", Some(name))?;
        let req = requirement
            .map(|r| parse_requirement(name, r))
            .transpose()?;
        let resolution = {
            let state = self.inner.state.read();
            let root = state.select(kind, name, req.as_ref(), requirement)?;
            deps::resolve(&*state, &root)?
        };
        // The tree shows every module in it: each must be discoverable.
        for info in resolution.modules() {
            self.authorize(Permission::Discover, "resolve", Some(info.name()))?;
        }
        Ok(resolution)
    }

    /// The dependency tree of the registration `root` as it resolves now
    /// (no access check: for the registry's own layers, such as the step
    /// cache's key).
    #[cfg(feature = "workflows")]
    pub(crate) fn resolve_registration(&self, root: &ModuleInfo) -> Result<Resolution> {
        deps::resolve(&*self.inner.state.read(), root)
    }

    /// The marketplace catalogue: every plugin whose metadata has
    /// `marketplace = "true"`. Fails with [`Error::FeatureDisabled`] unless
    /// the marketplace is on.
    pub fn plugin_marketplace(&self) -> Result<PluginMarketplace> {
        if !self.plugin_marketplace_enabled() {
            return Err(Error::FeatureDisabled {
                feature: "the plugin marketplace",
                hint: "ModuleRegistry::with_plugin_marketplace(true)",
            });
        }
        let listed = self.discover(
            &PluginDiscoveryQuery::new()
                .with_metadata("marketplace", "true")
                .into_query(),
        )?;
        Ok(PluginMarketplace::new(listed))
    }

    // ----- audit ----------------------------------------------------------

    /// The audit events kept, oldest first.
    ///
    /// A principal without registry-wide `admin` sees only the events about
    /// modules it may discover.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        let mut events = self.inner.audit.events();
        if !self.allowed(Permission::Admin, None) {
            events.retain(|e| self.allowed(Permission::Discover, Some(&e.module)));
        }
        events
    }

    /// Append every audit event from now on to `path`, one JSON object per
    /// line, flushed per event (`None` stops). Needs `admin`.
    pub fn set_audit_file(&self, path: Option<&std::path::Path>) -> Result<()> {
        self.authorize(Permission::Admin, "set_audit_file", None)?;
        self.inner.audit.set_file(path)
    }

    /// Forgets every kept audit event (the audit file keeps its lines).
    /// Needs `admin` on `*`; the clearing itself is the first event after.
    pub fn clear_audit(&self) -> Result<()> {
        self.authorize(Permission::Admin, "clear_audit", None)?;
        self.inner.audit.clear();
        self.inner.audit.push(
            "clear_audit",
            crate::kind::ModuleKind::Module,
            "*",
            None,
            crate::audit::Outcome::Ok,
            None,
        );
        Ok(())
    }

    /// The audit log itself (capacity, totals).
    pub fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }
}
