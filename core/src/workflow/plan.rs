//! Planning: a workflow checked against a registry (its shape, then every
//! module, capability query, fallback, config and pool size), each step's
//! module chosen, ready to run.

use std::time::Duration;

use super::{OnError, Structure, Workflow, WorkflowStep};
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;
use crate::live::pool::MAX_POOL_SIZE;
use crate::query::CapabilityQuery;
use crate::registry::ModuleRegistry;
use crate::value::Value;

/// A step with its module chosen.
#[derive(Clone)]
pub(crate) struct PlannedStep {
    pub id: String,
    pub info: ModuleInfo,
    pub fallback: Option<ModuleInfo>,
    pub config: Value,
    /// The configs of the module's dependencies, by module name.
    pub dependency_configs: Vec<(String, Value)>,
    /// What the cache key holds of the configs: `config` alone, or with
    /// the dependencies' configs when the step gives some.
    pub key_config: Option<Value>,
    pub cache: bool,
    pub retries: u32,
    pub timeout: Option<Duration>,
    pub on_error: OnError,
    /// Instances to run on (1: no pool).
    pub pool: usize,
    /// Check each call's input and output against the module's types.
    pub validate: bool,
    /// The identity of the step's code for its cache key: computed once
    /// per plan (per run or batch), when the step first consults the cache.
    pub code: std::sync::OnceLock<crate::cache::StepCode>,
}

/// A workflow checked against a registry, ready to run.
#[derive(Clone)]
pub(crate) struct Plan {
    pub name: String,
    pub steps: Vec<PlannedStep>,
    pub structure: Structure,
}

pub(crate) fn step_error(
    plan_name: &str,
    step: &str,
    message: String,
    source: Option<Error>,
) -> Error {
    Error::Workflow {
        workflow: plan_name.to_string(),
        step: Some(step.to_string()),
        message,
        source: source.map(Box::new),
    }
}

/// Checks `workflow` against `registry` and picks every module.
pub(crate) fn plan(registry: &ModuleRegistry, workflow: &Workflow) -> Result<Plan> {
    let structure = workflow.structure()?;
    let name = &workflow.name;
    let mut steps = workflow
        .steps
        .iter()
        .map(|step| plan_step(registry, name, step))
        .collect::<Result<Vec<_>>>()?;
    super::types::check(registry, workflow, &structure, &mut steps)?;
    Ok(Plan {
        name: name.clone(),
        steps,
        structure,
    })
}

/// One step of workflow `name` planned: its module (runnable, and able to
/// see the step's config), its fallback and its pool size.
fn plan_step(registry: &ModuleRegistry, name: &str, step: &WorkflowStep) -> Result<PlannedStep> {
    let fail = |message: String, source: Option<Error>| step_error(name, &step.id, message, source);
    let info = match &step.module {
        Some(module) => registry
            .find(ModuleKind::Module, module, step.version.as_deref())
            .map_err(|e| fail(format!("cannot use module {module:?}"), Some(e)))?,
        None => best_provider(registry, name, step)?,
    };
    if !info.has_implementation() {
        return Err(fail(
            format!("module {} is a declaration without an implementation", info),
            None,
        ));
    }
    if step.config.as_ref().is_some_and(|c| !c.is_null()) && info.config().ignores_config() {
        return Err(fail(crate::instance::config_ignored(&info), None));
    }
    let fallback = match (&step.on_error, &step.fallback) {
        (OnError::Fallback, Some(module)) => Some(
            registry
                .find(ModuleKind::Module, module, None)
                .map_err(|e| fail(format!("cannot use fallback module {module:?}"), Some(e)))?,
        ),
        _ => None,
    };
    let pool = match step.pool {
        None => 1,
        Some(n) if n >= 1 && n as usize <= MAX_POOL_SIZE => n as usize,
        Some(n) => {
            return Err(fail(
                format!("pool must be between 1 and {MAX_POOL_SIZE}, not {n}"),
                None,
            ))
        }
    };
    Ok(PlannedStep {
        id: step.id.clone(),
        info,
        fallback,
        config: step.config.clone().unwrap_or(Value::Null),
        dependency_configs: step
            .dependency_configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        key_config: key_config(step),
        cache: step.cache,
        retries: step.retries,
        timeout: step.timeout_ms.map(Duration::from_millis),
        on_error: step.on_error,
        pool,
        validate: step.validate,
        code: std::sync::OnceLock::new(),
    })
}

/// What a step's cache key holds of its configs: `None` (the config alone)
/// unless the step configures dependencies, then both.
fn key_config(step: &WorkflowStep) -> Option<Value> {
    if step.dependency_configs.is_empty() {
        return None;
    }
    let deps = step
        .dependency_configs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(Value::from_iter([
        ("config", step.config.clone().unwrap_or(Value::Null)),
        ("dependency_configs", Value::Map(deps)),
    ]))
}

/// The module a step naming capabilities runs: of those with every
/// capability (and the step's version requirement) and an implementation,
/// the highest version; among equals, the first name. The error names
/// workflow `name` and the step when there is none.
fn best_provider(registry: &ModuleRegistry, name: &str, step: &WorkflowStep) -> Result<ModuleInfo> {
    let fail = |message: String, source: Option<Error>| step_error(name, &step.id, message, source);
    let caps = step.capabilities.clone().unwrap_or_default();
    let mut query = CapabilityQuery::new()
        .with_required_capabilities(caps.clone())
        .with_kind(ModuleKind::Module);
    if let Some(v) = &step.version {
        query = query.with_version_req(v.clone());
    }
    let found = registry
        .discover(&query)
        .map_err(|e| fail("bad capability query".to_string(), Some(e)))?;
    found
        .into_iter()
        .filter(|i| i.has_implementation())
        .reduce(|best, i| {
            if i.version() > best.version() {
                i
            } else {
                best
            }
        })
        .ok_or_else(|| {
            fail(
                format!("no module with an implementation has all of the capabilities {caps:?}"),
                None,
            )
        })
}
