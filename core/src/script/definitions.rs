//! What a script can call, described: every host function is registered
//! with its signature (named parameters, Rhai type names) and, for the
//! script API, a one-line description and an example (Rhai's `metadata`).
//! From that one record come the Rhai language server's definition files
//! (`.d.rhai`, [`ModuleRegistry::script_definitions`]) and the Markdown
//! reference of the script API ([`ModuleRegistry::script_reference`],
//! committed as `docs/reference/script-api.md`).

use std::path::{Path, PathBuf};

use rhai::FuncRegistration;

use crate::error::{Error, Result};
use crate::registry::ModuleRegistry;

/// A registration named by `signature`: `name(param: Type, ...) -> Type`
/// (no `->` returns `()`), or `get name(this: Type) -> Type` and
/// `set name(this: Type, value: Type)` for a property.
pub(crate) fn signature(signature: &str) -> FuncRegistration {
    let (head, rest) = signature.split_once('(').unwrap_or((signature, ")"));
    let (params, ret) = rest.rsplit_once(')').unwrap_or((rest, ""));
    let ret = ret.trim().strip_prefix("->").map_or("()", str::trim);
    let mut info: Vec<&str> = params
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    info.push(ret);
    let registration = match head.trim().split_once(' ') {
        Some(("get", name)) => FuncRegistration::new_getter(name.trim()),
        Some(("set", name)) => FuncRegistration::new_setter(name.trim()),
        _ => FuncRegistration::new(head.trim()),
    };
    registration.with_params_info(info)
}

/// [`signature`] with a one-line description and an example of its use,
/// as the doc comment the language server shows and the reference prints.
pub(crate) fn described(sig: &str, doc: &str, example: &str) -> FuncRegistration {
    let mut comment = format!("/// {doc}");
    if !example.is_empty() {
        comment.push_str("\n///\n/// ```rhai");
        for line in example.lines() {
            comment.push_str("\n/// ");
            comment.push_str(line);
        }
        comment.push_str("\n/// ```");
    }
    signature(sig).with_comments([comment])
}

/// The globals and `this.deps`, which are not functions: written as a
/// definition file of their own.
const GLOBALS: &str = "module static;

/// The registry, in an orchestration script (`run_script`) and in a Rhai
/// test file; a script module has no `registry` (its reach is its
/// declared dependencies, `this.deps`).
const registry: Registry;

/// The input of an orchestration script (`run_script(text, input)`).
const input: ?;

/// Inside a script module's `init`, `process` and `shutdown`, `this` is the
/// instance's state (a map) and `this.deps` maps each declared dependency's
/// name to `#{ name: String, version: String, process: Fn }`:
/// `this.deps[\"log-parse\"].process(x)` runs that dependency.
///
/// A script module declares itself in a constant map, readable inside it:
/// `const MODULE = #{ name, version, capabilities, dependencies, ... };`
";

/// The name of the definition file holding [`GLOBALS`].
const GLOBALS_FILE: &str = "module-registry-globals.d.rhai";

impl ModuleRegistry {
    /// Writes the Rhai language server's definition files (`.d.rhai`) for
    /// everything a script of this registry can call into `folder`
    /// (created if missing; files of the same names replaced): Rhai's
    /// packages and operators, the `registry` API, instances, pools,
    /// workflows, the native helpers, every function the embedder added
    /// ([`register_script_functions`](Self::register_script_functions),
    /// [`register_script_function`](Self::register_script_function)), and
    /// the globals `registry`, `input` and `this.deps`. Returns the paths
    /// written. A `folder` that is a file or cannot be written is an
    /// [`Error::Io`] naming it. Writes files: under a policy, needs `admin`.
    ///
    /// ```
    /// let registry = module_registry::ModuleRegistry::new();
    /// let folder = std::env::temp_dir().join(format!("defs-{}", std::process::id()));
    /// let files = registry.script_definitions(&folder)?;
    /// assert!(files.iter().any(|f| f.ends_with("__static__.d.rhai")));
    /// # std::fs::remove_dir_all(&folder).ok();
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn script_definitions(&self, folder: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        // Writing files names what the process may write: an administrator's act.
        self.authorize(crate::access::Permission::Admin, "script_definitions", None)?;
        let folder = folder.as_ref();
        let io = |path: &Path, source: std::io::Error| Error::Io {
            path: path.display().to_string(),
            source,
        };
        if folder.exists() && !folder.is_dir() {
            let e = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "not a folder");
            return Err(io(folder, e));
        }
        std::fs::create_dir_all(folder).map_err(|e| io(folder, e))?;
        let engine = super::host(self).engine();
        let mut files: Vec<(String, String)> = engine.definitions().iter_files().collect();
        files.push((GLOBALS_FILE.to_string(), GLOBALS.to_string()));
        let mut written = Vec::with_capacity(files.len());
        for (name, text) in files {
            let path = folder.join(name);
            std::fs::write(&path, tidy(&text)).map_err(|e| io(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }

    /// The Markdown reference of the script API of this registry: every
    /// described function (the `registry` API, instances, pools,
    /// workflows, the native helpers, `assert`), grouped by what it is
    /// called on, each with its parameters, a one-line description and an
    /// example. `docs/reference/script-api.md` is this for a new registry.
    pub fn script_reference(&self) -> String {
        super::reference::markdown(&super::host(self).engine())
    }
}

/// Rhai's definitions with what its own packages (and an embedder's plain
/// `register_fn`) leave unsaid made explicit: a parameter without a name
/// is named by its position (`arg1`), a missing return type is `?`.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let declares = line.starts_with("fn ") || line.starts_with("op ");
        match line.split_once('(') {
            Some((head, rest)) if declares => {
                let (params, tail) = rest.rsplit_once(')').unwrap_or((rest, ""));
                let named: Vec<String> = params
                    .split(", ")
                    .enumerate()
                    .map(|(i, p)| match p.strip_prefix("_:") {
                        Some(ty) => format!("arg{}:{ty}", i + 1),
                        None => p.to_string(),
                    })
                    .collect();
                out.push_str(head);
                out.push('(');
                out.push_str(&named.join(", "));
                out.push(')');
                out.push_str(&tail.replace("-> ;", "-> ?;"));
            }
            _ => out.push_str(line),
        }
    }
    out
}
