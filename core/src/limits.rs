//! [`ScriptLimits`]: the limits every script runs under, as plain data (a
//! manifest carries them whether or not this build runs scripts).

use std::time::Duration;

/// Limits every script runs under. `None` means no limit.
///
/// The defaults stop a runaway script (an endless loop, runaway recursion, a
/// giant string) quickly while leaving ordinary scripts far from any limit.
/// Rhai checks a container's size by walking it, so a script growing an
/// array or map towards a very large size limit slows down as it grows; the
/// wall-clock `timeout` ends it if the size limit is not reached first. Rhai
/// does not check a map that grows one new key at a time by indexing
/// (`m[k] = v`); the operation limit bounds that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptLimits {
    /// Operations per call (Rhai's unit of work).
    pub max_operations: Option<u64>,
    /// Depth of nested function calls.
    pub max_call_depth: Option<usize>,
    /// Depth of nested expressions (at top level and inside functions).
    pub max_expr_depth: Option<usize>,
    /// Length of a string, in bytes.
    pub max_string_size: Option<usize>,
    /// Length of an array (also of a blob).
    pub max_array_size: Option<usize>,
    /// Entries in an object map.
    pub max_map_size: Option<usize>,
    /// Wall-clock time per call (`timeout_ms` in serialised forms).
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Option<Duration>,
}

/// `Option<Duration>` as whole milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            max_operations: Some(10_000_000),
            max_call_depth: Some(64),
            max_expr_depth: Some(64),
            max_string_size: Some(16 * 1024 * 1024),
            max_array_size: Some(100_000),
            max_map_size: Some(100_000),
            timeout: Some(Duration::from_secs(5)),
        }
    }
}

impl ScriptLimits {
    /// No limit at all (for trusted scripts and benchmarks).
    pub fn unlimited() -> Self {
        ScriptLimits {
            max_operations: None,
            max_call_depth: None,
            max_expr_depth: None,
            max_string_size: None,
            max_array_size: None,
            max_map_size: None,
            timeout: None,
        }
    }
}
