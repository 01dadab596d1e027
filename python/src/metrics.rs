//! The registry's metrics for Python: `metrics`, `metrics_text`,
//! `set_metrics`, and what a batch's workers hand back to the driver.

use module_registry::metrics::{MetricsSnapshot, SampleValue, BUCKET_BOUNDS_SECONDS};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::to_pyerr;
use crate::registry::PyModuleRegistry;
use crate::threads::Detach;

/// `{name: {"type", "help", "samples": [...]}}`: a counter's or gauge's
/// sample is `{"labels": {...}, "value": n}`; a histogram's is `{"labels",
/// "buckets": [(upper_bound, cumulative_count), ...] (the last bound
/// `inf`), "sum", "count"}`.
fn snapshot_dict<'py>(py: Python<'py>, snapshot: &MetricsSnapshot) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for family in &snapshot.families {
        let samples = PyList::empty(py);
        for sample in &family.samples {
            let s = PyDict::new(py);
            let labels = PyDict::new(py);
            for (name, value) in &sample.labels {
                labels.set_item(name, value)?;
            }
            s.set_item("labels", labels)?;
            match &sample.value {
                SampleValue::Count(n) => s.set_item("value", n)?,
                SampleValue::Histogram(h) => {
                    let mut cumulative = 0u64;
                    let buckets = PyList::empty(py);
                    for (i, c) in h.buckets.iter().enumerate() {
                        cumulative += c;
                        let bound = BUCKET_BOUNDS_SECONDS
                            .get(i)
                            .copied()
                            .unwrap_or(f64::INFINITY);
                        buckets.append((bound, cumulative))?;
                    }
                    s.set_item("buckets", buckets)?;
                    s.set_item("sum", h.sum)?;
                    s.set_item("count", cumulative)?;
                }
            }
            samples.append(s)?;
        }
        let f = PyDict::new(py);
        f.set_item("type", family.kind.as_str())?;
        f.set_item("help", &family.help)?;
        f.set_item("samples", samples)?;
        out.set_item(&family.name, f)?;
    }
    Ok(out)
}

/// A module name's `(name, calls, failures, median_seconds)`.
type CallRow = (String, u64, u64, Option<f64>);

#[pymethods]
impl PyModuleRegistry {
    /// What the registry counted, by metric name: module calls, workflow
    /// runs and steps, the step cache, pools, watchers, denials and the
    /// registrations by kind. Each metric is ``{"type", "help",
    /// "samples"}``; a sample is ``{"labels": {...}, "value": n}``, a
    /// histogram's ``{"labels", "buckets": [(upper_bound, cumulative), ...],
    /// "sum", "count"}``. Through a view, needs ``admin`` on ``*``.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snapshot = py.detach_gated(|| self.inner.metrics()).map_err(to_pyerr)?;
        snapshot_dict(py, &snapshot)
    }

    /// The metrics in the Prometheus text format (version 0.0.4), as a
    /// ``/metrics`` endpoint serves them. Through a view, needs ``admin`` on ``*``.
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        py.detach_gated(|| self.inner.metrics().map(|m| m.to_prometheus()))
            .map_err(to_pyerr)
    }

    /// Turn counting off (``False``) or back on (``True``); what was counted
    /// is kept. Through a view, needs ``admin`` on ``*``.
    fn set_metrics(&self, enabled: &Bound<'_, PyAny>) -> PyResult<()> {
        if !enabled.is_instance_of::<pyo3::types::PyBool>() {
            return Err(to_pyerr(module_registry::Error::invalid_input(format!(
                "set_metrics takes True or False, not {}",
                enabled.repr().map_or_else(
                    |_| "?".into(),
                    |r| r.to_string().chars().take(80).collect::<String>()
                )
            ))));
        }
        self.inner
            .set_metrics(enabled.is_truthy()?)
            .map_err(to_pyerr)
    }

    /// Per module name (its versions together) that was called:
    /// ``(calls, failures, median_seconds or None)``, for the notebook table.
    fn _calls_by_module(&self, py: Python<'_>) -> PyResult<Vec<CallRow>> {
        let snapshot = py.detach_gated(|| self.inner.metrics()).map_err(to_pyerr)?;
        Ok(snapshot
            .calls_by_module()
            .into_iter()
            .map(|(name, s)| (name, s.calls, s.failures, s.median_seconds))
            .collect())
    }

    /// What this registry counted since the last call, as JSON: what a
    /// batch's worker sends back with each chunk.
    fn _take_metrics_delta(&self) -> PyResult<String> {
        let delta = self.inner.take_metrics_delta().map_err(to_pyerr)?;
        serde_json::to_string(&delta).map_err(|e| {
            to_pyerr(module_registry::Error::invalid_input(format!(
                "metrics: {e}"
            )))
        })
    }

    /// Add counts a batch's workers made (JSON from `_take_metrics_delta`)
    /// to this registry's metrics and its cache's counters.
    fn _merge_worker_metrics(&self, counts: &str) -> PyResult<()> {
        let snapshot: MetricsSnapshot = serde_json::from_str(counts).map_err(|e| {
            to_pyerr(module_registry::Error::invalid_input(format!(
                "metrics from a worker: {e}"
            )))
        })?;
        self.inner.merge_worker_metrics(&snapshot).map_err(to_pyerr)
    }
}
