//! Running workflows (planning is `plan.rs`).
//!
//! A run checks everything first (shape, modules, capability queries), builds
//! one instance per step, then executes: a step whose inputs are ready runs
//! on the calling thread when it is the only one ready (a chain pays no
//! thread hand-off), and on a shared pool of at least four threads when
//! several are ready at once. A step with a timeout runs each attempt on its
//! own thread, so the run stops waiting at the deadline even if the module
//! never returns (its late result is discarded).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::cancel::{CancelToken, CANCELLED};
use super::instances::{call, StepInstance};
use super::plan::{step_error, Plan, PlannedStep};
use super::pool::{Job, RunQueue};
use super::{OnError, StepInput};
use crate::cache::CacheStatus;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::registry::ModuleRegistry;
use crate::value::{Value, ValueMap};

pub(crate) use super::report::worker_label;
pub use super::report::{StepReport, StepStatus, WorkflowResult};

struct Outcome {
    result: Result<Value>,
    report: StepReport,
}

impl PlannedStep {
    /// The report of this step's own module: started at `start`, finished now.
    pub(crate) fn report(
        &self,
        status: StepStatus,
        attempts: u32,
        start: Instant,
        run_start: Instant,
        error: Option<String>,
        cache: CacheStatus,
    ) -> StepReport {
        StepReport {
            id: self.text.id.clone(),
            module: self.text.module.clone(),
            version: self.text.version.clone(),
            status,
            attempts,
            start: start - run_start,
            duration: start.elapsed(),
            error,
            cache,
            output: None,
        }
    }
}

/// Runs one step inside its `run step {step}` span (feature `tracing`).
fn run_step(
    registry: &ModuleRegistry,
    step: &PlannedStep,
    instance: &StepInstance,
    input: Value,
    run_start: Instant,
    cancel: Option<&CancelToken>,
) -> Outcome {
    crate::trace::run_step(
        &step.id,
        || attempt_step(registry, step, instance, input, run_start, cancel),
        |o| {
            let r = &o.report;
            (
                r.status.as_str(),
                r.attempts,
                r.cache.as_str(),
                o.result.as_ref().err(),
            )
        },
    )
}

/// Runs one step: attempts, then the error policy.
fn attempt_step(
    registry: &ModuleRegistry,
    step: &PlannedStep,
    instance: &StepInstance,
    input: Value,
    run_start: Instant,
    cancel: Option<&CancelToken>,
) -> Outcome {
    let start = Instant::now();
    // The cache first: a hit does not run the module.
    let (cache_status, cached) = consult_cache(registry, step, &input);
    if let (Some((cache, key, held, persistent)), CacheStatus::Miss) = (&cached, cache_status) {
        if let Some(output) = cache.get(key, &step.info, held, *persistent) {
            return Outcome {
                result: Ok(output),
                report: step.report(StepStatus::Ok, 0, start, run_start, None, CacheStatus::Hit),
            };
        }
    }
    let keep_input = step.retries > 0 || step.on_error != OnError::Fail;
    let mut attempts = 0;
    let mut last_error = None;
    let mut input = Some(input);
    while attempts <= step.retries {
        // A cancelled run starts no more attempts: the step ends with its
        // last error (retrying 100 times after a cancel is not stopping).
        if attempts > 0 && cancel.is_some_and(CancelToken::is_cancelled) {
            break;
        }
        attempts += 1;
        let arg = if keep_input {
            input.clone().unwrap_or_default()
        } else {
            input.take().unwrap_or_default()
        };
        match checked_call(step, &step.info, instance, arg) {
            Ok(v) => {
                if let Some((cache, key, held, persistent)) = cached {
                    cache.put(key, v.clone(), &step.info, &held, persistent);
                }
                return Outcome {
                    result: Ok(v),
                    report: step.report(
                        StepStatus::Ok,
                        attempts,
                        start,
                        run_start,
                        last_error.as_ref().map(Error::report),
                        cache_status,
                    ),
                };
            }
            Err(e) => {
                // A stop request from the host ends the step: no retry.
                let stop = e.interruption().is_some();
                if !stop && attempts <= step.retries {
                    crate::trace::retry(attempts, &e);
                }
                last_error = Some(e);
                if stop {
                    break;
                }
            }
        }
    }
    let error = last_error.expect("at least one attempt failed");
    let interrupted = error.interruption().is_some();
    let mut report = step.report(
        StepStatus::Failed,
        attempts,
        start,
        run_start,
        Some(error.report()),
        cache_status,
    );
    let result = match (step.on_error, &step.fallback) {
        // Nor is a stop request skipped or handed to a fallback.
        _ if interrupted => Err(error),
        (OnError::Skip, _) => {
            report.status = StepStatus::Skipped;
            Ok(input.unwrap_or_default())
        }
        (OnError::Fallback, Some(fallback)) => {
            let outcome = registry
                .instantiate_with_dependencies(fallback.clone(), Value::Null, &[])
                .map(|f| StepInstance::One(Arc::new(f)))
                .and_then(|f| checked_call(step, fallback, &f, input.unwrap_or_default()));
            match outcome {
                Ok(v) => {
                    report.status = StepStatus::Fallback;
                    report.module = fallback.name().into();
                    report.version = fallback.version_text().into();
                    Ok(v)
                }
                Err(fallback_error) => {
                    report.error = Some(format!(
                        "{}; fallback {} failed too: {}",
                        error.report(),
                        fallback.name(),
                        fallback_error.report()
                    ));
                    Err(fallback_error)
                }
            }
        }
        _ => Err(error),
    };
    report.duration = start.elapsed();
    Outcome { result, report }
}

/// One call of the step's module (`info`, or its fallback's), its input
/// and output checked against `info`'s types when the step says `validate`.
fn checked_call(
    step: &PlannedStep,
    info: &ModuleInfo,
    instance: &StepInstance,
    input: Value,
) -> Result<Value> {
    if !step.validate {
        return call(instance, input, step.timeout, &step.id);
    }
    let label = format!("{}@{}", info.name(), info.version_text());
    let id = Some(step.id.as_str());
    info.input().check_call(&input, &label, id, "input")?;
    let output = call(instance, input, step.timeout, &step.id)?;
    info.output().check_call(&output, &label, id, "output")?;
    Ok(output)
}

/// What the cache says of `step` on `input` (see [`crate::cache::consult`]).
fn consult_cache(
    registry: &ModuleRegistry,
    step: &PlannedStep,
    input: &Value,
) -> (CacheStatus, Option<crate::cache::Lookup>) {
    if !step.cache {
        return (CacheStatus::Off, None);
    }
    let config = step.key_config.as_ref().unwrap_or(&step.config);
    crate::cache::consult(registry, &step.info, config, input, &step.code)
}

/// Executes a plan with already-built instances, inside its `run workflow
/// {workflow}` span (feature `tracing`).
pub(crate) fn execute(
    registry: &ModuleRegistry,
    plan: &Arc<Plan>,
    instances: &Arc<Vec<StepInstance>>,
    input: Value,
    cancel: Option<&CancelToken>,
) -> Result<WorkflowResult> {
    crate::trace::run_workflow(&plan.name, &crate::access::current_principal, || {
        execute_plan(registry, plan, instances, input, cancel)
    })
}

fn execute_plan(
    registry: &ModuleRegistry,
    plan: &Arc<Plan>,
    instances: &Arc<Vec<StepInstance>>,
    input: Value,
    cancel: Option<&CancelToken>,
) -> Result<WorkflowResult> {
    let started_at = SystemTime::now();
    let run_start = Instant::now();
    let s = &plan.structure;
    let n = plan.steps.len();
    // Filled with `None` without cloning one `None` per step (`vec![None; n]`).
    let mut outputs: Vec<Option<Value>> = std::iter::repeat_with(|| None).take(n).collect();
    let mut pending: Vec<usize> = s.inputs.iter().map(|i| i.upstream().len()).collect();
    let mut reports: Vec<Option<StepReport>> = std::iter::repeat_with(|| None).take(n).collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut workflow_input = Some(input);
    let mut workflow_input_readers = s
        .inputs
        .iter()
        .filter(|i| **i == StepInput::Workflow)
        .count();
    // Made when a step first runs elsewhere (a chain never needs them).
    let mut parallel: Option<Parallel> = None;
    let mut in_flight = 0usize;

    // Every output is kept for the result (`WorkflowResult::outputs`): a
    // reader gets a copy.
    let take =
        |u: usize, outputs: &[Option<Value>]| -> Value { outputs[u].clone().unwrap_or_default() };

    let cancelled = || cancel.is_some_and(CancelToken::is_cancelled);
    loop {
        while let Some(i) = ready.pop_front() {
            if cancelled() {
                // Not started: reported as skipped below.
                continue;
            }
            let step_input = match &s.inputs[i] {
                StepInput::Workflow => {
                    workflow_input_readers -= 1;
                    if workflow_input_readers == 0 {
                        workflow_input.take().unwrap_or_default()
                    } else {
                        workflow_input.clone().unwrap_or_default()
                    }
                }
                StepInput::One(u) => take(*u, &outputs),
                StepInput::Map(refs) => {
                    let mut map = ValueMap::with_capacity(refs.len());
                    for (id, u) in refs {
                        map.insert(id.clone(), take(*u, &outputs));
                    }
                    Value::Map(map)
                }
            };
            if ready.is_empty() && in_flight == 0 {
                // The only runnable step: run it here, no hand-off.
                let outcome = run_step(
                    registry,
                    &plan.steps[i],
                    &instances[i],
                    step_input,
                    run_start,
                    cancel,
                );
                super::metrics::step_ran(registry, &plan.name, &plan.steps[i], &outcome.report);
                settle(
                    plan,
                    i,
                    outcome,
                    &mut outputs,
                    &mut reports,
                    &mut pending,
                    &mut ready,
                )?;
            } else {
                let timed = plan.steps[i].timeout.is_some();
                let par = parallel.get_or_insert_with(Parallel::new);
                let (plan, instances, registry, tx) = (
                    plan.clone(),
                    instances.clone(),
                    registry.clone(),
                    par.tx.clone(),
                );
                in_flight += 1;
                let caller = crate::access::Caller::current();
                let token = cancel.cloned();
                let job: Job = Box::new(move || {
                    let outcome = caller.enter(|| {
                        run_step(
                            &registry,
                            &plan.steps[i],
                            &instances[i],
                            step_input,
                            run_start,
                            token.as_ref(),
                        )
                    });
                    super::metrics::step_ran(
                        &registry,
                        &plan.name,
                        &plan.steps[i],
                        &outcome.report,
                    );
                    let _ = tx.send((i, outcome));
                });
                par.queue.dispatch(job, timed)?;
            }
        }
        let Some(par) = parallel.as_ref().filter(|_| in_flight > 0) else {
            break;
        };
        let (i, outcome) = par
            .queue
            .wait(&par.rx)
            .ok_or_else(|| Error::invalid_input("a workflow worker stopped"))?;
        in_flight -= 1;
        settle(
            plan,
            i,
            outcome,
            &mut outputs,
            &mut reports,
            &mut pending,
            &mut ready,
        )?;
    }
    let output = match &s.output {
        StepInput::Map(refs) => Value::Map(
            refs.iter()
                .map(|(id, u)| (id.clone(), outputs[*u].clone().unwrap_or_default()))
                .collect(),
        ),
        one => one
            .upstream()
            .first()
            .and_then(|&u| outputs[u].clone())
            .unwrap_or_default(),
    };
    Ok(WorkflowResult {
        output,
        steps: reports
            .into_iter()
            .zip(&plan.steps)
            .zip(outputs)
            .map(|((r, step), out)| {
                r.map(|mut r| {
                    if matches!(r.status, StepStatus::Ok | StepStatus::Fallback) {
                        r.output = out;
                    }
                    r
                })
                .unwrap_or_else(|| {
                    let now = Instant::now();
                    step.report(
                        StepStatus::Skipped,
                        0,
                        now,
                        run_start,
                        Some(CANCELLED.to_string()),
                        CacheStatus::Off,
                    )
                })
            })
            .collect(),
        started_at,
        duration: run_start.elapsed(),
        worker: worker_label(),
    })
}

/// What a run needs once steps run on other threads: the channel their
/// outcomes come back on and the run's own queue.
struct Parallel {
    tx: crossbeam_channel::Sender<(usize, Outcome)>,
    rx: crossbeam_channel::Receiver<(usize, Outcome)>,
    queue: RunQueue,
}

impl Parallel {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Parallel {
            tx,
            rx,
            queue: RunQueue::new(),
        }
    }
}

/// Records a finished step and releases the steps waiting on it.
fn settle(
    plan: &Plan,
    i: usize,
    outcome: Outcome,
    outputs: &mut [Option<Value>],
    reports: &mut [Option<StepReport>],
    pending: &mut [usize],
    ready: &mut VecDeque<usize>,
) -> Result<()> {
    let attempts = outcome.report.attempts;
    reports[i] = Some(outcome.report);
    match outcome.result {
        Ok(v) => {
            outputs[i] = Some(v);
            for &d in &plan.structure.dependents[i] {
                pending[d] -= 1;
                if pending[d] == 0 {
                    ready.push_back(d);
                }
            }
            Ok(())
        }
        Err(e) => Err(step_error(
            &plan.name,
            &plan.steps[i].id,
            format!(
                "{} failed after {attempts} attempt{}",
                plan.steps[i].info,
                if attempts == 1 { "" } else { "s" }
            ),
            Some(e),
        )),
    }
}
