//! The registry's workflow methods: checking and running workflows, one
//! input or a batch (one set of instances for the whole batch).

use std::sync::Arc;

use super::{execute, instantiate, plan, Workflow, WorkflowResult};
use crate::audit::Outcome;
use crate::error::Result;
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
        on_progress: impl FnMut(usize, usize),
    ) -> Result<Vec<WorkflowResult>>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        let inputs: Vec<Value> = inputs.into_iter().map(Into::into).collect();
        let total = inputs.len();
        let outcomes = self.run_workflow_each(workflow, inputs, false, on_progress)?;
        let mut out = Vec::with_capacity(outcomes.len());
        for (n, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(result) => out.push(result),
                Err(e) if total > 1 => return Err(e.at_input(n)),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Runs a workflow on each input in turn with one set of instances,
    /// giving each input its own outcome, in input order. With `keep_going`
    /// a failed input does not stop the ones after it; without, the list
    /// ends at the first failure. The outer error is what stops the whole
    /// batch: the workflow cannot be planned, its instances cannot be built,
    /// or a module asked to stop ([`Error::Interrupted`], which is never
    /// kept as one input's outcome). `on_progress(done, total)` is called
    /// after each input.
    pub fn run_workflow_each(
        &self,
        workflow: &Workflow,
        inputs: Vec<Value>,
        keep_going: bool,
        mut on_progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Result<WorkflowResult>>> {
        self.require_orchestration()?;
        let mut failed = None;
        let result = (|| {
            let plan = Arc::new(plan(self, workflow)?);
            let instances = Arc::new(instantiate(self, &plan)?);
            let total = inputs.len();
            let mut out = Vec::with_capacity(total);
            let mut stop = Ok(());
            for (n, input) in inputs.into_iter().enumerate() {
                let outcome = execute(self, &plan, &instances, input);
                match outcome {
                    Err(e) if e.interruption().is_some() => {
                        stop = Err(e);
                        break;
                    }
                    Err(e) => {
                        failed.get_or_insert_with(|| e.to_string());
                        out.push(Err(e));
                        if !keep_going {
                            break;
                        }
                    }
                    Ok(r) => out.push(Ok(r)),
                }
                on_progress(n + 1, total);
            }
            for instance in instances.iter().rev() {
                let _ = instance.close();
            }
            stop.map(|()| out)
        })();
        let detail = match (&result, failed) {
            (Err(e), _) => Some(e.to_string()),
            (Ok(_), failed) => failed,
        };
        self.audit_log().push(
            "run_workflow",
            ModuleKind::Module,
            &workflow.name,
            None,
            if detail.is_none() {
                Outcome::Ok
            } else {
                Outcome::Error
            },
            detail,
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
