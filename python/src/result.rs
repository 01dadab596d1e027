//! `WorkflowResult` and `StepReport` for Python: what a run gives back.

use module_registry::{CacheStatus, StepStatus, WorkflowResult};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::conversion::value_to_py;

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
);

#[pymethods]
impl PyStepReport {
    /// A report as runs give them (what unpickling builds).
    #[new]
    #[pyo3(signature = (id, module, version, status, attempts, start, duration, error=None, cache="off"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: String,
        module: String,
        version: String,
        status: &str,
        attempts: u32,
        start: f64,
        duration: f64,
        error: Option<String>,
        cache: &str,
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
            ),
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Self>().is_ok_and(|o| {
            let o = o.get();
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

/// The output of a run and a report per step.
#[pyclass(name = "WorkflowResult", module = "module_registry._core", frozen)]
pub struct PyWorkflowResult {
    output: Py<PyAny>,
    steps: Py<PyList>,
    duration: f64,
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl PyWorkflowResult {
    pub fn new(py: Python<'_>, result: WorkflowResult) -> PyResult<Self> {
        let reports: Vec<PyStepReport> = result
            .steps
            .into_iter()
            .map(|s| PyStepReport {
                id: s.id,
                module: s.module,
                version: s.version,
                status: s.status.as_str(),
                attempts: s.attempts,
                start: s.start.as_secs_f64(),
                duration: s.duration.as_secs_f64(),
                error: s.error,
                cache: s.cache.as_str(),
            })
            .collect();
        let steps = PyList::empty(py);
        for r in reports {
            steps.append(Bound::new(py, r)?)?;
        }
        Ok(PyWorkflowResult {
            output: value_to_py(py, result.output)?.unbind(),
            steps: steps.unbind(),
            duration: result.duration.as_secs_f64(),
        })
    }
}

#[pymethods]
impl PyWorkflowResult {
    /// A result as runs give them (what unpickling builds): the output,
    /// the `StepReport`s and the seconds the run took.
    #[new]
    fn __new__(
        py: Python<'_>,
        output: Py<PyAny>,
        steps: Vec<Py<PyStepReport>>,
        duration: f64,
    ) -> PyResult<Self> {
        Ok(PyWorkflowResult {
            output,
            steps: PyList::new(py, steps)?.unbind(),
            duration,
        })
    }

    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, pyo3::types::PyType>,
        (Py<PyAny>, Bound<'py, PyList>, f64),
    )> {
        let py = slf.py();
        let r = slf.get();
        // A copy of the list: the result's own list can be changed in place.
        let steps = PyList::new(py, r.steps.bind(py).iter())?;
        Ok((slf.get_type(), (r.output.clone_ref(py), steps, r.duration)))
    }

    /// Same output (by `==`), same reports, same duration.
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<Self>() else {
            return Ok(false);
        };
        let o = other.get();
        Ok(self.duration.to_bits() == o.duration.to_bits()
            && self.output.bind(py).eq(o.output.bind(py))?
            && self.steps.bind(py).eq(o.steps.bind(py))?)
    }

    /// The output step's output.
    #[getter]
    fn output(&self, py: Python<'_>) -> Py<PyAny> {
        self.output.clone_ref(py)
    }

    /// One StepReport per step, in definition order.
    #[getter]
    fn steps(&self, py: Python<'_>) -> Py<PyList> {
        self.steps.clone_ref(py)
    }

    /// Seconds the run took.
    #[getter]
    fn duration(&self) -> f64 {
        self.duration
    }

    /// The report of step `id`, or None.
    fn step(&self, py: Python<'_>, id: &str) -> PyResult<Option<Py<PyStepReport>>> {
        for item in self.steps.bind(py).iter() {
            let report = item.cast_into::<PyStepReport>()?;
            if report.get().id == id {
                return Ok(Some(report.unbind()));
            }
        }
        Ok(None)
    }

    fn _repr_html_(&self, py: Python<'_>) -> PyResult<String> {
        let mut html = String::from(
            "<table><thead><tr><th>step</th><th>module</th><th>version</th><th>status</th><th>attempts</th><th>start (ms)</th><th>duration (ms)</th><th>error</th></tr></thead><tbody>",
        );
        for item in self.steps.bind(py).iter() {
            let r = item.cast_into::<PyStepReport>()?;
            let r = r.get();
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
                html_escape(&r.id),
                html_escape(&r.module),
                html_escape(&r.version),
                r.status,
                r.attempts,
                r.start * 1e3,
                r.duration * 1e3,
                html_escape(r.error.as_deref().unwrap_or(""))
            ));
        }
        html.push_str(&format!(
            "</tbody></table><p>output: <code>{}</code> in {:.3} ms</p>",
            html_escape(&self.output.bind(py).repr()?.to_string()),
            self.duration * 1e3
        ));
        Ok(html)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "WorkflowResult(output={}, steps={}, duration={:.6})",
            self.output.bind(py).repr()?,
            self.steps.bind(py).len(),
            self.duration
        ))
    }
}
