//! `module_registry._core`: the Python extension. It converts and delegates;
//! every piece of registry logic lives in the `module-registry` crate.

/// Counts what script calls allocate, so that `ScriptLimits.max_memory` holds.
#[global_allocator]
static ALLOCATOR: module_registry::ScriptAllocator = module_registry::ScriptAllocator;

mod access;
mod aio;
mod audit;
mod batch;
mod cache;
mod config;
mod conversion;
mod deps;
mod distribution;
mod errors;
mod hooks;
mod info;
mod instance;
mod live;
mod manifest;
mod metrics;
mod modules;
mod query;
mod registry;
mod result;
mod schema;
mod script;
mod script_output;
mod threads;
mod workers;
mod workflow;

use pyo3::prelude::*;

/// The compiled core of the `module_registry` package.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<config::PyModuleType>()?;
    m.add_class::<config::PyModuleConfig>()?;
    m.add_class::<config::PyPluginConfig>()?;
    m.add_class::<query::PyCapabilityQuery>()?;
    m.add_class::<query::PyServiceDiscoveryQuery>()?;
    m.add_class::<query::PyPluginDiscoveryQuery>()?;
    m.add_class::<registry::PyModuleRegistry>()?;
    m.add_class::<info::PyModuleInfo>()?;
    m.add_class::<instance::PyModuleInstance>()?;
    m.add_class::<audit::PyAuditEvent>()?;
    m.add_class::<conversion::PyOpaqueValue>()?;
    m.add_class::<script::PyScriptLimits>()?;
    m.add_class::<script::PyScriptTests>()?;
    m.add_class::<schema::PySchema>()?;
    m.add_class::<workflow::PyWorkflow>()?;
    m.add_class::<result::PyWorkflowResult>()?;
    m.add_class::<result::PyStepReport>()?;
    m.add_class::<batch::PyBatch>()?;
    m.add_class::<batch::PyResultLayout>()?;
    m.add_function(wrap_pyfunction!(conversion::_roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(access::call_as, m)?)?;
    m.add_function(wrap_pyfunction!(access::check_principal, m)?)?;
    m.add_function(wrap_pyfunction!(access::_current_principal, m)?)?;
    m.add_function(wrap_pyfunction!(access::_as_owner, m)?)?;
    m.add_function(wrap_pyfunction!(info::_module_info, m)?)?;
    // Pickled records name it by reference; a second initialisation keeps the first.
    let _ = info::REBUILD.set(m.py(), m.getattr("_module_info")?.unbind());
    m.add_function(wrap_pyfunction!(hooks::_set_hooks, m)?)?;
    m.add_class::<distribution::PyPackageIndex>()?;
    m.add_class::<distribution::PyPackageInfo>()?;
    m.add_function(wrap_pyfunction!(distribution::_build_index, m)?)?;
    m.add_function(wrap_pyfunction!(distribution::_yank, m)?)?;
    m.add_function(wrap_pyfunction!(distribution::_keygen, m)?)?;
    m.add_function(wrap_pyfunction!(distribution::_sign, m)?)?;
    m.add_function(wrap_pyfunction!(distribution::_install_packages, m)?)?;
    m.add_function(wrap_pyfunction!(audit::read_audit_file, m)?)?;
    m.add_class::<access::PyAccessPolicy>()?;
    m.add_class::<live::PyInstancePool>()?;
    m.add_class::<live::PyScriptWatcher>()?;
    m.add_class::<live::PyReloadEvent>()?;
    m.add_class::<aio::_Pending>()?;
    m.add_class::<aio::_Completions>()?;
    m.add_class::<aio::PyCancelToken>()?;
    m.add_function(wrap_pyfunction!(threads::_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(threads::_after_fork_in_child, m)?)?;
    errors::register(m)?;
    distribution::install_http_client();
    script_output::install();
    schema::install_opaque_check();
    Ok(())
}
