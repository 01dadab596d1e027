//! Scripts' `print` and `debug` as records of Python's `logging` logger
//! `module_registry.script` (`print` at INFO, `debug` at DEBUG), with the
//! extra attributes `rhai_module`, `rhai_script`, `rhai_line` and
//! `rhai_column`: the process's script output hook, set when the extension
//! is imported. Nothing is buffered: each line is one `logger.log` call
//! (skipped cheaply when the logger is not enabled for its level).

use std::sync::Arc;

use module_registry::script::{ScriptOutput, ScriptOutputKind};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::threads::Detach;

/// The logger, looked up once (loggers live as long as the process).
static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Makes scripts' output records of the `module_registry.script` logger.
pub(crate) fn install() {
    module_registry::script::set_default_script_output(Some(Arc::new(to_logging)));
}

fn record(py: Python<'_>, out: &ScriptOutput<'_>) -> PyResult<()> {
    let logger = LOGGER
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            let logging = py.import("logging")?;
            Ok(logging
                .call_method1("getLogger", ("module_registry.script",))?
                .unbind())
        })?
        .bind(py);
    let level: u8 = match out.kind {
        ScriptOutputKind::Print => 20,
        ScriptOutputKind::Debug => 10,
    };
    if !logger
        .call_method1(intern!(py, "isEnabledFor"), (level,))?
        .is_truthy()?
    {
        return Ok(());
    }
    let extra = PyDict::new(py);
    extra.set_item(intern!(py, "rhai_module"), out.module)?;
    extra.set_item(intern!(py, "rhai_script"), out.script)?;
    extra.set_item(intern!(py, "rhai_line"), out.line)?;
    extra.set_item(intern!(py, "rhai_column"), out.column)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "extra"), extra)?;
    logger.call_method(intern!(py, "log"), (level, out.text), Some(&kwargs))?;
    Ok(())
}

/// Whether this thread may hold the GIL: `PyGILState_Check`, which is not
/// in the stable ABI, looked up at run time (every CPython since 3.4 has
/// it); `true` when it is not found (or on Windows).
fn may_hold_gil() -> bool {
    #[cfg(unix)]
    {
        type Check = unsafe extern "C" fn() -> std::os::raw::c_int;
        static CHECK: std::sync::OnceLock<Option<Check>> = std::sync::OnceLock::new();
        #[allow(unsafe_code)]
        let check = CHECK.get_or_init(|| {
            // SAFETY: looks a symbol up in the loaded program; a non-null
            // result is CPython's `int PyGILState_Check(void)`.
            let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"PyGILState_Check".as_ptr()) };
            // SAFETY: as above, the symbol has this signature.
            (!found.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, Check>(found) })
        });
        match check {
            // SAFETY: callable from any thread, with or without the GIL.
            #[allow(unsafe_code)]
            Some(check) => unsafe { check() != 0 },
            None => true,
        }
    }
    #[cfg(not(unix))]
    true
}

/// The hook: once the interpreter exits the line is dropped (no thread
/// takes the GIL then, see `threads.rs`); a failing logger reports through
/// `sys.unraisablehook` and the script goes on.
fn to_logging(out: &ScriptOutput<'_>) {
    let log = || {
        crate::threads::try_attach(|py| {
            if let Err(err) = record(py, out) {
                err.write_unraisable(py, None);
            }
        });
    };
    if !module_registry::script::running_on_script_stack() {
        return log();
    }
    // Python never runs on a script's stack: this thread's helper runs it.
    // A script run with the GIL held (an instance's `shutdown` when Python
    // drops it) lets it go meanwhile, or the helper would wait for it.
    let on_helper = || {
        let _ = crate::threads::on_helper(log);
    };
    if may_hold_gil() {
        // Taken (again, if this thread holds it) to be let go while the
        // helper logs; runs no Python code here.
        crate::threads::try_attach(|py| py.detach_gated(on_helper));
    } else {
        on_helper();
    }
}
