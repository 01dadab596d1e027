//! Registering and removing declarations: validated first, so that a
//! failure leaves the registry as it was, and audited either way.

use super::ModuleRegistry;
use crate::access::Permission;
use crate::audit::Outcome;
use crate::config::{parse_version, ModuleConfig, PluginConfig};
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;
use crate::marketplace;

/// What an existing registration of the same name and version may be
/// replaced by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Nothing: it is [`Error::AlreadyRegistered`].
    No,
    /// Anything ([`ModuleRegistry::replace`], manifests).
    Any,
    #[cfg_attr(not(feature = "scripts"), allow(dead_code))]
    /// Only a script by a script (loading a script again reloads it; it
    /// never silently takes the place of a native or Python module).
    Scripts,
}

impl Replace {
    /// Whether `existing` (same kind, name and version) may be replaced.
    fn allows(self, existing: &ModuleInfo) -> bool {
        match self {
            Replace::No => false,
            Replace::Any => true,
            Replace::Scripts => matches!(
                existing.implementation(),
                crate::config::Implementation::Rhai(_)
            ),
        }
    }
}

/// The error for a registration `replace` may not take the place of.
fn already_registered(existing: &ModuleInfo) -> Error {
    Error::AlreadyRegistered {
        kind: existing.kind(),
        name: existing.name().to_string(),
        version: existing.version().to_string(),
    }
}

impl ModuleRegistry {
    /// Registers a module. Fails if the same name and version is already
    /// registered as a module, or if any field is invalid; on failure the
    /// registry is unchanged.
    pub fn register(&self, config: ModuleConfig) -> Result<ModuleInfo> {
        self.register_config(config.with_kind(ModuleKind::Module), false)
    }

    /// Registers a plugin (the plugin namespace is separate from the modules').
    pub fn register_plugin(&self, config: PluginConfig) -> Result<ModuleInfo> {
        self.register_config(config.into_module_config(), false)
    }

    /// Registers a module, replacing an existing registration of the same
    /// name and version if there is one. Instances already created keep
    /// running the code they were built with.
    pub fn replace(&self, config: ModuleConfig) -> Result<ModuleInfo> {
        self.register_config(config.with_kind(ModuleKind::Module), true)
    }

    /// [`replace`](Self::replace) for plugins.
    pub fn replace_plugin(&self, config: PluginConfig) -> Result<ModuleInfo> {
        self.register_config(config.into_module_config(), true)
    }

    /// Registers a declaration into the namespace its [`kind`](ModuleConfig::kind)
    /// names; with `replace`, an existing registration of the same name and
    /// version is replaced instead of being an error.
    pub fn register_config(&self, config: ModuleConfig, replace: bool) -> Result<ModuleInfo> {
        self.register_with_operation(
            config,
            if replace { Replace::Any } else { Replace::No },
            if replace { "replace" } else { "register" },
        )
    }

    /// [`register_config`](Self::register_config), audited as `operation`.
    pub(crate) fn register_with_operation(
        &self,
        config: ModuleConfig,
        replace: Replace,
        operation: &'static str,
    ) -> Result<ModuleInfo> {
        self.authorize(Permission::Register, operation, Some(config.name()))?;
        match self.register_inner(config, replace) {
            Ok(info) => {
                self.inner
                    .audit
                    .record(Outcome::Ok, operation, info.subject(), None);
                Ok(info)
            }
            Err((e, config)) => {
                self.inner.audit.push(
                    operation,
                    config.kind,
                    config.name(),
                    Some(config.version().to_string()),
                    Outcome::Error,
                    Some(e.to_string()),
                );
                Err(e)
            }
        }
    }

    /// Registers `config`; on failure, hands it back with the error (for
    /// the audit log) and leaves the registry as it was.
    fn register_inner(
        &self,
        mut config: ModuleConfig,
        replace: Replace,
    ) -> std::result::Result<ModuleInfo, (Error, Box<ModuleConfig>)> {
        let version = match config.validate().and_then(|version| {
            if config.kind == ModuleKind::Plugin && self.plugin_marketplace_enabled() {
                marketplace::validate_listing(&config)?;
            }
            Ok(version)
        }) {
            Ok(version) => version,
            Err(e) => return Err((e, Box::new(config))),
        };
        let mut state = self.inner.state.write();
        let existing = state.find_version(config.kind, config.name(), &version);
        if let Some(id) = existing {
            if !replace.allows(state.info(id)) {
                return Err((already_registered(state.info(id)), Box::new(config)));
            }
            state.remove(config.kind, id);
        }
        Ok(state.insert(config, version))
    }

    /// Fails as registering `config` (validated, at `version`) with
    /// `replace` would because of what is registered now, without
    /// registering: a batch checks every member before registering any.
    #[cfg_attr(not(feature = "scripts"), allow(dead_code))]
    pub(crate) fn check_replace(
        &self,
        config: &ModuleConfig,
        version: &semver::Version,
        replace: Replace,
    ) -> Result<()> {
        let state = self.inner.state.read();
        match state.find_version(config.kind, config.name(), version) {
            Some(id) if !replace.allows(state.info(id)) => Err(already_registered(state.info(id))),
            _ => Ok(()),
        }
    }

    /// Removes one version of a module. Instances already created keep working.
    pub fn unregister(&self, name: &str, version: &str) -> Result<ModuleInfo> {
        let mut removed = self.remove(ModuleKind::Module, name, Some(version))?;
        Ok(removed.remove(0))
    }

    /// Removes one version of a plugin.
    pub fn unregister_plugin(&self, name: &str, version: &str) -> Result<ModuleInfo> {
        let mut removed = self.remove(ModuleKind::Plugin, name, Some(version))?;
        Ok(removed.remove(0))
    }

    /// Removes `version` of `name` from the `kind` namespace, or every
    /// version when `version` is `None`. Returns what was removed; fails with
    /// [`Error::NotFound`] when nothing matched.
    pub fn remove(
        &self,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<ModuleInfo>> {
        self.authorize(Permission::Unregister, "unregister", Some(name))?;
        let result = self.remove_inner(kind, name, version);
        match &result {
            Ok(removed) => {
                for info in removed {
                    self.inner
                        .audit
                        .record(Outcome::Ok, "unregister", info.subject(), None);
                }
            }
            Err(e) => self.inner.audit.push(
                "unregister",
                kind,
                name,
                version.map(str::to_string),
                Outcome::Error,
                Some(e.to_string()),
            ),
        }
        result
    }

    fn remove_inner(
        &self,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<ModuleInfo>> {
        let version = version.map(|v| parse_version(name, v)).transpose()?;
        let mut state = self.inner.state.write();
        let ids: Vec<u32> = state
            .versions(kind, name)
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|&id| {
                        version.as_ref().is_none_or(|v| {
                            state.info(id).version().cmp_precedence(v) == std::cmp::Ordering::Equal
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(Error::NotFound {
                kind,
                name: name.to_string(),
                requirement: version.map(|v| format!("={v}")),
                available: state.available(kind, name),
            });
        }
        Ok(ids.into_iter().map(|id| state.remove(kind, id)).collect())
    }
}
