//! Planning: a workflow checked against a registry (its shape, then every
//! module, capability query, fallback, config and pool size), each step's
//! module chosen, ready to run.

use std::sync::Arc;
use std::time::Duration;

use super::{OnError, StepText, Structure, Workflow, WorkflowStep};
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
    /// What its reports say of it, made once per plan.
    pub text: ReportText,
    /// The identity of the step's code for its cache key: computed once
    /// per plan (per run or batch), when the step first consults the cache.
    pub code: std::sync::OnceLock<crate::cache::StepCode>,
    /// The step's run counters, found at its first run (with the identity
    /// of the metrics store they are in).
    pub metrics: std::sync::OnceLock<(usize, Arc<crate::metrics::StepMetrics>)>,
}

/// A step's id and its module's name and version, as its reports give them.
#[derive(Clone)]
pub(crate) struct ReportText {
    pub id: StepText,
    pub module: StepText,
    pub version: StepText,
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

/// The plans of the workflows run last on a registry (its extension), each
/// with the registry generation it was made against: a run of a workflow
/// equal to one of them, on an unchanged registry, shares its plan instead of
/// checking and planning again.
#[derive(Default)]
pub(crate) struct PlanCache {
    entries: parking_lot::Mutex<Vec<Planned>>,
}

struct Planned {
    workflow: Arc<Workflow>,
    generation: u64,
    plan: Arc<Plan>,
}

/// Plans kept per registry (most recent first).
const PLANS_KEPT: usize = 8;

/// Whether a plan of `workflow` may be shared between runs: not when an
/// access policy decides per caller what a step may use, nor when a step
/// consults the step cache (its code identity is computed once per plan,
/// and a Python module's held state may change between runs).
fn shareable(registry: &ModuleRegistry, workflow: &Workflow) -> bool {
    !registry.has_policy() && !workflow.steps.iter().any(|s| s.cache)
}

/// [`plan`], shared with earlier runs of an equal workflow while the
/// registry is unchanged (see [`PlanCache`]); behaves as `plan` in every
/// other way (a workflow that fails to plan is planned again each time).
pub(crate) fn shared_plan(registry: &ModuleRegistry, workflow: &Workflow) -> Result<Arc<Plan>> {
    if !shareable(registry, workflow) {
        return plan(registry, workflow).map(Arc::new);
    }
    let generation = registry.generation();
    let cache = registry.extension::<PlanCache>();
    {
        let mut entries = cache.entries.lock();
        let found = entries.iter().position(|e| {
            e.generation == generation
                && (std::ptr::eq(&*e.workflow, workflow) || *e.workflow == *workflow)
        });
        if let Some(at) = found {
            if at > 0 {
                let hit = entries.remove(at);
                entries.insert(0, hit);
            }
            return Ok(entries[0].plan.clone());
        }
    }
    let planned = Arc::new(plan(registry, workflow)?);
    let mut entries = cache.entries.lock();
    entries.retain(|e| e.generation == generation);
    entries.truncate(PLANS_KEPT - 1);
    entries.insert(
        0,
        Planned {
            workflow: Arc::new(workflow.clone()),
            generation,
            plan: planned.clone(),
        },
    );
    Ok(planned)
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
    let text = ReportText {
        id: step.id.as_str().into(),
        module: info.name().into(),
        version: info.version_text().into(),
    };
    Ok(PlannedStep {
        text,
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
        metrics: std::sync::OnceLock::new(),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::shared_plan;
    use crate::workflow::{Workflow, WorkflowStep};
    use crate::{ModuleConfig, ModuleRegistry};

    fn chain() -> Workflow {
        Workflow::new("w")
            .step(WorkflowStep::module("a", "identity"))
            .step(WorkflowStep::module("b", "identity"))
    }

    #[test]
    fn an_equal_workflow_on_an_unchanged_registry_shares_its_plan() {
        let registry = ModuleRegistry::with_native_modules();
        let first = shared_plan(&registry, &chain()).unwrap();
        // Another value, equal: the same plan.
        let again = shared_plan(&registry, &chain()).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // A different workflow has its own.
        let other = shared_plan(&registry, &chain().with_output("a")).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(Arc::ptr_eq(
            &first,
            &shared_plan(&registry, &chain()).unwrap()
        ));
    }

    #[test]
    fn a_change_to_the_registry_plans_again() {
        let registry = ModuleRegistry::with_native_modules();
        let first = shared_plan(&registry, &chain()).unwrap();
        registry
            .register(ModuleConfig::new().with_name("other").with_handler(Ok))
            .unwrap();
        let after_register = shared_plan(&registry, &chain()).unwrap();
        assert!(!Arc::ptr_eq(&first, &after_register));
        let info = registry
            .find(crate::ModuleKind::Module, "other", None)
            .unwrap();
        assert!(registry.unregister_exact(&info).unwrap());
        let after_unregister = shared_plan(&registry, &chain()).unwrap();
        assert!(!Arc::ptr_eq(&after_register, &after_unregister));
    }

    #[test]
    fn steps_that_consult_the_cache_are_planned_each_run() {
        let registry = ModuleRegistry::with_native_modules();
        let wf = Workflow::new("w").step(WorkflowStep::module("a", "identity").cache(true));
        let first = shared_plan(&registry, &wf).unwrap();
        assert!(!Arc::ptr_eq(&first, &shared_plan(&registry, &wf).unwrap()));
    }
}
