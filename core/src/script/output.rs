//! Where a script's `print` and `debug` go: to a hook the embedder sets
//! (per registry with [`ModuleRegistry::set_script_output`], or for the
//! whole process with [`set_default_script_output`]; the Python binding
//! sets the process's, to Python's `logging`), else to the [`log`] crate
//! (target `module_registry::script`; `print` at `Info`, `debug` at
//! `Debug`). Never straight to a file descriptor, and nothing is buffered:
//! each line is handed on as the script prints it, so a script printing a
//! million lines holds no more memory than one.
//!
//! Each line comes with where it was printed: the script module running
//! (its `MODULE` name; none in an orchestration script), the script holding
//! the call (a file, or the import path of a library) and the call's line
//! and column.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::RwLock;
use rhai::{Array, Dynamic, Engine, ImmutableString, Map, NativeCallContext, Position, FLOAT};

use super::definitions::{described, signature};

use crate::error::{BoxError, Result};
use crate::module::{Module, ModuleContext};
use crate::registry::ModuleRegistry;

/// Which of the two a script called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptOutputKind {
    /// `print(x)`: output meant for the user (`Info`).
    Print,
    /// `debug(x)`: the value's debug form (`Debug`).
    Debug,
}

/// One line a script printed, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptOutput<'a> {
    /// `print` or `debug`.
    pub kind: ScriptOutputKind,
    /// What it printed (for `debug`, the value's debug form).
    pub text: &'a str,
    /// The script module running (its `MODULE.name`); `None` in an
    /// orchestration script (or a test function).
    pub module: Option<&'a str>,
    /// The script holding the call: its file (or label, for a script given
    /// as text), or the import path of the library holding it.
    pub script: Option<&'a str>,
    /// The call's line (from 1), if known.
    pub line: Option<usize>,
    /// The call's column (from 1), if known.
    pub column: Option<usize>,
}

/// What receives scripts' output (see [`ScriptOutput`]). It runs on the
/// thread of the script, inside the call: keep it short (hand the line on).
pub type ScriptOutputHook = Arc<dyn Fn(&ScriptOutput<'_>) + Send + Sync>;

/// The process's hook, used by registries that set none.
static DEFAULT_HOOK: RwLock<Option<ScriptOutputHook>> = RwLock::new(None);

/// Sets (or, with `None`, removes) the hook that receives the output of
/// scripts of every registry that has no hook of its own; without one,
/// output goes to the [`log`] crate. The Python binding sets it when
/// imported.
pub fn set_default_script_output(hook: Option<ScriptOutputHook>) {
    *DEFAULT_HOOK.write() = hook;
}

/// A registry's own output hook, shared with every engine it builds (a
/// change reaches engines and instances built before it too).
#[derive(Default)]
pub(crate) struct OutputSlot(RwLock<Option<ScriptOutputHook>>);

impl OutputSlot {
    fn emit(&self, output: &ScriptOutput<'_>) {
        let hook = self
            .0
            .read()
            .clone()
            .or_else(|| DEFAULT_HOOK.read().clone());
        let Some(hook) = hook else {
            return to_log(output);
        };
        // A hook that panics loses its line, not the script; what it
        // allocates (even to free on another thread) is not the script's.
        super::memory::uncounted(|| {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(output)));
        });
    }
}

/// The default: the `log` crate, with the script as the record's file.
fn to_log(output: &ScriptOutput<'_>) {
    let level = match output.kind {
        ScriptOutputKind::Print => log::Level::Info,
        ScriptOutputKind::Debug => log::Level::Debug,
    };
    if level > log::max_level() {
        return;
    }
    let line = output.line.and_then(|l| u32::try_from(l).ok());
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target("module_registry::script")
            .module_path(output.module)
            .file(output.script)
            .line(line)
            .args(format_args!("{}", output.text))
            .build(),
    );
}

thread_local! {
    /// The script module running on this thread (innermost), if any.
    static MODULE: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    /// Where the `print` being handed to Rhai's print callback was called.
    static PRINT_AT: RefCell<Option<(Option<ImmutableString>, Position)>> =
        const { RefCell::new(None) };
}

/// A script module's [`Module`], with its name known while it runs (what
/// its output reports as `module`).
pub(crate) struct Named<M> {
    name: Arc<str>,
    inner: M,
}

impl<M> Named<M> {
    pub(crate) fn new(name: &str, inner: M) -> Self {
        Named {
            name: name.into(),
            inner,
        }
    }

    fn running<T>(&self, f: impl FnOnce(&M) -> T) -> T {
        struct Restore(Option<Arc<str>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                let _ = MODULE.try_with(|m| *m.borrow_mut() = previous);
            }
        }
        let previous = MODULE.with(|m| m.replace(Some(self.name.clone())));
        let _restore = Restore(previous);
        f(&self.inner)
    }
}

impl<M: Module> Module for Named<M> {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        self.running(|m| m.init(context))
    }

    fn process(&self, input: crate::Value) -> Result<crate::Value, BoxError> {
        self.running(|m| m.process(input))
    }

    fn shutdown(&self) -> Result<(), BoxError> {
        self.running(Module::shutdown)
    }
}

fn emit(
    slot: &OutputSlot,
    kind: ScriptOutputKind,
    text: &str,
    script: Option<&str>,
    pos: Position,
) {
    MODULE.with(|m| {
        let module = m.borrow().clone();
        slot.emit(&ScriptOutput {
            kind,
            text,
            module: module.as_deref(),
            script,
            line: pos.line(),
            column: pos.position(),
        });
    });
}

/// What `print(value)` shows: the value's `to_string`, as Rhai's own
/// `print` does.
fn printed(ctx: &NativeCallContext, mut value: Dynamic) -> ImmutableString {
    if value.is_string() {
        return value.into_immutable_string().unwrap_or_default();
    }
    match ctx.call_native_fn_raw("to_string", true, &mut [&mut value]) {
        Ok(text) if text.is_string() => text.into_immutable_string().unwrap_or_default(),
        _ => value.to_string().into(),
    }
}

/// `print` of one value: notes where it was called (Rhai's print callback
/// is told only the text), then gives the text to Rhai, which hands it to
/// the callback at once.
fn print_one(ctx: NativeCallContext, value: Dynamic) -> ImmutableString {
    let at = (
        ctx.call_source().map(ImmutableString::from),
        ctx.call_position(),
    );
    let text = printed(&ctx, value);
    PRINT_AT.with(|p| *p.borrow_mut() = Some(at));
    text
}

/// Routes `print` and `debug` of scripts run on `engine` to `slot`.
pub(crate) fn install(engine: &mut Engine, slot: &Arc<OutputSlot>) {
    // Rhai's own `print` for each type it has one for, and for any other
    // value: these run first (functions registered on the engine are found
    // before the packages').
    signature("print()").register_into_engine(engine, |ctx: NativeCallContext| {
        print_one(ctx, Dynamic::from(ImmutableString::new()))
    });
    signature("print(text: String)")
        .register_into_engine(engine, |ctx: NativeCallContext, v: ImmutableString| {
            print_one(ctx, v.into())
        });
    signature("print(value: char)")
        .register_into_engine(engine, |ctx: NativeCallContext, v: char| {
            print_one(ctx, v.into())
        });
    signature("print(value: bool)")
        .register_into_engine(engine, |ctx: NativeCallContext, v: bool| {
            print_one(ctx, v.into())
        });
    signature("print(value: ())").register_into_engine(engine, |ctx: NativeCallContext, v: ()| {
        print_one(ctx, v.into())
    });
    signature("print(value: float)")
        .register_into_engine(engine, |ctx: NativeCallContext, v: FLOAT| {
            print_one(ctx, v.into())
        });
    signature("print(value: Array)")
        .register_into_engine(engine, |ctx: NativeCallContext, v: Array| {
            print_one(ctx, Dynamic::from_array(v))
        });
    signature("print(value: Map)")
        .register_into_engine(engine, |ctx: NativeCallContext, v: Map| {
            print_one(ctx, Dynamic::from_map(v))
        });
    described(
        "print(value: ?)",
        "Writes `value` as text to the registry's script output (Python: the `module_registry.script` logger at INFO; `debug` at DEBUG).",
        r#"print(`processed ${n} lines`);"#,
    )
    .register_into_engine(engine, print_one);
    let print_slot = slot.clone();
    engine.on_print(move |text| {
        // A `print` of a type not above (none in Rhai's packages) has no place.
        let (source, pos) = PRINT_AT
            .with(|p| p.borrow_mut().take())
            .unwrap_or((None, Position::NONE));
        emit(
            &print_slot,
            ScriptOutputKind::Print,
            text,
            source.as_deref(),
            pos,
        );
    });
    let debug_slot = slot.clone();
    engine.on_debug(move |text, source, pos| {
        emit(&debug_slot, ScriptOutputKind::Debug, text, source, pos);
    });
}

impl ModuleRegistry {
    /// Sends the `print` and `debug` output of this registry's scripts to
    /// `hook` (scripts loaded and instances created before too), instead
    /// of the process's hook ([`set_default_script_output`]) or the [`log`]
    /// crate. Needs `admin` under a policy.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use module_registry::ModuleRegistry;
    /// use module_registry::script::ScriptOutputKind;
    ///
    /// let registry = ModuleRegistry::new();
    /// let lines = Arc::new(Mutex::new(Vec::new()));
    /// let seen = lines.clone();
    /// registry.set_script_output(move |out| {
    ///     seen.lock().unwrap().push((out.kind, out.text.to_string(), out.line));
    /// })?;
    /// registry.run_script("let x = 2;\nprint(`x is ${x}`);", ())?;
    /// assert_eq!(*lines.lock().unwrap(), [(ScriptOutputKind::Print, "x is 2".to_string(), Some(2))]);
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn set_script_output(
        &self,
        hook: impl Fn(&ScriptOutput<'_>) + Send + Sync + 'static,
    ) -> Result<()> {
        self.authorize(crate::access::Permission::Admin, "set_script_output", None)?;
        *super::host(self).output.0.write() = Some(Arc::new(hook));
        Ok(())
    }
}
