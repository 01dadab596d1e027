//! Streaming batches and chunk payloads for Python.
//!
//! `_start_workflow_batch` gives a `_Batch`: the core's `WorkflowBatch`
//! (planned once, one set of instances) that `_batch.py` hands a window of
//! inputs at a time. Its results share one `Layout` (the workflow and every
//! text of their reports, each kept once), so a kept result is its output
//! and a packed row per step.
//!
//! On an executor a chunk's outcomes travel as one payload
//! (`_run_workflow_chunk`): a dict of named fields (`outputs`, `table`,
//! `texts`, `errors`, `step_outputs`; the package adds the worker's
//! `metrics` delta; others may be added beside them) whose `table`
//! packs each run's times, worker and step reports; `_ResultLayout.unpack`
//! turns it into results where it is read.

use std::sync::Arc;

use module_registry::workflow::{StepText, WorkflowBatch};
use module_registry::{Value, Workflow, WorkflowResult};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::conversion::{py_to_value, value_to_py};
use crate::errors::{to_pyerr, ValidationError};
use crate::registry::PyModuleRegistry;
use crate::result::PyWorkflowResult;
use crate::threads::Detach;
use crate::workflow::{batch_inputs, PyWorkflow};

/// A row's text index meaning "none" (a step without an error).
pub(crate) const NO_TEXT: u32 = u32::MAX;

/// One step's report, packed: times, attempts, how it ended, and its texts
/// as indices into the batch's `Layout`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Row {
    pub start: f64,
    pub duration: f64,
    pub attempts: u32,
    pub id: u32,
    pub module: u32,
    pub version: u32,
    pub error: u32,
    pub status: u8,
    pub cache: u8,
}

/// A result's packed reports: one row inline (a one-step workflow's, the
/// common case: no allocation of its own), several in one allocation.
pub(crate) enum Rows {
    One(Row),
    Many(Box<[Row]>),
}

impl Rows {
    pub fn new(rows: Vec<Row>) -> Self {
        if rows.len() == 1 {
            Rows::One(rows[0])
        } else {
            Rows::Many(rows.into_boxed_slice())
        }
    }

    pub fn as_slice(&self) -> &[Row] {
        match self {
            Rows::One(row) => std::slice::from_ref(row),
            Rows::Many(rows) => rows,
        }
    }
}

/// Each step's output, for a result of several steps (behind one thin
/// pointer: a one-step result has none, its output is the result's).
pub(crate) struct StepOutputs(pub Box<[Py<PyAny>]>);

/// Bytes of one packed row in a payload's table.
const ROW_BYTES: usize = 8 + 8 + 4 * 5 + 2;
/// Bytes of one run's header in a payload's table: started at, duration,
/// worker, step count.
const RUN_BYTES: usize = 8 + 8 + 4 + 4;

/// The texts of a `Layout`, in order, each one's index, and their bytes.
#[derive(Default)]
pub(crate) struct Texts {
    list: Vec<Arc<str>>,
    index: hashbrown::HashMap<Arc<str>, u32>,
    bytes: usize,
    /// The report texts met last at each place of a result (step, field),
    /// each with its index: a batch's results name the same plan's texts,
    /// found by a pointer comparison instead of a lookup.
    last: Vec<Option<(StepText, u32)>>,
    /// The worker met last, as core names it, and its index.
    last_worker: Option<(String, u32)>,
}

impl Texts {
    /// The index of `text`, a report's text at `place` (a step's field).
    pub fn intern_at(&mut self, place: usize, text: &StepText) -> u32 {
        if let Some(Some((met, i))) = self.last.get(place) {
            if met.same(text) {
                return *i;
            }
        }
        let i = self.intern(text);
        if self.last.len() <= place {
            self.last.resize(place + 1, None);
        }
        self.last[place] = Some((text.clone(), i));
        i
    }

    /// The index of the worker core names `worker` (`pid:worker`).
    pub fn intern_worker(&mut self, worker: &str) -> u32 {
        if let Some((met, i)) = &self.last_worker {
            if met == worker {
                return *i;
            }
        }
        let i = self.intern(&format!("{}:{worker}", std::process::id()));
        self.last_worker = Some((worker.to_string(), i));
        i
    }

    /// The index of `text` (added if new).
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = u32::try_from(self.list.len()).unwrap_or(NO_TEXT - 1);
        let shared: Arc<str> = Arc::from(text);
        self.list.push(shared.clone());
        self.index.insert(shared, i);
        self.bytes += text.len();
        i
    }
}

/// How many texts, and how many bytes of them, the table shared by single
/// runs' results ([`Layout::for_run`]) holds before a fresh one starts.
const SHARED_TEXTS: usize = 4096;
const SHARED_TEXT_BYTES: usize = 1 << 20;

/// What the results of one batch share: the workflow and the texts of
/// their reports (step ids, modules, versions, workers, errors), each once.
pub(crate) struct Layout {
    pub workflow: Option<Arc<Workflow>>,
    texts: Arc<Mutex<Texts>>,
}

impl Layout {
    pub fn new(workflow: Option<Arc<Workflow>>) -> Arc<Self> {
        Arc::new(Layout {
            workflow,
            texts: Arc::default(),
        })
    }

    /// The layout of one run's result: its texts go in a table shared with
    /// earlier runs' results (the same step ids, modules, versions and
    /// workers run after run, so a run adds none and allocates none), until
    /// the table holds [`SHARED_TEXTS`] texts or [`SHARED_TEXT_BYTES`]
    /// bytes; then a fresh one starts (results keep theirs).
    pub fn for_run(workflow: Option<Arc<Workflow>>) -> Arc<Self> {
        static SHARED: Mutex<Option<Arc<Mutex<Texts>>>> = Mutex::new(None);
        let mut shared = SHARED.lock();
        let texts = match &*shared {
            Some(texts)
                if {
                    let t = texts.lock();
                    t.list.len() < SHARED_TEXTS && t.bytes < SHARED_TEXT_BYTES
                } =>
            {
                texts.clone()
            }
            _ => shared.insert(Arc::default()).clone(),
        };
        Arc::new(Layout { workflow, texts })
    }

    /// The index of `text` (added if new).
    pub fn intern(&self, text: &str) -> u32 {
        self.texts.lock().intern(text)
    }

    /// The texts, locked: for interning many at once.
    pub fn texts(&self) -> parking_lot::MutexGuard<'_, Texts> {
        self.texts.lock()
    }

    /// The text at `i` ("" past the end).
    pub fn text(&self, i: u32) -> String {
        self.texts
            .lock()
            .list
            .get(i as usize)
            .map_or_else(String::new, |t| t.to_string())
    }

    fn len(&self) -> usize {
        self.texts.lock().list.len()
    }
}

/// A batch under way in this process (see the module's doc).
#[pyclass(name = "_Batch", module = "module_registry._core", frozen)]
pub struct PyBatch {
    inner: Mutex<Option<WorkflowBatch>>,
    layout: Arc<Layout>,
}

#[pymethods]
impl PyBatch {
    /// How many inputs run at once (a step's pool width; 1 without).
    #[getter]
    fn width(&self) -> usize {
        self.inner.lock().as_ref().map_or(1, WorkflowBatch::width)
    }

    /// Whether the batch has stopped (a failure without `keep_going`, an
    /// interruption, `close`): `run` then runs nothing.
    #[getter]
    fn stopped(&self) -> bool {
        self.inner
            .lock()
            .as_ref()
            .is_none_or(WorkflowBatch::stopped)
    }

    /// Runs the workflow on each of `inputs` (numbered from `first_index`):
    /// a `WorkflowResult` per input, or a failed input's `WorkflowError`
    /// (with `index`), where the list ends unless `keep_going`.
    fn run(
        &self,
        py: Python<'_>,
        inputs: &Bound<'_, PyAny>,
        first_index: usize,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let values = batch_inputs(inputs)?;
        let outcomes = py
            .detach_gated(|| {
                let mut guard = self.inner.lock();
                match guard.as_mut() {
                    Some(batch) => batch.run(values, first_index, |_, _| {}),
                    None => Ok(Vec::new()),
                }
            })
            .map_err(to_pyerr)?;
        outcomes_in(py, outcomes, first_index, &self.layout)
    }

    /// Closes the batch's instances (once; dropping the batch does it too).
    fn close(&self, py: Python<'_>) {
        let batch = self.inner.lock().take();
        if let Some(mut batch) = batch {
            py.detach_gated(move || batch.finish());
        }
    }
}

/// A batch's outcomes for Python, sharing `layout`: each a `WorkflowResult`,
/// or the input's `WorkflowError` with its `index`.
pub(crate) fn outcomes_in(
    py: Python<'_>,
    outcomes: Vec<module_registry::Result<WorkflowResult>>,
    first_index: usize,
    layout: &Arc<Layout>,
) -> PyResult<Vec<Py<PyAny>>> {
    let mut out = Vec::with_capacity(outcomes.len());
    for (n, outcome) in outcomes.into_iter().enumerate() {
        out.push(match outcome {
            Ok(result) => Py::new(py, PyWorkflowResult::packed(py, result, layout)?)?.into_any(),
            Err(error) => error_at(py, error, first_index + n)?,
        });
    }
    Ok(out)
}

/// A failed input's error (its message already names the input: the
/// core's batch says it) with its `index`.
fn error_at(py: Python<'_>, error: module_registry::Error, index: usize) -> PyResult<Py<PyAny>> {
    let exc = to_pyerr(error).into_value(py);
    exc.bind(py).setattr("index", index)?;
    Ok(exc.into_any())
}

/// The results of one batch read from chunk payloads: one `Layout` for
/// them all.
#[pyclass(name = "_ResultLayout", module = "module_registry._core", frozen)]
pub struct PyResultLayout {
    layout: Arc<Layout>,
}

#[pymethods]
impl PyResultLayout {
    #[new]
    fn new(workflow: Option<PyRef<'_, PyWorkflow>>) -> Self {
        PyResultLayout {
            layout: Layout::new(workflow.map(|w| w.inner.clone())),
        }
    }

    /// How many texts its results share.
    #[getter]
    fn texts(&self) -> usize {
        self.layout.len()
    }

    /// A payload's outcomes, in order: a `WorkflowResult` for each run, the
    /// `errors` entry for each failed one. A payload that does not hold
    /// together is a `ValidationError`.
    fn unpack(&self, py: Python<'_>, payload: &Bound<'_, PyDict>) -> PyResult<Vec<Py<PyAny>>> {
        unpack(py, payload, &self.layout)
    }
}

fn field<'py>(payload: &Bound<'py, PyDict>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    payload.get_item(name)?.ok_or_else(|| {
        ValidationError::new_err(format!("a chunk payload lacks its {name:?} field"))
    })
}

/// Reads a payload's table, a field at a time.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        let end = self.at + N;
        let got = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| ValidationError::new_err("a chunk payload's table ends early"))?;
        self.at = end;
        Ok(got.try_into().unwrap_or([0; N]))
    }
    fn f64(&mut self) -> PyResult<f64> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> PyResult<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u8(&mut self) -> PyResult<u8> {
        Ok(self.take::<1>()?[0])
    }
}

fn unpack(
    py: Python<'_>,
    payload: &Bound<'_, PyDict>,
    layout: &Arc<Layout>,
) -> PyResult<Vec<Py<PyAny>>> {
    let outputs = field(payload, "outputs")?.cast_into::<PyList>()?;
    let table = field(payload, "table")?.cast_into::<PyBytes>()?;
    let texts: Vec<String> = field(payload, "texts")?.extract()?;
    let errors = field(payload, "errors")?.cast_into::<PyDict>()?;
    let step_outputs = field(payload, "step_outputs")?;
    let step_outputs = (!step_outputs.is_none())
        .then(|| step_outputs.cast_into::<PyList>())
        .transpose()?;
    let map: Vec<u32> = texts.iter().map(|t| layout.intern(t)).collect();
    let text = |i: u32| -> PyResult<u32> {
        if i == NO_TEXT {
            return Ok(NO_TEXT);
        }
        map.get(i as usize).copied().ok_or_else(|| {
            ValidationError::new_err("a chunk payload's table names a text it lacks")
        })
    };
    let mut reader = Reader {
        bytes: table.as_bytes(),
        at: 0,
    };
    let (mut out, mut next_output) = (Vec::with_capacity(outputs.len()), 0usize);
    for (n, output) in outputs.iter().enumerate() {
        if let Some(error) = errors.get_item(n)? {
            out.push(error.unbind());
            continue;
        }
        let (started_at, duration) = (reader.f64()?, reader.f64()?);
        let worker = text(reader.u32()?)?;
        let count = reader.u32()? as usize;
        if count > (reader.bytes.len() - reader.at) / ROW_BYTES {
            return Err(ValidationError::new_err(
                "a chunk payload's table ends early",
            ));
        }
        let mut rows = Vec::with_capacity(count);
        for _ in 0..count {
            rows.push(Row {
                start: reader.f64()?,
                duration: reader.f64()?,
                attempts: reader.u32()?,
                id: text(reader.u32()?)?,
                module: text(reader.u32()?)?,
                version: text(reader.u32()?)?,
                error: text(reader.u32()?)?,
                status: reader.u8()?,
                cache: reader.u8()?,
            });
        }
        // Every run's step outputs are in the list when any run has several
        // steps; a one-step run's output is the result's.
        let own = match &step_outputs {
            Some(all) => {
                let end = next_output + count;
                if end > all.len() {
                    return Err(ValidationError::new_err(
                        "a chunk payload lacks step outputs",
                    ));
                }
                let got = (next_output..end)
                    .map(|i| all.get_item(i).map(Bound::unbind))
                    .collect::<PyResult<Vec<_>>>()?;
                next_output = end;
                (count > 1).then_some(got)
            }
            None => None,
        };
        let result = PyWorkflowResult::from_rows(
            output.unbind(),
            duration,
            started_at,
            worker,
            layout,
            rows,
            own,
        );
        out.push(Py::new(py, result)?.into_any());
    }
    Ok(out)
}

/// A chunk's outcomes as one payload (see the module's doc): results are
/// packed from the core's runs, never built as Python objects here.
fn pack<'py>(
    py: Python<'py>,
    outcomes: Vec<module_registry::Result<WorkflowResult>>,
    first_index: usize,
) -> PyResult<Bound<'py, PyDict>> {
    // This chunk's own texts (not shared: no lock).
    let mut texts = Texts::default();
    let several = outcomes
        .iter()
        .any(|o| o.as_ref().is_ok_and(|r| r.steps.len() > 1));
    let (outputs, errors) = (PyList::empty(py), PyDict::new(py));
    let step_outputs = PyList::empty(py);
    let mut table = Vec::with_capacity(outcomes.len() * (RUN_BYTES + ROW_BYTES));
    for (n, outcome) in outcomes.into_iter().enumerate() {
        let result = match outcome {
            Ok(result) => result,
            Err(error) => {
                errors.set_item(n, error_at(py, error, first_index + n)?)?;
                outputs.append(py.None())?;
                continue;
            }
        };
        let worker = texts.intern_worker(&result.worker);
        let started_at = result
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        table.extend_from_slice(&started_at.to_le_bytes());
        table.extend_from_slice(&result.duration.as_secs_f64().to_le_bytes());
        table.extend_from_slice(&worker.to_le_bytes());
        table.extend_from_slice(&(result.steps.len() as u32).to_le_bytes());
        for (at, mut s) in result.steps.into_iter().enumerate() {
            let output = s.take_output();
            if several {
                step_outputs.append(match output {
                    Some(v) => value_to_py(py, v)?,
                    None => py.None().into_bound(py),
                })?;
            }
            table.extend_from_slice(&s.start.as_secs_f64().to_le_bytes());
            table.extend_from_slice(&s.duration.as_secs_f64().to_le_bytes());
            table.extend_from_slice(&s.attempts.to_le_bytes());
            for (field, t) in [&s.id, &s.module, &s.version].into_iter().enumerate() {
                table.extend_from_slice(&texts.intern_at(3 * at + field, t).to_le_bytes());
            }
            let error = s.error.as_deref().map_or(NO_TEXT, |e| texts.intern(e));
            table.extend_from_slice(&error.to_le_bytes());
            table.push(crate::result::status_code(s.status));
            table.push(crate::result::cache_code(s.cache));
        }
        outputs.append(value_to_py(py, result.output)?)?;
    }
    let texts: Vec<String> = texts.list.iter().map(|t| t.to_string()).collect();
    let payload = PyDict::new(py);
    payload.set_item("first_index", first_index)?;
    payload.set_item("outputs", outputs)?;
    payload.set_item("table", PyBytes::new(py, &table))?;
    payload.set_item("texts", texts)?;
    payload.set_item("errors", errors)?;
    payload.set_item(
        "step_outputs",
        if several {
            step_outputs.into_any()
        } else {
            py.None().into_bound(py)
        },
    )?;
    Ok(payload)
}

#[pymethods]
impl PyModuleRegistry {
    /// Starts a batch of `workflow` in this process (planned, instances
    /// built): a `_Batch` to hand windows of inputs to.
    #[pyo3(signature = (workflow, keep_going=false))]
    fn _start_workflow_batch(
        &self,
        py: Python<'_>,
        workflow: PyRef<'_, PyWorkflow>,
        keep_going: bool,
    ) -> PyResult<PyBatch> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let batch = py
            .detach_gated(|| self.inner.start_workflow_batch(&wf, keep_going, None))
            .map_err(to_pyerr)?;
        Ok(PyBatch {
            inner: Mutex::new(Some(batch)),
            layout: Layout::new(Some(wf)),
        })
    }

    /// One chunk on a worker: `workflow` on each of `inputs` (numbered from
    /// `first_index`), its outcomes as one payload (see the module's doc).
    #[pyo3(signature = (workflow, inputs, keep_going=false, first_index=0))]
    fn _run_workflow_chunk<'py>(
        &self,
        py: Python<'py>,
        workflow: PyRef<'_, PyWorkflow>,
        inputs: &Bound<'_, PyAny>,
        keep_going: bool,
        first_index: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let values: Vec<Value> = inputs
            .try_iter()?
            .map(|i| py_to_value(&i?))
            .collect::<PyResult<_>>()?;
        let outcomes = py
            .detach_gated(|| {
                let mut batch = self.inner.start_workflow_batch(&wf, keep_going, None)?;
                let out = batch.run(values, first_index, |_, _| {});
                batch.finish();
                out
            })
            .map_err(to_pyerr)?;
        pack(py, outcomes, first_index)
    }
}
