//! What the extension calls back in the package's Python code, handed to it
//! by the package when it is imported (`module_registry/_hooks.py` calls
//! [`_set_hooks`] once). The extension never imports the package: the
//! package imports the extension and gives it these.
//!
//! A hook not set (the extension loaded without its package) is an
//! `ImportError` naming the hook when something needs it, never a crash.

use parking_lot::RwLock;
use pyo3::exceptions::{PyImportError, PyTypeError};
use pyo3::prelude::*;

/// One callback the package hands the extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hook {
    /// `code_digest(handler) -> str`: the digest of a Python handler's code
    /// and state, for the step cache's key.
    CodeDigest,
    /// An object whose attributes are the notebook displays: each
    /// `display.<name>(object)` (`info_html`, `run_svg`, `run_timeline`,
    /// ...) and the list type `display.ModuleList`. Looked up by name at
    /// each call, so the package may add or rename displays freely.
    Display,
    /// `run_coroutine(coroutine, loop) -> value`: awaits what an `async def`
    /// module returned.
    RunCoroutine,
    /// `http_fetch(url, limit) -> (bytes, final_url)`: reads an `http(s)://`
    /// package index through Python.
    HttpFetch,
}

impl Hook {
    /// The hook's name, as `_set_hooks` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hook::CodeDigest => "code_digest",
            Hook::Display => "display",
            Hook::RunCoroutine => "run_coroutine",
            Hook::HttpFetch => "http_fetch",
        }
    }
}

/// The hooks set, in the order of [`Hook`].
struct Hooks {
    code_digest: Option<Py<PyAny>>,
    display: Option<Py<PyAny>>,
    run_coroutine: Option<Py<PyAny>>,
    http_fetch: Option<Py<PyAny>>,
}

impl Hooks {
    fn slot(&self, hook: Hook) -> &Option<Py<PyAny>> {
        match hook {
            Hook::CodeDigest => &self.code_digest,
            Hook::Display => &self.display,
            Hook::RunCoroutine => &self.run_coroutine,
            Hook::HttpFetch => &self.http_fetch,
        }
    }
}

static HOOKS: RwLock<Hooks> = RwLock::new(Hooks {
    code_digest: None,
    display: None,
    run_coroutine: None,
    http_fetch: None,
});

/// The package hands the extension what it calls back (see [`Hook`]). Every
/// hook is given at once; a later call replaces them all (a reloaded
/// package). Called by `module_registry/_hooks.py`; not for users.
#[pyfunction]
#[pyo3(signature = (*, code_digest, display, run_coroutine, http_fetch))]
pub fn _set_hooks(
    code_digest: Bound<'_, PyAny>,
    display: Bound<'_, PyAny>,
    run_coroutine: Bound<'_, PyAny>,
    http_fetch: Bound<'_, PyAny>,
) -> PyResult<()> {
    for (hook, value) in [
        (Hook::CodeDigest, &code_digest),
        (Hook::RunCoroutine, &run_coroutine),
        (Hook::HttpFetch, &http_fetch),
    ] {
        if !value.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "_set_hooks: {} must be callable, not {}",
                hook.name(),
                value.get_type().name()?
            )));
        }
    }
    *HOOKS.write() = Hooks {
        code_digest: Some(code_digest.unbind()),
        display: Some(display.unbind()),
        run_coroutine: Some(run_coroutine.unbind()),
        http_fetch: Some(http_fetch.unbind()),
    };
    Ok(())
}

/// The hook the package set, or an `ImportError` naming it.
pub(crate) fn hook(py: Python<'_>, hook: Hook) -> PyResult<Bound<'_, PyAny>> {
    let hooks = HOOKS.read();
    match hooks.slot(hook) {
        Some(value) => Ok(value.bind(py).clone()),
        None => Err(PyImportError::new_err(format!(
            "module_registry._core has no {} hook: the module_registry package sets its \
             hooks when it is imported (import module_registry, not the extension alone)",
            hook.name()
        ))),
    }
}
