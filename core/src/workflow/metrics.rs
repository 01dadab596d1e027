//! What runs and steps add to the registry's metrics
//! (`module_registry_workflow_runs_total`, `module_registry_step_runs_total`,
//! `module_registry_step_duration_seconds`).

use super::cancel::CANCELLED;
use super::plan::PlannedStep;
use super::run::{StepReport, StepStatus, WorkflowResult};
use crate::cache::CacheStatus;
use crate::error::Result;
use crate::metrics::WORKFLOW_RUNS;
use crate::registry::ModuleRegistry;

/// A step that ran (or was answered by the cache): its status (`cached`
/// for a cache hit) and how long it took.
/// The step's counters are kept in its plan step: found once per plan.
pub(crate) fn step_ran(
    registry: &ModuleRegistry,
    workflow: &str,
    step: &PlannedStep,
    report: &StepReport,
) {
    let metrics = registry.metrics_store();
    if !metrics.enabled() {
        return;
    }
    let status = match (report.cache, report.status) {
        (CacheStatus::Hit, _) => "cached",
        (_, status) => status.as_str(),
    };
    let (store, kept) = step
        .metrics
        .get_or_init(|| (metrics.id(), metrics.step_handle(workflow, &report.id)));
    if *store == metrics.id() {
        metrics.step_ran_at(kept, status, Some(report.duration));
    } else {
        // A plan run against another registry's store.
        metrics.step_ran(workflow, &report.id, status, Some(report.duration));
    }
}

/// The runs of a batch: `ok` (answered from the cache too), `failed`, or
/// `cancelled` (a step was not started because the run was cancelled; each
/// such step counts as `cancelled`). An error that stopped the whole
/// batch counts as one failed run.
pub(crate) fn runs_ended(
    registry: &ModuleRegistry,
    workflow: &str,
    outcomes: &Result<Vec<Result<WorkflowResult>>>,
) {
    let metrics = registry.metrics_store();
    if !metrics.enabled() {
        return;
    }
    let Ok(outcomes) = outcomes else {
        metrics.add(WORKFLOW_RUNS, &[workflow, "failed"], 1);
        return;
    };
    let (mut ok, mut failed, mut cancelled) = (0, 0, 0);
    for outcome in outcomes {
        match outcome {
            Err(_) => failed += 1,
            Ok(result) => {
                let mut was_cancelled = false;
                for step in &result.steps {
                    if step.status == StepStatus::Skipped
                        && step.error.as_deref() == Some(CANCELLED)
                    {
                        was_cancelled = true;
                        metrics.step_ran(workflow, &step.id, "cancelled", None);
                    }
                }
                if was_cancelled {
                    cancelled += 1;
                } else {
                    ok += 1;
                }
            }
        }
    }
    for (outcome, n) in [("ok", ok), ("failed", failed), ("cancelled", cancelled)] {
        if n > 0 {
            metrics.add(WORKFLOW_RUNS, &[workflow, outcome], n);
        }
    }
}
