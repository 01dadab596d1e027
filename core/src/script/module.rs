//! Script modules: the declaration a script makes of itself (`MODULE`), the
//! compiled script shared by every instance, and the [`Module`] that runs it.

use std::sync::Arc;

use parking_lot::Mutex;
use rhai::{CallFnOptions, Dynamic, EvalAltResult, Map, Position, Scope, AST};

use super::convert::{from_dynamic, to_dynamic};
use super::deps::{ScriptDeps, DEPS_KEY};
use super::engine::{run_limited, MEMORY_TOKEN, TIMEOUT_TOKEN};
use super::ScriptHost;
use crate::config::ModuleConfig;
use crate::error::{BoxError, Error, Result, ScriptFrame};
use crate::kind::{ModuleKind, ModuleType};
use crate::module::{Module, ModuleContext};

/// A compiled script, shared by every instance built from it.
pub(crate) struct CompiledScript {
    /// Path, or the module's name for a script given as text.
    pub label: String,
    pub ast: AST,
    /// Whether calls must evaluate the top level first (to bind imports).
    pub needs_eval: bool,
    pub has_init: bool,
    pub has_shutdown: bool,
}

fn position_of(err: &EvalAltResult) -> Position {
    let inner = err.unwrap_inner();
    let pos = inner.position();
    if pos.is_none() {
        err.position()
    } else {
        pos
    }
}

fn strip_position(text: String) -> String {
    match text.rfind(" (line ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

/// Turns a Rhai error into [`Error::Script`] naming the script, line and column.
pub(crate) fn script_error(label: &str, err: &EvalAltResult, host: &ScriptHost) -> Error {
    script_error_in(label, err, host, None)
}

/// [`script_error`] for a call of script function `function`: when Rhai
/// reports no position (it gives none for limits hit inside functions), the
/// message names the function instead.
pub(crate) fn script_error_in(
    label: &str,
    err: &EvalAltResult,
    host: &ScriptHost,
    function: Option<&str>,
) -> Error {
    // A script that used an opaque value as data ends with that error,
    // whatever it ran into after (the misuse is what went wrong first).
    if let Some(misuse) = super::opaque::take() {
        return misuse.into_error(label);
    }
    let limits = host.limits();
    let inner = err.unwrap_inner();
    let terminated_by = |expected: &str| {
        matches!(inner, EvalAltResult::ErrorTerminated(token, _)
            if token.clone().into_string().ok().as_deref() == Some(expected))
    };
    let message = match inner {
        _ if terminated_by(TIMEOUT_TOKEN) => format!(
            "timed out: ran longer than the limit of {:?} per call (ScriptLimits.timeout)",
            limits.timeout.unwrap_or_default()
        ),
        _ if terminated_by(MEMORY_TOKEN) => format!(
            "out of memory: held more than the limit of {} bytes per call (ScriptLimits.max_memory)",
            limits.max_memory.unwrap_or_default()
        ),
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "too many operations: exceeded the limit of {} per call (an endless loop?; ScriptLimits.max_operations)",
            limits.max_operations.unwrap_or_default()
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "call stack overflow: exceeded the limit of {} nested calls (runaway recursion?; ScriptLimits.max_call_depth)",
            limits.call_depth()
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => size_limit(what, &limits),
        // A script's own `throw` is its words; Rhai's own errors may be
        // about the `Opaque` type.
        other @ EvalAltResult::ErrorRuntime(..) => strip_position(other.to_string()),
        other => super::opaque::explain(strip_position(other.to_string())),
    };
    let (trace, pos) = trace_of(label, err, function);
    let message = match function {
        Some(f) if pos.is_none() => format!("{message} (in fn {f})"),
        _ => message,
    };
    let value = match inner {
        EvalAltResult::ErrorRuntime(thrown, _) => from_dynamic(thrown.clone()).ok().map(Box::new),
        _ => None,
    };
    let (script, line, column) = match trace.first() {
        Some(frame) => (frame.script.clone(), frame.line, frame.column),
        None => (label.to_string(), pos.line(), pos.position()),
    };
    Error::Script {
        script,
        line,
        column,
        message,
        value,
        trace,
    }
}

/// The call chain of `err`, innermost first (each frame: the file holding
/// the line, its enclosing function, the line), and the innermost position.
/// `entry` is the script function the host called, if any.
fn trace_of(label: &str, err: &EvalAltResult, entry: Option<&str>) -> (Vec<ScriptFrame>, Position) {
    // Outermost first: each call's function, the file defining it, and
    // where it was called from.
    let mut calls: Vec<(&str, &str, Position)> = Vec::new();
    if let Some(entry) = entry {
        let wrapped = matches!(err, EvalAltResult::ErrorInFunctionCall(name, ..) if name == entry);
        if !wrapped {
            calls.push((entry, label, Position::NONE));
        }
    }
    let mut at = err;
    while let EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) = at {
        calls.push((name, source, *pos));
        at = inner;
    }
    let innermost = position_of(at);
    let innermost = if innermost.is_none() {
        position_of(err)
    } else {
        innermost
    };
    let frames = (0..calls.len())
        .rev()
        .map(|i| {
            let (name, source, _) = calls[i];
            let pos = calls.get(i + 1).map_or(innermost, |next| next.2);
            ScriptFrame {
                script: file_of(label, source),
                function: Some(name.to_string()),
                line: pos.line(),
                column: pos.position(),
            }
        })
        .collect();
    (frames, innermost)
}

/// The file a function's source names: the script itself, or a library it
/// imports (`badlib` beside `dir/libfail.rhai` is `dir/badlib.rhai`).
fn file_of(label: &str, source: &str) -> String {
    if source.is_empty() || source == label {
        return label.to_string();
    }
    let file = format!("{source}.rhai");
    match label.rfind(['/', '\\', ':']) {
        Some(i) => format!("{}{file}", &label[..=i]),
        None => file,
    }
}

/// A size limit's message: the limit's value and the field to raise.
fn size_limit(what: &str, limits: &crate::limits::ScriptLimits) -> String {
    let (value, field) = if what.contains("array") {
        (limits.max_array_size, "max_array_size")
    } else if what.contains("map") {
        (limits.max_map_size, "max_map_size")
    } else if what.contains("string") {
        (limits.max_string_size, "max_string_size")
    } else {
        return format!("{what} exceeds the size limit");
    };
    format!(
        "{what} exceeds the size limit of {} (ScriptLimits.{field})",
        value.unwrap_or_default()
    )
}

pub(crate) fn parse_error(label: &str, err: &rhai::ParseError) -> Error {
    let pos = err.position();
    Error::script(
        label.to_string(),
        pos.line(),
        pos.position(),
        format!("syntax error: {}", err.err_type()),
    )
}

fn declaration_error(label: &str, message: impl Into<String>) -> Error {
    Error::script(label.to_string(), None, None, message.into())
}

fn text(label: &str, key: &str, value: &Dynamic) -> Result<String> {
    value
        .clone()
        .into_string()
        .map_err(|t| declaration_error(label, format!("MODULE.{key} must be a string, not {t}")))
}

/// `MODULE.input`, `.output`, `.config_type`: a type expression.
fn schema(label: &str, key: &str, value: &Dynamic) -> Result<crate::schema::Schema> {
    let expression = text(label, key, value)?;
    crate::schema::Schema::parse(&expression)
        .map_err(|e| declaration_error(label, format!("MODULE.{key}: {e}")))
}

fn string_map(label: &str, key: &str, value: &Dynamic) -> Result<Vec<(String, String)>> {
    let map = value.read_lock::<Map>().ok_or_else(|| {
        declaration_error(
            label,
            format!("MODULE.{key} must be an object map of strings"),
        )
    })?;
    map.iter()
        .map(|(k, v)| Ok((k.to_string(), text(label, &format!("{key}.{k}"), v)?)))
        .collect()
}

/// Reads the `MODULE` constant of a compiled script into a declaration (no
/// implementation yet). `None` when the script declares no `MODULE` (a
/// library for other scripts to import).
pub(crate) fn declaration(label: &str, ast: &AST) -> Result<Option<ModuleConfig>> {
    let Some((_, _, module)) = ast
        .iter_literal_variables(true, true)
        .find(|(name, _, _)| *name == "MODULE")
    else {
        let defines_process = ast.iter_functions().any(|f| f.name == "process");
        if defines_process {
            return Err(declaration_error(
                label,
                "defines process() but declares no MODULE; add `const MODULE = #{ name: \"...\", version: \"...\" };` (all values literal)",
            ));
        }
        return Ok(None);
    };
    let map = module
        .read_lock::<Map>()
        .ok_or_else(|| declaration_error(label, "MODULE must be an object map literal"))?
        .clone();
    let mut config = ModuleConfig::new();
    for (key, value) in &map {
        config = match key.as_str() {
            "name" => config.with_name(text(label, key, value)?),
            "version" => config.with_version(text(label, key, value)?),
            "type" => config.with_type(ModuleType::custom(text(label, key, value)?)),
            "kind" => {
                let kind = text(label, key, value)?
                    .parse::<ModuleKind>()
                    .map_err(|_| declaration_error(label, "MODULE.kind must be \"module\" or \"plugin\""))?;
                config.with_kind(kind)
            }
            "capabilities" => {
                let caps = value
                    .read_lock::<rhai::Array>()
                    .ok_or_else(|| declaration_error(label, "MODULE.capabilities must be an array of strings"))?
                    .iter()
                    .map(|c| text(label, "capabilities[]", c))
                    .collect::<Result<Vec<_>>>()?;
                config.add_capabilities(caps)
            }
            "metadata" => string_map(label, key, value)?
                .into_iter()
                .fold(config, |c, (k, v)| c.with_metadata(k, v)),
            "dependencies" => string_map(label, key, value)?
                .into_iter()
                .fold(config, |c, (k, v)| c.with_dependency(k, v)),
            "input" => config.with_input(schema(label, key, value)?),
            "output" => config.with_output(schema(label, key, value)?),
            "config_type" => config.with_config_type(schema(label, key, value)?),
            other => {
                return Err(declaration_error(
                    label,
                    format!("MODULE has an unknown key {other:?} (known: name, version, type, kind, capabilities, metadata, dependencies, input, output, config_type)"),
                ))
            }
        };
    }
    if config.name().is_empty() {
        return Err(declaration_error(label, "MODULE.name is missing"));
    }
    let params = |name: &str| {
        ast.iter_functions()
            .find(|f| f.name == name)
            .map(|f| f.params.len())
    };
    match params("process") {
        Some(1) => {}
        Some(n) => {
            return Err(declaration_error(
                label,
                format!("fn process must take 1 parameter (input), not {n}"),
            ))
        }
        None => {
            return Err(declaration_error(
                label,
                "the script defines no fn process(input)",
            ))
        }
    }
    if let Some(n) = params("init").filter(|n| *n != 1) {
        return Err(declaration_error(
            label,
            format!("fn init must take 1 parameter (config), not {n}"),
        ));
    }
    if let Some(n) = params("shutdown").filter(|n| *n != 0) {
        return Err(declaration_error(
            label,
            format!("fn shutdown must take no parameters, not {n}"),
        ));
    }
    Ok(Some(config))
}

/// One instance of a script module: the shared compiled script, the engine
/// it runs on, and its own state (`this`).
///
/// Calls on one instance do not wait for each other: no lock is held while
/// the script runs. Each call runs on its own copy of `this`, taken when it
/// starts from the state the last finished call left; a call that returns
/// writes its copy back, and one that fails (an error, a limit, a timeout)
/// leaves the state as it was. So calls in turn see each other's changes
/// as before, and calls that overlap each start from the same state, the
/// one that finishes last deciding what stays (a stateful script that must
/// count every call runs on a pool, one call per instance). The copy counts
/// against the call's memory limit, so the state an instance keeps is
/// bounded by that limit too.
pub(crate) struct ScriptModule {
    script: Arc<CompiledScript>,
    host: Arc<ScriptHost>,
    engine: Arc<rhai::Engine>,
    limits: crate::limits::ScriptLimits,
    state: Mutex<Dynamic>,
    /// `this.deps`: the declared dependencies, bound for each call.
    deps: ScriptDeps,
}

impl ScriptModule {
    pub(crate) fn new(
        script: Arc<CompiledScript>,
        host: Arc<ScriptHost>,
        context: &ModuleContext,
    ) -> Self {
        let engine = host.engine();
        let limits = host.limits();
        let deps = ScriptDeps::new(context.info().name(), context.dependencies());
        ScriptModule {
            script,
            host,
            engine,
            limits,
            state: Mutex::new(Dynamic::from_map(Map::new())),
            deps,
        }
    }

    /// Calls script function `name` on the script stack, with the deadline,
    /// and hands its result to `then` there (converting or dropping a deeply
    /// nested result recurses too). The state lock is held only to copy
    /// `this` before and to write it back after (see [`ScriptModule`]).
    fn call<T>(
        &self,
        name: &str,
        args: impl FnOnce() -> Vec<Dynamic>,
        then: impl FnOnce(Dynamic) -> Result<T>,
    ) -> Result<T> {
        run_limited(&self.limits, || {
            // Cloned on the script stack (a state nests as deep as the limits allow).
            let mut this = self.state.lock().clone();
            if let Some(mut map) = this.write_lock::<Map>() {
                map.insert(DEPS_KEY.into(), self.deps.for_call());
            }
            let mut scope = Scope::new();
            let options = CallFnOptions::new()
                .eval_ast(self.script.needs_eval)
                .rewind_scope(true)
                .bind_this_ptr(&mut this);
            let out = self
                .engine
                .call_fn_with_options::<Dynamic>(
                    options,
                    &mut scope,
                    &self.script.ast,
                    name,
                    args(),
                )
                .map_err(|e| script_error_in(&self.script.label, &e, &self.host, Some(name)))?;
            if let Some(misuse) = super::opaque::take() {
                // Used as text where Rhai ignores the error (`${...}`), last.
                return Err(misuse.into_error(&self.script.label));
            }
            // `this.deps` is bound afresh for every call, never kept.
            if let Some(mut map) = this.write_lock::<Map>() {
                map.remove(DEPS_KEY);
            }
            let before = std::mem::replace(&mut *self.state.lock(), this);
            // Dropped here, after the lock.
            drop(before);
            then(out)
        })?
    }
}

impl Module for ScriptModule {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        if self.script.has_init {
            let config = || vec![to_dynamic(context.config().clone())];
            self.call("init", config, |_| Ok(()))?;
        }
        Ok(())
    }

    fn process(&self, input: crate::Value) -> Result<crate::Value, BoxError> {
        Ok(self.call("process", || vec![to_dynamic(input)], from_dynamic)?)
    }

    fn shutdown(&self) -> Result<(), BoxError> {
        let result = if self.script.has_shutdown {
            self.call("shutdown", Vec::new, |_| Ok(()))
        } else {
            Ok(())
        };
        // Handles kept past the close (in `this`, returned) are refused.
        self.deps.close();
        Ok(result?)
    }
}

impl Drop for ScriptModule {
    /// An instance's state may nest as deep as its limits allow: it is
    /// dropped on the script stack too.
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut());
        if run_limited(&self.limits, move || drop(state)).is_err() {
            // No stack could be reserved: the state was dropped where we are.
        }
    }
}
