//! [`WorkflowOrchestration`]: a sequential chain of modules run through the
//! registry, each step's output feeding the next.

use crate::error::Result;
use crate::registry::ModuleRegistry;
use crate::value::Value;
use crate::workflow::Workflow;

#[derive(Debug, Clone, PartialEq)]
struct Step {
    module: String,
    requirement: Option<String>,
    config: Value,
}

/// A named, ordered chain of modules. Run it with
/// [`ModuleRegistry::orchestrate`](crate::ModuleRegistry::orchestrate), which runs it as a
/// [`Workflow`]: each step's instance is created for the run and closed after it.
///
/// ```
/// use module_registry::{ModuleConfig, ModuleRegistry, Value, WorkflowOrchestration};
///
/// let registry = ModuleRegistry::new();
/// registry.register(ModuleConfig::new().with_name("double")
///     .with_handler(|v| Ok(Value::Int(v.as_int().unwrap_or(0) * 2))))?;
/// let chain = WorkflowOrchestration::new("x4").step("double").step("double");
/// assert_eq!(registry.orchestrate(&chain, 5i64)?, Value::Int(20));
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowOrchestration {
    name: String,
    steps: Vec<Step>,
}

impl WorkflowOrchestration {
    /// An empty chain called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        WorkflowOrchestration {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    /// Append the highest release of module `module`.
    pub fn step(self, module: impl Into<String>) -> Self {
        self.push(module.into(), None, Value::Null)
    }

    /// Append the highest version of `module` satisfying `requirement`.
    pub fn step_version(self, module: impl Into<String>, requirement: impl Into<String>) -> Self {
        self.push(module.into(), Some(requirement.into()), Value::Null)
    }

    /// Append a module with a per-instance config for its `init`.
    pub fn step_with_config(self, module: impl Into<String>, config: impl Into<Value>) -> Self {
        self.push(module.into(), None, config.into())
    }

    fn push(mut self, module: String, requirement: Option<String>, config: Value) -> Self {
        self.steps.push(Step {
            module,
            requirement,
            config,
        });
        self
    }

    /// The chain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The module names, in order.
    pub fn modules(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.module.as_str()).collect()
    }

    /// How many steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The equivalent [`Workflow`]: one step per module, each taking the
    /// previous step's output (ids are the module names, numbered on repeats).
    pub fn to_workflow(&self) -> Workflow {
        let mut wf = Workflow::pipeline(
            self.name.clone(),
            self.steps.iter().map(|s| s.module.clone()),
        );
        for (step, planned) in wf.steps.iter_mut().zip(&self.steps) {
            step.version = planned.requirement.clone();
            if !planned.config.is_null() {
                step.config = Some(planned.config.clone());
            }
        }
        wf
    }
}

impl ModuleRegistry {
    /// Runs a sequential chain of modules: each step's output is the next
    /// step's input. Every step's instance is created, used once and closed.
    /// Fails with [`Error::FeatureDisabled`](crate::Error::FeatureDisabled) when workflow orchestration is off.
    pub fn orchestrate(
        &self,
        orchestration: &WorkflowOrchestration,
        input: impl Into<Value>,
    ) -> Result<Value> {
        self.require_orchestration()?;
        Ok(self
            .run_workflow(&orchestration.to_workflow(), input)?
            .output)
    }
}
