//! [`WorkflowOrchestration`]: a sequential chain of modules run through the
//! registry, each step's output feeding the next.

use crate::config::{parse_requirement, validate_name, ModuleKind};
use crate::error::{Error, Result};
use crate::registry::ModuleRegistry;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
struct Step {
    kind: ModuleKind,
    module: String,
    requirement: Option<String>,
    config: Value,
}

/// A named, ordered chain of modules. Run it with
/// [`ModuleRegistry::orchestrate`]; each step's instance is created for the
/// run and closed after it.
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
        self.push(ModuleKind::Module, module.into(), None, Value::Null)
    }

    /// Append the highest version of `module` satisfying `requirement`.
    pub fn step_version(self, module: impl Into<String>, requirement: impl Into<String>) -> Self {
        self.push(
            ModuleKind::Module,
            module.into(),
            Some(requirement.into()),
            Value::Null,
        )
    }

    /// Append a plugin.
    pub fn plugin_step(self, plugin: impl Into<String>) -> Self {
        self.push(ModuleKind::Plugin, plugin.into(), None, Value::Null)
    }

    /// Append a module with a per-instance config for its `init`.
    pub fn step_with_config(self, module: impl Into<String>, config: impl Into<Value>) -> Self {
        self.push(ModuleKind::Module, module.into(), None, config.into())
    }

    fn push(
        mut self,
        kind: ModuleKind,
        module: String,
        requirement: Option<String>,
        config: Value,
    ) -> Self {
        self.steps.push(Step {
            kind,
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

    fn workflow_error(&self, index: usize, step: &Step, source: Error) -> Error {
        Error::InvalidConfig {
            name: self.name.clone(),
            reason: format!("step {} ({}): {source}", index + 1, step.module),
        }
    }

    /// Checks every step before anything runs: names, requirements, and that
    /// each module exists and can be created.
    fn check(&self, registry: &ModuleRegistry) -> Result<()> {
        if self.steps.is_empty() {
            return Err(Error::InvalidConfig {
                name: self.name.clone(),
                reason: "an orchestration needs at least one step".into(),
            });
        }
        for (i, step) in self.steps.iter().enumerate() {
            validate_name("module name", &step.module)
                .map_err(|e| self.workflow_error(i, step, e))?;
            if let Some(req) = &step.requirement {
                parse_requirement(&step.module, req)
                    .map_err(|e| self.workflow_error(i, step, e))?;
            }
            let info = registry
                .find(step.kind, &step.module, step.requirement.as_deref())
                .map_err(|e| self.workflow_error(i, step, e))?;
            if !info.has_implementation() {
                let e = Error::NoImplementation {
                    kind: info.kind(),
                    name: info.name().to_string(),
                    version: info.version().to_string(),
                };
                return Err(self.workflow_error(i, step, e));
            }
        }
        Ok(())
    }

    pub(crate) fn run(&self, registry: &ModuleRegistry, input: Value) -> Result<Value> {
        self.check(registry)?;
        let mut value = input;
        for step in &self.steps {
            let instance = registry.create_with(
                step.kind,
                &step.module,
                step.requirement.as_deref(),
                step.config.clone(),
            )?;
            value = instance.process_value(value)?;
            instance.close()?;
        }
        Ok(value)
    }
}
