//! Building instances: the registration chosen, its dependencies resolved
//! and built first (no lock held while their code runs), and the create
//! audited.

use std::sync::Arc;

use indexmap::IndexMap;

use super::ModuleRegistry;
use crate::access::Permission;
use crate::audit::Outcome;
use crate::config::parse_requirement;
use crate::deps;
use crate::error::Result;
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
        self.authorize(Permission::Create, "create", Some(name))?;
        let result = self.create_inner(kind, name, requirement, config);
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
                Some(e.to_string()),
            ),
        }
    }

    fn create_inner(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
        config: Value,
    ) -> Result<ModuleInstance> {
        let req = requirement
            .map(|r| parse_requirement(name, r))
            .transpose()?;
        let root = self
            .inner
            .state
            .read()
            .select(kind, name, req.as_ref(), requirement)?;
        self.build(root, config)
    }

    /// Creates an instance of exactly this registration (dependencies
    /// first), audited as `create`.
    pub(crate) fn instantiate(&self, root: ModuleInfo, config: Value) -> Result<ModuleInstance> {
        self.authorize(Permission::Create, "create", Some(root.name()))?;
        let subject = root.clone();
        let result = self.build(root, config);
        self.audit_create(
            &result,
            subject.kind(),
            subject.name(),
            Some(subject.version_text()),
        );
        result
    }

    fn build(&self, root: ModuleInfo, config: Value) -> Result<ModuleInstance> {
        if root.entry().config.requirements().is_empty() {
            return ModuleInstance::build(
                root,
                config,
                IndexMap::new(),
                Vec::new(),
                self.inner.audit.clone(),
            );
        }
        let resolution = deps::resolve(&*self.inner.state.read(), &root)?;
        // The lock is released: module code runs from here on.
        let modules = resolution.modules();
        let mut built: Vec<Arc<ModuleInstance>> = Vec::with_capacity(modules.len() - 1);
        for (i, info) in modules[..modules.len() - 1].iter().enumerate() {
            let context_deps = resolution
                .dependencies_of(i)
                .iter()
                .map(|(dep_name, j)| (dep_name.clone(), built[*j].clone()))
                .collect();
            match ModuleInstance::build(
                info.clone(),
                Value::Null,
                context_deps,
                Vec::new(),
                self.inner.audit.clone(),
            ) {
                Ok(instance) => built.push(Arc::new(instance)),
                Err(e) => {
                    for b in built.iter().rev() {
                        let _ = b.close();
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
        ModuleInstance::build(root, config, context_deps, built, self.inner.audit.clone())
    }
}
