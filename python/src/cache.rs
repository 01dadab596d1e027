//! The registry's step cache for Python: `set_cache`, `cache_stats`,
//! `clear_cache`.

use module_registry::CacheSettings;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_pyerr;

/// A whole number from 0 to `max` (the core says which are too small),
/// else a `ValidationError` naming the argument and the bound.
fn count_argument(name: &str, value: &Bound<'_, PyAny>, max: u64) -> PyResult<u64> {
    let fail = || {
        to_pyerr(module_registry::Error::invalid_input(format!(
            "{name} must be a whole number from 1 to {max}, not {}",
            value.repr().map_or_else(
                |_| "?".into(),
                |r| r.to_string().chars().take(80).collect::<String>()
            )
        )))
    };
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(fail());
    }
    let number: i128 = value.extract().map_err(|_| fail())?;
    u64::try_from(number)
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(fail)
}
use crate::registry::PyModuleRegistry;
use crate::threads::Detach;

#[pymethods]
impl PyModuleRegistry {
    /// Give the registry a step cache (replacing any it had): up to
    /// `memory_items` outputs in memory and, with `path`, a folder for a
    /// cache on disk that survives the process and that processes share,
    /// holding at most `max_bytes`. Steps marked `cache=True` use it.
    /// Memory grows with what is kept: nothing is reserved ahead.
    #[pyo3(
        signature = (memory_items=None, path=None, max_bytes=None),
        text_signature = "($self, memory_items=10000, path=None, max_bytes=None)"
    )]
    fn set_cache(
        &self,
        py: Python<'_>,
        memory_items: Option<&Bound<'_, PyAny>>,
        path: Option<std::path::PathBuf>,
        max_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let memory_items = match memory_items {
            Some(items) => count_argument("memory_items", items, usize::MAX as u64)?,
            None => CacheSettings::default().memory_items as u64,
        };
        let max_bytes = max_bytes
            .filter(|b| !b.is_none())
            .map(|b| count_argument("max_bytes", b, u64::MAX))
            .transpose()?;
        let settings = CacheSettings {
            memory_items: memory_items as usize,
            path,
            max_bytes,
        };
        py.detach_gated(|| self.inner.set_cache(settings))
            .map_err(to_pyerr)
    }

    /// The cache's counters: `hits`, `misses`, `unhashable`, `entries`,
    /// `bytes` (on disk; all 0 without a cache), and `enabled`.
    fn cache_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.inner.cache_stats();
        let d = PyDict::new(py);
        let s = stats.unwrap_or_default();
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("unhashable", s.unhashable)?;
        d.set_item("entries", s.entries)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("enabled", stats.is_some())?;
        Ok(d)
    }

    /// `(memory_items, path, max_bytes)` as the cache was set, or None:
    /// what a pickled registry carries, so that workers on one machine
    /// share the folder.
    #[allow(clippy::type_complexity)]
    fn _cache_settings(&self) -> Option<(usize, Option<std::path::PathBuf>, Option<u64>)> {
        self.inner
            .cache_settings()
            .map(|s| (s.memory_items, s.path, s.max_bytes))
    }

    /// Empty the cache and reset its counters.
    fn clear_cache(&self) -> PyResult<()> {
        self.inner.clear_cache().map_err(to_pyerr)
    }
}
