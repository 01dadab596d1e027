//! One helper thread per thread that calls modules from scripts under a
//! deadline, kept between calls: a call handed to it can be abandoned when
//! the deadline passes, without starting a thread per call.

use std::cell::RefCell;
use std::sync::mpsc::{self, Sender};
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send + 'static>;

thread_local! {
    /// This thread's idle helper, if it has one, and the process it was
    /// started in (a forked child has none of its parent's threads).
    static HELPER: RefCell<Option<(u32, Sender<Job>)>> = const { RefCell::new(None) };
}

/// Why [`run`] has no result.
pub(crate) enum NotDone {
    /// The deadline passed first; the call goes on alone.
    TimedOut,
    /// No helper thread could be started.
    NoThread(std::io::Error),
}

fn spawn() -> std::io::Result<Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    crate::threads::spawn(
        "module-registry-call",
        crate::threads::MODULE_THREAD_STACK,
        move || {
            for job in rx {
                job();
            }
        },
    )?;
    Ok(tx)
}

/// Runs `f` on this thread's helper and waits for it, at most until
/// `deadline`. The helper is taken while it works (a nested call gets its
/// own), given back after, and dropped when abandoned (it ends once its
/// call returns).
pub(crate) fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    deadline: Instant,
) -> Result<T, NotDone> {
    let pid = std::process::id();
    let helper = match HELPER.with(|h| h.borrow_mut().take()) {
        Some((owner, helper)) if owner == pid => helper,
        _ => spawn().map_err(NotDone::NoThread)?,
    };
    let (done, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = done.send(out);
    });
    // A helper's loop ends only when its sender is dropped, and each job
    // catches its own panic: a kept helper always takes the job.
    helper
        .send(job)
        .map_err(|_| NotDone::NoThread(std::io::Error::other("the helper thread is gone")))?;
    match result.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(out) => {
            HELPER.with(|h| *h.borrow_mut() = Some((pid, helper)));
            out.map_err(|panic| std::panic::resume_unwind(panic))
        }
        Err(_) => Err(NotDone::TimedOut),
    }
}
