//! Cancelling a run or a batch between steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::plan::Plan;
use super::run::{StepStatus, WorkflowResult};
use crate::cache::CacheStatus;
use crate::value::Value;

/// Stops a run, or a batch, between steps: the steps running finish, the
/// ones not started are reported [`Skipped`](StepStatus::Skipped) with the
/// error `"cancelled before it started"` (and a batch starts no more inputs).
/// Clones share the request.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the runs holding this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

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
