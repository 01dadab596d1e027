//! `WorkflowResult` and `StepReport` for Python: what a run gives back.

use module_registry::{CacheStatus, StepStatus, Workflow, WorkflowResult};
use pyo3::prelude::*;
use std::sync::Arc;

use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;

use crate::batch::{Layout, Row, Rows, StepOutputs, NO_TEXT};
use crate::conversion::value_to_py;
use crate::workflow::PyWorkflow;

/// What happened in one step.
#[pyclass(name = "StepReport", module = "module_registry._core", frozen, get_all)]
pub struct PyStepReport {
    /// The step's id.
    id: String,
    /// The module that produced the output (the fallback, if it ran).
    module: String,
    /// Its version.
    version: String,
    /// "ok", "skipped", "fallback" or "failed".
    status: &'static str,
    /// Attempts of the step's module.
    attempts: u32,
    /// Seconds from the start of the run to the start of the step.
    start: f64,
    /// Seconds the step took.
    duration: f64,
    /// The last error, if an attempt failed.
    error: Option<String>,
    /// "off", "hit", "miss" or "unhashable".
    cache: &'static str,
    /// What the step gave: None for a step that did not run or was
    /// skipped (`WorkflowResult.outputs` leaves those out).
    output: Py<PyAny>,
}

impl PyStepReport {
    /// Whether the step produced an output (it ran, fell back or hit the
    /// cache): what `WorkflowResult.outputs` lists.
    fn produced(&self) -> bool {
        matches!(self.status, "ok" | "fallback")
    }
}

/// A step report's constructor arguments.
type ReportArgs = (
    String,
    String,
    String,
    &'static str,
    u32,
    f64,
    f64,
    Option<String>,
    &'static str,
    Py<PyAny>,
);

impl PyStepReport {
    /// What the run's picture writes on the step (the core draws it).
    fn to_run(&self) -> module_registry::workflow::StepRun {
        let status = [
            StepStatus::Ok,
            StepStatus::Skipped,
            StepStatus::Fallback,
            StepStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == self.status)
        .unwrap_or(StepStatus::Failed);
        module_registry::workflow::StepRun {
            id: self.id.clone(),
            module: self.module.clone(),
            version: self.version.clone(),
            status,
            cached: self.cache == CacheStatus::Hit.as_str(),
            attempts: self.attempts,
            duration: std::time::Duration::try_from_secs_f64(self.duration).unwrap_or_default(),
            error: self.error.clone(),
        }
    }
}

#[pymethods]
impl PyStepReport {
    /// A report as runs give them (what unpickling builds).
    #[new]
    #[pyo3(signature = (id, module, version, status, attempts, start, duration, error=None, cache="off", output=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        id: String,
        module: String,
        version: String,
        status: &str,
        attempts: u32,
        start: f64,
        duration: f64,
        error: Option<String>,
        cache: &str,
        output: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let caches = [
            CacheStatus::Off,
            CacheStatus::Hit,
            CacheStatus::Miss,
            CacheStatus::Unhashable,
        ]
        .map(CacheStatus::as_str);
        let statuses = [
            StepStatus::Ok,
            StepStatus::Skipped,
            StepStatus::Fallback,
            StepStatus::Failed,
        ]
        .map(StepStatus::as_str);
        Ok(PyStepReport {
            id,
            module,
            version,
            status: crate::audit::known_str(status, &statuses, "status")?,
            attempts,
            start,
            duration,
            error,
            cache: crate::audit::known_str(cache, &caches, "cache")?,
            output: output.unwrap_or_else(|| py.None()),
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, pyo3::types::PyType>, ReportArgs) {
        let r = slf.get();
        (
            slf.get_type(),
            (
                r.id.clone(),
                r.module.clone(),
                r.version.clone(),
                r.status,
                r.attempts,
                r.start,
                r.duration,
                r.error.clone(),
                r.cache,
                r.output.clone_ref(slf.py()),
            ),
        )
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(o) = other.cast::<Self>() else {
            return Ok(false);
        };
        let o = o.get();
        let same_output = self.output.bind(py).eq(o.output.bind(py))?;
        Ok(same_output && {
            (&o.id, &o.module, &o.version, o.status, o.attempts)
                == (
                    &self.id,
                    &self.module,
                    &self.version,
                    self.status,
                    self.attempts,
                )
                && (o.start.to_bits(), o.duration.to_bits(), &o.error, o.cache)
                    == (
                        self.start.to_bits(),
                        self.duration.to_bits(),
                        &self.error,
                        self.cache,
                    )
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "StepReport(id={:?}, module={:?}, version={:?}, status={:?}, attempts={}, duration={:.6})",
            self.id, self.module, self.version, self.status, self.attempts, self.duration
        )
    }
}

/// The output of a run and a report per step. A result of a batch keeps
/// its step reports packed (`Row`s whose texts are the batch's `Layout`'s)
/// and builds the `StepReport` objects when `steps` is first read.
#[pyclass(name = "WorkflowResult", module = "module_registry._core", frozen)]
pub struct PyWorkflowResult {
    output: Py<PyAny>,
    duration: f64,
    /// Seconds since the epoch when the run started.
    started_at: f64,
    /// `pid:thread` of the thread that ran it (a text of `layout`).
    worker: u32,
    /// The workflow that ran and the texts of the batch's results.
    layout: Arc<Layout>,
    /// One packed report per step (empty for a result built by hand).
    rows: Rows,
    /// Each step's output, when there are several steps (one step's output
    /// is the result's).
    step_outputs: Option<Box<StepOutputs>>,
    /// The `StepReport`s, built when first read (set at once by hand).
    steps: PyOnceLock<Py<PyList>>,
}

/// `display.<function>(object)` of the package's display hook: the notebook
/// displays are written once, in Python.
pub(crate) fn display(
    py: Python<'_>,
    function: &str,
    object: &Bound<'_, PyAny>,
) -> PyResult<String> {
    crate::hooks::hook(py, crate::hooks::Hook::Display)?
        .call_method1(function, (object,))?
        .extract()
}

/// A packed report's status and cache words, and back.
const STATUSES: [StepStatus; 4] = [
    StepStatus::Ok,
    StepStatus::Skipped,
    StepStatus::Fallback,
    StepStatus::Failed,
];
const CACHES: [CacheStatus; 4] = [
    CacheStatus::Off,
    CacheStatus::Hit,
    CacheStatus::Miss,
    CacheStatus::Unhashable,
];

/// A status as a packed row's byte.
pub(crate) fn status_code(status: StepStatus) -> u8 {
    STATUSES.iter().position(|x| *x == status).unwrap_or(3) as u8
}

/// A cache status as a packed row's byte.
pub(crate) fn cache_code(cache: CacheStatus) -> u8 {
    CACHES.iter().position(|x| *x == cache).unwrap_or(0) as u8
}

impl PyWorkflowResult {
    /// The result of a run of `workflow`.
    pub fn of(py: Python<'_>, result: WorkflowResult, workflow: &Arc<Workflow>) -> PyResult<Self> {
        Self::packed(py, result, &Layout::for_run(Some(Arc::clone(workflow))))
    }

    /// A run's result whose texts are kept in `layout` (one for a batch).
    pub(crate) fn packed(
        py: Python<'_>,
        result: WorkflowResult,
        layout: &Arc<Layout>,
    ) -> PyResult<Self> {
        let several = result.steps.len() > 1;
        let mut values = Vec::with_capacity(if several { result.steps.len() } else { 0 });
        let mut rows = Vec::with_capacity(result.steps.len());
        // The texts under one lock; no Python runs while it is held.
        let mut texts = layout.texts();
        for (at, mut s) in result.steps.into_iter().enumerate() {
            let output = s.take_output();
            if several {
                values.push(output);
            }
            rows.push(Row {
                start: s.start.as_secs_f64(),
                duration: s.duration.as_secs_f64(),
                attempts: s.attempts,
                id: texts.intern_at(3 * at, &s.id),
                module: texts.intern_at(3 * at + 1, &s.module),
                version: texts.intern_at(3 * at + 2, &s.version),
                error: s.error.as_deref().map_or(NO_TEXT, |e| texts.intern(e)),
                status: status_code(s.status),
                cache: cache_code(s.cache),
            });
        }
        let worker = texts.intern_worker(&result.worker);
        drop(texts);
        let outputs = values
            .into_iter()
            .map(|output| match output {
                Some(v) => value_to_py(py, v).map(Bound::unbind),
                None => Ok(py.None()),
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Self::from_rows(
            value_to_py(py, result.output)?.unbind(),
            result.duration.as_secs_f64(),
            result
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            worker,
            layout,
            rows,
            several.then_some(outputs),
        ))
    }

    /// A result from its packed parts (a chunk's payload is read into these).
    pub(crate) fn from_rows(
        output: Py<PyAny>,
        duration: f64,
        started_at: f64,
        worker: u32,
        layout: &Arc<Layout>,
        rows: Vec<Row>,
        step_outputs: Option<Vec<Py<PyAny>>>,
    ) -> Self {
        PyWorkflowResult {
            output,
            duration,
            started_at,
            worker,
            layout: layout.clone(),
            rows: Rows::new(rows),
            step_outputs: step_outputs.map(|o| Box::new(StepOutputs(o.into_boxed_slice()))),
            steps: PyOnceLock::new(),
        }
    }

    /// The `StepReport` list, built from the packed rows on first read.
    fn steps_list<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyList>> {
        let list = self
            .steps
            .get_or_try_init(py, || self.build_steps(py).map(Bound::unbind))?;
        Ok(list.bind(py))
    }

    fn build_steps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let steps = PyList::empty(py);
        for (i, row) in self.rows.as_slice().iter().enumerate() {
            let status = STATUSES[usize::from(row.status).min(3)];
            let output = match &self.step_outputs {
                Some(outputs) => outputs
                    .0
                    .get(i)
                    .map_or_else(|| py.None(), |o| o.clone_ref(py)),
                None if matches!(status, StepStatus::Ok | StepStatus::Fallback) => {
                    self.output.clone_ref(py)
                }
                None => py.None(),
            };
            let report = PyStepReport {
                id: self.layout.text(row.id),
                module: self.layout.text(row.module),
                version: self.layout.text(row.version),
                status: status.as_str(),
                attempts: row.attempts,
                start: row.start,
                duration: row.duration,
                error: (row.error != NO_TEXT).then(|| self.layout.text(row.error)),
                cache: CACHES[usize::from(row.cache).min(3)].as_str(),
                output,
            };
            steps.append(Bound::new(py, report)?)?;
        }
        Ok(steps)
    }
}

#[pymethods]
impl PyWorkflowResult {
    /// A result as runs give them (what unpickling builds): the output,
    /// the `StepReport`s, the seconds the run took, when it started
    /// (seconds since the epoch), the worker that ran it and its workflow.
    #[new]
    #[pyo3(
        signature = (output, steps, duration, started_at=0.0, worker=String::new(), workflow=None),
        text_signature = "(output, steps, duration, started_at=0.0, worker='', workflow=None)"
    )]
    fn __new__(
        py: Python<'_>,
        output: Py<PyAny>,
        steps: Vec<Py<PyStepReport>>,
        duration: f64,
        started_at: f64,
        worker: String,
        workflow: Option<PyRef<'_, PyWorkflow>>,
    ) -> PyResult<Self> {
        let layout = Layout::new(workflow.map(|w| w.inner.clone()));
        let worker = layout.intern(&worker);
        let out = Self::from_rows(
            output,
            duration,
            started_at,
            worker,
            &layout,
            Vec::new(),
            None,
        );
        let _ = out.steps.set(py, PyList::new(py, steps)?.unbind());
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, pyo3::types::PyType>,
        (
            Py<PyAny>,
            Bound<'py, PyList>,
            f64,
            f64,
            String,
            Option<PyWorkflow>,
        ),
    )> {
        let py = slf.py();
        let r = slf.get();
        // A copy of the list: the result's own list can be changed in place.
        let steps = PyList::new(py, r.steps_list(py)?.iter())?;
        Ok((
            slf.get_type(),
            (
                r.output.clone_ref(py),
                steps,
                r.duration,
                r.started_at,
                r.layout.text(r.worker),
                r.layout.workflow.clone().map(|inner| PyWorkflow { inner }),
            ),
        ))
    }

    /// When the run started, in seconds since the epoch.
    #[getter]
    fn started_at(&self) -> f64 {
        self.started_at
    }

    /// `pid:thread` of the thread that ran it: in a batch, which worker
    /// took which input (`module_registry.timeline` draws one lane each).
    #[getter]
    fn worker(&self) -> String {
        self.layout.text(self.worker)
    }

    /// The workflow that ran (a copy), or None for a result built by hand.
    #[getter]
    fn workflow(&self) -> Option<PyWorkflow> {
        self.layout
            .workflow
            .clone()
            .map(|inner| PyWorkflow { inner })
    }

    /// The run drawn as SVG: the workflow with each step coloured by its
    /// outcome (ok, failed, skipped, fell back, cached), its attempts and
    /// duration written on it, and its error on hover.
    fn to_svg(&self, py: Python<'_>) -> PyResult<String> {
        let runs = self
            .steps_list(py)?
            .iter()
            .map(|item| Ok(item.cast::<PyStepReport>()?.get().to_run()))
            .collect::<PyResult<Vec<_>>>()?;
        use crate::threads::Detach;
        let workflow = self.layout.workflow.as_deref();
        py.detach_gated(|| module_registry::workflow::run_svg(workflow, &runs))
            .map_err(crate::errors::to_pyerr)
    }

    /// A timeline of the run (a notebook shows it as a picture): one bar per
    /// step from its start to its end, one lane per step running at once.
    fn timeline(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(crate::hooks::hook(py, crate::hooks::Hook::Display)?
            .call_method1("run_timeline", (slf,))?
            .unbind())
    }

    /// Same output (by `==`), same reports, same duration.
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<Self>() else {
            return Ok(false);
        };
        let o = other.get();
        Ok(self.duration.to_bits() == o.duration.to_bits()
            && self.output.bind(py).eq(o.output.bind(py))?
            && self.steps_list(py)?.eq(o.steps_list(py)?)?)
    }

    /// The output step's output.
    #[getter]
    fn output(&self, py: Python<'_>) -> Py<PyAny> {
        self.output.clone_ref(py)
    }

    /// One StepReport per step, in definition order.
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        Ok(self.steps_list(py)?.clone().unbind())
    }

    /// Every step's output, by step id (a new dict each time), in the
    /// order the steps started: the steps that produced one (status "ok"
    /// or "fallback", a cache hit included); skipped steps and steps that
    /// did not run are left out.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let mut produced: Vec<(f64, usize, Bound<'py, PyStepReport>)> = Vec::new();
        for (i, item) in self.steps_list(py)?.iter().enumerate() {
            let report = item.cast_into::<PyStepReport>()?;
            if report.get().produced() {
                produced.push((report.get().start, i, report));
            }
        }
        produced.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let out = pyo3::types::PyDict::new(py);
        for (_, _, report) in produced {
            let r = report.get();
            out.set_item(&r.id, r.output.bind(py))?;
        }
        Ok(out)
    }

    /// Seconds the run took.
    #[getter]
    fn duration(&self) -> f64 {
        self.duration
    }

    /// The report of step `id`, or None.
    fn step(&self, py: Python<'_>, id: &str) -> PyResult<Option<Py<PyStepReport>>> {
        for item in self.steps_list(py)?.iter() {
            let report = item.cast_into::<PyStepReport>()?;
            if report.get().id == id {
                return Ok(Some(report.unbind()));
            }
        }
        Ok(None)
    }

    /// The run's picture above its table of steps.
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        display(slf.py(), "result_html", slf.as_any())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "WorkflowResult(output={}, steps={}, duration={:.6})",
            self.output.bind(py).repr()?,
            self.steps
                .get(py)
                .map_or(self.rows.as_slice().len(), |s| s.bind(py).len()),
            self.duration
        ))
    }
}
