//! Async Python: the work of `await instance.aprocess(x)`,
//! `registry.arun_workflow(...)` and `arun_workflow_batch(...)` runs on a
//! small set of Rust threads, never on the event loop; results go back to
//! the loop in batches (one `call_soon_threadsafe` wakes the loop for every
//! result that arrived meanwhile). The coroutines around the starts are in
//! `module_registry/_async.py`.
//!
//! `async def` modules: a coroutine a Python module returns is awaited on
//! the loop of the `a*` call that runs it (the call's ambient value, which
//! travels to every thread the work runs on), else on a private loop kept
//! on its own thread (so a synchronous call works inside a running loop, as
//! in a notebook). A worker thread waiting for a coroutine is replaced for
//! the time it waits, so coroutines that themselves await `a*` calls
//! cannot starve the workers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Receiver, Sender};

use module_registry::access::{with_ambient, Caller};
use module_registry::workflow::CancelToken;
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyType};

use crate::conversion::{py_to_value, value_to_py};
use crate::errors::to_pyerr;
use crate::instance::PyModuleInstance;
use crate::registry::PyModuleRegistry;
use crate::result::PyWorkflowResult;
use crate::workflow::{batch_inputs, outcomes_to_py, PyWorkflow};

/// What a finished job hands the loop: builds the Python result there.
type Produce = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;
type Job = Box<dyn FnOnce() + Send>;

/// The stack of a worker thread: module code runs on it (a main thread's size).
const WORKER_STACK: usize = 64 * 1024 * 1024;
/// Threads at most, counting those standing in for blocked ones.
const MAX_WORKERS: usize = 1024;

struct Workers {
    jobs: Sender<Job>,
    receiver: Receiver<Job>,
    base: usize,
    threads: AtomicUsize,
    blocked: AtomicUsize,
}

thread_local! {
    static IS_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn workers() -> &'static Workers {
    static WORKERS: OnceLock<Workers> = OnceLock::new();
    WORKERS.get_or_init(|| {
        let (jobs, receiver) = crossbeam_channel::unbounded::<Job>();
        let workers = Workers {
            jobs,
            receiver,
            base: std::thread::available_parallelism()
                .map_or(4, |n| n.get())
                .max(4),
            threads: AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
        };
        for _ in 0..workers.base {
            spawn_worker(&workers);
        }
        workers
    })
}

fn spawn_worker(workers: &Workers) {
    let n = workers.threads.fetch_add(1, Ordering::SeqCst);
    let receiver = workers.receiver.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("module-registry-async-{n}"))
        .stack_size(WORKER_STACK)
        .spawn(move || {
            IS_WORKER.with(|w| w.set(true));
            for job in receiver {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        });
    if spawned.is_err() {
        workers.threads.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f`, which waits (for a coroutine on an event loop): on a worker
/// thread, another worker stands in meanwhile when too few are left.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    if !IS_WORKER.with(|w| w.get()) {
        return f();
    }
    let pool = workers();
    let blocked = pool.blocked.fetch_add(1, Ordering::SeqCst) + 1;
    let threads = pool.threads.load(Ordering::SeqCst);
    if threads.saturating_sub(blocked) < pool.base && threads < MAX_WORKERS {
        spawn_worker(pool);
    }
    struct Unblock;
    impl Drop for Unblock {
        fn drop(&mut self) {
            workers().blocked.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _unblock = Unblock;
    f()
}

/// The loop an `a*` call was awaited on, carried as the call's ambient value.
pub(crate) struct AsyncLoop(pub Py<PyAny>);

/// Results waiting for one loop, delivered in one callback.
#[pyclass(module = "module_registry._core", frozen)]
pub struct _Completions {
    event_loop: Py<PyAny>,
    queue: Mutex<Vec<(Py<PyAny>, Produce)>>,
    scheduled: AtomicBool,
}

#[pymethods]
impl _Completions {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        self.scheduled.store(false, Ordering::SeqCst);
        let items = std::mem::take(&mut *self.queue.lock());
        for (future, produce) in items {
            let future = future.bind(py);
            if future.call_method0("done")?.is_truthy()? {
                continue; // cancelled by its awaiter
            }
            match produce(py) {
                Ok(value) => future.call_method1("set_result", (value,))?,
                Err(error) => future.call_method1("set_exception", (error.into_value(py),))?,
            };
        }
        Ok(())
    }
}

/// The completions of `event_loop` (one per loop, kept while the loop lives).
fn completions_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Py<_Completions>> {
    static BY_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let table = BY_LOOP
        .get_or_try_init(py, || {
            py.import("weakref")?
                .getattr("WeakKeyDictionary")?
                .call0()
                .map(Bound::unbind)
        })?
        .bind(py);
    if let Ok(found) = table.get_item(event_loop) {
        if let Ok(found) = found.cast_into::<_Completions>() {
            return Ok(found.unbind());
        }
    }
    let fresh = Py::new(
        py,
        _Completions {
            event_loop: event_loop.clone().unbind(),
            queue: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
        },
    )?;
    // A loop that cannot be weakly referenced gets fresh completions each call.
    let _ = table.set_item(event_loop, fresh.clone_ref(py));
    Ok(fresh)
}

/// Runs `work` on a worker thread as the current caller, with `event_loop`
/// as the loop its `async def` modules are awaited on; its result is set on
/// `future` from the loop's thread.
fn submit(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    future: Py<PyAny>,
    caller: Caller,
    work: impl FnOnce() -> Produce + Send + 'static,
) -> PyResult<()> {
    let completions = completions_for(py, event_loop)?;
    let ambient: module_registry::access::Ambient =
        Arc::new(AsyncLoop(event_loop.clone().unbind()));
    let job: Job = Box::new(move || {
        let produce = caller.enter(|| with_ambient(Some(ambient), work));
        let c = completions.get();
        c.queue.lock().push((future, produce));
        if !c.scheduled.swap(true, Ordering::SeqCst) {
            Python::attach(|py| {
                let scheduled = c
                    .event_loop
                    .bind(py)
                    .call_method1("call_soon_threadsafe", (completions.clone_ref(py),));
                if scheduled.is_err() {
                    // The loop is closed: nobody awaits these any more.
                    c.queue.lock().clear();
                }
            });
        }
    });
    workers()
        .jobs
        .send(job)
        .map_err(|_| PyRuntimeError::new_err("the async worker threads are gone"))
}

fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET.get_or_try_init(py, || {
        py.import("asyncio")?
            .getattr("get_running_loop")
            .map(Bound::unbind)
    })?
    .bind(py)
    .call0()
}

/// An `aprocess` call not awaited yet: awaiting it starts the work.
#[pyclass(module = "module_registry._core", frozen)]
pub struct _Pending {
    work: Mutex<Option<Box<dyn FnOnce() -> Produce + Send>>>,
    caller: Caller,
}

#[pymethods]
impl _Pending {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let work = self.work.lock().take().ok_or_else(|| {
            PyRuntimeError::new_err("cannot reuse an already awaited aprocess() call")
        })?;
        let event_loop = running_loop(py)?;
        let future = event_loop.call_method0("create_future")?;
        submit(
            py,
            &event_loop,
            future.clone().unbind(),
            self.caller.clone(),
            work,
        )?;
        future.call_method0("__await__")
    }
}

#[pymethods]
impl PyModuleInstance {
    /// `await instance.aprocess(value)`: `process` on a worker thread; the
    /// event loop keeps running meanwhile. An `async def` module is awaited
    /// on this loop. Cancelling the awaiting task abandons the result (the
    /// call in flight finishes).
    fn aprocess(&self, value: &Bound<'_, PyAny>) -> PyResult<_Pending> {
        let input = py_to_value(value)?;
        let instance = self.shared();
        let work = move || -> Produce {
            let out = instance.process_value(input);
            Box::new(move |py| Ok(value_to_py(py, out.map_err(to_pyerr)?)?.unbind()))
        };
        Ok(_Pending {
            work: Mutex::new(Some(Box::new(work))),
            caller: Caller::current(),
        })
    }
}

/// Stops a run started by `_start_workflow` or `_start_batch` between steps.
#[pyclass(name = "_CancelToken", module = "module_registry._core", frozen)]
pub struct PyCancelToken {
    inner: CancelToken,
}

#[pymethods]
impl PyCancelToken {
    fn cancel(&self) {
        self.inner.cancel();
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// [`submit`]s a run that `cancel`ling the returned token stops between steps.
fn submit_run(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    future: Py<PyAny>,
    run: impl FnOnce(&CancelToken) -> Produce + Send + 'static,
) -> PyResult<PyCancelToken> {
    let token = CancelToken::new();
    let cancel = token.clone();
    submit(py, event_loop, future, Caller::current(), move || {
        run(&cancel)
    })?;
    Ok(PyCancelToken { inner: token })
}

#[pymethods]
impl PyModuleRegistry {
    /// Starts `workflow` on `input` on a worker thread; its `WorkflowResult`
    /// (or error) is set on `future`, a future of the running `event_loop`.
    fn _start_workflow(
        &self,
        py: Python<'_>,
        workflow: PyRef<'_, PyWorkflow>,
        input: &Bound<'_, PyAny>,
        event_loop: &Bound<'_, PyAny>,
        future: Py<PyAny>,
    ) -> PyResult<PyCancelToken> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let input = py_to_value(input)?;
        let registry = self.inner.clone();
        submit_run(py, event_loop, future, move |cancel| {
            let result = registry.run_workflow_cancellable(&wf, input, cancel);
            Box::new(move |py| match result {
                Ok(result) => Ok(Py::new(py, PyWorkflowResult::of(py, result, &wf)?)?.into_any()),
                Err(e) => Err(to_pyerr(e)),
            })
        })
    }

    /// Starts a batch (as `_run_workflow_batch`) on a worker thread; the
    /// list of outcomes is set on `future`.
    fn _start_batch(
        &self,
        py: Python<'_>,
        workflow: PyRef<'_, PyWorkflow>,
        inputs: &Bound<'_, PyAny>,
        keep_going: bool,
        event_loop: &Bound<'_, PyAny>,
        future: Py<PyAny>,
    ) -> PyResult<PyCancelToken> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let values = batch_inputs(inputs)?;
        let registry = self.inner.clone();
        submit_run(py, event_loop, future, move |cancel| {
            let outcomes = registry.run_workflow_each_cancellable(
                &wf,
                values,
                keep_going,
                |_, _| {},
                Some(cancel),
            );
            Box::new(move |py| {
                let outcomes = outcomes.map_err(to_pyerr)?;
                let list = outcomes_to_py(py, outcomes, 0, &wf)?;
                Ok(PyList::new(py, list)?.into_any().unbind())
            })
        })
    }
}

/// The type of native coroutines (`async def` results).
fn coroutine_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.import(py, "types", "CoroutineType")
}

/// `out`, or what it resolves to when it is a coroutine: awaited on the
/// loop of the `a*` call running it, else on the private loop.
pub(crate) fn settle<'py>(out: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = out.py();
    if !out.get_type().is(coroutine_type(py)?) {
        return Ok(out);
    }
    static RUN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let run = RUN
        .get_or_try_init(py, || {
            py.import("module_registry._async")?
                .getattr("run_coroutine")
                .map(Bound::unbind)
        })?
        .bind(py);
    let event_loop = module_registry::access::ambient()
        .and_then(|a| {
            a.downcast_ref::<AsyncLoop>()
                .map(|l| l.0.clone_ref(py).into_bound(py))
        })
        .unwrap_or_else(|| py.None().into_bound(py));
    blocking(|| run.call1((out, event_loop)))
}
