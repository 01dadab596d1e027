//! Functions of values that scripts can call: what a binding adds for its
//! language's callables (Python's `register_script_function`), and a Rust
//! host for a closure over [`Value`]s.

use std::any::TypeId;
use std::sync::Arc;

use rhai::{
    Dynamic, Engine, EvalAltResult, FuncRegistration, Module as RhaiModule, NativeCallContext,
    Position, RhaiFunc, Shared,
};

use super::convert::{from_dynamic, to_dynamic};
use crate::error::{Error, Result};
use crate::registry::ModuleRegistry;
use crate::value::Value;

/// The most arguments a script function of values takes (Rhai matches
/// untyped parameters up to this many).
pub const MAX_SCRIPT_FUNCTION_ARGS: usize = 16;

/// A function of values, as scripts call it.
pub type ScriptFunction = Arc<dyn Fn(Vec<Value>) -> Result<Value> + Send + Sync>;

/// Names Rhai gives a meaning of its own (calls of them never reach a
/// registered function, or change how a script works).
const RESERVED: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "this",
    "global",
    "true",
    "false",
];

fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    // Rhai's keywords (`fn`, `let`, `loop`, ...) cannot name a call.
    let callable = identifier
        && !RESERVED.contains(&name)
        && Engine::new_raw()
            .compile_expression(format!("{name}()"))
            .is_ok();
    if callable {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "{name:?} cannot name a script function: use letters, digits and _ (not first a digit), not a Rhai keyword or one of {}",
            RESERVED.join(", ")
        )))
    }
}

fn runtime(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message),
        Position::NONE,
    ))
}

/// One call from a script: the arguments as values, the function run under
/// the script's deadline (on a helper thread, abandoned when it passes, as
/// modules of other languages are), its result back as a script value.
fn call(
    name: &str,
    f: &ScriptFunction,
    args: &mut [&mut Dynamic],
) -> Result<Dynamic, Box<EvalAltResult>> {
    let mut values = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let value = from_dynamic((**arg).clone())
            .map_err(|e| runtime(format!("{name}(): argument {}: {}", i + 1, e.report())))?;
        values.push(value);
    }
    if super::engine::runs_elsewhere(false) {
        // Freed where the call runs: not held by the script any more.
        let list = values.capacity() * std::mem::size_of::<Value>();
        super::memory::handed_off(
            list + values.iter().map(super::memory::value_bytes).sum::<usize>(),
        );
    }
    let f = f.clone();
    match super::engine::run_within_deadline(false, name, move || f(values))? {
        Ok(out) => Ok(to_dynamic(out)),
        Err(e) => Err(runtime(format!("{name}(): {}", e.report()))),
    }
}

impl ModuleRegistry {
    /// Adds `name(...)`, a function of [`Value`]s, to every script engine
    /// of this registry (as [`register_script_functions`](Self::register_script_functions)
    /// adds Rust functions): scripts call it with any number of arguments
    /// up to [`MAX_SCRIPT_FUNCTION_ARGS`], each converted to a value, and
    /// get its result back as a script value. Under a script's deadline a
    /// call runs on a helper thread and is abandoned when the deadline
    /// passes (the script ends as timed out), as calls of Python modules
    /// are. Its error fails the script at the call. Needs `admin` under a
    /// policy; a name that is not an identifier, is a Rhai keyword or names
    /// one of Rhai's own functions (`print`, `eval`, ...) is refused. A
    /// later registration of the name replaces this one; a function the
    /// engine already has for the exact argument types is called first.
    ///
    /// ```
    /// use module_registry::{ModuleRegistry, Value};
    ///
    /// let registry = ModuleRegistry::new();
    /// registry.register_script_function("total", |args| {
    ///     Ok(Value::Int(args.iter().filter_map(|a| match a { Value::Int(i) => Some(*i), _ => None }).sum()))
    /// })?;
    /// assert_eq!(registry.run_script("total(1, 2, 3) + total()", ())?, Value::Int(6));
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn register_script_function(
        &self,
        name: &str,
        f: impl Fn(Vec<Value>) -> Result<Value> + Send + Sync + 'static,
    ) -> Result<()> {
        self.authorize(
            crate::access::Permission::Admin,
            "register_script_function",
            None,
        )?;
        check_name(name)?;
        let f: ScriptFunction = Arc::new(f);
        let name = name.to_string();
        self.register_script_functions(move |engine: &mut Engine| {
            engine.register_global_module(functions_of_values(&name, &f).into());
        })
    }
}

/// `name` for every arity up to [`MAX_SCRIPT_FUNCTION_ARGS`], each
/// parameter named (`arg1: ?`, ...) for the definitions, as a module.
fn functions_of_values(name: &str, f: &ScriptFunction) -> RhaiModule {
    let mut module = RhaiModule::new();
    for arity in 0..=MAX_SCRIPT_FUNCTION_ARGS {
        let (f, fn_name) = (f.clone(), name.to_string());
        let mut params: Vec<String> = (1..=arity).map(|i| format!("arg{i}: ?")).collect();
        params.push("?".into());
        let mut registration = FuncRegistration::new(name)
            .in_global_namespace()
            .with_params_info(params);
        if arity == 0 {
            registration = registration.with_comments([format!(
                "/// A function the embedder added (`register_script_function`): \
                 any number of arguments, up to {MAX_SCRIPT_FUNCTION_ARGS}."
            )]);
        }
        let func =
            move |_: Option<NativeCallContext>, args: &mut [&mut Dynamic]| call(&fn_name, &f, args);
        registration.set_into_module_raw(
            &mut module,
            vec![TypeId::of::<Dynamic>(); arity],
            RhaiFunc::Method {
                func: Shared::new(func),
                has_context: false,
                is_pure: true,
                is_volatile: true,
            },
        );
    }
    module
}
