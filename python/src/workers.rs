//! The async worker threads: the work of `aprocess`, `arun_workflow` and
//! `arun_workflow_batch` runs on them (see `aio`). A base count always,
//! more while some wait for coroutines (a worker waiting is replaced, so
//! coroutines that await `a*` calls cannot starve the rest), at most
//! [`MAX_WORKERS`]; those beyond the base count end once idle. Each keeps
//! its Python thread state for its life (see `threads`); at exit they are
//! stopped and joined, in a forked child started afresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::threads;

/// A piece of work for a worker thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Threads at most, counting those standing in for blocked ones.
pub(crate) const MAX_WORKERS: usize = 1024;
/// How long a worker beyond the base count waits for work before it ends.
const IDLE_EXTRA: Duration = Duration::from_millis(500);

enum Message {
    Run(Job),
    /// Ends the thread that takes it (the interpreter exits).
    Stop,
}

/// The worker threads: `base` of them always, more while some wait for
/// coroutines (at most [`MAX_WORKERS`]); those beyond `base` end once idle.
/// Every one keeps its Python thread state for its life (see `threads`).
struct Workers {
    jobs: Sender<Message>,
    receiver: Receiver<Message>,
    base: usize,
    threads: AtomicUsize,
    blocked: AtomicUsize,
    stopping: AtomicBool,
    next_id: AtomicUsize,
    handles: Mutex<HashMap<usize, JoinHandle<()>>>,
}

thread_local! {
    /// The pool this worker thread belongs to.
    static WORKER_OF: std::cell::RefCell<Option<Arc<Workers>>> =
        const { std::cell::RefCell::new(None) };
}

/// The pool (made on first use, again in a forked child). Only touched with
/// the GIL held, so a fork never finds it locked by a thread it left behind.
static POOL: Mutex<Option<Arc<Workers>>> = Mutex::new(None);
/// The interpreter exits: no pool any more.
static STOPPED: AtomicBool = AtomicBool::new(false);

fn workers(_py: Python<'_>) -> PyResult<Arc<Workers>> {
    if STOPPED.load(Ordering::SeqCst) {
        return Err(threads::exiting());
    }
    let mut pool = POOL.lock();
    if let Some(pool) = pool.as_ref() {
        return Ok(pool.clone());
    }
    let (jobs, receiver) = crossbeam_channel::unbounded::<Message>();
    let fresh = Arc::new(Workers {
        jobs,
        receiver,
        base: std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .max(4),
        threads: AtomicUsize::new(0),
        blocked: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        next_id: AtomicUsize::new(0),
        handles: Mutex::new(HashMap::new()),
    });
    for _ in 0..fresh.base {
        spawn_worker(&fresh);
    }
    *pool = Some(fresh.clone());
    Ok(fresh)
}

/// One fewer thread, if there are more than `base`.
fn retire(pool: &Workers) -> bool {
    pool.threads
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n > pool.base).then(|| n - 1)
        })
        .is_ok()
}

/// Starts one more worker; `false` if the OS refuses a thread.
fn spawn_worker(pool: &Arc<Workers>) -> bool {
    let id = pool.next_id.fetch_add(1, Ordering::SeqCst);
    pool.threads.fetch_add(1, Ordering::SeqCst);
    let mine = pool.clone();
    // Held while spawning, so the thread finds its handle when it retires.
    let mut handles = pool.handles.lock();
    let spawned = module_registry::threads::spawn(
        format!("module-registry-async-{id}"),
        module_registry::threads::MODULE_THREAD_STACK,
        move || {
            WORKER_OF.with(|w| *w.borrow_mut() = Some(mine.clone()));
            loop {
                let message = if mine.threads.load(Ordering::SeqCst) > mine.base {
                    match mine.receiver.recv_timeout(IDLE_EXTRA) {
                        Ok(message) => message,
                        Err(RecvTimeoutError::Timeout) => {
                            if retire(&mine) {
                                drop(mine.handles.lock().remove(&id));
                                return;
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                } else {
                    match mine.receiver.recv() {
                        Ok(message) => message,
                        Err(_) => break,
                    }
                };
                match message {
                    Message::Stop => break,
                    // Left over when the interpreter exits: nobody awaits it.
                    Message::Run(job) if mine.stopping.load(Ordering::SeqCst) => drop(job),
                    Message::Run(job) => {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                }
            }
            mine.threads.fetch_sub(1, Ordering::SeqCst);
        },
    );
    match spawned {
        Ok(handle) => {
            handles.insert(id, handle);
            true
        }
        Err(_) => {
            pool.threads.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }
}

/// The interpreter exits (`threads::_shutdown`): every worker ends once its
/// call returns (calls not started are dropped) and is joined, with the GIL
/// released meanwhile. A `KeyboardInterrupt` stops the waiting.
pub(crate) fn stop_workers(py: Python<'_>) {
    STOPPED.store(true, Ordering::SeqCst);
    let Some(pool) = POOL.lock().take() else {
        return;
    };
    pool.stopping.store(true, Ordering::SeqCst);
    let handles: Vec<JoinHandle<()>> = pool.handles.lock().drain().map(|(_, h)| h).collect();
    for _ in 0..handles.len() {
        let _ = pool.jobs.send(Message::Stop);
    }
    let mut left = handles;
    // A worker inside a call that never ends on its own (abandoned by
    // `wait_for`) is asked to end it after a grace.
    let mut waiting = crate::threads::ExitWait::new();
    while !left.is_empty() {
        left.retain(|h| !h.is_finished());
        if left.is_empty() {
            break;
        }
        py.detach(|| std::thread::sleep(Duration::from_millis(2)));
        waiting.tick(py);
        if py.check_signals().is_err() {
            return;
        }
    }
}

/// In a forked child: the parent's workers do not exist there.
pub(crate) fn after_fork() {
    if let Some(mut pool) = POOL.try_lock() {
        *pool = None;
    }
}

/// A worker about to wait would leave too few free for other calls, and no
/// thread can be added (the cap, or the OS refused one).
pub(crate) struct NoWorkerLeft;

/// Runs `f`, which waits (for a coroutine on an event loop): on a worker
/// thread, another worker stands in meanwhile when too few are left. When
/// none can be added, `f` is not run: waiting would take the last workers
/// the awaited work itself needs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> Result<T, NoWorkerLeft> {
    let Some(pool) = WORKER_OF.with(|w| w.borrow().clone()) else {
        return Ok(f());
    };
    let blocked = pool.blocked.fetch_add(1, Ordering::SeqCst) + 1;
    let threads = pool.threads.load(Ordering::SeqCst);
    struct Unblock<'a>(&'a Workers);
    impl Drop for Unblock<'_> {
        fn drop(&mut self) {
            self.0.blocked.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let unblock = Unblock(&pool);
    if threads.saturating_sub(blocked) < pool.base {
        let can = threads < MAX_WORKERS && !pool.stopping.load(Ordering::SeqCst);
        if !can || !spawn_worker(&pool) {
            drop(unblock);
            return Err(NoWorkerLeft);
        }
    }
    let out = f();
    drop(unblock);
    Ok(out)
}

/// Hands `job` to a worker thread.
pub(crate) fn run(py: Python<'_>, job: Job) -> PyResult<()> {
    workers(py)?
        .jobs
        .send(Message::Run(job))
        .map_err(|_| PyRuntimeError::new_err("the async worker threads are gone"))
}
