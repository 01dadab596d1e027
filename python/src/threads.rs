//! Rust threads that run Python, and the one rule they all keep at exit.
//!
//! A thread Python did not start (an async worker, a script's helper, a
//! workflow's pool thread) gets a Python thread state the first time it
//! calls Python through [`try_attach`] and keeps it for its life: later calls
//! only take the GIL. The state is released when the thread ends.
//!
//! At exit CPython ends (with `pthread_exit`) any thread but its own that
//! takes the GIL once finalisation has begun, and that unwind through Rust
//! frames aborts the process. So the package registers [`_shutdown`] with
//! `atexit` when it is imported (before finalisation, GIL held). From then
//! on no thread starts a call (calls under way go on, nested ones too); the
//! async worker threads are stopped and joined; once no thread is inside
//! [`try_attach`] the gate closes, and [`try_attach`] on any other thread
//! gives up (an `UnavailableError`) without touching the GIL. A thread that
//! ends afterwards leaves its thread state to the interpreter's teardown; a
//! thread coming back from [`Detach::detach_gated`] outside any call (a
//! daemon thread) is parked for good. The finalising thread itself (which
//! may still drop instances whose Python `shutdown` runs) keeps calling
//! Python as before.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use module_registry::Error;
use pyo3::ffi;
use pyo3::prelude::*;

/// Set in [`INSIDE`] while the exit hook waits: no thread starts a call.
const CLOSING: usize = 1 << (usize::BITS - 2);
/// Set in [`INSIDE`] once the gate is closed: no thread takes the GIL.
const CLOSED: usize = 1 << (usize::BITS - 1);
/// Threads inside [`try_attach`] (or taking the GIL back after [`Detach::detach_gated`])
/// now, plus [`CLOSING`] and [`CLOSED`].
static INSIDE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// How deep this thread is inside [`try_attach`] (a fork keeps only this thread's).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// This thread runs the exit hook (and then finalises the interpreter).
    static FINALIZER: Cell<bool> = const { Cell::new(false) };
    /// The thread state this thread keeps for its life, if it made one.
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
    /// This thread's helper for calls made from a script's stack.
    static HELPER: RefCell<Option<(u32, mpsc::Sender<Job>)>> = const { RefCell::new(None) };
}

extern "C" {
    /// CPython's id of the calling thread (what `threading.get_ident()`
    /// gives and `PyThreadState_SetAsyncExc` takes); callable without the GIL.
    fn PyThread_get_thread_ident() -> std::os::raw::c_ulong;
}

/// The threads inside a call now (by CPython's thread id, with how many
/// times each is counted in), so that the exit hook can ask the calls it
/// waits for to end.
static CALLING: parking_lot::Mutex<Vec<(std::os::raw::c_ulong, usize)>> =
    parking_lot::Mutex::new(Vec::new());

fn calling_in() {
    #[allow(unsafe_code)]
    // SAFETY: reads the calling thread's id; needs nothing else.
    let me = unsafe { PyThread_get_thread_ident() };
    let mut calling = CALLING.lock();
    match calling.iter_mut().find(|(id, _)| *id == me) {
        Some((_, n)) => *n += 1,
        None => calling.push((me, 1)),
    }
}

fn calling_out() {
    #[allow(unsafe_code)]
    // SAFETY: as in `calling_in`.
    let me = unsafe { PyThread_get_thread_ident() };
    let mut calling = CALLING.lock();
    if let Some(at) = calling.iter().position(|(id, _)| *id == me) {
        calling[at].1 -= 1;
        if calling[at].1 == 0 {
            calling.swap_remove(at);
        }
    }
}

/// A thread inside [`try_attach`]: counted until dropped.
struct Inside;

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
        calling_out();
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts this thread in, unless the gate is closed, or closing and this
/// would start a call (`starting`) where none is under way on this thread.
fn enter(starting: bool) -> Option<Inside> {
    let before = INSIDE.fetch_add(1, Ordering::SeqCst);
    let depth = DEPTH.try_with(Cell::get).unwrap_or(0);
    if before & CLOSED != 0 || (starting && before & CLOSING != 0 && depth == 0) {
        INSIDE.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
    calling_in();
    Some(Inside)
}

/// Why a thread may not call Python once the interpreter exits.
pub(crate) const EXITING: &str = "the interpreter is exiting; no thread calls Python any more";

/// Why a thread may not call Python: the interpreter exits.
pub(crate) fn exiting_error() -> Error {
    Error::Unavailable {
        subject: "Python".into(),
        reason: EXITING.into(),
    }
}

/// [`exiting_error`] as a Python exception, made without the GIL (its
/// value is built when it is raised).
pub(crate) fn exiting() -> PyErr {
    crate::errors::UnavailableError::new_err(exiting_error().to_string())
}

/// Runs `f` with the GIL, on a thread that keeps its Python thread state;
/// `None` (nothing run, the GIL not taken) once the interpreter exits.
pub(crate) fn try_attach<T>(f: impl for<'py> FnOnce(Python<'py>) -> T) -> Option<T> {
    match enter(true) {
        Some(_inside) => {
            keep_thread_state();
            Some(Python::attach(f))
        }
        None if FINALIZER.with(Cell::get) => Some(Python::attach(f)),
        None => None,
    }
}

/// A thread state made for a thread Python did not start.
struct Kept {
    gstate: ffi::PyGILState_STATE,
    state: *mut ffi::PyThreadState,
}

impl Drop for Kept {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // Once the gate is closed the interpreter's teardown frees it.
        let Some(_inside) = enter(false) else { return };
        // SAFETY: `state` is this thread's own state, saved by
        // `keep_thread_state` and alive (the gate is open: finalisation has
        // not begun); restoring it takes the GIL, and the release matching
        // its `PyGILState_Ensure` deletes it and lets the GIL go.
        unsafe {
            ffi::PyEval_RestoreThread(self.state);
            ffi::PyGILState_Release(self.gstate);
        }
    }
}

/// Makes this thread's Python thread state if it has none, and keeps it
/// (with the GIL released) until the thread ends.
#[allow(unsafe_code)]
fn keep_thread_state() {
    if KEPT.try_with(|k| k.borrow().is_some()).unwrap_or(true) {
        return;
    }
    // SAFETY: callable without the GIL; it reads this thread's state.
    if !unsafe { ffi::PyGILState_GetThisThreadState() }.is_null() {
        return; // a Python thread, or one inside a call already
    }
    // SAFETY: the interpreter is running (the gate is open and this thread
    // is counted in it). Ensure makes this thread's state and takes the
    // GIL; SaveThread lets the GIL go and keeps the state for the next call.
    let kept = unsafe {
        let gstate = ffi::PyGILState_Ensure();
        let state = ffi::PyEval_SaveThread();
        Kept { gstate, state }
    };
    let _ = KEPT.try_with(|k| *k.borrow_mut() = Some(kept));
}

/// `py.detach(f)` as every call that lets the GIL go uses it
/// (`py.detach_gated(f)`): once the exit hook runs, a thread coming back
/// that is not inside a call (a daemon thread the interpreter does not wait
/// for) is parked for good instead of taking the GIL, which during
/// finalisation would end it through Rust frames and abort the process.
pub(crate) trait Detach {
    /// [`Python::detach`], gated as above.
    fn detach_gated<T: Send, F: Send + FnOnce() -> T>(self, f: F) -> T;
}

impl Detach for Python<'_> {
    fn detach_gated<T: Send, F: Send + FnOnce() -> T>(self, f: F) -> T {
        let (out, inside) = self.detach(|| {
            let out = f();
            // A thread outside any call coming back while the interpreter
            // exits (the exit hook's own excepted) stays away for good.
            let inside = enter(true);
            if inside.is_none() && !FINALIZER.with(Cell::get) {
                loop {
                    std::thread::park();
                }
            }
            (out, inside)
        });
        drop(inside);
        out
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

fn spawn_helper() -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    module_registry::threads::spawn(
        "module-registry-python-call",
        module_registry::threads::MODULE_THREAD_STACK,
        move || {
            for job in rx {
                job();
            }
        },
    )?;
    Ok(tx)
}

/// Runs `f` on this thread's helper thread (started on first use, then kept
/// for the life of this thread, with its Python thread state) and waits for
/// it. A nested call from the helper gets the helper's own helper.
pub(crate) fn on_helper<T: Send + 'static>(f: impl FnOnce() -> T + Send) -> PyResult<T> {
    let pid = std::process::id();
    let helper = match HELPER.with(|h| h.borrow_mut().take()) {
        Some((owner, helper)) if owner == pid => helper,
        // none yet, or one of the parent's (a forked child has no such thread)
        _ => spawn_helper().map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "cannot start a thread to call Python: {e}"
            ))
        })?,
    };
    let (done, result) = mpsc::sync_channel(1);
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = done.send(out);
    });
    // SAFETY: this function does not return before the job has run to the
    // end of `f` (its result is received below) or has been dropped unrun
    // (its sender goes with it and `recv` fails): what `f` borrows outlives
    // every use of it. Only the job's `'static` parts (the sender) may live
    // on a moment after the result arrives.
    #[allow(unsafe_code)]
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    if helper.send(job).is_err() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the thread that calls Python is gone",
        ));
    }
    match result.recv() {
        Ok(out) => {
            HELPER.with(|h| *h.borrow_mut() = Some((pid, helper)));
            out.map_err(|panic| std::panic::resume_unwind(panic))
        }
        Err(_) => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the thread that calls Python is gone",
        )),
    }
}

/// How long the exit hook lets calls under way finish on their own before
/// it asks them to end.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How long the exit hook waits in all before it closes the gate on calls
/// that never end (a thread blocked outside Python, which an asked-for
/// `SystemExit` cannot reach): a thread that comes back later parks for
/// good rather than take the GIL ([`Detach::detach_gated`]).
const EXIT_GIVE_UP: Duration = Duration::from_secs(10);

/// Raises `SystemExit` in every thread inside a call but this one: the
/// next bytecode that thread runs ends its call (a call abandoned at a
/// step's timeout, a daemon thread inside a module), as Python would have
/// ended a daemon thread. A thread blocked in C code sees it when it comes
/// back. Returns how many threads were asked.
#[allow(unsafe_code)]
fn ask_calls_to_end(py: Python<'_>) -> usize {
    // SAFETY: as in `calling_in`.
    let me = unsafe { PyThread_get_thread_ident() };
    let threads: Vec<std::os::raw::c_ulong> = CALLING
        .lock()
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != me)
        .collect();
    let exit = py.get_type::<pyo3::exceptions::PySystemExit>();
    for id in &threads {
        // SAFETY: the GIL is held (this runs in the exit hook, between
        // waits); CPython looks the id up among its thread states and does
        // nothing when none matches (a thread that just left its call).
        unsafe {
            ffi::PyThreadState_SetAsyncExc(*id as std::os::raw::c_long, exit.as_ptr());
        }
    }
    threads.len()
}

/// The exit hook's waits (for the async workers, then for every call):
/// after [`EXIT_GRACE`], calls still running are asked to end each second,
/// and after 3 s the wait is said on stderr, once.
pub(crate) struct ExitWait {
    started: std::time::Instant,
    next_ask: std::time::Instant,
    said: bool,
}

impl ExitWait {
    pub(crate) fn new() -> Self {
        let started = std::time::Instant::now();
        ExitWait {
            started,
            next_ask: started + EXIT_GRACE,
            said: false,
        }
    }

    /// Called between short sleeps, with the GIL held.
    pub(crate) fn tick(&mut self, py: Python<'_>) {
        if std::time::Instant::now() < self.next_ask {
            return;
        }
        let asked = ask_calls_to_end(py);
        self.next_ask += Duration::from_secs(1);
        if asked > 0 && !self.said && self.started.elapsed() >= Duration::from_secs(3) {
            self.said = true;
            eprintln!(
                "module-registry: waiting at exit for {asked} module call(s) still running \
                 (asked to end; Ctrl-C stops waiting)"
            );
        }
    }
}

/// Called from `atexit` (registered by the package at import): no thread
/// starts a call any more (calls under way go on, nested ones included),
/// the async workers are stopped and joined, and once no thread is inside
/// [`try_attach`] (the GIL released meanwhile, so they can finish) the gate
/// closes. Calls still running after a short grace (a call abandoned at a
/// step's timeout, a daemon thread inside a module) are asked to end with
/// `SystemExit`, again each second, and the wait is said on stderr once;
/// after [`EXIT_GIVE_UP`] the gate closes on calls that never end. A
/// `KeyboardInterrupt` while waiting closes the gate at once.
#[pyfunction]
pub(crate) fn _shutdown(py: Python<'_>) -> PyResult<()> {
    FINALIZER.with(|f| f.set(true));
    INSIDE.fetch_or(CLOSING, Ordering::SeqCst);
    crate::workers::stop_workers(py);
    // Stores kept to the end are never dropped: their last batch now.
    py.detach(module_registry::cache::flush_all);
    let mut waiting = ExitWait::new();
    loop {
        let now = INSIDE.load(Ordering::SeqCst);
        if now & CLOSED != 0 {
            return Ok(());
        }
        if now & !(CLOSING | CLOSED) == 0
            && INSIDE
                .compare_exchange(now, now | CLOSED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            return Ok(());
        }
        py.detach(|| std::thread::sleep(Duration::from_millis(2)));
        waiting.tick(py);
        if waiting.started.elapsed() >= EXIT_GIVE_UP {
            eprintln!(
                "module-registry: stopped waiting at exit after {} s for module call(s) \
                 that did not end",
                EXIT_GIVE_UP.as_secs()
            );
            INSIDE.fetch_or(CLOSED, Ordering::SeqCst);
            return Ok(());
        }
        if let Err(interrupted) = py.check_signals() {
            INSIDE.fetch_or(CLOSED, Ordering::SeqCst);
            return Err(interrupted);
        }
    }
}

/// Called in a forked child (`os.register_at_fork`): only the forking
/// thread exists there, so only its own calls are counted, and the async
/// workers are started afresh when next needed.
#[pyfunction]
pub(crate) fn _after_fork_in_child() {
    let own = DEPTH.with(Cell::get);
    INSIDE.store(own, Ordering::SeqCst);
    crate::workers::after_fork();
}
