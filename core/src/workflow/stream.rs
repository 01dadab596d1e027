//! Batches that stream: one set of instances for the whole batch, inputs
//! taken as they are needed and outcomes handed back as they are made, so a
//! batch of any length holds only the inputs in flight.
//!
//! [`WorkflowBatch`] runs the inputs it is given, a window at a time (what
//! a binding that reads its inputs from elsewhere drives);
//! [`BatchIter`] is the iterator [`ModuleRegistry::iter_workflow_batch`]
//! returns, built on it.

use std::collections::VecDeque;
use std::sync::Arc;

use super::batch::{each_at_once, each_in_turn};
use super::cancel::CancelToken;
use super::instances::StepInstance;
use super::plan::Plan;
use super::{instantiate, plan, Workflow, WorkflowResult};
use crate::access::Caller;
use crate::audit::Outcome;
use crate::error::{Error, Result};
use crate::kind::ModuleKind;
use crate::registry::{ModuleRegistry, RegistryView};
use crate::value::Value;

/// Inputs a [`BatchIter`] takes at a time per thread a step's pool allows:
/// enough to keep the threads busy, few enough that little is in flight.
const WINDOW_PER_THREAD: usize = 16;

/// A batch under way: the workflow planned once, its instances built once,
/// run on each window of inputs handed to [`run`](Self::run). Dropping it
/// (or [`finish`](Self::finish)) closes the instances, writes the step
/// cache and records the batch in the audit log, once.
pub struct WorkflowBatch {
    registry: ModuleRegistry,
    workflow: String,
    plan: Arc<Plan>,
    instances: Arc<Vec<StepInstance>>,
    width: usize,
    keep_going: bool,
    cancel: Option<CancelToken>,
    /// Who started the batch: each window runs as this caller, on whatever
    /// thread hands it in (a binding's iterator is advanced outside the
    /// call that started it).
    caller: Caller,
    failed: Option<String>,
    stopped: bool,
    finished: bool,
}

impl WorkflowBatch {
    /// How many inputs run at once (the widest pool of a step; 1 without).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the batch has stopped: an input failed without `keep_going`,
    /// a module asked to stop, or it was cancelled. [`run`](Self::run) then
    /// runs nothing.
    pub fn stopped(&self) -> bool {
        self.stopped || self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }

    /// Runs the workflow on each of `inputs` (numbered from `first_index`),
    /// up to [`width`](Self::width) at once, outcomes in input order. A
    /// failed input's error says its number; without `keep_going` the list
    /// ends with it and the batch stops. The outer error is an
    /// interruption (a module asked to stop), which stops the batch too.
    pub fn run(
        &mut self,
        inputs: Vec<Value>,
        first_index: usize,
        mut on_progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Result<WorkflowResult>>> {
        if self.stopped() || inputs.is_empty() {
            return Ok(Vec::new());
        }
        let (registry, plan, instances) = (&self.registry, &self.plan, &self.instances);
        let cancel = self.cancel.as_ref();
        let outcomes = self.caller.clone().enter(|| {
            if self.width > 1 && inputs.len() > 1 {
                let (width, keep_going) = (self.width, self.keep_going);
                each_at_once(
                    registry,
                    plan,
                    instances,
                    inputs,
                    width,
                    keep_going,
                    &mut on_progress,
                    cancel,
                )
            } else {
                let keep_going = self.keep_going;
                each_in_turn(
                    registry,
                    plan,
                    instances,
                    inputs,
                    keep_going,
                    &mut on_progress,
                    cancel,
                )
            }
        });
        let mut out = Vec::with_capacity(outcomes.len());
        let mut interrupted = None;
        for (n, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Err(e) if e.interruption().is_some() => {
                    self.stopped = true;
                    self.failed.get_or_insert_with(|| e.report());
                    interrupted = Some(e);
                    break;
                }
                Err(e) => {
                    let e = e.at_input(first_index + n);
                    self.failed.get_or_insert_with(|| e.report());
                    out.push(Err(e));
                    if !self.keep_going {
                        self.stopped = true;
                        break;
                    }
                }
                Ok(r) => out.push(Ok(r)),
            }
        }
        let result = match interrupted {
            Some(e) => Err(e),
            None => Ok(out),
        };
        // Each window's runs are counted as they end (a batch that is
        // never finished is counted too).
        super::metrics::runs_ended(&self.registry, &self.workflow, &result);
        result
    }

    /// Closes the instances, writes what the step cache kept and records
    /// the batch in the audit log (once; dropping the batch does it too).
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.stopped = true;
        let detail = self.failed.take();
        let (registry, instances, workflow) = (&self.registry, &self.instances, &self.workflow);
        self.caller.clone().enter(|| {
            for instance in instances.iter().rev() {
                instance.close();
            }
            if let Some(cache) = registry.step_cache() {
                cache.flush();
            }
            let outcome = if detail.is_none() {
                Outcome::Ok
            } else {
                Outcome::Error
            };
            registry.audit_log().push(
                "run_workflow",
                ModuleKind::Module,
                workflow,
                None,
                outcome,
                detail,
            );
        });
    }
}

impl Drop for WorkflowBatch {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The outcomes of a streaming batch, one per input, in input order,
/// made as they are asked for (see [`ModuleRegistry::iter_workflow_batch`]).
pub struct BatchIter<I> {
    batch: WorkflowBatch,
    inputs: I,
    next_index: usize,
    ready: VecDeque<Result<WorkflowResult>>,
    done: bool,
}

impl<I> BatchIter<I> {
    /// With `keep_going`, a failed input's error is handed back and the
    /// inputs after it still run (without, the iterator ends after it).
    #[must_use]
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.batch.keep_going = keep_going;
        self
    }

    /// The batch it drives (its width; [`WorkflowBatch::finish`] to stop early).
    pub fn batch(&mut self) -> &mut WorkflowBatch {
        &mut self.batch
    }
}

impl<I, V> Iterator for BatchIter<I>
where
    I: Iterator<Item = V>,
    V: Into<Value>,
{
    type Item = Result<WorkflowResult>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(outcome) = self.ready.pop_front() {
            return Some(outcome);
        }
        if self.done || self.batch.stopped() {
            self.done = true;
            self.batch.finish();
            return None;
        }
        let window = self.batch.width
            * if self.batch.width > 1 {
                WINDOW_PER_THREAD
            } else {
                1
            };
        let inputs: Vec<Value> = self.inputs.by_ref().take(window).map(Into::into).collect();
        if inputs.len() < window {
            self.done = true;
        }
        let first = self.next_index;
        self.next_index += inputs.len();
        match self.batch.run(inputs, first, |_, _| {}) {
            Ok(outcomes) => self.ready.extend(outcomes),
            Err(e) => {
                self.done = true;
                self.ready.push_back(Err(e));
            }
        }
        if self.ready.is_empty() {
            self.done = true;
            self.batch.finish();
        }
        self.ready.pop_front()
    }
}

impl ModuleRegistry {
    /// Starts a batch of `workflow`: planned and its instances built now
    /// (errors here are the workflow's), inputs given a window at a time
    /// with [`WorkflowBatch::run`]. With `keep_going` a failed input does
    /// not stop the ones after it.
    pub fn start_workflow_batch(
        &self,
        workflow: &Workflow,
        keep_going: bool,
        cancel: Option<CancelToken>,
    ) -> Result<WorkflowBatch> {
        let started = (|| {
            self.require_orchestration()?;
            let plan = Arc::new(plan(self, workflow)?);
            let instances = Arc::new(instantiate(self, &plan)?);
            Ok::<_, Error>((plan, instances))
        })();
        let (plan, instances) = match started {
            Ok(built) => built,
            Err(e) => {
                self.audit_log().push(
                    "run_workflow",
                    ModuleKind::Module,
                    &workflow.name,
                    None,
                    Outcome::Error,
                    Some(e.report()),
                );
                return Err(e);
            }
        };
        let width = plan.steps.iter().map(|s| s.pool).max().unwrap_or(1);
        Ok(WorkflowBatch {
            registry: self.clone(),
            workflow: workflow.name.clone(),
            plan,
            instances,
            width,
            keep_going,
            cancel,
            caller: Caller::current(),
            failed: None,
            stopped: false,
            finished: false,
        })
    }

    /// Runs `workflow` on each of `inputs` as the iterator is advanced: one
    /// set of instances for the batch, inputs taken lazily (a window at a
    /// time: one, or a step's pool width times 16), outcomes in input
    /// order, each failed input's error naming its position. The iterator
    /// ends after the first failure (see [`WorkflowBatch`] for
    /// `keep_going`); dropping it early closes the instances.
    ///
    /// ```
    /// use module_registry::{ModuleConfig, ModuleRegistry, Value, Workflow, WorkflowStep};
    /// let registry = ModuleRegistry::new();
    /// registry.register(ModuleConfig::new().with_name("double").with_handler(|v| {
    ///     Ok(Value::from(v.as_int().unwrap_or(0) * 2))
    /// }))?;
    /// let wf = Workflow::new("w").step(WorkflowStep::module("d", "double"));
    /// let firsts: Vec<Value> = registry
    ///     .iter_workflow_batch(&wf, (0..).map(Value::from))? // endless: taken as asked
    ///     .take(3)
    ///     .map(|r| r.map(|r| r.output))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(firsts, vec![Value::from(0), Value::from(2), Value::from(4)]);
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn iter_workflow_batch<I, V>(
        &self,
        workflow: &Workflow,
        inputs: I,
    ) -> Result<BatchIter<I::IntoIter>>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Ok(BatchIter {
            batch: self.start_workflow_batch(workflow, false, None)?,
            inputs: inputs.into_iter(),
            next_index: 0,
            ready: VecDeque::new(),
            done: false,
        })
    }
}

impl RegistryView {
    /// [`ModuleRegistry::iter_workflow_batch`] as this principal (the
    /// workflow is planned and its instances built as the principal).
    pub fn iter_workflow_batch<I, V>(
        &self,
        workflow: &Workflow,
        inputs: I,
    ) -> Result<BatchIter<I::IntoIter>>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.with(|r| r.iter_workflow_batch(workflow, inputs))
    }
}
