//! The payloads of the type errors: [`WorkflowTypeError`] (a workflow's
//! types do not fit, found before it runs) and [`CheckedCall`] (whose value
//! a [`SchemaMismatch`](super::Error::SchemaMismatch) is, when validation
//! checked a call). Boxed in [`Error`](super::Error), which stays small.

use std::fmt;

/// A workflow whose types do not fit, found before any step runs
/// ([`Error::WorkflowType`](super::Error::WorkflowType)): a step takes a
/// type its input does not give (`step "slug" (slugify@1.0.0) takes str,
/// but step "count" (word-count@1.0.0) gives int`), or its config does not
/// fit its module's config type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowTypeError {
    /// The workflow's name.
    pub workflow: String,
    /// The step whose input (or config) does not fit.
    pub step: String,
    /// Its module, `name@version`.
    pub module: String,
    /// The step giving the input, when one does (not the workflow input, a
    /// fan-in or a config).
    pub producer: Option<String>,
    /// Where inside the value the types differ (`$`, `$.title`, `$.tags[*]`).
    pub path: String,
    /// The type expected there.
    pub expected: String,
    /// The type given there.
    pub found: String,
    /// The whole message after the workflow's name, naming both steps,
    /// their modules and types.
    pub message: String,
}

impl fmt::Display for WorkflowTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "workflow {:?}: {}", self.workflow, self.message)
    }
}

/// Whose value did not fit, when validation checked a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCall {
    /// The module, `name@version`.
    pub module: String,
    /// The workflow step running it, when one did.
    pub step: Option<String>,
    /// Which value: `input` or `output`.
    pub role: String,
}

/// `value`, or `module "liar@1.0.0" (step "s"): its output`.
pub(super) fn subject(call: Option<&CheckedCall>) -> String {
    match call {
        None => "value".to_string(),
        Some(call) => {
            let step = call
                .step
                .as_ref()
                .map(|s| format!(" (step {s:?})"))
                .unwrap_or_default();
            format!("module {:?}{step}: its {}", call.module, call.role)
        }
    }
}

#[cfg(test)]
mod tests {
    /// The type errors' payloads are boxed so `Error` (in every `Result`
    /// of the recursive decoders and checkers) stays as small as before.
    #[test]
    fn error_stays_small() {
        let size = std::mem::size_of::<super::super::Error>();
        assert!(size <= 120, "Error is {size} bytes");
    }
}
