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
//! the time it waits (`workers.rs`), so coroutines that themselves await
//! `a*` calls cannot starve the workers. An `aprocess` call is a coroutine
//! object, so every asyncio API that takes coroutines takes it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use module_registry::access::{with_ambient, Caller};
use module_registry::workflow::CancelToken;
use module_registry::Error;
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
use crate::threads;
use crate::workers::{blocking, NoWorkerLeft, MAX_WORKERS};
use crate::workflow::{batch_inputs, outcomes_to_py, PyWorkflow};

/// What a finished job hands the loop: builds the Python result there.
type Produce = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

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
    let job: crate::workers::Job = Box::new(move || {
        let produce = caller.enter(|| with_ambient(Some(ambient), work));
        let c = completions.get();
        c.queue.lock().push((future, produce));
        if !c.scheduled.swap(true, Ordering::SeqCst) {
            // Once the interpreter exits nobody awaits these: they are
            // dropped with the queue's owner.
            let _ = threads::try_attach(|py| {
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
    crate::workers::run(py, job)
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

type Work = Box<dyn FnOnce() -> Produce + Send>;

enum Stage {
    /// Not awaited yet.
    Fresh(Work),
    /// Started: the iterator of the future its result is set on.
    Waiting(Py<PyAny>),
    /// Finished, failed, closed or thrown into.
    Over,
}

/// An `aprocess` call: a coroutine (it has `send`, `throw`, `close` and
/// `__await__`, and is registered as a `collections.abc.Coroutine`), so
/// `await`, `asyncio.create_task`, `ensure_future`, `gather`, `wait_for`
/// and `TaskGroup` all take it. Its first step starts the work on a worker
/// thread; it then waits on a future of the running loop.
#[pyclass(module = "module_registry._core", frozen)]
pub struct _Pending {
    stage: Mutex<Stage>,
    caller: Caller,
}

impl _Pending {
    /// The future's iterator, starting the work on the first step.
    fn waiting(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut stage = self.stage.lock();
        match std::mem::replace(&mut *stage, Stage::Over) {
            Stage::Waiting(iter) => {
                *stage = Stage::Waiting(iter.clone_ref(py));
                Ok(iter)
            }
            Stage::Over => Err(PyRuntimeError::new_err(
                "cannot reuse an already awaited aprocess() call",
            )),
            Stage::Fresh(work) => {
                let event_loop = running_loop(py)?;
                let future = event_loop.call_method0("create_future")?;
                submit(
                    py,
                    &event_loop,
                    future.clone().unbind(),
                    self.caller.clone(),
                    work,
                )?;
                let iter = future.call_method0("__await__")?.unbind();
                *stage = Stage::Waiting(iter.clone_ref(py));
                Ok(iter)
            }
        }
    }

    /// What one step of the future's iterator gave: a value yielded (the
    /// future, to the task), or its end (the result), after which the call
    /// is over.
    fn step(&self, out: PyResult<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        match out {
            Ok(yielded) => Ok(yielded.unbind()),
            Err(end) => {
                *self.stage.lock() = Stage::Over;
                Err(end)
            }
        }
    }
}

#[pymethods]
impl _Pending {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let iter = self.waiting(py)?;
        let out = iter.bind(py).call_method0("__next__");
        self.step(out)
    }

    /// One step of the coroutine: starts the work on the first.
    fn send(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let iter = self.waiting(py)?;
        let out = iter.bind(py).call_method1("send", (value,));
        self.step(out)
    }

    /// Raises `typ` (or `value`) where the coroutine waits (not started:
    /// the work never starts).
    #[pyo3(signature = (typ, value=None, traceback=None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let waiting = match std::mem::replace(&mut *self.stage.lock(), Stage::Over) {
            Stage::Waiting(iter) => Some(iter),
            Stage::Fresh(_) | Stage::Over => None,
        };
        let Some(iter) = waiting else {
            let error = match value {
                Some(value) if !value.is_none() => PyErr::from_value(value.clone()),
                _ if typ.is_instance_of::<PyType>() => PyErr::from_value(typ.call0()?),
                _ => PyErr::from_value(typ.clone()),
            };
            return Err(error);
        };
        *self.stage.lock() = Stage::Waiting(iter.clone_ref(py));
        // Only the arguments given (Python 3.12 warns about the three-argument form).
        let iter = iter.bind(py);
        let out = match (value, traceback) {
            (None, None) => iter.call_method1("throw", (typ,)),
            (Some(value), None) => iter.call_method1("throw", (typ, value)),
            (value, Some(traceback)) => iter.call_method1("throw", (typ, value, traceback)),
        };
        self.step(out)
    }

    /// Ends the coroutine: the work never starts, or its result is not awaited.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let stage = std::mem::replace(&mut *self.stage.lock(), Stage::Over);
        if let Stage::Waiting(iter) = stage {
            iter.bind(py).call_method0("close")?;
        }
        Ok(())
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
            stage: Mutex::new(Stage::Fresh(Box::new(work))),
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
    let run = crate::hooks::hook(py, crate::hooks::Hook::RunCoroutine)?;
    let event_loop = module_registry::access::ambient()
        .and_then(|a| {
            a.downcast_ref::<AsyncLoop>()
                .map(|l| l.0.clone_ref(py).into_bound(py))
        })
        .unwrap_or_else(|| py.None().into_bound(py));
    let coroutine = out.clone();
    match blocking(|| run.call1((out, event_loop))) {
        Ok(settled) => settled,
        Err(NoWorkerLeft) => {
            // Never awaited: closed, so Python does not warn about it.
            let _ = coroutine.call_method0("close");
            Err(to_pyerr(Error::Unavailable {
                subject: "async def modules".into(),
                reason: format!(
                    "{MAX_WORKERS} worker threads at most, and those left are needed by the calls \
                     the waiting coroutines await; await fewer calls of async def modules at once"
                ),
            }))
        }
    }
}
