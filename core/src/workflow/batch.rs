//! The registry's workflow methods: checking and running workflows, one
//! input or a batch (one set of instances for the whole batch).

use std::sync::Arc;

use super::cancel::CancelToken;
use super::instances::StepInstance;
use super::plan::Plan;
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
        super::plan::shared_plan(self, workflow).map(|_| ())
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

    /// [`run_workflow`](Self::run_workflow) stopped by `cancel`: the steps
    /// running when it is cancelled finish, the others are reported
    /// skipped (see [`CancelToken`]).
    pub fn run_workflow_cancellable(
        &self,
        workflow: &Workflow,
        input: impl Into<Value>,
        cancel: &CancelToken,
    ) -> Result<WorkflowResult> {
        let mut outcomes = self.run_workflow_each_cancellable(
            workflow,
            vec![input.into()],
            false,
            |_, _| {},
            Some(cancel),
        )?;
        match outcomes.pop() {
            Some(outcome) => outcome,
            // Cancelled before it began: every step skipped.
            None => {
                let plan = plan(self, workflow)?;
                Ok(super::cancel::skipped_run(&plan))
            }
        }
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
    /// or a module asked to stop ([`Error::Interrupted`](crate::Error::Interrupted), which is never
    /// kept as one input's outcome). `on_progress(done, total)` is called
    /// after each input. When a step runs on a pool (`pool = N`), up to the
    /// largest such `N` inputs run at once.
    pub fn run_workflow_each(
        &self,
        workflow: &Workflow,
        inputs: Vec<Value>,
        keep_going: bool,
        on_progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Result<WorkflowResult>>> {
        self.run_workflow_each_cancellable(workflow, inputs, keep_going, on_progress, None)
    }

    /// [`run_workflow_each`](Self::run_workflow_each) stopped by `cancel`:
    /// no input starts after it is cancelled (the list ends with the inputs
    /// that ran), and the run in progress skips its steps not started.
    pub fn run_workflow_each_cancellable(
        &self,
        workflow: &Workflow,
        inputs: Vec<Value>,
        keep_going: bool,
        mut on_progress: impl FnMut(usize, usize),
        cancel: Option<&CancelToken>,
    ) -> Result<Vec<Result<WorkflowResult>>> {
        self.require_orchestration()?;
        let mut failed = None;
        let result = (|| {
            let plan = super::plan::shared_plan(self, workflow)?;
            let instances = Arc::new(instantiate(self, &plan)?);
            let width = plan.steps.iter().map(|s| s.pool).max().unwrap_or(1);
            let outcomes = if width > 1 && inputs.len() > 1 {
                each_at_once(
                    self,
                    &plan,
                    &instances,
                    inputs,
                    width,
                    keep_going,
                    &mut on_progress,
                    cancel,
                )
            } else {
                each_in_turn(
                    self,
                    &plan,
                    &instances,
                    inputs,
                    keep_going,
                    &mut on_progress,
                    cancel,
                )
            };
            for instance in instances.iter().rev() {
                instance.close();
            }
            // What the run or batch kept goes to the disk cache as it returns.
            if let Some(cache) = self.step_cache() {
                cache.flush();
            }
            let mut out = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                match outcome {
                    Err(e) if e.interruption().is_some() => return Err(e),
                    Err(e) => {
                        failed.get_or_insert_with(|| e.report());
                        out.push(Err(e));
                        if !keep_going {
                            break;
                        }
                    }
                    Ok(r) => out.push(Ok(r)),
                }
            }
            Ok(out)
        })();
        super::metrics::runs_ended(self, &workflow.name, &result);
        let detail = match (&result, failed) {
            (Err(e), _) => Some(e.report()),
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

/// Each input in turn (stopping at the first failure unless `keep_going`).
pub(super) fn each_in_turn(
    registry: &ModuleRegistry,
    plan: &Arc<Plan>,
    instances: &Arc<Vec<StepInstance>>,
    inputs: Vec<Value>,
    keep_going: bool,
    on_progress: &mut impl FnMut(usize, usize),
    cancel: Option<&CancelToken>,
) -> Vec<Result<WorkflowResult>> {
    let total = inputs.len();
    let mut out = Vec::with_capacity(total);
    for (n, input) in inputs.into_iter().enumerate() {
        if n > 0 && cancel.is_some_and(CancelToken::is_cancelled) {
            break;
        }
        let outcome = execute(registry, plan, instances, input, cancel);
        let stop = match &outcome {
            Err(e) => e.interruption().is_some() || !keep_going,
            Ok(_) => false,
        };
        out.push(outcome);
        on_progress(n + 1, total);
        if stop {
            break;
        }
    }
    out
}

/// What the threads of a batch run at once share: the run, the inputs not
/// taken yet, the number of the next, and whether to stop.
struct Shared<'a> {
    registry: &'a ModuleRegistry,
    plan: &'a Arc<Plan>,
    instances: &'a Arc<Vec<StepInstance>>,
    inputs: Vec<parking_lot::Mutex<Option<Value>>>,
    next: std::sync::atomic::AtomicUsize,
    stop: std::sync::atomic::AtomicBool,
    keep_going: bool,
    cancel: Option<&'a CancelToken>,
}

impl Shared<'_> {
    /// One batch thread: takes the next input and runs it, sending its
    /// outcome, until none is left, the batch stops (a failure under
    /// `keep_going == false`, an interruption) or is cancelled.
    fn work(&self, tx: &crossbeam_channel::Sender<(usize, Result<WorkflowResult>)>) {
        use std::sync::atomic::Ordering;
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if n >= self.inputs.len()
                || self.stop.load(Ordering::Acquire)
                || self.cancel.is_some_and(CancelToken::is_cancelled)
            {
                break;
            }
            let input = self.inputs[n].lock().take().unwrap_or_default();
            let outcome = execute(self.registry, self.plan, self.instances, input, self.cancel);
            if outcome
                .as_ref()
                .is_err_and(|e| !self.keep_going || e.interruption().is_some())
            {
                self.stop.store(true, Ordering::Release);
            }
            if tx.send((n, outcome)).is_err() {
                break;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// Up to `width` inputs at once (a step runs on a pool that wide), each on
/// a thread of its own; outcomes in input order.
pub(super) fn each_at_once(
    registry: &ModuleRegistry,
    plan: &Arc<Plan>,
    instances: &Arc<Vec<StepInstance>>,
    inputs: Vec<Value>,
    width: usize,
    keep_going: bool,
    on_progress: &mut impl FnMut(usize, usize),
    cancel: Option<&CancelToken>,
) -> Vec<Result<WorkflowResult>> {
    let total = inputs.len();
    let shared = Shared {
        registry,
        plan,
        instances,
        inputs: inputs
            .into_iter()
            .map(|v| parking_lot::Mutex::new(Some(v)))
            .collect(),
        next: std::sync::atomic::AtomicUsize::new(0),
        stop: std::sync::atomic::AtomicBool::new(false),
        keep_going,
        cancel,
    };
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Result<WorkflowResult>)>();
    let mut slots: Vec<Option<Result<WorkflowResult>>> = (0..total).map(|_| None).collect();
    std::thread::scope(|scope| {
        for t in 0..width.min(total) {
            let (tx, shared) = (tx.clone(), &shared);
            let caller = crate::access::Caller::current();
            #[cfg(test)]
            if tests::NO_THREADS.with(std::cell::Cell::get) {
                break;
            }
            let spawned = crate::threads::spawn_scoped(
                scope,
                format!("module-registry-batch-{t}"),
                crate::threads::MODULE_THREAD_STACK,
                move || caller.enter(|| shared.work(&tx)),
            );
            if spawned.is_err() {
                break;
            }
        }
        drop(tx);
        let mut done = 0;
        for (n, outcome) in rx.iter() {
            slots[n] = Some(outcome);
            done += 1;
            on_progress(done, total);
        }
    });
    if slots.iter().all(Option::is_none)
        && total > 0
        && !cancel.is_some_and(CancelToken::is_cancelled)
    {
        let inputs = shared
            .inputs
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_default())
            .collect();
        // No batch thread could be started: the inputs run here, in turn,
        // under the caller's own policy (`errors="raise"` still stops at the
        // first failure).
        return each_in_turn(
            registry,
            plan,
            instances,
            inputs,
            keep_going,
            on_progress,
            cancel,
        );
    }
    // In input order, up to the first input that did not run (cancelled or stopped).
    slots.into_iter().map_while(|s| s).collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use crate::workflow::{Workflow, WorkflowStep};
    use crate::{ModuleConfig, ModuleRegistry, Value};

    thread_local! {
        /// Makes this thread's batches start no batch thread (as when the
        /// system refuses one).
        pub(super) static NO_THREADS: Cell<bool> = const { Cell::new(false) };
    }

    #[test]
    fn a_batch_run_here_for_want_of_threads_keeps_the_callers_policy() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let registry = ModuleRegistry::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        registry
            .register(
                ModuleConfig::new()
                    .with_name("odd-fails")
                    .with_handler(move |v: Value| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        match v.as_int() {
                            Some(n) if n % 2 == 1 => Err("odd".into()),
                            _ => Ok(v),
                        }
                    }),
            )
            .unwrap();
        let wf = Workflow::new("w").step(WorkflowStep::module("a", "odd-fails").pool(2));
        let inputs: Vec<Value> = (0..6).map(Value::from).collect();
        NO_THREADS.with(|t| t.set(true));
        let stopping = registry.run_workflow_each(&wf, inputs.clone(), false, |_, _| {});
        let stopped_after = calls.swap(0, Ordering::SeqCst);
        let going = registry.run_workflow_each(&wf, inputs, true, |_, _| {});
        NO_THREADS.with(|t| t.set(false));
        // Without keep_going nothing runs after the first failure (input 1).
        let stopping = stopping.unwrap();
        assert_eq!(stopping.len(), 2);
        assert!(stopping[0].is_ok() && stopping[1].is_err());
        assert_eq!(stopped_after, 2);
        assert_eq!(going.unwrap().len(), 6);
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }
}
