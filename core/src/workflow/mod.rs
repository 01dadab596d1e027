//! Workflows: DAGs of steps, each running a module, built in Rust, Python or
//! Rhai, or loaded from a TOML/JSON file, run in dependency order with
//! independent branches in parallel.
//!
//! ```
//! use module_registry::{ModuleRegistry, Value, Workflow, WorkflowStep};
//!
//! let registry = ModuleRegistry::with_native_modules();
//! let wf = Workflow::new("pack")
//!     .step(WorkflowStep::module("zip", "gzip-compress"))
//!     .step(WorkflowStep::module("unzip", "gzip-decompress"))
//!     .step(WorkflowStep::module("text", "text-decode"));
//! let result = registry.run_workflow(&wf, b"hello")?;
//! assert_eq!(result.output, Value::from("hello"));
//! assert_eq!(result.steps.len(), 3);
//! # Ok::<(), module_registry::Error>(())
//! ```
//!
//! The file form (TOML; JSON has the same keys):
//!
//! ```toml
//! name = "report"
//! input = "str"             # optional: the input's type (default any)
//! output = "digest"          # optional: default is the final step (the one no
//!                            # step reads); with several, a map by step id
//!
//! [[steps]]
//! id = "stats"
//! capabilities = ["text-statistics"]   # or module = "text-stats"
//!
//! [[steps]]
//! id = "digest"
//! module = "sha256"
//! after = []                 # [] = the workflow input; omitted = the previous step
//! retries = 2
//! timeout_ms = 500
//! on_error = "fallback"      # "fail" (default), "skip", "fallback"
//! fallback = "identity"
//! config = { output = "hex" }
//! ```

mod batch;
mod cancel;
mod graph;
mod ids;
mod instances;
mod metrics;
#[cfg(feature = "pictures")]
mod picture;
mod plan;
mod pool;
mod report;
mod run;
mod stream;
mod structure;
#[cfg(feature = "pictures")]
mod svg_text;
mod types;

pub use self::structure::MAX_RETRIES;
pub(crate) use self::structure::{StepInput, Structure};

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use cancel::CancelToken;
pub use ids::StepIds;
pub(crate) use instances::instantiate;
#[cfg(feature = "pictures")]
pub use picture::{run_svg, StepRun};
pub(crate) use plan::plan;
pub use pool::worker_threads;
pub use report::{StepReport, StepStatus, StepText, WorkflowResult};
pub(crate) use run::execute;
pub use stream::{BatchIter, WorkflowBatch};

use crate::error::{Error, Result};
use crate::value::Value;

/// What happens when a step fails after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The workflow fails (default).
    #[default]
    Fail,
    /// The step's output becomes its input, and the run goes on.
    Skip,
    /// The `fallback` module runs on the same input instead.
    Fallback,
}

impl OnError {
    /// `"fail"`, `"skip"` or `"fallback"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Fail => "fail",
            OnError::Skip => "skip",
            OnError::Fallback => "fallback",
        }
    }
}

impl std::str::FromStr for OnError {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fail" => Ok(OnError::Fail),
            "skip" => Ok(OnError::Skip),
            "fallback" => Ok(OnError::Fallback),
            other => Err(format!(
                "on_error must be \"fail\", \"skip\" or \"fallback\", not {other:?}"
            )),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_fail(e: &OnError) -> bool {
    *e == OnError::Fail
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use = "builder methods return the changed value; use it"]
pub struct WorkflowStep {
    /// Unique within the workflow (`[a-z0-9][a-z0-9._-]*`, like module names).
    pub id: String,
    /// The module to run, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Instead of `module`: the highest-version module having all of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// A version requirement on the module (`"^1"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Upstream step ids. `None`: the previous step (the workflow input for
    /// the first step); empty: the workflow input; one id: its output; two or
    /// more: a map from id to output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// Passed to the instance's `init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// The configs of the module's dependencies, by module name (any
    /// module the step's module depends on, directly or not); without one
    /// a dependency gets `Null`. Naming a module that is not among its
    /// dependencies is refused when the step's instance is built.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependency_configs: BTreeMap<String, Value>,
    /// Extra attempts after a failure (`retries = 2`: up to 3 attempts; at
    /// most [`MAX_RETRIES`]). A cancelled run starts no more attempts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Deadline per attempt, in milliseconds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// What a failure does.
    #[serde(default, skip_serializing_if = "is_fail")]
    pub on_error: OnError,
    /// The module to run when `on_error` is `fallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Reuse the output of an earlier run on the same input, code and
    /// config from the registry's cache (see [`crate::cache`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache: bool,
    /// Run the step on a pool of this many instances (see
    /// [`InstancePool`](crate::InstancePool)); a batch then runs that many
    /// inputs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<u32>,
    /// Check the step's input and output against its module's declared
    /// types on every call, whatever the registry's validation mode: a
    /// value that does not fit fails the step with an
    /// [`Error::SchemaMismatch`] naming it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validate: bool,
}

impl WorkflowStep {
    /// A step running module `module`.
    pub fn module(id: impl Into<String>, module: impl Into<String>) -> Self {
        WorkflowStep {
            id: id.into(),
            module: Some(module.into()),
            ..Default::default()
        }
    }

    /// A step running the highest-version module having every capability.
    pub fn capabilities<I, S>(id: impl Into<String>, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        WorkflowStep {
            id: id.into(),
            capabilities: Some(capabilities.into_iter().map(Into::into).collect()),
            ..Default::default()
        }
    }

    /// Require a module version.
    pub fn version(mut self, requirement: impl Into<String>) -> Self {
        self.version = Some(requirement.into());
        self
    }

    /// Take input from these steps; `after([])` takes the workflow input.
    ///
    /// ```
    /// use module_registry::WorkflowStep;
    ///
    /// let first = WorkflowStep::module("a", "identity").after([]);
    /// let join = WorkflowStep::module("j", "identity").after(["a", "b"]);
    /// let built = WorkflowStep::module("k", "identity").after(vec!["a".to_string()]);
    /// assert_eq!(first.after, Some(vec![]));
    /// assert_eq!(join.after.unwrap().len(), 2);
    /// assert_eq!(built.after.unwrap(), ["a"]);
    /// ```
    pub fn after(mut self, ids: impl StepIds) -> Self {
        self.after = Some(ids.into_ids());
        self
    }

    /// Runs on the workflow's input, whatever steps come before it in the
    /// list (the same as `after([])`).
    ///
    /// ```
    /// use module_registry::WorkflowStep;
    /// let first = WorkflowStep::module("b", "identity").after_input();
    /// assert_eq!(first.after, Some(vec![]));
    /// let ids = vec!["a".to_string(), "b".to_string()];
    /// let join = WorkflowStep::module("c", "identity").after(&ids);
    /// let mapped = WorkflowStep::module("d", "identity").after(ids.iter().map(|id| format!("{id}-x")));
    /// assert_eq!(join.after.unwrap(), ["a", "b"]);
    /// assert_eq!(mapped.after.unwrap(), ["a-x", "b-x"]);
    /// ```
    ///
    /// Ids are text; numbers are refused at compile time:
    ///
    /// ```compile_fail
    /// let step = module_registry::WorkflowStep::module("b", "identity").after([1, 2]);
    /// ```
    pub fn after_input(mut self) -> Self {
        self.after = Some(Vec::new());
        self
    }

    /// What happens when the step fails after its retries:
    /// [`OnError::Fail`] (the default), [`OnError::Skip`] (the step's output
    /// is its input) or [`OnError::Fallback`] (the module named by
    /// [`fallback`](Self::fallback) runs instead; without one the workflow
    /// is refused when checked).
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.on_error = policy;
        self
    }

    /// Deadline per attempt (kept in milliseconds, at least 1).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout_ms = Some(
            u64::try_from(timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        self
    }

    /// Per-instance config.
    pub fn config(mut self, config: impl Into<Value>) -> Self {
        self.config = Some(config.into());
        self
    }

    /// The config dependency `name` (a module the step's module depends
    /// on, directly or through another) is built with, as
    /// [`InstanceBuilder::dependency_config`](crate::InstanceBuilder::dependency_config)
    /// does for a single create.
    ///
    /// ```
    /// use module_registry::{ModuleConfig, ModuleRegistry, Value, Workflow, WorkflowStep};
    /// let registry = ModuleRegistry::new();
    /// registry.register(ModuleConfig::new().with_name("db").with_version("1.0.0").with_factory(|ctx| {
    ///     let url = ctx.config().get("url").cloned().unwrap_or(Value::Null);
    ///     Ok(Box::new(module_registry::FnModule::new(move |_| Ok(url.clone()))))
    /// }))?;
    /// registry.register(
    ///     ModuleConfig::new().with_name("app").with_version("1.0.0").with_dependency("db", "^1")
    ///         .with_factory(|ctx| {
    ///             let db = ctx.require("db")?;
    ///             Ok(Box::new(module_registry::FnModule::new(move |_| Ok(db.process(())?))))
    ///         }),
    /// )?;
    /// let wf = Workflow::new("w").step(
    ///     WorkflowStep::module("app", "app").dependency_config("db", Value::from_iter([("url", "sqlite://x")])),
    /// );
    /// assert_eq!(registry.run_workflow(&wf, ())?.output, Value::from("sqlite://x"));
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn dependency_config(mut self, name: impl Into<String>, config: impl Into<Value>) -> Self {
        self.dependency_configs.insert(name.into(), config.into());
        self
    }

    /// Reuse cached outputs (when the registry has a cache).
    pub fn cache(mut self, cache: bool) -> Self {
        self.cache = cache;
        self
    }

    /// Check this step's input and output against its module's types on
    /// every call (see [`validate`](Self::validate)).
    pub fn validate(mut self, validate: bool) -> Self {
        self.validate = validate;
        self
    }

    /// Run on a pool of `size` instances (a batch runs `size` inputs at once).
    pub fn pool(mut self, size: u32) -> Self {
        self.pool = Some(size);
        self
    }

    /// Retries after a failure.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Deadline per attempt, in milliseconds.
    #[deprecated(since = "0.1.0", note = "use `timeout(Duration::from_millis(ms))`")]
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// On failure, pass the input through.
    pub fn skip_on_error(mut self) -> Self {
        self.on_error = OnError::Skip;
        self
    }

    /// On failure, run `module` instead.
    pub fn fallback(mut self, module: impl Into<String>) -> Self {
        self.on_error = OnError::Fallback;
        self.fallback = Some(module.into());
        self
    }

    /// What the step runs, for display: the module or `[caps]`.
    pub fn target(&self) -> String {
        match (&self.module, &self.capabilities) {
            (Some(m), _) => m.clone(),
            (None, Some(c)) => format!("[{}]", c.join(", ")),
            (None, None) => "?".to_string(),
        }
    }
}

/// A named DAG of steps. Build it with [`Workflow::new`] and
/// [`step`](Workflow::step), or load it with [`Workflow::load`]; run it with
/// [`ModuleRegistry::run_workflow`](crate::ModuleRegistry::run_workflow).
///
/// ```
/// use std::time::Duration;
/// use module_registry::{ModuleRegistry, StepStatus, Value, Workflow, WorkflowStep};
///
/// let registry = ModuleRegistry::with_native_modules();
/// // Two steps on the workflow's input at once, then one on both outputs.
/// let workflow = Workflow::new("fingerprint")
///     .step(WorkflowStep::module("bytes", "text-encode").after([]))
///     .step(WorkflowStep::module("json", "json-encode").after([]))
///     .step(
///         WorkflowStep::module("digest", "sha256")
///             .after(["bytes"])
///             .retries(2)
///             .timeout(Duration::from_secs(5)),
///     );
/// let result = registry.run_workflow(&workflow, "hello")?;
/// // Two steps are final (no step reads "json" or "digest"): the output maps
/// // each one's id to its output. (`with_output("digest")` would pick one.)
/// let outputs = result.output.as_map().expect("a map of the final steps");
/// assert_eq!(outputs.keys().collect::<Vec<_>>(), ["json", "digest"]);
/// assert_eq!(outputs["digest"].as_str().map(str::len), Some(64));
/// assert!(result.steps.iter().all(|s| s.status == StepStatus::Ok));
/// // Checked before any step runs: an unknown step id is a typed error.
/// let broken = Workflow::new("broken").step(WorkflowStep::module("a", "sha256").after(["ghost"]));
/// assert!(registry.run_workflow(&broken, "x").is_err());
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use = "builder methods return the changed value; use it"]
pub struct Workflow {
    /// The workflow's name.
    pub name: String,
    /// The step whose output is the result. Default: the final step (the one
    /// no other step reads); when several steps are final, the result is a
    /// map from each one's id to its output, in definition order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The type of the workflow's input (what the steps with `after = []`
    /// get), checked against those steps' input types before anything
    /// runs; `None` is `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<crate::schema::Schema>,
    /// The steps, in definition order.
    #[serde(default)]
    pub steps: Vec<WorkflowStep>,
}

fn invalid(workflow: &str, step: Option<&str>, message: impl Into<String>) -> Error {
    Error::Workflow {
        workflow: workflow.to_string(),
        step: step.map(str::to_string),
        message: message.into(),
        source: None,
    }
}

impl Workflow {
    /// An empty workflow.
    pub fn new(name: impl Into<String>) -> Self {
        Workflow {
            name: name.into(),
            output: None,
            input: None,
            steps: Vec::new(),
        }
    }

    /// Declare the type of the workflow's input (`Schema::parse("str")?`;
    /// the file key is `input = "str"`): the steps taking it are checked
    /// against it before anything runs.
    pub fn with_input(mut self, schema: crate::schema::Schema) -> Self {
        self.input = Some(schema);
        self
    }

    /// Append a step.
    pub fn step(mut self, step: WorkflowStep) -> Self {
        self.steps.push(step);
        self
    }

    /// Append a step in place.
    pub fn add_step(&mut self, step: WorkflowStep) -> &mut Self {
        self.steps.push(step);
        self
    }

    /// Choose the step whose output is the result.
    pub fn with_output(mut self, step: impl Into<String>) -> Self {
        self.output = Some(step.into());
        self
    }

    /// A chain of modules, each taking the previous one's output.
    pub fn pipeline<I, S>(name: impl Into<String>, modules: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut wf = Workflow::new(name);
        let mut used = std::collections::HashSet::new();
        // The next number to try for each module (a hash look-up per step,
        // not a scan: a chain of 10,000 of one module is not cubic).
        let mut next: std::collections::HashMap<String, usize> = Default::default();
        for module in modules {
            let module = module.into();
            // Ids are the module names, numbered when a module repeats.
            let n = next.entry(module.clone()).or_insert(1);
            let mut id = if *n == 1 {
                module.clone()
            } else {
                format!("{module}-{n}")
            };
            while used.contains(&id) {
                *n += 1;
                id = format!("{module}-{n}");
            }
            *n += 1;
            used.insert(id.clone());
            wf.steps.push(WorkflowStep::module(id, module));
        }
        wf
    }

    /// Parse the TOML form.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Serialization {
            message: format!("invalid workflow TOML: {e}"),
        })
    }

    /// Parse the JSON form.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Serialization {
            message: format!("invalid workflow JSON: {e}"),
        })
    }

    /// The TOML form.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Serialization {
            message: format!("cannot write workflow {:?} as TOML: {e}", self.name),
        })
    }

    /// The JSON form (pretty-printed).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Serialization {
            message: format!("cannot write workflow {:?} as JSON: {e}", self.name),
        })
    }

    /// Load a workflow file: JSON when the name ends in `.json`, TOML otherwise.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        };
        parsed.map_err(|e| match e {
            Error::Serialization { message } => Error::Serialization {
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// Save to a file, as JSON when the name ends in `.json`, TOML otherwise.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = if path.extension().is_some_and(|e| e == "json") {
            self.to_json()?
        } else {
            self.to_toml()?
        };
        std::fs::write(path, text).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }
}
