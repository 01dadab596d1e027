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

thread_local! {
    /// Registrations this thread makes while
    /// [`ModuleRegistry::recording_registrations`] runs: the registry
    /// (its address) and what was registered on it.
    static RECORDING: std::cell::RefCell<Option<(usize, Vec<ModuleInfo>)>> =
        const { std::cell::RefCell::new(None) };
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
    fn address(&self) -> usize {
        std::sync::Arc::as_ptr(&self.inner) as *const () as usize
    }

    /// Notes `info` for a recording running on this thread for this registry.
    fn note(&self, info: &ModuleInfo) {
        RECORDING.with(|r| {
            if let Some((registry, infos)) = r.borrow_mut().as_mut() {
                if *registry == self.address() {
                    infos.push(info.clone());
                }
            }
        });
    }

    /// Runs `f` and returns, with its result, what this thread registered
    /// on this registry meanwhile (what other threads register is not
    /// included): an installer can undo exactly its own work with
    /// [`unregister_exact`](Self::unregister_exact).
    pub fn recording_registrations<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<ModuleInfo>) {
        let outer = RECORDING.with(|r| r.borrow_mut().replace((self.address(), Vec::new())));
        struct Restore(Option<Option<(usize, Vec<ModuleInfo>)>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(outer) = self.0.take() {
                    RECORDING.with(|r| *r.borrow_mut() = outer);
                }
            }
        }
        let mut restore = Restore(Some(outer));
        let out = f();
        let (_, mine) = RECORDING
            .with(|r| r.borrow_mut().take())
            .unwrap_or_default();
        // An outer recording of the same registry sees these too.
        let mut outer = restore.0.take().flatten();
        if let Some((registry, infos)) = outer.as_mut() {
            if *registry == self.address() {
                infos.extend(mine.iter().cloned());
            }
        }
        RECORDING.with(|r| *r.borrow_mut() = outer);
        (out, mine)
    }

    /// Removes the registration `info` describes, only if it is still that
    /// very registration (not one registered in its place since). Returns
    /// whether it was removed.
    pub fn unregister_exact(&self, info: &ModuleInfo) -> Result<bool> {
        self.authorize(Permission::Unregister, "unregister", Some(info.name()))?;
        let removed = {
            let mut state = self.state_mut();
            match state.find_version(info.kind(), info.name(), info.version()) {
                Some(id) if state.info(id).same_registration(info) => {
                    Some(state.remove(info.kind(), id))
                }
                _ => None,
            }
        };
        if let Some(removed) = &removed {
            self.inner
                .audit
                .record(Outcome::Ok, "unregister", removed.subject(), None);
        }
        Ok(removed.is_some())
    }

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
                self.note(&info);
                Ok(info)
            }
            Err((e, config)) => Err(self.failed(operation, &config, e)),
        }
    }

    /// Audits the failure `e` to register `config`, and returns it.
    fn failed(&self, operation: &'static str, config: &ModuleConfig, e: Error) -> Error {
        self.inner.audit.push(
            operation,
            config.kind,
            config.name(),
            Some(config.version().to_string()),
            Outcome::Error,
            Some(e.report()),
        );
        e
    }

    /// Validates `config` (and, for a plugin while the marketplace is on,
    /// its listing); its version.
    fn checked_version(&self, config: &mut ModuleConfig) -> Result<semver::Version> {
        let version = config.validate()?;
        if config.kind == ModuleKind::Plugin && self.plugin_marketplace_enabled() {
            marketplace::validate_listing(config)?;
        }
        Ok(version)
    }

    /// Registers `config`; on failure, hands it back with the error (for
    /// the audit log) and leaves the registry as it was.
    fn register_inner(
        &self,
        mut config: ModuleConfig,
        replace: Replace,
    ) -> std::result::Result<ModuleInfo, (Error, Box<ModuleConfig>)> {
        let version = match self.checked_version(&mut config) {
            Ok(version) => version,
            Err(e) => return Err((e, Box::new(config))),
        };
        let mut state = self.state_mut();
        let existing = state.find_version(config.kind, config.name(), &version);
        if let Some(id) = existing {
            if !replace.allows(state.info(id)) {
                return Err((already_registered(state.info(id)), Box::new(config)));
            }
            state.remove(config.kind, id);
        }
        Ok(state.insert(config, version))
    }

    /// Registers every one of `configs`, or none: each is authorized and
    /// validated, two declaring the same kind, name and version are refused,
    /// and then, under one write lock (so another thread registering
    /// meanwhile cannot make a later one fail), each is checked against what
    /// is registered and all are inserted. Audited as `operation`.
    pub fn register_all(&self, configs: Vec<ModuleConfig>) -> Result<Vec<ModuleInfo>> {
        self.register_all_with(configs, Replace::No, "register")
    }

    /// [`register_all`](Self::register_all) with a replace rule.
    pub(crate) fn register_all_with(
        &self,
        configs: Vec<ModuleConfig>,
        replace: Replace,
        operation: &'static str,
    ) -> Result<Vec<ModuleInfo>> {
        self.register_all_then(configs, replace, operation, || {})
    }

    /// [`register_all_with`](Self::register_all_with), then `then` under the
    /// same write lock once every module is in (a manifest's settings and
    /// policy: applied with its modules or not at all, and seen together).
    /// `then` must not use the store (it would wait for its own lock).
    pub(crate) fn register_all_then(
        &self,
        configs: Vec<ModuleConfig>,
        replace: Replace,
        operation: &'static str,
        then: impl FnOnce(),
    ) -> Result<Vec<ModuleInfo>> {
        let fail = |e: Error, config: &ModuleConfig| self.failed(operation, config, e);
        let mut checked = Vec::with_capacity(configs.len());
        for mut config in configs {
            self.authorize(Permission::Register, operation, Some(config.name()))?;
            let version = self
                .checked_version(&mut config)
                .map_err(|e| fail(e, &config))?;
            let twice = checked
                .iter()
                .any(|(c, v): &(ModuleConfig, semver::Version)| {
                    c.kind == config.kind && c.name() == config.name() && *v == version
                });
            if twice {
                let e = Error::InvalidConfig {
                    name: config.name().to_string(),
                    reason: format!("{}@{version} is declared twice in one batch", config.name()),
                };
                return Err(fail(e, &config));
            }
            checked.push((config, version));
        }
        let infos = {
            let mut state = self.state_mut();
            for (config, version) in &checked {
                if let Some(id) = state.find_version(config.kind, config.name(), version) {
                    if !replace.allows(state.info(id)) {
                        let e = already_registered(state.info(id));
                        drop(state);
                        return Err(fail(e, config));
                    }
                }
            }
            let infos = checked
                .into_iter()
                .map(|(config, version)| {
                    if let Some(id) = state.find_version(config.kind, config.name(), &version) {
                        state.remove(config.kind, id);
                    }
                    state.insert(config, version)
                })
                .collect::<Vec<_>>();
            then();
            infos
        };
        for info in &infos {
            self.inner
                .audit
                .record(Outcome::Ok, operation, info.subject(), None);
            self.note(info);
        }
        Ok(infos)
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
                Some(e.report()),
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
        let mut state = self.state_mut();
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
