//! The one place that configures a Rhai engine: packages, limits, the
//! wall-clock deadline and the host functions scripts may call.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use rhai::module_resolvers::FileModuleResolver;
use rhai::packages::{Package, StandardPackage};
use rhai::{
    Dynamic, Engine, EvalAltResult, Module as RhaiModule, ModuleResolver, Position, Shared,
};

use super::api;
use crate::config::ImportedScript;
use crate::error::Result;
pub use crate::limits::ScriptLimits;

thread_local! {
    /// The deadline of the script call running on this thread, if any.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The value `on_progress` returns when a deadline passes; recognised when
/// mapping the error.
pub(crate) const TIMEOUT_TOKEN: &str = "module-registry: script timed out";

/// Runs `f` with this thread's script deadline set to `timeout` from now
/// (keeping an earlier outer deadline), restoring the previous one after.
pub(crate) fn with_deadline<T>(timeout: Option<Duration>, f: impl FnOnce() -> T) -> T {
    let previous = DEADLINE.with(Cell::get);
    // A timeout too far away to be a point in time (years) is no deadline.
    let mine = timeout.and_then(|t| Instant::now().checked_add(t));
    let effective = match (previous, mine) {
        (Some(p), Some(m)) => Some(p.min(m)),
        (p, m) => p.or(m),
    };
    DEADLINE.with(|d| d.set(effective));
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// Runs script work `f` under `limits`: on a stack big enough for them
/// (see [`super::stack`]) and with their wall-clock deadline.
pub(crate) fn run_limited<T>(limits: &ScriptLimits, f: impl FnOnce() -> T) -> Result<T> {
    super::stack::on_script_stack(limits.stack_bytes(), || {
        super::opaque::isolated(|| {
            with_deadline(limits.timeout, || match limits.max_memory {
                Some(_) => super::memory::counting(f),
                None => f(),
            })
        })
    })
}

/// The value `on_progress` returns when a call holds more memory than its
/// limit; recognised when mapping the error.
pub(crate) const MEMORY_TOKEN: &str = "module-registry: script over its memory limit";

/// A module called from a script: a script module inherits the caller's
/// deadline and a native one is trusted to return, so both run here, as
/// does anything when there is no deadline; any other (a Python module, a
/// factory given in code) runs on this thread's helper thread (kept between
/// calls), so that it is abandoned when the calling script's deadline
/// passes, which ends the script as timed out. An abandoned call finishes
/// on its own, its helper is not reused, and the instance shuts down after
/// it. (That Python never runs on a script's stack is the Python binding's
/// own rule, wherever Python is called from.)
pub(crate) fn call_within_deadline(
    instance: &std::sync::Arc<crate::ModuleInstance>,
    input: crate::Value,
) -> Result<Result<crate::Value>, Box<EvalAltResult>> {
    use crate::config::Implementation;
    let trusted = matches!(
        instance.info().implementation(),
        Implementation::Native | Implementation::Rhai(_)
    );
    if runs_elsewhere(trusted) {
        // Freed where the call runs: not held by the script any more.
        super::memory::handed_off(super::memory::value_bytes(&input));
    }
    let inst = instance.clone();
    run_within_deadline(trusted, instance.name(), move || inst.process_value(input))
}

/// Whether [`run_within_deadline`] hands a call that is `trusted` or not
/// to another thread (there is a deadline to keep and it is not trusted).
pub(crate) fn runs_elsewhere(trusted: bool) -> bool {
    !trusted && DEADLINE.with(Cell::get).is_some()
}

/// [`call_within_deadline`] for any call: `trusted` calls run here.
pub(crate) fn run_within_deadline(
    trusted: bool,
    what: &str,
    call: impl FnOnce() -> Result<crate::Value> + Send + 'static,
) -> Result<Result<crate::Value>, Box<EvalAltResult>> {
    // What the call returns may be made on another thread (the helper, a
    // pool's, a Python one): it is charged to the script's memory here.
    let mark = super::memory::mark();
    let charged = move |out: Result<crate::Value>| {
        if let Ok(value) = &out {
            super::memory::received(mark, value);
        }
        out
    };
    let deadline = DEADLINE.with(Cell::get);
    let Some(deadline) = deadline.filter(|_| !trusted) else {
        return Ok(charged(call()));
    };
    let caller = crate::access::Caller::current();
    let call = move || caller.enter(call);
    // The hand-over allocates here what the helper frees (and the reverse):
    // not the script's memory; what the call returns is charged above.
    match super::memory::uncounted(|| super::helper::run(call, deadline)) {
        Ok(out) => Ok(charged(out)),
        Err(super::helper::NotDone::TimedOut) => Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(TIMEOUT_TOKEN),
            Position::NONE,
        ))),
        Err(super::helper::NotDone::NoThread(e)) => Ok(Err(crate::Error::invalid_input(format!(
            "cannot start a thread to call {what}: {e}"
        )))),
    }
}

/// The deadline of the script call running on this thread, if any.
#[cfg(feature = "workflows")]
pub(crate) fn deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// The error that ends a script whose deadline passed.
#[cfg(feature = "workflows")]
pub(crate) fn timed_out() -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from(TIMEOUT_TOKEN),
        Position::NONE,
    ))
}

/// [`TIMEOUT_TOKEN`] when this thread's script deadline has passed.
#[cold]
#[inline(never)]
fn past_deadline() -> Option<Dynamic> {
    let deadline = DEADLINE.with(Cell::get)?;
    (Instant::now() >= deadline).then(|| Dynamic::from(TIMEOUT_TOKEN))
}

/// Resolves a script's `import "name"` while it is compiled: to `name.rhai`
/// inside one folder (paths that are absolute or climb out with `..`, or
/// symbolic links pointing out, are refused), or to the sources recorded
/// when it was first compiled (a manifest's or a pickle's). Either way it
/// records what it served, so that a compiled script knows every script it
/// imports (directly or through others).
pub(crate) struct ImportResolver {
    from: ImportsFrom,
    served: Arc<Mutex<BTreeMap<String, String>>>,
}

enum ImportsFrom {
    Folder {
        root: PathBuf,
        /// `root` with its symbolic links resolved (once), if it exists.
        real_root: Option<PathBuf>,
        files: FileModuleResolver,
    },
    Recorded(BTreeMap<String, String>),
}

impl ImportResolver {
    /// Imports read from files in `root`.
    pub(crate) fn folder(root: &Path) -> Self {
        Self::new(ImportsFrom::Folder {
            root: root.to_path_buf(),
            real_root: root.canonicalize().ok(),
            files: FileModuleResolver::new_with_path(root),
        })
    }

    /// Imports served from recorded sources (checked by the caller).
    pub(crate) fn recorded(imports: &[ImportedScript]) -> Self {
        Self::new(ImportsFrom::Recorded(
            imports
                .iter()
                .map(|i| (i.path.clone(), i.source.clone()))
                .collect(),
        ))
    }

    fn new(from: ImportsFrom) -> Self {
        ImportResolver {
            from,
            served: Arc::default(),
        }
    }

    /// What this resolver has served: each import path with its source.
    pub(crate) fn served(&self) -> Arc<Mutex<BTreeMap<String, String>>> {
        self.served.clone()
    }

    /// The source of `import path`, read from the folder or the record.
    fn source_of(&self, path: &str, pos: Position) -> Result<String, Box<EvalAltResult>> {
        let not_found = |why: String| Box::new(EvalAltResult::ErrorModuleNotFound(why, pos));
        match &self.from {
            ImportsFrom::Recorded(sources) => sources
                .get(path)
                .cloned()
                .ok_or_else(|| not_found(format!("{path} (not among the recorded imports)"))),
            ImportsFrom::Folder {
                root,
                real_root,
                files,
            } => {
                let escapes = Path::new(path)
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
                // Symbolic links are followed: a link inside the folder pointing
                // out of it (to a file or a folder) escapes it as `..` would.
                let file = files.get_file_path(path, None);
                let outside = match (file.canonicalize(), real_root) {
                    (Ok(file), Some(root)) => !file.starts_with(root),
                    _ => false, // missing: reading it says so
                };
                if escapes || outside {
                    return Err(not_found(format!(
                        "{path} (imports must stay inside {})",
                        root.display()
                    )));
                }
                super::read_bounded(&file).map_err(|why| match why {
                    super::Unreadable::Io(_) => not_found(path.to_string()),
                    other => not_found(format!("{path} ({})", other.into_error(&file).report())),
                })
            }
        }
    }
}

impl ModuleResolver for ImportResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<RhaiModule>, Box<EvalAltResult>> {
        let text = self.source_of(path, pos)?;
        let in_module = |e: Box<EvalAltResult>| {
            Box::new(EvalAltResult::ErrorInModule(path.to_string(), e, pos))
        };
        let mut ast = engine.compile(&text).map_err(|e| in_module(e.into()))?;
        ast.set_source(path);
        let module =
            RhaiModule::eval_ast_as_new(rhai::Scope::new(), &ast, engine).map_err(in_module)?;
        self.served.lock().insert(path.to_string(), text);
        Ok(module.into())
    }
}

/// Builds an engine with the standard package (no file, network or process
/// access), every limit family set from `limits`, the deadline check, and
/// the registry API, `assert` and `assert_eq`; `print` and `debug` go to
/// `output`. `resolver` serves `import` (used only while compiling; at run
/// time imports come from the compiled script).
pub(crate) fn build_engine(
    limits: &ScriptLimits,
    resolver: Option<ImportResolver>,
    output: &Arc<super::output::OutputSlot>,
) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    match resolver {
        Some(r) => engine.set_module_resolver(r),
        None => engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new()),
    };
    // `None` depths are the most a script stack holds (see `ScriptLimits::stack_bytes`).
    engine.set_max_call_levels(limits.call_depth());
    let depth = limits.expr_depth();
    engine.set_max_expr_depths(depth, depth);
    engine.set_max_string_size(limits.max_string_size.unwrap_or(0));
    engine.set_max_array_size(limits.max_array_size.unwrap_or(0));
    engine.set_max_map_size(limits.max_map_size.unwrap_or(0));
    engine.set_max_modules(64);
    engine.set_max_operations(limits.max_operations.unwrap_or(0));
    let timed = limits.timeout.is_some();
    let budget = limits
        .max_memory
        .map(|b| isize::try_from(b).unwrap_or(isize::MAX));
    if timed || budget.is_some() {
        // Rhai calls this on every operation: the hot path is one test of
        // the count and a return (5.5 instructions with the call's own,
        // counted with callgrind on benches/rhai/primes.rhai, mode
        // `default` of benches/rust/rhai_instructions.rs; the cold part
        // adds 37 every 16 operations). The rest is a cold function every 16
        // operations: the memory count and an opaque misuse (thread-local
        // reads), so a call overshoots its memory limit by at most what 16
        // operations allocate (each bounded by the size limits); the
        // clock every 4,096, as reading it every time would triple a
        // script's cost.
        engine.on_progress(move |ops| {
            if ops & 0xF != 0 {
                return None;
            }
            every_16_operations(ops, timed, budget)
        });
    }
    super::output::install(&mut engine, output);
    super::asserts::register(&mut engine);
    api::register(&mut engine);
    super::text::register(&mut engine);
    // Rhai's own `sleep` waits without operations, so the progress callback
    // never sees the deadline pass: this one waits at most until the deadline.
    super::definitions::described(
        "sleep(seconds: float)",
        "Waits `seconds`, or until the script's deadline, which then ends it as timed out.",
        "sleep(0.5);",
    )
    .register_into_engine(&mut engine, |seconds: f64| sleep_within_deadline(seconds));
    super::definitions::described(
        "sleep(seconds: int)",
        "Waits `seconds`, or until the script's deadline, which then ends it as timed out.",
        "sleep(1);",
    )
    .register_into_engine(&mut engine, |seconds: rhai::INT| {
        sleep_within_deadline(seconds as f64)
    });
    engine
}

/// The progress callback's checks every 16 operations (see `engine`).
#[cold]
#[inline(never)]
fn every_16_operations(ops: u64, timed: bool, budget: Option<isize>) -> Option<Dynamic> {
    if super::opaque::pending() {
        return Some(Dynamic::from(super::opaque::MISUSE_TOKEN));
    }
    if let Some(budget) = budget {
        if super::memory::held() > budget {
            return Some(Dynamic::from(MEMORY_TOKEN));
        }
    }
    if timed && ops & 0xFFF == 0 {
        past_deadline()
    } else {
        None
    }
}

/// Sleeps `seconds` (nothing for zero, negative or NaN), or until this
/// thread's script deadline and then ends the script as timed out.
fn sleep_within_deadline(seconds: f64) -> Result<(), Box<EvalAltResult>> {
    if seconds.is_nan() || seconds <= 0.0 {
        return Ok(());
    }
    let wanted = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    let Some(deadline) = DEADLINE.with(Cell::get) else {
        std::thread::sleep(wanted);
        return Ok(());
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if wanted < left {
        std::thread::sleep(wanted);
        return Ok(());
    }
    std::thread::sleep(left);
    Err(Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from(TIMEOUT_TOKEN),
        Position::NONE,
    )))
}
