//! The shared worker pool that runs workflows' parallel branches, and each
//! run's own queue in front of it (caller-runs: a run waiting for its
//! branches runs its own queued ones).

use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender};

use crate::error::{Error, Result};
use crate::threads::{spawn, MODULE_THREAD_STACK};

/// A branch of a run, ready to go.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// The shared worker pool: at least four threads whatever the core count,
/// since steps often wait on I/O. It runs tickets: each takes one job from
/// one run's own queue, if the run has not taken it already (see [`RunQueue`]).
fn pool() -> &'static Sender<Job> {
    static POOL: OnceLock<Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = crossbeam_channel::unbounded();
        let threads = worker_threads();
        for i in 0..threads {
            let rx = rx.clone();
            spawn(
                format!("module-registry-worker-{i}"),
                MODULE_THREAD_STACK,
                move || {
                    for job in rx {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                },
            )
            .expect("spawn a workflow worker thread");
        }
        tx
    })
}

/// One run's parallel branches not started yet. A branch is queued here and
/// a ticket for it goes to the shared pool; whichever comes first runs it:
/// a pool thread, or the run itself while it waits (caller-runs). So a run
/// never blocks while its own work is queued (nested parallel workflows
/// cannot starve the pool), and it never runs another run's work (its
/// latency does not hang on someone else's slow step).
pub(crate) struct RunQueue {
    jobs: Sender<Job>,
    pending: Receiver<Job>,
}

impl RunQueue {
    pub(crate) fn new() -> Self {
        let (jobs, pending) = crossbeam_channel::unbounded();
        RunQueue { jobs, pending }
    }

    /// Starts `job` soon: on its own thread at once when it has a time limit
    /// (its time counts from now, not from when a busy pool gets to it),
    /// else through the queue.
    pub(crate) fn dispatch(&self, job: Job, timed: bool) -> Result<()> {
        if timed {
            return spawn("module-registry-timed-step", MODULE_THREAD_STACK, job)
                .map(drop)
                .map_err(|e| {
                    Error::invalid_input(format!("cannot start a thread for a step: {e}"))
                });
        }
        self.jobs
            .send(job)
            .map_err(|_| Error::invalid_input("a workflow run's queue is gone"))?;
        let pending = self.pending.clone();
        pool()
            .send(Box::new(move || {
                if let Ok(job) = pending.try_recv() {
                    job();
                }
            }))
            .map_err(|_| Error::invalid_input("the workflow worker pool is gone"))
    }

    /// Waits for the next message on `results`, running this run's queued
    /// branches meanwhile.
    pub(crate) fn wait<T>(&self, results: &Receiver<T>) -> Option<T> {
        loop {
            crossbeam_channel::select_biased! {
                recv(results) -> message => return message.ok(),
                recv(self.pending) -> job => {
                    if let Ok(job) = job {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                }
            }
        }
    }
}

/// How many worker threads run parallel branches.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .max(4)
}
