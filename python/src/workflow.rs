//! `Workflow`, `WorkflowResult` and `StepReport` for Python.

use std::sync::Arc;

use std::path::PathBuf;

use module_registry::{OnError, Value, Workflow, WorkflowStep};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::extract_strings;
use crate::conversion::{py_to_value, value_to_py};
use crate::errors::to_pyerr;
use crate::registry::PyModuleRegistry;
pub use crate::result::PyWorkflowResult;
use crate::threads::Detach;

/// A workflow: a named DAG of steps. `step(...)` and `then(...)` add a step
/// and return the workflow, so calls chain.
#[pyclass(name = "Workflow", module = "module_registry._core", eq)]
#[derive(Clone, PartialEq)]
pub struct PyWorkflow {
    /// Shared with the runs and results of it: changed in place only
    /// while nothing else holds it (`Arc::make_mut`).
    pub inner: Arc<Workflow>,
}

/// The id `then(module)` gives a step: the module's name, or numbered
/// (`name-2`, `name-3`, ...) past the highest number already taken. One
/// pass over the steps (a chain of 10,000 `then`s of one module is not
/// cubic).
fn next_id(wf: &Workflow, module: &str) -> String {
    let mut taken = false;
    let mut highest = 1u64;
    for step in &wf.steps {
        let Some(rest) = step.id.strip_prefix(module) else {
            continue;
        };
        if rest.is_empty() {
            taken = true;
        } else if let Some(n) = rest.strip_prefix('-').and_then(|n| n.parse::<u64>().ok()) {
            highest = highest.max(n);
        }
    }
    if !taken && highest == 1 {
        module.to_string()
    } else {
        format!("{module}-{}", highest.saturating_add(1))
    }
}

#[pymethods]
impl PyWorkflow {
    /// The name `edges()` gives the workflow's own input (never a step id).
    #[classattr]
    const INPUT: &'static str = Workflow::INPUT;

    /// The name `edges()` gives the workflow's own output (never a step id).
    #[classattr]
    const OUTPUT: &'static str = Workflow::OUTPUT;

    #[new]
    #[pyo3(signature = (name, output=None))]
    fn new(name: String, output: Option<String>) -> Self {
        let mut inner = Workflow::new(name);
        inner.output = output;
        PyWorkflow {
            inner: Arc::new(inner),
        }
    }

    /// Add a step. Give `module` (a name) or `capabilities` (the registry
    /// picks the highest-version module having all of them). `after`: None
    /// means the previous step, [] the workflow input, one id its output, two
    /// or more a dict from id to output. Returns the workflow.
    #[pyo3(signature = (id, module=None, *, capabilities=None, version=None, after=None, config=None, retries=0, timeout_ms=None, on_error="fail", fallback=None, cache=false, pool=None, dependency_configs=None, validate=false))]
    #[allow(clippy::too_many_arguments)]
    fn step<'py>(
        mut slf: PyRefMut<'py, Self>,
        id: String,
        module: Option<String>,
        capabilities: Option<&Bound<'py, PyAny>>,
        version: Option<String>,
        after: Option<&Bound<'py, PyAny>>,
        config: Option<&Bound<'py, PyAny>>,
        retries: u32,
        timeout_ms: Option<u64>,
        on_error: &str,
        fallback: Option<String>,
        cache: bool,
        pool: Option<u32>,
        dependency_configs: Option<&Bound<'py, PyDict>>,
        validate: bool,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let step = WorkflowStep {
            id,
            module,
            capabilities: capabilities
                .map(|c| extract_strings(c, "capabilities"))
                .transpose()?,
            version,
            after: after.map(|a| extract_strings(a, "after")).transpose()?,
            config: config
                .filter(|c| !c.is_none())
                .map(py_to_value)
                .transpose()?,
            retries,
            timeout_ms,
            on_error: on_error.parse::<OnError>().map_err(PyValueError::new_err)?,
            fallback,
            cache,
            pool,
            dependency_configs: crate::conversion::dependency_configs(dependency_configs)?
                .into_iter()
                .collect(),
            validate,
        };
        Arc::make_mut(&mut slf.inner).add_step(step);
        Ok(slf)
    }

    /// Append `module` after the last step (its id is the module's name,
    /// numbered if it repeats). Returns the workflow.
    #[pyo3(signature = (module, *, id=None, version=None, config=None, retries=0, timeout_ms=None, on_error="fail", fallback=None, cache=false, pool=None, dependency_configs=None, validate=false))]
    #[allow(clippy::too_many_arguments)]
    fn then<'py>(
        slf: PyRefMut<'py, Self>,
        module: String,
        id: Option<String>,
        version: Option<String>,
        config: Option<&Bound<'py, PyAny>>,
        retries: u32,
        timeout_ms: Option<u64>,
        on_error: &str,
        fallback: Option<String>,
        cache: bool,
        pool: Option<u32>,
        dependency_configs: Option<&Bound<'py, PyDict>>,
        validate: bool,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let id = id.unwrap_or_else(|| next_id(&slf.inner, &module));
        Self::step(
            slf,
            id,
            Some(module),
            None,
            version,
            None,
            config,
            retries,
            timeout_ms,
            on_error,
            fallback,
            cache,
            pool,
            dependency_configs,
            validate,
        )
    }

    /// Declare the type of the workflow's input (a Schema or a type
    /// expression; None: any): the steps taking it are checked against it
    /// before anything runs. Returns the workflow.
    #[pyo3(signature = (schema))]
    fn input<'py>(
        mut slf: PyRefMut<'py, Self>,
        schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let input = schema
            .filter(|s| !s.is_none())
            .map(crate::schema::PySchema::from_arg)
            .transpose()?;
        Arc::make_mut(&mut slf.inner).input = input;
        Ok(slf)
    }

    /// The declared type of the workflow's input (None: any).
    #[getter]
    fn input_type(&self) -> Option<crate::schema::PySchema> {
        self.inner
            .input
            .clone()
            .map(|inner| crate::schema::PySchema { inner })
    }

    /// The workflow's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// The step whose output is the result (None: the final step, the one no
    /// step reads; with several final steps, a dict from each id to its output).
    #[getter]
    fn get_output(&self) -> Option<String> {
        self.inner.output.clone()
    }

    #[setter]
    fn set_output(&mut self, output: Option<String>) {
        Arc::make_mut(&mut self.inner).output = output;
    }

    /// The step ids, in order.
    #[getter]
    fn step_ids(&self) -> Vec<String> {
        self.inner.steps.iter().map(|s| s.id.clone()).collect()
    }

    fn __len__(&self) -> usize {
        self.inner.steps.len()
    }

    /// Load a TOML or JSON workflow file (by its extension).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(PyWorkflow {
            inner: Arc::new(Workflow::load(path).map_err(to_pyerr)?),
        })
    }

    /// Save as TOML or JSON (by the file's extension).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.inner.save(path).map_err(to_pyerr)
    }

    /// The file form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let json = serde_json::to_value(&*self.inner).map_err(|e| to_pyerr(e.into()))?;
        value_to_py(py, Value::from_json(json))
    }

    /// A workflow from the dict form (the file form's keys).
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let json = py_to_value(data)?.to_json().map_err(to_pyerr)?;
        let inner: Workflow = serde_json::from_value(json).map_err(|e| {
            to_pyerr(module_registry::Error::Serialization {
                message: format!("invalid workflow: {e}"),
            })
        })?;
        Ok(PyWorkflow {
            inner: Arc::new(inner),
        })
    }

    /// The TOML form.
    fn to_toml(&self) -> PyResult<String> {
        self.inner.to_toml().map_err(to_pyerr)
    }

    /// The JSON form.
    fn to_json(&self) -> PyResult<String> {
        self.inner.to_json().map_err(to_pyerr)
    }

    /// The edges as `(from, to)` pairs: `Workflow.INPUT` (`"(input)"`), step
    /// ids and `Workflow.OUTPUT` (`"(output)"`); every final step has an edge
    /// to the output.
    fn edges(&self) -> PyResult<Vec<(String, String)>> {
        self.inner.edges().map_err(to_pyerr)
    }

    /// A Mermaid flowchart.
    fn to_mermaid(&self) -> PyResult<String> {
        self.inner.to_mermaid().map_err(to_pyerr)
    }

    /// A Graphviz DOT digraph.
    fn to_dot(&self) -> PyResult<String> {
        self.inner.to_dot().map_err(to_pyerr)
    }

    /// An SVG picture (laid out without any system binary). With
    /// `types=True`, each edge is labelled with the type that flows along
    /// it among `registry`'s modules (the workflow is checked against it
    /// first). Laying out a big workflow takes a while: other Python
    /// threads run meanwhile.
    #[pyo3(signature = (types=false, registry=None))]
    fn to_svg(
        &self,
        py: Python<'_>,
        types: bool,
        registry: Option<PyRef<'_, PyModuleRegistry>>,
    ) -> PyResult<String> {
        match (types, registry) {
            (false, _) => py.detach_gated(|| self.inner.to_svg()).map_err(to_pyerr),
            (true, Some(registry)) => {
                let registry = registry.inner.clone();
                py.detach_gated(|| self.inner.to_svg_typed(&registry))
                    .map_err(to_pyerr)
            }
            (true, None) => Err(PyValueError::new_err(
                "to_svg(types=True) labels edges with the types of a registry's modules: \
                 give it, as in workflow.to_svg(types=True, registry=registry)",
            )),
        }
    }

    fn _repr_svg_(&self, py: Python<'_>) -> PyResult<String> {
        self.to_svg(py, false, None)
    }

    /// Pickled as its name (for the constructor) and its JSON form.
    fn __getnewargs__(&self) -> (String,) {
        (self.inner.name.clone(),)
    }

    fn __getstate__(&self) -> PyResult<String> {
        self.inner.to_json().map_err(to_pyerr)
    }

    fn __setstate__(&mut self, state: &str) -> PyResult<()> {
        self.inner = Arc::new(serde_json::from_str(state).map_err(|e| {
            to_pyerr(module_registry::Error::Serialization {
                message: format!("invalid pickled workflow: {e}"),
            })
        })?);
        Ok(())
    }

    fn __repr__(&self) -> String {
        let steps: Vec<String> = self
            .inner
            .steps
            .iter()
            .map(|s| format!("{}:{}", s.id, s.target()))
            .collect();
        format!(
            "Workflow({:?}, steps=[{}])",
            self.inner.name,
            steps.join(", ")
        )
    }
}

#[pymethods]
impl PyModuleRegistry {
    /// Run `modules` one after the other, each output feeding the next.
    fn orchestrate<'py>(
        &self,
        py: Python<'py>,
        modules: &Bound<'py, PyAny>,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let names = extract_strings(modules, "modules")?;
        let chain = names.into_iter().fold(
            module_registry::WorkflowOrchestration::new("python"),
            |c, n| c.step(n),
        );
        let input = py_to_value(input)?;
        let out = py
            .detach_gated(|| self.inner.orchestrate(&chain, input))
            .map_err(to_pyerr)?;
        value_to_py(py, out)
    }

    /// Check a workflow against the registry without running it.
    fn check_workflow(&self, workflow: PyRef<'_, PyWorkflow>) -> PyResult<()> {
        self.inner.check_workflow(&workflow.inner).map_err(to_pyerr)
    }

    /// Run a workflow on `input`; returns a WorkflowResult. A failed run
    /// raises WorkflowError naming the step, with the module's error as `__cause__`.
    #[pyo3(signature = (workflow, input=None))]
    fn run_workflow(
        &self,
        py: Python<'_>,
        workflow: PyRef<'_, PyWorkflow>,
        input: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyWorkflowResult> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let input = input.map(py_to_value).transpose()?.unwrap_or(Value::Null);
        let result = py
            .detach_gated(|| self.inner.run_workflow(&wf, input))
            .map_err(to_pyerr)?;
        PyWorkflowResult::of(py, result, &wf)
    }

    /// Run a workflow on each input (one set of instances for the batch),
    /// in input order: a `WorkflowResult` per input, or for a failed input
    /// its `WorkflowError` (with `index`: its position, counted from
    /// `first_index`), where the list ends unless `keep_going`.
    /// `on_progress(done, total)` is called after each input.
    #[pyo3(signature = (workflow, inputs, on_progress=None, keep_going=false, first_index=0))]
    fn _run_workflow_batch(
        &self,
        py: Python<'_>,
        workflow: PyRef<'_, PyWorkflow>,
        inputs: &Bound<'_, PyAny>,
        on_progress: Option<Py<PyAny>>,
        keep_going: bool,
        first_index: usize,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let values = batch_inputs(inputs)?;
        let outcomes = py
            .detach_gated(|| {
                self.inner
                    .run_workflow_each(&wf, values, keep_going, |done, total| {
                        if let Some(cb) = &on_progress {
                            let _ = crate::threads::try_attach(|py| {
                                if let Err(e) = cb.call1(py, (done, total)) {
                                    e.write_unraisable(py, None);
                                }
                            });
                        }
                    })
            })
            .map_err(to_pyerr)?;
        outcomes_to_py(py, outcomes, first_index, &wf)
    }

    /// A workflow chaining `modules`, each step taking the previous output.
    #[pyo3(signature = (*modules))]
    fn pipeline(&self, modules: Vec<String>) -> PyWorkflow {
        PyWorkflow {
            inner: Arc::new(self.inner.pipeline(modules)),
        }
    }
}

/// A batch's outcomes for Python: each a `WorkflowResult`, or the input's
/// `WorkflowError` with its `index` (counted from `first_index`).
pub(crate) fn outcomes_to_py(
    py: Python<'_>,
    outcomes: Vec<module_registry::Result<module_registry::WorkflowResult>>,
    first_index: usize,
    workflow: &Arc<Workflow>,
) -> PyResult<Vec<Py<PyAny>>> {
    // One layout for the batch: its results share the workflow and texts.
    let layout = crate::batch::Layout::new(Some(Arc::clone(workflow)));
    let mut out = Vec::with_capacity(outcomes.len());
    for (n, outcome) in outcomes.into_iter().enumerate() {
        let index = first_index + n;
        out.push(match outcome {
            Ok(result) => Py::new(py, PyWorkflowResult::packed(py, result, &layout)?)?.into_any(),
            Err(error) => {
                let exc = to_pyerr(error.at_input(index)).into_value(py);
                exc.bind(py).setattr("index", index)?;
                exc.into_any()
            }
        });
    }
    Ok(out)
}

/// A batch's inputs (any iterable) as values.
pub(crate) fn batch_inputs(inputs: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    inputs.try_iter()?.map(|i| py_to_value(&i?)).collect()
}
