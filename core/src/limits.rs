//! [`ScriptLimits`]: the limits every script runs under, as plain data (a
//! manifest carries them whether or not this build runs scripts).

use std::time::Duration;

/// Limits every script runs under. `None` means no limit, except for the
/// two depths, where it means the most a script stack holds
/// ([`MAX_CALL_DEPTH`], [`MAX_EXPR_DEPTH`]). Zero is refused by
/// [`validate`](Self::validate) for every limit but `max_call_depth` (zero
/// calls is a real limit). A script call runs on a stack of
/// [`stack_bytes`](Self::stack_bytes), so no script within these limits can
/// overflow it.
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
    /// Bytes a call may hold at once beyond what it started with (strings,
    /// arrays, maps and everything else it allocates, on its own thread),
    /// checked at every operation. Enforced where the counting allocator
    /// [`ScriptAllocator`](crate::ScriptAllocator) is the program's global
    /// allocator (the Python package installs it); see
    /// [`memory_limit_enforced`](crate::memory_limit_enforced).
    #[serde(default = "default_max_memory")]
    pub max_memory: Option<usize>,
    /// Wall-clock time per call (`timeout_ms` in serialised forms).
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Option<Duration>,
}

/// 256 MiB per call.
fn default_max_memory() -> Option<usize> {
    Some(256 << 20)
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
            max_memory: default_max_memory(),
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
            max_memory: None,
            timeout: None,
        }
    }
}

/// Stack bytes one level of script code or data may take, measured on
/// x86-64 release builds and doubled (`benches/README.md` has the method:
/// the deepest level that survives in a thread of known stack size). Debug
/// builds take several times more; [`ScriptLimits::stack_bytes`] scales.
mod frame {
    /// A call to a script function (Rhai's call machinery; measured 7.5 KiB).
    pub const CALL: usize = 16 * 1024;
    /// One level of expression nesting, parsed or evaluated (measured 2.1 to
    /// 3.2 KiB; the parser takes the most).
    pub const EXPR: usize = 6 * 1024;
    /// One level of nested arrays or maps: dropping, cloning, comparing and
    /// printing a value recurse through it (measured 0.13 to 1.7 KiB).
    pub const DATA: usize = 3 * 1024;
    /// The engine's own frames, the registry's, and a margin.
    pub const BASE: usize = 4 * 1024 * 1024;
    /// Debug builds (the tests) use much bigger frames.
    pub const DEBUG_FACTOR: usize = if cfg!(debug_assertions) { 8 } else { 1 };
}

/// The deepest `max_call_depth` a script may have (also what `None` means).
pub const MAX_CALL_DEPTH: usize = 4_096;
/// The deepest `max_expr_depth` (also what `None` means).
pub const MAX_EXPR_DEPTH: usize = 1_024;
/// How deep a script's data may nest when the array and map size limits do
/// not bound it and the operation limit is absent or higher
/// ([`ScriptLimits::unlimited`]): the stack is reserved for this many levels,
/// and such a script is trusted not to nest a value deeper.
pub const UNBOUNDED_DATA_DEPTH: usize = 1_000_000;
/// The most stack a script call may reserve (address space, not memory:
/// only the pages a call touches are ever backed).
pub const MAX_SCRIPT_STACK: usize = 64 << 30;

impl ScriptLimits {
    /// Script functions may call each other this deep (`None` is
    /// [`MAX_CALL_DEPTH`]).
    pub fn call_depth(&self) -> usize {
        self.max_call_depth.unwrap_or(MAX_CALL_DEPTH)
    }

    /// Expressions may nest this deep (`None` is [`MAX_EXPR_DEPTH`]).
    pub fn expr_depth(&self) -> usize {
        self.max_expr_depth.unwrap_or(MAX_EXPR_DEPTH)
    }

    /// How deep a script's data can nest under these limits. Rhai counts
    /// every element of nested arrays (and entries of nested maps) towards
    /// the size limits, so nesting is bounded by their sum; without them,
    /// building one level takes at least one operation.
    pub fn data_depth(&self) -> usize {
        match (self.max_array_size, self.max_map_size, self.max_operations) {
            (Some(a), Some(m), ops) => {
                let sizes = a.saturating_add(m);
                ops.map_or(sizes, |o| {
                    sizes.min(usize::try_from(o).unwrap_or(usize::MAX))
                })
            }
            (_, _, Some(o)) => {
                usize::try_from(o).map_or(UNBOUNDED_DATA_DEPTH, |o| o.min(UNBOUNDED_DATA_DEPTH))
            }
            _ => UNBOUNDED_DATA_DEPTH,
        }
    }

    /// The stack one script call needs under these limits: the deepest chain
    /// of calls, each holding the deepest expression, over the deepest
    /// value. Every script runs on a stack at least this big.
    pub fn stack_bytes(&self) -> usize {
        let per_call = frame::CALL.saturating_add(self.expr_depth().saturating_mul(frame::EXPR));
        let code = self.call_depth().saturating_add(1).saturating_mul(per_call);
        let data = self.data_depth().saturating_mul(frame::DATA);
        frame::BASE
            .saturating_add(code)
            .saturating_add(data)
            .saturating_mul(frame::DEBUG_FACTOR)
            .min(MAX_SCRIPT_STACK)
    }

    /// Checks that the limits mean what they say: a limit of zero would stop
    /// every script (use `None` for no limit; a `max_call_depth` of zero
    /// forbids calling script functions, which is useful), depths stay
    /// within what a stack holds, and the stack they need can be reserved.
    pub fn validate(&self) -> crate::Result<()> {
        let invalid = |message: String| crate::Error::InvalidConfig {
            name: "script limits".into(),
            reason: message,
        };
        let zero = [
            ("max_operations", self.max_operations == Some(0)),
            ("max_expr_depth", self.max_expr_depth == Some(0)),
            ("max_string_size", self.max_string_size == Some(0)),
            ("max_array_size", self.max_array_size == Some(0)),
            ("max_map_size", self.max_map_size == Some(0)),
            ("max_memory", self.max_memory == Some(0)),
            ("timeout", self.timeout == Some(Duration::ZERO)),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(invalid(format!(
                "{name} of 0 would stop every script: give at least 1, or None for no limit"
            )));
        }
        if let Some(d) = self.max_call_depth.filter(|&d| d > MAX_CALL_DEPTH) {
            return Err(invalid(format!(
                "max_call_depth {d} is deeper than a script's stack may go (at most {MAX_CALL_DEPTH})"
            )));
        }
        if let Some(d) = self.max_expr_depth.filter(|&d| d > MAX_EXPR_DEPTH) {
            return Err(invalid(format!(
                "max_expr_depth {d} is deeper than a script's stack may go (at most {MAX_EXPR_DEPTH})"
            )));
        }
        Ok(())
    }
}
