//! The registry's step cache for Python: `set_cache`, `cache_stats`,
//! `clear_cache`.

use module_registry::CacheSettings;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_pyerr;
use crate::registry::PyModuleRegistry;

#[pymethods]
impl PyModuleRegistry {
    /// Give the registry a step cache holding up to `memory_items`
    /// outputs (replacing any it had). Steps marked `cache=True` use it.
    #[pyo3(signature = (memory_items=10_000))]
    fn set_cache(&self, memory_items: usize) -> PyResult<()> {
        self.inner
            .set_cache(CacheSettings { memory_items })
            .map_err(to_pyerr)
    }

    /// The cache's counters: `hits`, `misses`, `unhashable`, `entries`
    /// (all 0 without a cache), and `enabled`.
    fn cache_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.inner.cache_stats();
        let d = PyDict::new(py);
        let s = stats.unwrap_or_default();
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("unhashable", s.unhashable)?;
        d.set_item("entries", s.entries)?;
        d.set_item("enabled", stats.is_some())?;
        Ok(d)
    }

    /// Empty the cache and reset its counters.
    fn clear_cache(&self) -> PyResult<()> {
        self.inner.clear_cache().map_err(to_pyerr)
    }
}
