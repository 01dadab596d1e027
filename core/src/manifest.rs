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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::access::{AccessPolicy, Permission};
use crate::config::{Implementation, ImportedScript, ModuleConfig};
use crate::error::{Error, Result};
use crate::kind::{ModuleKind, ModuleType};
use crate::limits::ScriptLimits;
use crate::registry::ModuleRegistry;
use crate::schema::Schema;

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
    /// Left out when off, so a manifest (and its fingerprint) without
    /// validation reads as before.
    #[serde(default, skip_serializing_if = "crate::schema::Validation::is_off")]
    validation: crate::schema::Validation,
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
    /// The declared types, written only when declared (so a manifest of
    /// untyped modules, and its fingerprint, are as before).
    #[serde(default, skip_serializing_if = "Schema::is_any")]
    input: Schema,
    #[serde(default, skip_serializing_if = "Schema::is_any")]
    output: Schema,
    #[serde(default, skip_serializing_if = "Schema::is_any")]
    config_type: Schema,
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
        /// The scripts it imports, as read when it was compiled (a manifest
        /// written before they were recorded has none: then they are read
        /// from its folder, if the reader allows).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        imports: Vec<ImportedScript>,
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
                input: info.input().clone(),
                output: info.output().clone(),
                config_type: info.config_type().clone(),
                implementation: match info.implementation() {
                    Implementation::Declaration => Impl::Declaration,
                    Implementation::Native => Impl::Native,
                    Implementation::Rhai(s) => Impl::Rhai {
                        source: s.source.clone(),
                        path: s.path.clone(),
                        sha256: s.sha256.clone(),
                        imports: s.imports.clone(),
                    },
                    Implementation::Python(code) => match &code.import_path {
                        Some(p) => Impl::Python {
                            import_path: p.to_string(),
                        },
                        // No import path: only a resolver given in code can rebuild it.
                        None => Impl::Custom,
                    },
                    Implementation::Custom => Impl::Custom,
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
                validation: self.validation(),
            },
            policy: self.policy(),
            modules,
        };
        Ok(serde_json::to_string_pretty(&manifest)?)
    }

    /// A digest (hex SHA-256) of what rebuilding this registry from its
    /// manifest would give: every declaration, script source, setting and
    /// the policy (needs `admin`, as the manifest does). A registry and one
    /// rebuilt from its manifest have the same fingerprint. Modules built by
    /// code given at run time (Python handlers, factories) are recorded by
    /// name and version only: a binding adds what identifies their code.
    pub fn fingerprint(&self) -> Result<String> {
        let manifest = self.export_manifest()?;
        Ok(crate::native::sha256_hex(manifest.as_bytes()))
    }

    /// The registrations a manifest records without their code (Python
    /// handlers, factories given in code), in the registry's order: what a
    /// binding carries beside the manifest to rebuild them (needs `admin`).
    pub fn code_modules(&self) -> Result<Vec<crate::info::ModuleInfo>> {
        self.authorize(Permission::Admin, "export_manifest", None)?;
        let mut found = self.list();
        found.retain(|info| {
            matches!(
                info.implementation(),
                Implementation::Python(_) | Implementation::Custom
            )
        });
        Ok(found)
    }

    /// A new registry rebuilt from a manifest. Python modules and factories
    /// given in code cannot be rebuilt here: see [`load_manifest`](Self::load_manifest).
    pub fn from_manifest(text: &str) -> Result<ModuleRegistry> {
        Self::from_manifest_with(text, &ManifestOptions::default())
    }

    /// [`from_manifest`](Self::from_manifest) with script folders the
    /// manifest's scripts may import from.
    pub fn from_manifest_with(text: &str, options: &ManifestOptions) -> Result<ModuleRegistry> {
        let registry = ModuleRegistry::new();
        registry.load_manifest_with(text, options, |config, import_path| {
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

    /// [`load_manifest_with`](Self::load_manifest_with) with the default
    /// options: no Python import allowed, no script folder readable.
    pub fn load_manifest(
        &self,
        text: &str,
        resolve: impl FnMut(ModuleConfig, Option<&str>) -> Result<ModuleConfig>,
    ) -> Result<()> {
        self.load_manifest_with(text, &ManifestOptions::default(), resolve)
    }

    /// Applies a manifest to this registry: its modules, settings and policy,
    /// all or nothing. A manifest is data, read in three steps:
    ///
    /// 1. everything is checked without running anything from outside it:
    ///    the format, every declaration, native modules linked in, scripts
    ///    compiled and checked against their digests (their imports read
    ///    only from `options.script_folders`), the limits, the policy, and
    ///    every Python import path against `options.allow_imports`;
    /// 2. only then `resolve(config, import_path)` attaches the
    ///    implementation of Python modules (`import_path` is `Some`) and of
    ///    factories given in code (`None`);
    /// 3. the modules are registered together (none if one cannot be), and
    ///    the settings and the policy applied with them, under the store's
    ///    one write lock (nothing is applied that could still fail).
    ///
    /// On any error the registry is as it was.
    pub fn load_manifest_with(
        &self,
        text: &str,
        options: &ManifestOptions,
        mut resolve: impl FnMut(ModuleConfig, Option<&str>) -> Result<ModuleConfig>,
    ) -> Result<()> {
        self.authorize(Permission::Admin, "load_manifest", None)?;
        // 1. Check everything (the policy's principals included); what
        // needs resolving waits.
        let manifest = parse_manifest(text)?;
        manifest.settings.script_limits.validate()?;
        let policy = manifest.policy.map(AccessPolicy::compiled).transpose()?;
        let settings = manifest.settings;
        let mut pending = Vec::with_capacity(manifest.modules.len());
        let checker = EntryChecker::new(self, options);
        for entry in manifest.modules {
            pending.push(checker.check(entry)?);
        }
        // 2. Resolve (this may import code), now that everything else holds.
        let mut configs = Vec::with_capacity(pending.len());
        for (config, import) in pending {
            configs.push(resolved(config, import, &mut resolve)?);
        }
        // 3. Apply: the modules, the settings and the policy under the
        // store's one write lock, after which nothing can fail.
        #[cfg(feature = "scripts")]
        let host = crate::script::host(self);
        self.register_all_then(
            configs,
            crate::registry::Replace::Any,
            "load_manifest",
            || {
                self.apply_settings(
                    settings.workflow_orchestration,
                    settings.plugin_marketplace,
                    settings.audit_capacity,
                    settings.validation,
                );
                #[cfg(feature = "scripts")]
                host.set_limits(settings.script_limits);
                if let Some(policy) = policy {
                    self.put_checked_policy(policy);
                }
            },
        )?;
        Ok(())
    }
}

/// A manifest's text, parsed, in the format this version reads.
fn parse_manifest(text: &str) -> Result<Manifest> {
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
    Ok(manifest)
}

/// What an entry still needs once checked: nothing (`None`), a factory
/// given in code (`Some(None)`) or a Python object (`Some(Some(path))`).
type Pending = Option<Option<String>>;

/// Checks a manifest's entries without running anything from outside it.
struct EntryChecker<'a> {
    registry: &'a ModuleRegistry,
    options: &'a ManifestOptions,
    natives: Vec<&'static crate::native::NativeModule>,
    script_roots: Vec<PathBuf>,
}

impl<'a> EntryChecker<'a> {
    fn new(registry: &'a ModuleRegistry, options: &'a ManifestOptions) -> Self {
        EntryChecker {
            registry,
            options,
            natives: crate::native::native_modules(),
            script_roots: options
                .script_folders
                .iter()
                .filter_map(|root| root.canonicalize().ok())
                .collect(),
        }
    }

    /// The entry's declaration, its implementation attached where the
    /// manifest itself carries it, and what it still needs.
    fn check(&self, entry: Entry) -> Result<(ModuleConfig, Pending)> {
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
        config = config
            .with_input(entry.input)
            .with_output(entry.output)
            .with_config_type(entry.config_type);
        config.clone().validate()?;
        Ok(match entry.implementation {
            Impl::Declaration => (config, None),
            Impl::Native => (self.native(config)?, None),
            Impl::Rhai {
                source,
                path,
                sha256,
                imports,
            } => (self.script(config, &source, path, &sha256, &imports)?, None),
            Impl::Python { import_path } => {
                self.options.check_import(config.name(), &import_path)?;
                (config, Some(Some(import_path)))
            }
            Impl::Custom => (config, Some(None)),
        })
    }

    /// A native module's declaration with the program's factory.
    fn native(&self, config: ModuleConfig) -> Result<ModuleConfig> {
        let native = self
            .natives
            .iter()
            .find(|n| {
                n.name == config.name() && n.version == config.version() && n.kind == config.kind()
            })
            .ok_or_else(|| Error::InvalidConfig {
                name: config.name().to_string(),
                reason: format!(
                    "native module {}@{} is not linked into this program",
                    config.name(),
                    config.version()
                ),
            })?;
        let fresh = native.to_config();
        Ok(config
            .with_factory_of(&fresh)
            .with_implementation(Implementation::Native))
    }

    /// A script module's declaration, compiled and checked against its digest.
    fn script(
        &self,
        config: ModuleConfig,
        source: &str,
        path: Option<String>,
        sha256: &str,
        imports: &[ImportedScript],
    ) -> Result<ModuleConfig> {
        // `script::TEXT_LABEL` (a script given as text), which a build
        // without scripts does not have.
        let label = path.clone().unwrap_or_else(|| "<source>".to_string());
        // Recorded imports travel with the script; else its folder is
        // read, when the reader named it.
        let folder = match imports.is_empty() {
            true => path
                .as_deref()
                .and_then(|p| script_folder_of(&self.script_roots, Path::new(p))),
            false => None,
        };
        let scripted = rebuild_script(
            self.registry,
            &label,
            source,
            imports,
            folder.as_deref(),
            path.as_deref().map(Path::new),
            sha256,
        )
        .map_err(|e| match (&folder, &path) {
            (None, Some(p)) if imports.is_empty() && source.contains("import") => {
                Error::InvalidConfig {
                    name: config.name().to_string(),
                    reason: format!(
                        "its script imports from its folder, and {p:?} is not inside the script folders given ({:?}): {e}",
                        self.options.script_folders
                    ),
                }
            }
            _ => e,
        })?;
        Ok(config
            .with_factory_of(&scripted)
            .with_implementation(scripted.implementation().clone()))
    }
}

/// `config` with what `resolve` attaches when it needs it (a Python
/// object keeps the manifest's import path).
fn resolved(
    config: ModuleConfig,
    pending: Pending,
    resolve: &mut impl FnMut(ModuleConfig, Option<&str>) -> Result<ModuleConfig>,
) -> Result<ModuleConfig> {
    Ok(match pending {
        None => config,
        Some(None) => resolve(config, None)?,
        Some(Some(import_path)) => {
            let config = resolve(config, Some(&import_path))?;
            // The resolver's object, known by the manifest's path.
            let (origin, ignores_config) = match config.implementation() {
                Implementation::Python(code) => (code.origin.clone(), code.ignores_config),
                _ => (None, false),
            };
            config.with_implementation(Implementation::Python(Arc::new(
                crate::config::PythonCode {
                    import_path: Some(import_path.into()),
                    origin,
                    ignores_config,
                },
            )))
        }
    })
}

/// What a manifest may reach beyond its own text. A manifest is data: by
/// default it imports no Python and reads no file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Module prefixes whose Python objects a manifest may name: `"myapp"`
    /// allows `myapp:f` and `myapp.sub:f`, not `myapplication:f`.
    pub allow_imports: Vec<String>,
    /// Folders whose scripts may `import` from their own folder when
    /// rebuilt: a script entry recorded with a path inside one of them
    /// resolves its imports there (symbolic links followed, so a link
    /// pointing out does not count as inside).
    pub script_folders: Vec<PathBuf>,
}

impl ManifestOptions {
    /// Refuses `import_path` unless its module is under an allowed prefix.
    fn check_import(&self, name: &str, import_path: &str) -> Result<()> {
        let module = import_path.split(':').next().unwrap_or_default();
        let allowed = self.allow_imports.iter().any(|prefix| {
            let prefix = prefix.trim_end_matches('.');
            !prefix.is_empty()
                && (module == prefix
                    || module
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('.')))
        });
        if allowed {
            return Ok(());
        }
        Err(Error::InvalidConfig {
            name: name.to_string(),
            reason: format!(
                "it names the Python object {import_path:?}, and {module:?} is not under allow_imports {:?}: a manifest imports only what its reader allows",
                self.allow_imports
            ),
        })
    }
}

/// The folder of script `path`, when it lies inside one of `roots` (script
/// folders with their symbolic links resolved).
fn script_folder_of(roots: &[PathBuf], path: &Path) -> Option<PathBuf> {
    let folder = path.parent()?.canonicalize().ok()?;
    roots
        .iter()
        .any(|root| folder.starts_with(root))
        .then_some(folder)
}

impl ModuleConfig {
    /// Takes `other`'s factory (used when rebuilding from a manifest).
    pub(crate) fn with_factory_of(mut self, other: &ModuleConfig) -> Self {
        self.set_factory(other.get_factory().cloned());
        self
    }
}

/// The script module a manifest records, compiled and checked against its
/// digest: its imports come from the record (`imports`) or from `folder`.
#[cfg(feature = "scripts")]
fn rebuild_script(
    registry: &ModuleRegistry,
    label: &str,
    source: &str,
    imports: &[ImportedScript],
    folder: Option<&Path>,
    path: Option<&Path>,
    sha256: &str,
) -> Result<ModuleConfig> {
    let from = match imports {
        [] => folder.into(),
        recorded => crate::script::Imports::Recorded(recorded),
    };
    registry.prepare_script(label, source, from, path, sha256)
}

/// Without the `scripts` feature a script module cannot be rebuilt.
#[cfg(not(feature = "scripts"))]
fn rebuild_script(
    _registry: &ModuleRegistry,
    label: &str,
    _source: &str,
    _imports: &[ImportedScript],
    _folder: Option<&Path>,
    _path: Option<&Path>,
    _sha256: &str,
) -> Result<ModuleConfig> {
    Err(Error::InvalidConfig {
        name: label.to_string(),
        reason:
            "it is a Rhai script module, and this build of module-registry has no `scripts` feature"
                .into(),
    })
}
