//! What [`Error::Script`] carries besides its message: the call chain
//! ([`ScriptFrame`]) and how it is shown; [`Error::script`] builds one.

use super::Error;

/// One frame of a script error's call chain ([`Error::Script`]'s `trace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFrame {
    /// The script holding the line (a path, or a module's name).
    pub script: String,
    /// The function enclosing the line (`None` at a script's top level).
    pub function: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl Error {
    /// An [`Error::Script`] with no thrown value and no call chain.
    pub fn script(
        script: impl Into<String>,
        line: Option<usize>,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Error::Script {
            script: script.into(),
            line,
            column,
            message: message.into(),
            value: None,
            trace: Vec::new(),
        }
    }
}

/// `, called from libfail.rhai 5:9 (fn process)` for each frame past the first.
pub(super) fn called_from(trace: &[ScriptFrame]) -> String {
    trace
        .iter()
        .skip(1)
        .map(|f| {
            let at = match (f.line, f.column) {
                (Some(l), Some(c)) => format!(" {l}:{c}"),
                (Some(l), None) => format!(" line {l}"),
                _ => String::new(),
            };
            let function = f
                .function
                .as_deref()
                .map(|n| format!(" (fn {n})"))
                .unwrap_or_default();
            format!(", called from {}{at}{function}", f.script)
        })
        .collect()
}
