//! The registry's step cache for Python: `set_cache`, `cache_stats`,
//! `clear_cache`.

use module_registry::CacheSettings;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_pyerr;
use crate::registry::PyModuleRegistry;
use crate::threads::Detach;

#[pymethods]
impl PyModuleRegistry {
    /// Give the registry a step cache (replacing any it had): up to
    /// `memory_items` outputs in memory and, with `path`, a folder for a
    /// cache on disk that survives the process and that processes share,
    /// holding at most `max_bytes`. Steps marked `cache=True` use it.
    #[pyo3(signature = (memory_items=10_000, path=None, max_bytes=None))]
    fn set_cache(
        &self,
        py: Python<'_>,
        memory_items: usize,
        path: Option<std::path::PathBuf>,
        max_bytes: Option<u64>,
    ) -> PyResult<()> {
        let settings = CacheSettings {
            memory_items,
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
