//! What a step's code is, for its cache key: the step's module and every
//! module it depends on (transitively, as they resolve now), each by what
//! identifies its code. Computed once per run (per plan: one
//! `run_workflow`, one batch), never per input, so that code or state
//! changed between runs (a redefined helper, a callable object's new
//! state) is seen by the next run.

use std::sync::Arc;

use crate::config::Implementation;
use crate::info::ModuleInfo;
use crate::registry::ModuleRegistry;

use super::{text, CacheStatus, CodeDigest, Key, StepCache};
use crate::value::Value;

/// What a binding says of one registration's code given at run time (see
/// [`CodeDigest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeId {
    /// A digest that means the same code, and the same state it holds, in
    /// every process: outputs may be kept on disk.
    Digest(String),
    /// The binding does not know this code (a factory given in Rust): it is
    /// known by its registration, in this process's memory only.
    Unknown,
    /// The code holds something that has no stable digest (the reason
    /// given): the step runs every time and reports `unhashable`, rather
    /// than risk an output of other code.
    Unhashable(String),
}

/// The identity of a step's code (its module's and its dependencies').
#[derive(Clone)]
pub(crate) enum StepCode {
    Known {
        /// The digest of every module's code, root last.
        digest: [u8; 32],
        /// Whether every part means the same code in every process.
        persistent: bool,
        /// Registrations known only by their number (held by the cache's
        /// entries, so that the number is not reused meanwhile).
        held: Arc<[ModuleInfo]>,
    },
    Unhashable,
}

/// The identity of `info`'s code and its dependencies' code.
pub(crate) fn step_code(
    registry: &ModuleRegistry,
    info: &ModuleInfo,
    digest: Option<&CodeDigest>,
) -> StepCode {
    let modules = if info.dependencies().is_empty() {
        vec![info.clone()]
    } else {
        // Resolved again, as building the instance did (the state's lock is
        // released before any binding code runs below).
        match registry.resolve_registration(info) {
            Ok(resolution) => resolution.modules().to_vec(),
            Err(_) => return StepCode::Unhashable,
        }
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"module-registry step code 2\0");
    let mut persistent = true;
    let mut held = Vec::new();
    for module in &modules {
        text(&mut hasher, module.kind().as_str());
        text(&mut hasher, module.name());
        text(&mut hasher, module.version_text());
        match module_code(module, digest) {
            CodeId::Digest(code) => text(&mut hasher, &code),
            CodeId::Unknown => {
                text(&mut hasher, "registration");
                hasher.update(&(module.registration_key() as u64).to_le_bytes());
                persistent = false;
                held.push(module.clone());
            }
            CodeId::Unhashable(_) => return StepCode::Unhashable,
        }
    }
    StepCode::Known {
        digest: *hasher.finalize().as_bytes(),
        persistent,
        held: held.into(),
    }
}

/// What identifies one module's code: a declared `code_version` (the
/// author's promise), a script's digests, a native's crate version, or the
/// binding's digest of code given at run time.
fn module_code(info: &ModuleInfo, digest: Option<&CodeDigest>) -> CodeId {
    if let Some(version) = info.metadata().get("code_version") {
        return CodeId::Digest(format!(
            "code_version:{}:{version}",
            info.implementation().kind()
        ));
    }
    match info.implementation() {
        Implementation::Rhai(script) => {
            let mut code = format!("rhai:{}", script.sha256);
            for import in &script.imports {
                code.push_str(&format!(";{}={}", import.path, import.sha256));
            }
            CodeId::Digest(code)
        }
        Implementation::Native => CodeId::Digest(format!("native:{}", env!("CARGO_PKG_VERSION"))),
        Implementation::Declaration => CodeId::Digest("declaration".into()),
        other => match digest.map(|d| d(info)) {
            Some(CodeId::Digest(code)) => CodeId::Digest(format!("{}:{code}", other.kind())),
            Some(CodeId::Unhashable(why)) => CodeId::Unhashable(why),
            Some(CodeId::Unknown) | None => CodeId::Unknown,
        },
    }
}

/// `info`'s own code alone (no binding digest, no dependencies).
pub(crate) fn own_code(info: &ModuleInfo) -> StepCode {
    let mut hasher = blake3::Hasher::new();
    match module_code(info, None) {
        CodeId::Digest(code) => text(&mut hasher, &code),
        _ => {
            hasher.update(&(info.registration_key() as u64).to_le_bytes());
        }
    }
    StepCode::Known {
        digest: *hasher.finalize().as_bytes(),
        persistent: false,
        held: Arc::from(Vec::new()),
    }
}

/// What a cached step looks up and keeps: the cache, the key, the
/// registrations the key names by number, and whether it may go to disk.
pub(crate) type Lookup = (Arc<StepCache>, Key, Arc<[ModuleInfo]>, bool);

/// What the cache says of a step of `info` with `config` on `input`: its
/// status and, for a step whose output may be kept, its [`Lookup`]. `code`
/// is the plan's slot for the step's code identity, filled on first use.
pub(crate) fn consult(
    registry: &ModuleRegistry,
    info: &ModuleInfo,
    config: &Value,
    input: &Value,
    code: &std::sync::OnceLock<StepCode>,
) -> (CacheStatus, Option<Lookup>) {
    if !super::cacheable(info) {
        return (CacheStatus::Off, None);
    }
    let Some(cache) = registry.step_cache() else {
        return (CacheStatus::Off, None);
    };
    // Never waiting on another thread computing it (that one may need the
    // GIL this one holds): two racing runs may both compute it, once each.
    let code = match code.get() {
        Some(code) => code,
        None => {
            let found = step_code(registry, info, registry.code_digest().as_deref());
            code.get_or_init(|| found)
        }
    };
    let StepCode::Known {
        digest,
        persistent,
        held,
    } = code
    else {
        cache.count_unhashable();
        return (CacheStatus::Unhashable, None);
    };
    let token = registry.opaque_token();
    match super::step_key(info, config, input, token.as_deref(), Some(digest)) {
        Some(key) => (
            CacheStatus::Miss,
            Some((cache, key, held.clone(), *persistent)),
        ),
        None => {
            cache.count_unhashable();
            (CacheStatus::Unhashable, None)
        }
    }
}
