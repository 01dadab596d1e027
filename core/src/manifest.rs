//! Snapshots: [`ModuleRegistry::export_manifest`] writes every declaration,
//! script source and setting as JSON; [`ModuleRegistry::from_manifest`]
//! rebuilds the registry from it.
//!
//! Native modules are found again in the program by name and version, scripts
//! are recompiled from their source (checked against their recorded SHA-256),
//! declarations are registered as they were. Python modules (by import path)
//! and factories given in code need a resolver
//! ([`ModuleRegistry::load_manifest`]); the Python package brings one for
//! Python modules.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::access::{AccessPolicy, Permission};
use crate::config::{Implementation, ModuleConfig, ScriptSource};
use crate::error::{Error, Result};
use crate::kind::{ModuleKind, ModuleType};
use crate::limits::ScriptLimits;
use crate::registry::ModuleRegistry;

/// The manifest format this version writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    settings: Settings,
    #[serde(default)]
    policy: Option<AccessPolicy>,
    modules: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    workflow_orchestration: bool,
    plugin_marketplace: bool,
    audit_capacity: usize,
    script_limits: ScriptLimits,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    kind: ModuleKind,
    name: String,
    version: String,
    #[serde(rename = "type")]
    module_type: String,
    capabilities: Vec<String>,
    metadata: BTreeMap<String, String>,
    dependencies: BTreeMap<String, String>,
    implementation: Impl,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Impl {
    Declaration,
    Native,
    Rhai {
        source: String,
        path: Option<String>,
        sha256: String,
    },
    Python {
        import_path: String,
    },
    Custom,
}

impl ModuleRegistry {
    /// Every declaration, script source and setting as JSON (needs `admin`).
    pub fn export_manifest(&self) -> Result<String> {
        self.authorize(Permission::Admin, "export_manifest", None)?;
        let modules = self
            .list()
            .iter()
            .map(|info| Entry {
                kind: info.kind(),
                name: info.name().to_string(),
                version: info.version_text().to_string(),
                module_type: info.module_type().name().to_string(),
                capabilities: info.capabilities().iter().map(|c| c.to_string()).collect(),
                metadata: info.metadata().clone(),
                dependencies: info.dependencies().clone(),
                implementation: match info.implementation() {
                    Implementation::Declaration => Impl::Declaration,
                    Implementation::Native => Impl::Native,
                    Implementation::Rhai(s) => Impl::Rhai {
                        source: s.source.clone(),
                        path: s.path.clone(),
                        sha256: s.sha256.clone(),
                    },
                    Implementation::Python(Some(p)) => Impl::Python {
                        import_path: p.to_string(),
                    },
                    // No import path: only a resolver given in code can rebuild it.
                    Implementation::Python(None) | Implementation::Custom => Impl::Custom,
                },
            })
            .collect();
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            settings: Settings {
                workflow_orchestration: self.workflow_orchestration_enabled(),
                plugin_marketplace: self.plugin_marketplace_enabled(),
                audit_capacity: self.audit_log().capacity(),
                #[cfg(feature = "scripts")]
                script_limits: self.script_limits(),
                #[cfg(not(feature = "scripts"))]
                script_limits: ScriptLimits::default(),
            },
            policy: self.policy(),
            modules,
        };
        Ok(serde_json::to_string_pretty(&manifest)?)
    }

    /// A new registry rebuilt from a manifest. Python modules and factories
    /// given in code cannot be rebuilt here: see [`load_manifest`](Self::load_manifest).
    pub fn from_manifest(text: &str) -> Result<ModuleRegistry> {
        let registry = ModuleRegistry::new();
        registry.load_manifest(text, |config, import_path| {
            let what = match import_path {
                Some(path) => format!("a Python object ({path})"),
                None => "a factory given in code (custom)".to_string(),
            };
            Err(Error::InvalidConfig {
                name: config.name().to_string(),
                reason: format!("its implementation, {what}, cannot be rebuilt from a manifest here; use load_manifest with a resolver"),
            })
        })?;
        Ok(registry)
    }

    /// Applies a manifest to this registry: its settings and policy, then
    /// every module. `resolve(config, import_path)` attaches the
    /// implementation of Python modules (`import_path` is `Some`) and of
    /// factories given in code (`None`). Everything is checked before
    /// anything is registered; then modules are registered in order.
    pub fn load_manifest(
        &self,
        text: &str,
        mut resolve: impl FnMut(ModuleConfig, Option<&str>) -> Result<ModuleConfig>,
    ) -> Result<()> {
        self.authorize(Permission::Admin, "load_manifest", None)?;
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| Error::Serialization {
            message: format!("invalid manifest: {e}"),
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(Error::Serialization {
                message: format!(
                    "manifest format {} is not supported (this version reads {MANIFEST_FORMAT})",
                    manifest.format
                ),
            });
        }
        let natives = crate::native::native_modules();
        let mut configs = Vec::with_capacity(manifest.modules.len());
        for entry in manifest.modules {
            let mut config = ModuleConfig::new()
                .with_kind(entry.kind)
                .with_name(entry.name.clone())
                .with_version(entry.version.clone())
                .with_type(ModuleType::custom(entry.module_type))
                .add_capabilities(entry.capabilities);
            for (k, v) in entry.metadata {
                config = config.with_metadata(k, v);
            }
            for (k, v) in entry.dependencies {
                config = config.with_dependency(k, v);
            }
            let config = match entry.implementation {
                Impl::Declaration => config,
                Impl::Native => {
                    let native = natives
                        .iter()
                        .find(|n| {
                            n.name == entry.name
                                && n.version == entry.version
                                && n.kind == entry.kind
                        })
                        .ok_or_else(|| Error::InvalidConfig {
                            name: entry.name.clone(),
                            reason: format!(
                                "native module {}@{} is not linked into this program",
                                entry.name, entry.version
                            ),
                        })?;
                    let fresh = native.to_config();
                    config
                        .with_factory_of(&fresh)
                        .with_implementation(Implementation::Native)
                }
                Impl::Rhai {
                    source,
                    path,
                    sha256,
                } => {
                    let label = path.clone().unwrap_or_else(|| "<source>".to_string());
                    let scripted = rebuild_script(self, &label, &source, path.as_deref(), &sha256)?;
                    config
                        .with_factory_of(&scripted)
                        .with_implementation(Implementation::Rhai(Arc::new(ScriptSource {
                            source,
                            path,
                            sha256,
                        })))
                }
                Impl::Python { import_path } => {
                    let resolved = resolve(config, Some(&import_path))?;
                    resolved.with_implementation(Implementation::Python(Some(import_path.into())))
                }
                Impl::Custom => resolve(config, None)?,
            };
            config.clone().validate()?;
            configs.push(config);
        }
        manifest.settings.script_limits.validate()?;
        self.apply_settings(
            manifest.settings.workflow_orchestration,
            manifest.settings.plugin_marketplace,
            manifest.settings.audit_capacity,
        );
        #[cfg(feature = "scripts")]
        crate::script::host(self).set_limits(manifest.settings.script_limits);
        if let Some(policy) = manifest.policy {
            self.set_policy(Some(policy.compiled()?))?;
        }
        for config in configs {
            self.register_with_operation(config, crate::registry::Replace::Any, "load_manifest")?;
        }
        Ok(())
    }
}

impl ModuleConfig {
    /// Takes `other`'s factory (used when rebuilding from a manifest).
    pub(crate) fn with_factory_of(mut self, other: &ModuleConfig) -> Self {
        self.set_factory(other.get_factory().cloned());
        self
    }
}

/// The script module a manifest records, compiled and checked against its digest.
#[cfg(feature = "scripts")]
fn rebuild_script(
    registry: &ModuleRegistry,
    label: &str,
    source: &str,
    path: Option<&str>,
    sha256: &str,
) -> Result<ModuleConfig> {
    registry.prepare_script(label, source, path, sha256)
}

/// Without the `scripts` feature a script module cannot be rebuilt.
#[cfg(not(feature = "scripts"))]
fn rebuild_script(
    _registry: &ModuleRegistry,
    label: &str,
    _source: &str,
    _path: Option<&str>,
    _sha256: &str,
) -> Result<ModuleConfig> {
    Err(Error::InvalidConfig {
        name: label.to_string(),
        reason:
            "it is a Rhai script module, and this build of module-registry has no `scripts` feature"
                .into(),
    })
}
