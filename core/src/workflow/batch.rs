//! The registry's workflow methods: checking and running workflows, one
//! input or a batch (one set of instances for the whole batch).

use std::sync::Arc;

use super::{execute, instantiate, plan, Workflow, WorkflowResult};
use crate::audit::Outcome;
use crate::error::{Error, Result};
use crate::kind::ModuleKind;
use crate::registry::{ModuleRegistry, RegistryView};
use crate::value::Value;

impl ModuleRegistry {
    /// Checks a workflow against this registry without running it: its
    /// shape (ids, references, cycles, policies) and every module and
    /// capability query. Errors name the step.
    pub fn check_workflow(&self, workflow: &Workflow) -> Result<()> {
        plan(self, workflow).map(|_| ())
    }

    /// Runs a workflow on `input`: everything is checked first, one instance
    /// per step is built, steps run in dependency order (independent
    /// branches in parallel), and the instances are closed after.
    pub fn run_workflow(
        &self,
        workflow: &Workflow,
        input: impl Into<Value>,
    ) -> Result<WorkflowResult> {
        let mut results =
            self.run_workflow_batch_with_progress(workflow, [input.into()], |_, _| {})?;
        Ok(results.remove(0))
    }

    /// Runs a workflow on each input in turn, reusing one set of instances;
    /// results in input order. Stops at the first failed run.
    pub fn run_workflow_batch<I, V>(
        &self,
        workflow: &Workflow,
        inputs: I,
    ) -> Result<Vec<WorkflowResult>>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.run_workflow_batch_with_progress(workflow, inputs, |_, _| {})
    }

    /// [`run_workflow_batch`](Self::run_workflow_batch), calling
    /// `on_progress(done, total)` after each run.
    pub fn run_workflow_batch_with_progress<I, V>(
        &self,
        workflow: &Workflow,
        inputs: I,
        mut on_progress: impl FnMut(usize, usize),
    ) -> Result<Vec<WorkflowResult>>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.require_orchestration()?;
        let inputs: Vec<Value> = inputs.into_iter().map(Into::into).collect();
        let result = (|| {
            let plan = Arc::new(plan(self, workflow)?);
            let instances = Arc::new(instantiate(self, &plan)?);
            let total = inputs.len();
            let mut out = Vec::with_capacity(total);
            let mut outcome = Ok(());
            for (n, input) in inputs.into_iter().enumerate() {
                match execute(self, &plan, &instances, input) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        outcome = Err(if total > 1 {
                            match e {
                                Error::Workflow {
                                    workflow,
                                    step,
                                    message,
                                    source,
                                } => Error::Workflow {
                                    workflow,
                                    step,
                                    message: format!("input #{n}: {message}"),
                                    source,
                                },
                                other => other,
                            }
                        } else {
                            e
                        });
                        break;
                    }
                }
                on_progress(n + 1, total);
            }
            for instance in instances.iter().rev() {
                let _ = instance.close();
            }
            outcome.map(|()| out)
        })();
        self.audit_log().push(
            "run_workflow",
            ModuleKind::Module,
            &workflow.name,
            None,
            if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            },
            result.as_ref().err().map(ToString::to_string),
        );
        result
    }

    /// A workflow chaining `modules`, each step taking the previous output.
    pub fn pipeline<I, S>(&self, modules: I) -> Workflow
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Workflow::pipeline("pipeline", modules)
    }
}

impl RegistryView {
    /// [`ModuleRegistry::run_workflow`] as this principal.
    pub fn run_workflow(
        &self,
        workflow: &Workflow,
        input: impl Into<Value>,
    ) -> Result<WorkflowResult> {
        self.with(|r| r.run_workflow(workflow, input))
    }
}
