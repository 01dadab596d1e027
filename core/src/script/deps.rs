//! `this.deps`: what a script module sees of the dependencies it declares.
//!
//! Each dependency is an object map `#{ name, version, process }` whose
//! `process` is a function pointer to native code. Rhai calls a function
//! pointer held in a map's property before it looks for a function of that
//! name, so `this.deps["log-parse"].process(x)` reaches the dependency even
//! when the module defines its own `fn process` (an instance type with a
//! registered `process` method would lose to the script's function and
//! recurse). The map is put into `this` afresh for every call and taken out
//! after, so a script that replaces or changes `this.deps` changes only what
//! that call sees. A handle kept past the module's close (stored in `this`,
//! returned) is refused from then on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;
use rhai::{Dynamic, EvalAltResult, FnPtr, ImmutableString, Map, Position};

use super::convert::{from_dynamic, to_dynamic};
use crate::instance::ModuleInstance;

/// The key of `this` that holds the dependencies.
pub(crate) const DEPS_KEY: &str = "deps";

fn runtime(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message),
        Position::NONE,
    ))
}

/// The dependencies of one script module instance, as scripts see them.
pub(crate) struct ScriptDeps {
    map: Map,
    /// Set once the owning instance has shut down: every handle is refused.
    closed: Arc<AtomicBool>,
}

impl ScriptDeps {
    /// The handles for `dependencies` (by the names the module declared),
    /// owned by module `owner`.
    pub(crate) fn new(owner: &str, dependencies: &IndexMap<String, Arc<ModuleInstance>>) -> Self {
        let closed = Arc::new(AtomicBool::new(false));
        let map = dependencies
            .iter()
            .map(|(name, instance)| {
                let handle = handle(owner, name, instance.clone(), closed.clone());
                (ImmutableString::from(name.as_str()).into(), handle)
            })
            .collect();
        ScriptDeps { map, closed }
    }

    /// The map to bind as `this.deps` for one call.
    pub(crate) fn for_call(&self) -> Dynamic {
        Dynamic::from_map(self.map.clone())
    }

    /// Refuses every handle from now on (the owner is closed).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// `#{ name, version, process }` for one dependency.
fn handle(
    owner: &str,
    name: &str,
    instance: Arc<ModuleInstance>,
    closed: Arc<AtomicBool>,
) -> Dynamic {
    let mut map = Map::new();
    map.insert("name".into(), Dynamic::from(instance.name().to_string()));
    map.insert(
        "version".into(),
        Dynamic::from(instance.version().to_string()),
    );
    let owner = owner.to_string();
    let dep = name.to_string();
    #[allow(deprecated)] // `from_fn` is marked volatile, not deprecated
    let process = FnPtr::from_fn("process", move |_context, args| {
        if closed.load(Ordering::SeqCst) {
            return Err(runtime(format!(
                "this.deps[{dep:?}] was used after module {owner:?} was closed"
            )));
        }
        // Called as a method the map comes first; through `call`, only the input.
        let n = args.len();
        if n == 0 || n > 2 {
            return Err(runtime(format!(
                "this.deps[{dep:?}].process takes one input"
            )));
        }
        let input = from_dynamic(std::mem::take(&mut *args[n - 1])).map_err(super::api::fail)?;
        let out =
            super::engine::call_within_deadline(&instance, input)?.map_err(super::api::fail)?;
        Ok(to_dynamic(out))
    })
    .expect("`process` is a valid function name");
    map.insert("process".into(), Dynamic::from(process));
    Dynamic::from_map(map)
}
