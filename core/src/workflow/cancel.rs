//! Cancelling a run or a batch between steps.

use std::time::{Instant, SystemTime};

use super::plan::Plan;
use super::run::{StepStatus, WorkflowResult};
use crate::cache::CacheStatus;
use crate::value::Value;

pub use crate::cancel::CancelToken;

/// The error of a step a cancelled run did not start.
pub(crate) const CANCELLED: &str = "cancelled before it started";

/// The result of a run cancelled before any step started.
pub(crate) fn skipped_run(plan: &Plan) -> WorkflowResult {
    let run_start = Instant::now();
    WorkflowResult {
        output: Value::Null,
        steps: plan
            .steps
            .iter()
            .map(|step| {
                step.report(
                    StepStatus::Skipped,
                    0,
                    run_start,
                    run_start,
                    Some(CANCELLED.to_string()),
                    CacheStatus::Off,
                )
            })
            .collect(),
        started_at: SystemTime::now(),
        duration: std::time::Duration::ZERO,
        worker: super::run::worker_label(),
    }
}
