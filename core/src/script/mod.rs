//! Rhai scripts: script modules loaded while the program runs, and
//! orchestration scripts that drive the registry.
//!
//! A script module declares itself in a constant object map `MODULE` (all
//! values literal) and defines `fn process(input)`, optionally
//! `fn init(config)` and `fn shutdown()`. Each instance has its own state, an
//! object map bound as `this` in all three:
//!
//! ```
//! use module_registry::{ModuleRegistry, Value};
//!
//! let registry = ModuleRegistry::new();
//! registry.register_script(r#"
//!     const MODULE = #{ name: "counter", version: "1.0.0", capabilities: ["count"] };
//!     fn init(config) { this.step = config ?? 1; }
//!     fn process(input) { this.total = (this.total ?? 0) + this.step; this.total }
//! "#)?;
//! let counter = registry.create("counter")?;
//! counter.process(())?;
//! assert_eq!(counter.process(())?, Value::Int(2));
//!
//! // An orchestration script: `registry` and `input` are bound, the last expression is the result.
//! let out = registry.run_script(r#"
//!     let c = registry.create("counter");
//!     c.process(()) + input
//! "#, 10i64)?;
//! assert_eq!(out, Value::Int(11));
//! # Ok::<(), module_registry::Error>(())
//! ```
//!
//! Every script runs under [`ScriptLimits`]: operations, call depth,
//! expression depth, string/array/map sizes and wall-clock time per call. A
//! script is compiled once; all its instances share the compiled form.
//! Reloading a script of the same name and version replaces it for new
//! instances, while instances already built keep the code they were built
//! with. Scripts have no file, network or process access; `import "x"` loads
//! `x.rhai` from the script's own folder, at load time.

mod api;
mod asserts;
mod calls;
mod convert;
mod definitions;
mod deps;
mod engine;
mod helper;
mod load;
mod memory;
mod module;
mod opaque;
mod output;
mod pool_api;
mod reference;
mod stack;
mod testing;
mod text;
mod value_fn;
#[cfg(feature = "watch")]
pub mod watch;
#[cfg(feature = "workflows")]
mod workflow_api;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rhai::{Engine, Scope};

pub use api::{ScriptInstance, ScriptRegistry};
pub use convert::{from_dynamic, to_dynamic, OpaqueHandle};
pub use engine::ScriptLimits;
pub use memory::{memory_limit_enforced, ScriptAllocator};
pub use output::{set_default_script_output, ScriptOutput, ScriptOutputHook, ScriptOutputKind};
pub use pool_api::ScriptPool;
pub use stack::{on_thread_stack, running_on_script_stack, MIN_THREAD_STACK_LEFT};
pub use testing::{is_script_test_file, ScriptTest, ScriptTests};
pub use value_fn::{ScriptFunction, MAX_SCRIPT_FUNCTION_ARGS};
#[cfg(feature = "workflows")]
pub use workflow_api::ScriptWorkflow;

use self::engine::{build_engine, run_limited, ImportResolver};
use self::module::{declaration, parse_error, script_error, CompiledScript, ScriptModule};
use crate::config::{ImportedScript, ModuleConfig};
use crate::error::{Error, Result};
use crate::module::Module;
use crate::registry::ModuleRegistry;

/// A registry's script engine and its limits, kept as one of the registry's
/// [extensions](ModuleRegistry::extension). The engine is built on first use
/// and rebuilt when the limits change; instances keep the engine they were
/// built with.
#[derive(Default)]
pub(crate) struct ScriptHost {
    limits: RwLock<ScriptLimits>,
    engine: RwLock<Option<Arc<Engine>>>,
    /// What the embedder adds to every engine (see
    /// [`ModuleRegistry::register_script_functions`]), in order.
    setups: RwLock<Vec<EngineSetup>>,
    /// Where its scripts' `print` and `debug` go.
    output: Arc<output::OutputSlot>,
}

/// A function that adds Rust functions or types to a script engine.
pub type EngineSetup = Arc<dyn Fn(&mut Engine) + Send + Sync>;

impl ScriptHost {
    pub(crate) fn limits(&self) -> ScriptLimits {
        *self.limits.read()
    }

    pub(crate) fn set_limits(&self, limits: ScriptLimits) {
        *self.limits.write() = limits;
        *self.engine.write() = None;
    }

    pub(crate) fn engine(&self) -> Arc<Engine> {
        if let Some(e) = self.engine.read().as_ref() {
            return e.clone();
        }
        // Built with no lock held: an embedder's setup may use the registry.
        let built = Arc::new(self.build(&self.limits(), None, false));
        self.engine.write().get_or_insert(built).clone()
    }

    /// An engine with these limits and imports, and the embedder's setups.
    fn build(
        &self,
        limits: &ScriptLimits,
        resolver: Option<ImportResolver>,
        strict: bool,
    ) -> Engine {
        let mut engine = build_engine(limits, resolver, &self.output);
        engine.set_strict_variables(strict);
        let setups = self.setups.read().clone();
        for setup in setups {
            // Each setup was tried once when it was added; one that panics
            // now is left out rather than taking the caller down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup(&mut engine)));
        }
        engine
    }

    /// Adds `setup` to every engine built from now on.
    fn add_setup(&self, setup: EngineSetup) {
        self.setups.write().push(setup);
        *self.engine.write() = None;
    }

    /// Compiles `source`; its imports are resolved now (from `imports`) and
    /// embedded in the compiled script, which also lists them. A module
    /// (`strict`) is compiled with Rhai's strict variables, so a variable
    /// defined nowhere is an error now, with its position; its `MODULE` is
    /// a constant its functions can read.
    fn compile(
        &self,
        label: &str,
        source: &str,
        imports: Imports<'_>,
        strict: bool,
    ) -> Result<AstAndFlags> {
        let limits = self.limits();
        let resolver = match imports {
            Imports::None => None,
            Imports::Folder(dir) => Some(ImportResolver::folder(dir)),
            Imports::Recorded(list) => {
                for import in list {
                    check_pin(&import.path, &import.source, Some(&import.sha256))?;
                }
                Some(ImportResolver::recorded(list))
            }
        };
        let served = resolver.as_ref().map(ImportResolver::served);
        let own_engine;
        let shared;
        let engine: &Engine = match resolver {
            Some(resolver) => {
                own_engine = self.build(&limits, Some(resolver), strict);
                &own_engine
            }
            None if strict => {
                own_engine = self.build(&limits, None, strict);
                &own_engine
            }
            None => {
                shared = self.engine();
                &shared
            }
        };
        // The parser recurses once per level of nesting: it runs on the
        // script stack too. Syntax errors surface first, with their position.
        let mut ast = run_limited(&limits, || {
            let mut scope = Scope::new();
            if strict {
                // Known to the check; its value is read from the first pass.
                scope.push_constant("MODULE", ());
            }
            let first = engine
                .compile_with_scope(&scope, source)
                .map_err(|e| parse_error(label, &e))?;
            if let Some((_, _, module)) = first
                .iter_literal_variables(true, false)
                .find(|(name, _, _)| *name == "MODULE")
            {
                // Functions read it as a constant (the optimiser puts it in).
                scope = Scope::new();
                scope.push_constant_dynamic("MODULE", module);
            }
            engine
                .compile_into_self_contained(&scope, source)
                .map_err(|e| script_error(label, &e, self))
        })??;
        ast.set_source(label.to_string());
        let has = |name: &str| ast.iter_functions().any(|f| f.name == name);
        let (has_init, has_shutdown) = (has("init"), has("shutdown"));
        let imports = served.map_or_else(Vec::new, |served| {
            let served = served.lock();
            served
                .iter()
                .map(|(path, source)| ImportedScript {
                    path: path.clone(),
                    sha256: crate::native::sha256_hex(source.as_bytes()),
                    source: source.clone(),
                })
                .collect()
        });
        Ok(AstAndFlags {
            ast,
            needs_eval: source.contains("import"),
            has_init,
            has_shutdown,
            imports,
        })
    }
}

/// Where a script's `import`s come from while it is compiled.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Imports<'a> {
    /// Nowhere: a script that imports fails to compile.
    None,
    /// The scripts of a folder.
    Folder(&'a Path),
    /// Sources recorded when it was first compiled (each checked against
    /// its digest first).
    Recorded(&'a [ImportedScript]),
}

impl<'a> From<Option<&'a Path>> for Imports<'a> {
    fn from(folder: Option<&'a Path>) -> Self {
        folder.map_or(Imports::None, Imports::Folder)
    }
}

struct AstAndFlags {
    ast: rhai::AST,
    needs_eval: bool,
    has_init: bool,
    has_shutdown: bool,
    imports: Vec<ImportedScript>,
}

/// The script host of `registry`.
pub(crate) fn host(registry: &ModuleRegistry) -> Arc<ScriptHost> {
    registry.extension::<ScriptHost>()
}

/// Checks `source` against a pinned SHA-256 (hex, any case); returns its digest.
fn check_pin(label: &str, source: &str, sha256: Option<&str>) -> Result<String> {
    let actual = crate::native::sha256_hex(source.as_bytes());
    if let Some(expected) = sha256 {
        let expected = expected.trim().to_ascii_lowercase();
        if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidConfig {
                name: label.to_string(),
                reason: format!("sha256 pin must be 64 hex digits, not {expected:?}"),
            });
        }
        if expected != actual {
            return Err(Error::Integrity {
                subject: label.to_string(),
                expected,
                actual,
            });
        }
    }
    Ok(actual)
}

/// A script module ready to register: its declaration with the factory
/// attached. `path` is the file it came from; `sha256` a pin to check first.
fn prepare_pinned(
    host: &Arc<ScriptHost>,
    label: &str,
    source: &str,
    imports: Imports<'_>,
    path: Option<&Path>,
    sha256: Option<&str>,
) -> Result<Option<ModuleConfig>> {
    prepare_checked(host, label, source, imports, path, sha256, None).map(|(config, _)| config)
}

/// [`prepare_pinned`], and with `known` the error for the script's calls
/// to functions that exist nowhere (what `check_scripts` reports; loading
/// does not refuse them).
fn prepare_checked(
    host: &Arc<ScriptHost>,
    label: &str,
    source: &str,
    imports: Imports<'_>,
    path: Option<&Path>,
    sha256: Option<&str>,
    known: Option<&calls::KnownFunctions>,
) -> Result<(Option<ModuleConfig>, Option<Error>)> {
    let digest = check_pin(label, source, sha256)?;
    let mut compiled = host.compile(label, source, imports, true)?;
    let unknown = known.and_then(|k| k.unknown_calls(label, &compiled.ast));
    let Some(config) = declaration(label, &compiled.ast)? else {
        return Ok((None, unknown));
    };
    // A script given as text has no file: once its declaration is read,
    // what it runs into names it by its module's name.
    let running = if label == TEXT_LABEL {
        compiled.ast.set_source(config.name().to_string());
        config.name()
    } else {
        label
    };
    let script = Arc::new(CompiledScript {
        label: running.to_string(),
        ast: compiled.ast,
        needs_eval: compiled.needs_eval,
        has_init: compiled.has_init,
        has_shutdown: compiled.has_shutdown,
    });
    let host = host.clone();
    let has_init = script.has_init;
    let name = config.name().to_string();
    let config = config
        .with_metadata("script", label)
        .with_factory(move |context| {
            let module = ScriptModule::new(script.clone(), host.clone(), context);
            Ok(Box::new(output::Named::new(&name, module)) as Box<dyn Module>)
        })
        .with_implementation(crate::config::Implementation::Rhai(Arc::new(
            crate::config::ScriptSource {
                source: source.to_string(),
                path: path.map(|p| p.display().to_string()),
                sha256: digest,
                imports: compiled.imports,
            },
        )));
    // Only `init(config)` sees a script's config: without one it is refused.
    let config = if has_init {
        config
    } else {
        config.without_config()
    };
    Ok((Some(config), unknown))
}

/// The label of a script module given as text until its declaration is
/// read (its errors then name its module).
pub(crate) const TEXT_LABEL: &str = "<source>";

/// The error for a script that declares no `MODULE` where a module is expected.
fn not_a_module(label: &str) -> Error {
    Error::script(
        label.to_string(),
        None,
        None,
        "the script declares no MODULE constant, so it is not a module",
    )
}

/// The largest script file read (a module, a library it imports, an
/// orchestration script, a watched file; as a package file's cap): 4 MiB.
pub const MAX_SCRIPT_BYTES: u64 = 4 * 1024 * 1024;

/// Why a script file was not read.
pub(crate) enum Unreadable {
    /// Opening or reading failed.
    Io(std::io::Error),
    /// A folder, FIFO, device or socket.
    NotAFile,
    /// Past [`MAX_SCRIPT_BYTES`]: its size, if known before reading.
    TooBig(Option<u64>),
    /// Not UTF-8: the bytes (which the watcher reports) and the offset of
    /// the first bad one.
    NotUtf8(
        #[cfg_attr(not(feature = "watch"), allow(dead_code))] Vec<u8>,
        usize,
    ),
}

impl Unreadable {
    /// The error, naming the file.
    pub(crate) fn into_error(self, path: &Path) -> Error {
        let shown = path.display().to_string();
        match self {
            Unreadable::Io(source) => Error::Io {
                path: shown,
                source,
            },
            Unreadable::NotAFile => {
                Error::invalid_input(format!("{shown} is not a regular file; it was not read"))
            }
            Unreadable::TooBig(size) => Error::invalid_input(format!(
                "{shown} is {} bytes, past the cap of {MAX_SCRIPT_BYTES} bytes (4 MiB) on a script file; it was not read",
                size.map_or_else(|| "more than that".to_string(), |n| n.to_string())
            )),
            Unreadable::NotUtf8(_, at) => Error::invalid_input(format!(
                "{shown} is not UTF-8 text (invalid byte at offset {at})"
            )),
        }
    }
}

/// Reads a script file of at most [`MAX_SCRIPT_BYTES`]: only a regular
/// file, opened without blocking (a FIFO in its place cannot stall the
/// reader), its size checked first and at most one byte past the cap read
/// (a file growing meanwhile, or `/dev/zero` behind a link, is caught too).
pub(crate) fn read_bounded(path: &Path) -> std::result::Result<String, Unreadable> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(Unreadable::Io)?;
    let metadata = file.metadata().map_err(Unreadable::Io)?;
    if !metadata.is_file() {
        return Err(Unreadable::NotAFile);
    }
    if metadata.len() > MAX_SCRIPT_BYTES {
        return Err(Unreadable::TooBig(Some(metadata.len())));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_SCRIPT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Unreadable::Io)?;
    if bytes.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(Unreadable::TooBig(None));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Unreadable::NotUtf8(e.into_bytes(), at)
    })
}

pub(crate) fn read(path: &Path) -> Result<String> {
    read_bounded(path).map_err(|why| why.into_error(path))
}

fn folder_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

impl ModuleRegistry {
    /// Adds Rust functions (or types) to the scripts of this registry:
    /// `setup` runs on every script engine the registry builds from now on,
    /// so scripts loaded later, and instances created later of scripts
    /// loaded before, can call them. Needs `admin` under a policy. A
    /// `setup` that panics is refused (it is tried once on a scratch engine).
    ///
    /// ```
    /// use module_registry::{ModuleRegistry, Value};
    ///
    /// let registry = ModuleRegistry::new();
    /// registry.register_script_functions(|engine: &mut module_registry::rhai::Engine| {
    ///     engine.register_fn("double", |x: i64| x * 2);
    /// })?;
    /// registry.register_script(r#"
    ///     const MODULE = #{ name: "doubler", version: "1.0.0" };
    ///     fn process(x) { double(x) }
    /// "#)?;
    /// assert_eq!(registry.create("doubler")?.process(21i64)?, Value::Int(42));
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn register_script_functions(
        &self,
        setup: impl Fn(&mut Engine) + Send + Sync + 'static,
    ) -> Result<()> {
        self.authorize(
            crate::access::Permission::Admin,
            "register_script_functions",
            None,
        )?;
        let setup: EngineSetup = Arc::new(setup);
        let mut scratch = Engine::new_raw();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup(&mut scratch))).map_err(
            |_| Error::invalid_input("the script functions' setup panicked; nothing was added"),
        )?;
        host(self).add_setup(setup);
        Ok(())
    }
}
