//! What a run gives back: each step's report (`StepReport`, its texts
//! shared as `StepText`) and the run's `WorkflowResult`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::cache::CacheStatus;
use crate::value::Value;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// The module succeeded.
    Ok,
    /// The module failed and `on_error = "skip"` passed the input through.
    Skipped,
    /// The module failed and the fallback module succeeded.
    Fallback,
    /// The step failed (and so did the run).
    Failed,
}

impl StepStatus {
    /// `"ok"`, `"skipped"`, `"fallback"` or `"failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Skipped => "skipped",
            StepStatus::Fallback => "fallback",
            StepStatus::Failed => "failed",
        }
    }
}

/// Text of a step report (its id, module, version): shared with the plan
/// and the other runs of it, so a report copies no text. Reads as a `str`
/// (`&*text`, `as_str()`, `==` with `&str` and `String`, `Display`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StepText(Arc<str>);

impl StepText {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` is this very text (the same plan's), not only an
    /// equal one: a pointer comparison, for a binding that keeps what it
    /// made of a text.
    pub fn same(&self, other: &StepText) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for StepText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StepText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for StepText {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StepText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for StepText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StepText {
    fn from(s: &str) -> Self {
        StepText(Arc::from(s))
    }
}

impl From<String> for StepText {
    fn from(s: String) -> Self {
        StepText(Arc::from(s))
    }
}

impl From<StepText> for String {
    fn from(s: StepText) -> Self {
        s.0.to_string()
    }
}

impl PartialEq<str> for StepText {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for StepText {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for StepText {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<StepText> for str {
    fn eq(&self, other: &StepText) -> bool {
        self == &*other.0
    }
}

impl PartialEq<StepText> for &str {
    fn eq(&self, other: &StepText) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<StepText> for String {
    fn eq(&self, other: &StepText) -> bool {
        **self == *other.0
    }
}

impl Serialize for StepText {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StepText {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer).map(StepText::from)
    }
}

/// What happened in one step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step's id.
    pub id: StepText,
    /// The module that produced the output (the fallback, if it ran).
    pub module: StepText,
    /// That module's version.
    pub version: StepText,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts of the step's own module (retries included).
    pub attempts: u32,
    /// When the step started, from the start of the run.
    pub start: Duration,
    /// How long it took, fallback included.
    pub duration: Duration,
    /// The last error, if any attempt failed.
    pub error: Option<String>,
    /// What caching did.
    #[serde(default)]
    pub cache: CacheStatus,
    /// What the step gave (its module's output, the fallback's, or the
    /// cached one); `None` for a step that did not run or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) output: Option<Value>,
}

impl StepReport {
    /// What the step gave: its module's output (or its fallback's, or the
    /// cached one), `None` for a step that did not run or was skipped
    /// (a skipped step hands its input on, which is not an output).
    pub fn output(&self) -> Option<&Value> {
        self.output.as_ref()
    }

    /// Takes the step's output out of the report (for a binding that
    /// converts it once).
    pub fn take_output(&mut self) -> Option<Value> {
        self.output.take()
    }
}

/// The output of a run and a report per step (in definition order).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowResult {
    /// The output step's output (the step the workflow's `output` names, else
    /// its one final step); when several steps are final (no step reads
    /// them) and `output` names none, a map from each one's id to its output.
    pub output: Value,
    /// One report per step.
    pub steps: Vec<StepReport>,
    /// When the run started.
    pub started_at: SystemTime,
    /// How long the whole run took.
    pub duration: Duration,
    /// The thread that ran it (its name, else its id): in a batch, which
    /// worker took which input.
    pub worker: String,
}

/// The name of the current thread, else its id.
pub(crate) fn worker_label() -> String {
    let thread = std::thread::current();
    thread
        .name()
        .map_or_else(|| format!("{:?}", thread.id()), str::to_string)
}

impl WorkflowResult {
    /// The report of step `id`.
    pub fn step(&self, id: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Every step's output, by step id, in the order the steps started
    /// (definition order among steps that started together): the steps
    /// that produced one (ran, fell back or were answered from the cache);
    /// skipped steps and steps that did not run are left out.
    ///
    /// ```
    /// use module_registry::{ModuleConfig, ModuleRegistry, Value, Workflow, WorkflowStep};
    /// let registry = ModuleRegistry::new();
    /// registry.register(ModuleConfig::new().with_name("upper").with_handler(|v| {
    ///     Ok(Value::from(v.as_str().unwrap_or_default().to_uppercase()))
    /// }))?;
    /// registry.register(ModuleConfig::new().with_name("length").with_handler(|v| {
    ///     Ok(Value::from(v.as_str().unwrap_or_default().len() as i64))
    /// }))?;
    /// let wf = Workflow::new("two")
    ///     .step(WorkflowStep::module("upper", "upper"))
    ///     .step(WorkflowStep::module("length", "length").after_input());
    /// let result = registry.run_workflow(&wf, "abc")?;
    /// let outputs = result.outputs();
    /// assert_eq!(outputs[0], ("upper", &Value::from("ABC")));
    /// assert_eq!(outputs[1], ("length", &Value::from(3)));
    /// assert_eq!(result.step("upper").and_then(|s| s.output()), Some(&Value::from("ABC")));
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn outputs(&self) -> Vec<(&str, &Value)> {
        let mut out: Vec<(Duration, usize, &str, &Value)> = self
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.output().map(|v| (s.start, i, s.id.as_str(), v)))
            .collect();
        out.sort_by_key(|&(start, i, _, _)| (start, i));
        out.into_iter().map(|(_, _, id, v)| (id, v)).collect()
    }
}
