//! The one error type of the crate.
//!
//! Every fallible operation returns [`Result<T>`]. Each variant stands for one
//! cause and its message names what it concerns: the module, the version, the
//! requirement, the chain of dependencies or the file.
//!
//! An error's `Display` says only its own level; what caused it is its
//! [`source`](std::error::Error::source), down to the module's own error, so
//! that `anyhow`'s `{:#}` and [`Error::report`] print each level once:
//!
//! ```
//! use module_registry::{ModuleConfig, ModuleRegistry, Value};
//!
//! let registry = ModuleRegistry::new();
//! registry.register(ModuleConfig::new().with_name("parse").with_handler(|input: Value| {
//!     let n: i64 = input.as_str().unwrap_or_default().parse()?; // any error type
//!     Ok(Value::from(n))
//! }))?;
//! let err = registry.create("parse")?.process("twelve").unwrap_err();
//! assert_eq!(err.to_string(), "module parse@0.1.0 failed in process");
//! assert_eq!(
//!     err.report(),
//!     "module parse@0.1.0 failed in process: invalid digit found in string"
//! );
//! // The module's own error, as it was returned:
//! let own = err.root_cause().downcast_ref::<std::num::ParseIntError>();
//! assert!(own.is_some());
//! # Ok::<(), module_registry::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::kind::ModuleKind;

mod debug;
mod kinds;
mod script;
mod typed;
pub use kinds::ErrorKind;
use script::called_from;
pub use script::ScriptFrame;
pub use typed::{CheckedCall, WorkflowTypeError};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A foreign error carried inside an [`Error`] (for example a Python exception
/// raised inside a Python module). Bindings put their own error here and get it
/// back by downcasting.
pub type ExternalError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Any error, boxed: what module code returns ([`Module`](crate::Module)'s
/// methods, handlers, factories), so that `?` works on every error type
/// (`ParseIntError`, `std::io::Error`, this crate's [`Error`], ...). The
/// registry turns it into an [`Error`]: this crate's own errors come back
/// as themselves, any other as [`Error::External`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the registry.
///
/// Match on the variant to act on a cause; each names what it concerns.
///
/// ```
/// use module_registry::{Error, ModuleConfig, ModuleRegistry};
///
/// let registry = ModuleRegistry::new();
/// registry.register(
///     ModuleConfig::new()
///         .with_name("report")
///         .with_dependency("renderer", "^2"),
/// )?;
/// match registry.create("report") {
///     Err(Error::MissingDependency { dependency, requirement, chain, .. }) => {
///         assert_eq!((dependency.as_str(), requirement.as_str()), ("renderer", "^2"));
///         assert_eq!(chain, ["report@0.1.0"]);
///     }
///     other => panic!("{other:?}"),
/// }
/// let err = registry.create("nothing").unwrap_err();
/// assert_eq!(err.code(), "not_found");
/// assert_eq!(err.to_string(), r#"no module named "nothing" is registered"#);
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A module name, capability or metadata key does not follow the naming
    /// rule `[a-z0-9][a-z0-9._-]{0,127}`.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What was being named ("module name", "capability", "dependency name", ...).
        what: &'static str,
        /// The offending text.
        value: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A version string is not valid semver.
    #[error("invalid version {version:?} for {name:?}: {reason}")]
    InvalidVersion {
        /// The module whose version it is (may be empty when unknown).
        name: String,
        /// The offending text.
        version: String,
        /// The parser's explanation.
        reason: String,
    },

    /// A version requirement is not valid semver requirement syntax.
    #[error("invalid version requirement {requirement:?} for {name:?}: {reason}")]
    InvalidRequirement {
        /// The module (or dependency) the requirement is about.
        name: String,
        /// The offending text.
        requirement: String,
        /// The parser's explanation.
        reason: String,
    },

    /// A declaration is incomplete or inconsistent (for example it has no
    /// name, or a marketplace plugin lacks its listing metadata).
    #[error("invalid configuration for {name:?}: {reason}")]
    InvalidConfig {
        /// The module concerned (`"<unnamed>"` when it has no name).
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// The same name and version is already registered for that kind.
    #[error("{kind} {name}@{version} is already registered (use replace to overwrite it)")]
    AlreadyRegistered {
        /// Module or plugin.
        kind: ModuleKind,
        /// Its name.
        name: String,
        /// Its version.
        version: String,
    },

    /// No module of that name (or none whose version satisfies the requirement).
    #[error("{}", not_found_message(*kind, name, requirement.as_deref(), available))]
    NotFound {
        /// Module or plugin.
        kind: ModuleKind,
        /// The name asked for.
        name: String,
        /// The version requirement asked for, if any.
        requirement: Option<String>,
        /// The versions of that name that are registered (empty if none).
        available: Vec<String>,
    },

    /// The module was declared without an implementation, so it cannot be created.
    #[error("{kind} {name}@{version} is a declaration without an implementation; it can be discovered but not created")]
    NoImplementation {
        /// Module or plugin.
        kind: ModuleKind,
        /// Its name.
        name: String,
        /// Its version.
        version: String,
    },

    /// A dependency names a module that does not exist, or no version of it
    /// satisfies the requirement.
    #[error("missing dependency {dependency} {requirement} (required by {}){}", chain.join(" -> "), available_suffix(available))]
    MissingDependency {
        /// The dependency's name.
        dependency: String,
        /// The requirement that could not be met.
        requirement: String,
        /// The chain of modules that led to it, root first (`name@version`).
        chain: Vec<String>,
        /// The versions of the dependency that exist (empty if none).
        available: Vec<String>,
    },

    /// Two or more requirements on one module cannot be satisfied by a single version.
    #[error("version conflict on {dependency}: {}", requirements.join("; "))]
    VersionConflict {
        /// The module required in incompatible versions.
        dependency: String,
        /// Each requirement with the chain that imposed it.
        requirements: Vec<String>,
    },

    /// The dependencies form a cycle.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    DependencyCycle {
        /// The cycle, first element repeated at the end (`name@version`).
        cycle: Vec<String>,
    },

    /// Dependency resolution gave up after exploring too many alternatives.
    #[error("dependency resolution for {module} gave up after {steps} steps")]
    ResolutionLimit {
        /// The root module being resolved.
        module: String,
        /// How many steps were explored.
        steps: usize,
    },

    /// Code inside a module (factory, `init`, `process` or `shutdown`) failed
    /// or panicked. The module's own error is the `source`.
    #[error("module {module}@{version} failed in {operation}")]
    ModuleFailed {
        /// The module's name.
        module: String,
        /// The module's version.
        version: String,
        /// Which hook failed: `factory`, `init`, `process` or `shutdown`.
        operation: &'static str,
        /// What the module reported.
        #[source]
        source: Box<Error>,
    },

    /// A module panicked; the payload's text is kept.
    #[error("panic: {message}")]
    Panic {
        /// The panic message.
        message: String,
    },

    /// An instance was used after it was closed.
    #[error("instance of {module}@{version} is closed")]
    InstanceClosed {
        /// The module's name.
        module: String,
        /// The module's version.
        version: String,
    },

    /// A module received input of a type or shape it cannot handle.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What was expected and what came.
        message: String,
    },

    /// A feature of the registry is switched off (see
    /// [`ModuleRegistry::with_workflow_orchestration`](crate::ModuleRegistry::with_workflow_orchestration)
    /// and [`ModuleRegistry::with_plugin_marketplace`](crate::ModuleRegistry::with_plugin_marketplace)).
    #[error("{feature} is disabled on this registry; enable it with {hint}")]
    FeatureDisabled {
        /// The feature.
        feature: &'static str,
        /// How to switch it on.
        hint: &'static str,
    },

    /// Encoding or decoding data (JSON, ...) failed.
    #[error("serialization error: {message}")]
    Serialization {
        /// The underlying message.
        message: String,
    },

    /// A file could not be read or written.
    #[error("i/o error on {path}")]
    Io {
        /// The file concerned.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A script failed to compile, declared itself wrongly, or failed (or hit
    /// a limit) while running. Names the script (its path, or its module name
    /// for scripts given as text) and, where known, the line and column.
    /// An error inside a function names the file that holds the failing
    /// line (a library's, for a function it defines) and the call chain
    /// below it (`trace`).
    #[error("script error in {script}{}: {message}{}", location(*line, *column), called_from(trace))]
    Script {
        /// The path, or the module's name for a script given as text, of
        /// the script holding the failing line.
        script: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What went wrong.
        message: String,
        /// The value the script threw (`throw #{ code: 42 }`), converted;
        /// `None` for other errors.
        value: Option<Box<crate::Value>>,
        /// The call chain, innermost first: the failing line, then each
        /// call below it (empty when the error is not in a function).
        trace: Vec<ScriptFrame>,
    },

    /// A workflow is invalid (rejected before any step runs), or one of its
    /// steps failed. Names the workflow and the step; a step's own error is
    /// the `source`.
    #[error("workflow {workflow:?}{}: {message}", step.as_deref().map(|s| format!(", step {s:?}")).unwrap_or_default())]
    Workflow {
        /// The workflow's name.
        workflow: String,
        /// The step concerned, if any.
        step: Option<String>,
        /// What went wrong.
        message: String,
        /// The step's own error (the module's failure), if any.
        #[source]
        source: Option<Box<Error>>,
    },

    /// The principal lacks the permission for the operation.
    #[error("permission denied: {principal:?} may not {operation} {module:?}")]
    PermissionDenied {
        /// Who asked.
        principal: String,
        /// What they asked to do (`register`, `create`, ...).
        operation: String,
        /// The module concerned (`*` when none).
        module: String,
    },

    /// Content does not match the SHA-256 digest it was pinned to.
    #[error("integrity check failed for {subject}: expected sha256 {expected}, got {actual}")]
    Integrity {
        /// What was checked (a script path or name).
        subject: String,
        /// The pinned digest.
        expected: String,
        /// The digest of what was found.
        actual: String,
    },

    /// A signature does not verify (or is missing) for content that a
    /// trusted key must have signed.
    #[error("signature check failed for {subject}: {reason}")]
    Signature {
        /// What was checked (an index URL).
        subject: String,
        /// Why it failed.
        reason: String,
    },

    /// Something could not be downloaded or read (a package index, a
    /// package file): unreachable, refused, too big, too slow.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// The URL or path.
        url: String,
        /// Why it failed.
        reason: String,
    },

    /// A call did not return before its deadline and was abandoned (its
    /// late result is discarded).
    #[error("timed out after {after_ms} ms (the call was abandoned)")]
    Timeout {
        /// How long was waited.
        after_ms: u64,
    },

    /// An instance pool has no instance to call: every provider is cooling
    /// down after repeated failures (its circuit is open), or it was closed.
    #[error("{subject} is unavailable: {reason}")]
    Unavailable {
        /// The pool (its target).
        subject: String,
        /// Why, and for how long.
        reason: String,
    },

    /// The host asked to stop while a module ran (Python's `KeyboardInterrupt`
    /// or `SystemExit` inside a module): a workflow step failing with it is
    /// not retried, skipped or replaced by its fallback, and the run ends.
    #[error("interrupted")]
    Interrupted {
        /// A one-line description.
        message: String,
        /// The original signal (a binding hands it back unchanged).
        #[source]
        source: ExternalError,
    },

    /// A type (a type expression or a JSON Schema) cannot be read or built:
    /// bad syntax, a JSON Schema keyword the type cannot express, a `$ref`
    /// loop, or past the bounds ([`schema::MAX_DEPTH`](crate::schema::MAX_DEPTH),
    /// [`schema::MAX_NODES`](crate::schema::MAX_NODES)).
    #[error("invalid type{}: {reason}", if schema.is_empty() { String::new() } else { format!(" {schema:?}") })]
    InvalidSchema {
        /// The text refused (its first 80 characters; empty when built in code).
        schema: String,
        /// What is wrong, and where.
        reason: String,
    },

    /// A value does not fit a type ([`Schema::validate`](crate::Schema::validate));
    /// with validation on, `call` says whose value it is.
    #[error("{} at {path} does not fit: expected {expected}, found {found}", typed::subject(call.as_deref()))]
    SchemaMismatch {
        /// Where in the value (`$`, `$.tags[2]`, `$["a key"]`).
        path: String,
        /// The type expected there, as a type expression.
        expected: String,
        /// What was found there: its type (`int`), or the value itself when
        /// checked against literals (`"slow"`).
        found: String,
        /// The module, step and role (`input`, `output`) of the checked
        /// call; `None` for [`Schema::validate`](crate::Schema::validate).
        call: Option<Box<CheckedCall>>,
    },

    /// A workflow's types do not fit, found before any step runs (see
    /// [`WorkflowTypeError`]).
    #[error("{0}")]
    WorkflowType(Box<WorkflowTypeError>),

    /// An error from outside this crate (a module's `ParseIntError`, a
    /// Python exception), carried unchanged so a binding can hand the
    /// original back. Transparent: it reads as the original error, and its
    /// `source` is the original's.
    #[error(transparent)]
    External {
        /// The original error.
        source: ExternalError,
    },
}

fn not_found_message(
    kind: ModuleKind,
    name: &str,
    requirement: Option<&str>,
    available: &[String],
) -> String {
    match (requirement, available.is_empty()) {
        (_, true) => format!("no {kind} named {name:?} is registered"),
        (Some(req), false) => format!(
            "no version of {kind} {name:?} satisfies {req:?} (available: {})",
            available.join(", ")
        ),
        (None, false) => format!("no {kind} named {name:?} is registered"),
    }
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at {l}:{c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

fn available_suffix(available: &[String]) -> String {
    if available.is_empty() {
        "; no module of that name is registered".to_string()
    } else {
        format!("; available versions: {}", available.join(", "))
    }
}

impl Error {
    /// An [`Error::InvalidInput`] with the given message, for module authors.
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Error::InvalidInput {
            message: message.to_string(),
        }
    }

    /// Wrap a foreign error ([`Error::External`]).
    pub fn external<E>(error: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::External {
            source: Arc::new(error),
        }
    }

    /// The error and each of its causes, joined by `": "` (as `anyhow`'s
    /// `{:#}` prints them): `module parse@1.0.0 failed in process: invalid
    /// digit found in string`.
    pub fn report(&self) -> String {
        use std::error::Error as _;
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
    }

    /// The foreign error inside an [`Error::External`], as `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            Error::External { source } => source.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// An [`Error::Interrupted`] carrying the host's stop request.
    pub fn interrupted<E>(signal: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Interrupted {
            message: signal.to_string(),
            source: Arc::new(signal),
        }
    }

    /// This error as the failure of input `index` of a batch: a workflow
    /// error's message starts with `input #index: `; other errors are
    /// returned as they are.
    pub fn at_input(self, index: usize) -> Error {
        match self {
            Error::Workflow {
                workflow,
                step,
                message,
                source,
            } => Error::Workflow {
                workflow,
                step,
                message: format!("input #{index}: {message}"),
                source,
            },
            other => other,
        }
    }

    /// The [`Error::Interrupted`] this error is or wraps (through module
    /// failures and workflow steps), if any.
    pub fn interruption(&self) -> Option<&Error> {
        match self {
            Error::Interrupted { .. } => Some(self),
            Error::ModuleFailed { source, .. } => source.interruption(),
            Error::Workflow {
                source: Some(source),
                ..
            } => source.interruption(),
            _ => None,
        }
    }

    /// A short, stable name of the variant (`"not_found"`, `"module_failed"`, ...),
    /// used by bindings and in audit events: [`ErrorKind::code`] of [`kind`](Self::kind).
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Follows module failures and failed workflow steps down to the error
    /// the module itself reported (for a foreign error, the
    /// [`Error::External`] carrying it: see [`downcast_ref`](Self::downcast_ref)).
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::ModuleFailed { source, .. } => source.root_cause(),
            Error::Workflow {
                source: Some(source),
                ..
            } => source.root_cause(),
            other => other,
        }
    }
}

impl From<BoxError> for Error {
    /// This crate's error as itself; any other as [`Error::External`].
    fn from(error: BoxError) -> Self {
        match error.downcast::<Error>() {
            Ok(own) => *own,
            Err(other) => Error::External {
                source: Arc::from(other),
            },
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Serialization {
            message: e.to_string(),
        }
    }
}
