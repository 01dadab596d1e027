//! Building instances: the registration chosen, its dependencies resolved
//! and built first (no lock held while their code runs), and the create
//! audited.

use std::sync::{Arc, Weak};

use indexmap::IndexMap;
use parking_lot::Mutex;

use super::ModuleRegistry;
use crate::access::Permission;
use crate::audit::Outcome;
use crate::config::parse_requirement;
use crate::deps;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::instance::ModuleInstance;
use crate::kind::ModuleKind;
use crate::value::Value;

impl ModuleRegistry {
    // ----- instances ------------------------------------------------------

    /// Creates an instance of the highest release of module `name`, building
    /// its dependencies first.
    pub fn create(&self, name: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Module, name, None, Value::Null)
    }

    /// Creates an instance of the highest version of module `name` that
    /// satisfies `requirement` (for example `"^1"`).
    pub fn create_version(&self, name: &str, requirement: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Module, name, Some(requirement), Value::Null)
    }

    /// Creates an instance of plugin `name`.
    pub fn create_plugin(&self, name: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Plugin, name, None, Value::Null)
    }

    /// Creates an instance of the highest version of plugin `name` satisfying `requirement`.
    pub fn create_plugin_version(&self, name: &str, requirement: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Plugin, name, Some(requirement), Value::Null)
    }

    /// The general form of `create`: namespace, optional requirement and the
    /// per-instance config handed to the module's `init`.
    pub fn create_with(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
        config: Value,
    ) -> Result<ModuleInstance> {
        self.create_sharing(kind, name, requirement, config, &Sharing::default())
    }

    /// `create_with`, the dependencies named in `dependency_configs` built
    /// with those configs (a pool's).
    pub(crate) fn create_with_dependencies(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
        config: Value,
        dependency_configs: &[(String, Value)],
    ) -> Result<ModuleInstance> {
        let sharing = Sharing {
            share: false,
            configs: dependency_configs.to_vec(),
        };
        self.create_sharing(kind, name, requirement, config, &sharing)
    }

    /// `create_with`, building the dependencies as `sharing` says: what
    /// [`InstanceBuilder::create`] runs too.
    fn create_sharing(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
        config: Value,
        sharing: &Sharing,
    ) -> Result<ModuleInstance> {
        self.authorize(Permission::Create, "create", Some(name))?;
        let result = self.create_inner(kind, name, requirement, config, sharing);
        self.audit_create(&result, kind, name, requirement);
        result
    }

    /// Audits a create: the instance made, or on failure what was asked for.
    fn audit_create(
        &self,
        result: &Result<ModuleInstance>,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
    ) {
        match result {
            Ok(instance) => {
                self.inner
                    .audit
                    .record(Outcome::Ok, "create", instance.info().subject(), None)
            }
            Err(e) => self.inner.audit.push(
                "create",
                kind,
                name,
                version.map(str::to_string),
                Outcome::Error,
                Some(e.report()),
            ),
        }
    }

    fn create_inner(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
        config: Value,
        sharing: &Sharing,
    ) -> Result<ModuleInstance> {
        let req = requirement
            .map(|r| parse_requirement(name, r))
            .transpose()?;
        let root = self
            .inner
            .state
            .read()
            .select(kind, name, req.as_ref(), requirement)?;
        self.build_with(root, config, sharing)
    }

    /// Creates an instance of exactly this registration (dependencies
    /// first), audited as `create`, the dependencies named in
    /// `dependency_configs` built with those configs (a workflow step's or
    /// a pool's; else `Null`).
    pub(crate) fn instantiate_with_dependencies(
        &self,
        root: ModuleInfo,
        config: Value,
        dependency_configs: &[(String, Value)],
    ) -> Result<ModuleInstance> {
        let sharing = Sharing {
            share: false,
            configs: dependency_configs.to_vec(),
        };
        self.authorize(Permission::Create, "create", Some(root.name()))?;
        let subject = root.clone();
        let result = self.build_with(root, config, &sharing);
        self.audit_create(
            &result,
            subject.kind(),
            subject.name(),
            Some(subject.version_text()),
        );
        result
    }

    /// Builds `root` with `config`: its dependencies first, each with the
    /// config `sharing` names for it (else `Null`), reusing live shared
    /// instances when `sharing.share` says so.
    fn build_with(
        &self,
        root: ModuleInfo,
        config: Value,
        sharing: &Sharing,
    ) -> Result<ModuleInstance> {
        if root.entry().config.requirements().is_empty() {
            unknown_dependency_configs(&root, sharing, &[])?;
            let metrics = self.module_metrics(&root);
            return ModuleInstance::build(
                root,
                config,
                IndexMap::new(),
                Vec::new(),
                self.inner.audit.clone(),
                self.inner.validation.clone(),
            )
            .map(|i| i.counted(metrics));
        }
        let resolution = deps::resolve(&*self.inner.state.read(), &root)?;
        // The lock is released: module code runs from here on.
        let modules = resolution.modules();
        unknown_dependency_configs(&root, sharing, &modules[..modules.len() - 1])?;
        let shared = sharing.share.then(|| self.extension::<SharedInstances>());
        // Without sharing, every dependency is built here and owned (closed
        // with the instance that holds it); with sharing, every one is held
        // only (it shuts down with its last holder).
        let hold = |instances: Vec<Arc<ModuleInstance>>| match shared {
            Some(_) => (Vec::new(), instances),
            None => (instances, Vec::new()),
        };
        let mut built: Vec<Arc<ModuleInstance>> = Vec::with_capacity(modules.len() - 1);
        for (i, info) in modules[..modules.len() - 1].iter().enumerate() {
            let dep_config = sharing.config_of(info.name());
            if let Some(live) = shared.as_ref().and_then(|s| s.find(info, &dep_config)) {
                built.push(live);
                continue;
            }
            let edges = resolution.dependencies_of(i);
            let context_deps = edges
                .iter()
                .map(|(dep_name, j)| (dep_name.clone(), built[*j].clone()))
                .collect();
            let (own, shares) = hold(edges.iter().map(|(_, j)| built[*j].clone()).collect());
            match ModuleInstance::build_sharing(
                info.clone(),
                dep_config.clone(),
                context_deps,
                own,
                shares,
                self.inner.audit.clone(),
                self.inner.validation.clone(),
            ) {
                Ok(instance) => {
                    let instance = Arc::new(instance.counted(self.module_metrics(info)));
                    if let Some(shared) = &shared {
                        shared.insert(info, dep_config, &instance);
                    }
                    built.push(instance);
                }
                Err(e) => {
                    if shared.is_none() {
                        for b in built.iter().rev() {
                            let _ = b.close();
                        }
                    }
                    return Err(e);
                }
            }
        }
        let context_deps = resolution
            .dependencies_of(modules.len() - 1)
            .iter()
            .map(|(dep_name, j)| (dep_name.clone(), built[*j].clone()))
            .collect();
        let (own, shares) = hold(built);
        let metrics = self.module_metrics(&root);
        ModuleInstance::build_sharing(
            root,
            config,
            context_deps,
            own,
            shares,
            self.inner.audit.clone(),
            self.inner.validation.clone(),
        )
        .map(|i| i.counted(metrics))
    }
}

/// Refuses a dependency config naming a module that is not among `root`'s
/// dependencies (`dependencies`): a config that nothing would see.
fn unknown_dependency_configs(
    root: &ModuleInfo,
    sharing: &Sharing,
    dependencies: &[ModuleInfo],
) -> Result<()> {
    let Some((name, _)) = sharing
        .configs
        .iter()
        .find(|(name, _)| !dependencies.iter().any(|d| d.name() == name))
    else {
        return Ok(());
    };
    let mut names: Vec<&str> = dependencies.iter().map(ModuleInfo::name).collect();
    names.sort_unstable();
    names.dedup();
    Err(Error::InvalidConfig {
        name: root.name().to_string(),
        reason: format!(
            "a dependency config names {name:?}, which is not one of its dependencies ({})",
            if names.is_empty() {
                "it has none".to_string()
            } else {
                names.join(", ")
            }
        ),
    })
}

/// How a create treats the dependencies it builds.
#[derive(Default)]
struct Sharing {
    /// Reuse live instances built by earlier shared creates.
    share: bool,
    /// Per-instance configs of dependencies, by module name.
    configs: Vec<(String, Value)>,
}

impl Sharing {
    fn config_of(&self, name: &str) -> Value {
        self.configs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(Value::Null, |(_, v)| v.clone())
    }
}

/// Dependency instances shared between creates, held weakly: one lives as
/// long as an instance built on it does.
#[derive(Default)]
struct SharedInstances(Mutex<Vec<(ModuleInfo, Value, Weak<ModuleInstance>)>>);

impl SharedInstances {
    /// A live, open instance of exactly this registration with this config.
    fn find(&self, info: &ModuleInfo, config: &Value) -> Option<Arc<ModuleInstance>> {
        let list = self.0.lock();
        list.iter()
            .filter(|(i, c, _)| i.same_registration(info) && c == config)
            .filter_map(|(_, _, weak)| weak.upgrade())
            .find(|instance| !instance.is_closed())
    }

    fn insert(&self, info: &ModuleInfo, config: Value, instance: &Arc<ModuleInstance>) {
        let mut list = self.0.lock();
        list.retain(|(_, _, weak)| weak.strong_count() > 0);
        list.push((info.clone(), config, Arc::downgrade(instance)));
    }
}

/// How to create an instance: which module and version, its config, its
/// dependencies' configs, and whether it shares dependency instances with
/// other creates. Made by [`ModuleRegistry::instance`]; nothing happens
/// until [`create`](Self::create).
///
/// ```
/// use module_registry::{ModuleConfig, ModuleRegistry, Value};
///
/// let registry = ModuleRegistry::new();
/// registry.register(ModuleConfig::new().with_name("db").with_version("1.2.0").with_factory(|context| {
///     let url = context.config().get("url").and_then(Value::as_str).unwrap_or("memory");
///     let url = Value::from(url);
///     Ok(Box::new(module_registry::FnModule::new(move |_| Ok(url.clone()))))
/// }))?;
/// registry.register(
///     ModuleConfig::new()
///         .with_name("greeter")
///         .with_version("1.0.0")
///         .with_dependency("db", "^1")
///         .with_factory(|context| {
///             let db = context.require("db")?;
///             Ok(Box::new(module_registry::FnModule::new(move |name| {
///                 let name: String = name.try_into()?;
///                 let url: String = db.process(())?.try_into()?;
///                 Ok(Value::from(format!("hello {name} from {url}")))
///             })))
///         }),
/// )?;
/// let make = || {
///     registry
///         .instance("greeter")
///         .version("^1")
///         .dependency_config("db", Value::from_iter([("url", "sqlite://app.db")]))
///         .share_dependencies(true)
///         .create()
/// };
/// let (a, b) = (make()?, make()?);
/// assert_eq!(a.process("ada")?, Value::from("hello ada from sqlite://app.db"));
/// // One `db` instance serves both.
/// assert!(std::sync::Arc::ptr_eq(&a.dependencies()[0], &b.dependencies()[0]));
/// # Ok::<(), module_registry::Error>(())
/// ```
#[must_use = "an InstanceBuilder does nothing until `create` is called"]
pub struct InstanceBuilder<'r> {
    registry: &'r ModuleRegistry,
    kind: ModuleKind,
    name: String,
    requirement: Option<String>,
    config: Value,
    sharing: Sharing,
}

impl ModuleRegistry {
    /// Starts building an instance of module `name` (see
    /// [`InstanceBuilder`]): `registry.instance("greeter").version("^1")
    /// .config(value).share_dependencies(true).create()`.
    pub fn instance(&self, name: impl Into<String>) -> InstanceBuilder<'_> {
        InstanceBuilder {
            registry: self,
            kind: ModuleKind::Module,
            name: name.into(),
            requirement: None,
            config: Value::Null,
            sharing: Sharing::default(),
        }
    }
}

impl InstanceBuilder<'_> {
    /// The highest version satisfying this semver requirement (`"^1"`);
    /// without it, the highest release.
    pub fn version(mut self, requirement: impl Into<String>) -> Self {
        self.requirement = Some(requirement.into());
        self
    }

    /// Build a plugin of that name rather than a module.
    pub fn plugin(mut self) -> Self {
        self.kind = ModuleKind::Plugin;
        self
    }

    /// The per-instance config its factory and `init` see.
    pub fn config(mut self, config: impl Into<Value>) -> Self {
        self.config = config.into();
        self
    }

    /// The config of dependency `name` when this create builds it
    /// (without it, `Null`).
    pub fn dependency_config(mut self, name: impl Into<String>, config: impl Into<Value>) -> Self {
        self.sharing.configs.push((name.into(), config.into()));
        self
    }

    /// Share dependency instances with other creates that share: a
    /// dependency (same registration, same config) still alive from an
    /// earlier such create is reused instead of built again. A shared
    /// instance is not closed by one dependent's `close`; it shuts down
    /// when the last instance using it is gone. Two creates racing may each
    /// build one.
    pub fn share_dependencies(mut self, share: bool) -> Self {
        self.sharing.share = share;
        self
    }

    /// Builds the instance (dependencies first), audited as `create`.
    pub fn create(self) -> Result<ModuleInstance> {
        self.registry.create_sharing(
            self.kind,
            &self.name,
            self.requirement.as_deref(),
            self.config,
            &self.sharing,
        )
    }
}
