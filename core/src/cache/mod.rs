//! Step results kept for reuse: a workflow step marked `cache` that already
//! ran on this input, with this code and this config, is not run again.
//!
//! The key is a BLAKE3 digest of the module's kind, name and exact version,
//! its implementation (a script's SHA-256 and those of every script it
//! imports; a native module's crate version; a `code_version` metadata value
//! when the module declares one; otherwise, for Python modules and
//! factories given in code, the registration itself), the step's config and
//! a canonical encoding of the input (maps in their order, floats by their
//! bits). An input holding an opaque host object is encoded by the token
//! its binding gives it ([`ModuleRegistry::set_opaque_token`]); without one
//! the step runs and reports `unhashable`. Only successful runs of the step's
//! own module are kept; a module whose metadata says `cacheable = "false"`
//! is never cached.

mod codec;
mod disk;

pub use self::disk::FILE_NAME;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::access::Permission;
use crate::config::Implementation;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::registry::ModuleRegistry;
use crate::value::{Opaque, Value};

/// What caching did for one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// Not cached: the step did not ask, the registry has no cache, or the
    /// module is not cacheable.
    #[default]
    Off,
    /// The output came from the cache; the module did not run.
    Hit,
    /// The module ran (and its output was kept, if it succeeded).
    Miss,
    /// The input holds an opaque host object, which has no stable digest:
    /// the module ran, nothing was kept.
    Unhashable,
}

impl CacheStatus {
    /// `"off"`, `"hit"`, `"miss"` or `"unhashable"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Off => "off",
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Unhashable => "unhashable",
        }
    }
}

/// How the registry's cache is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Outputs kept in memory (least recently used dropped first).
    pub memory_items: usize,
    /// A folder for a cache on disk that survives the process and is shared
    /// by every process using the same folder. Only outputs of code with a
    /// stable digest (scripts, natives, modules declaring `code_version`)
    /// and with a binary form (no opaque objects) are written there.
    pub path: Option<PathBuf>,
    /// The most the disk cache holds, in bytes (least recently used dropped
    /// first); the file may pass it by its own pages and, while open, its
    /// journal.
    pub max_bytes: Option<u64>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            memory_items: 10_000,
            path: None,
            max_bytes: None,
        }
    }
}

/// The cache's counters (reset by [`ModuleRegistry::clear_cache`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Steps answered from the cache.
    pub hits: u64,
    /// Cached steps that ran.
    pub misses: u64,
    /// Steps that ran because their input had no digest.
    pub unhashable: u64,
    /// Outputs held now (on disk when the cache has a folder, else in memory).
    pub entries: u64,
    /// Bytes the disk cache holds (0 without one).
    pub bytes: u64,
}

/// A cache key: the BLAKE3 digest of everything a step's output depends on.
pub(crate) type Key = [u8; 32];

struct Entry {
    output: Value,
    /// The registration that produced it: held, so that a key naming a
    /// registration cannot be reused by another one while the entry lives.
    info: ModuleInfo,
}

/// The registry's step cache.
pub(crate) struct StepCache {
    settings: CacheSettings,
    memory: Mutex<lru::LruCache<Key, Entry>>,
    disk: Option<disk::DiskStore>,
    /// Code digests of registrations, computed once each (the record held,
    /// so that its number is not reused meanwhile).
    digests: Mutex<std::collections::HashMap<usize, (ModuleInfo, Option<String>)>>,
    hits: AtomicU64,
    misses: AtomicU64,
    unhashable: AtomicU64,
}

impl StepCache {
    fn new(settings: &CacheSettings) -> Result<Self> {
        let items = NonZeroUsize::new(settings.memory_items).ok_or_else(|| {
            Error::invalid_input("memory_items must be at least 1 (leave the cache unset for none)")
        })?;
        if settings.max_bytes == Some(0) {
            return Err(Error::invalid_input(
                "max_bytes must be at least 1 (or None for no bound)",
            ));
        }
        let disk = settings
            .path
            .as_deref()
            .map(|folder| disk::DiskStore::open(folder, settings.max_bytes))
            .transpose()?;
        Ok(StepCache {
            settings: settings.clone(),
            memory: Mutex::new(lru::LruCache::new(items)),
            disk,
            digests: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            unhashable: AtomicU64::new(0),
        })
    }

    /// The kept output for `key` (in memory, else on disk when `persistent`).
    pub(crate) fn get(&self, key: &Key, info: &ModuleInfo, persistent: bool) -> Option<Value> {
        let mut memory = self.memory.lock();
        let mut found = memory
            .get(key)
            .filter(|e| e.info.same_registration(info) || e.info == *info)
            .map(|e| e.output.clone());
        drop(memory);
        if found.is_none() && persistent {
            if let Some(disk) = &self.disk {
                // A damaged entry is a miss (and is written again).
                found = disk.get(key).and_then(|bytes| codec::decode(&bytes).ok());
                if let Some(output) = &found {
                    self.remember(*key, output.clone(), info);
                }
            }
        }
        match found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    /// Keeps `output` for `key` (on disk too when `persistent` and it has
    /// a binary form).
    pub(crate) fn put(&self, key: Key, output: Value, info: &ModuleInfo, persistent: bool) {
        if persistent {
            if let (Some(disk), Some(bytes)) = (&self.disk, codec::encode(&output)) {
                disk.put(&key, &bytes);
            }
        }
        self.remember(key, output, info);
    }

    fn remember(&self, key: Key, output: Value, info: &ModuleInfo) {
        self.memory.lock().put(
            key,
            Entry {
                output,
                info: info.clone(),
            },
        );
    }

    /// The digest of `info`'s code given at run time (computed once per
    /// registration by `digest`), when it has no `code_version`.
    pub(crate) fn code_of(&self, info: &ModuleInfo, digest: Option<&CodeDigest>) -> Option<String> {
        let runtime_code = matches!(
            info.implementation(),
            Implementation::Python(_) | Implementation::Custom
        );
        if !runtime_code || info.metadata().contains_key("code_version") {
            return None;
        }
        let digest = digest?;
        let number = info.registration_key();
        if let Some((_, known)) = self.digests.lock().get(&number) {
            return known.clone();
        }
        // Computed without the lock: it may call into the binding.
        let found = digest(info);
        self.digests
            .lock()
            .insert(number, (info.clone(), found.clone()));
        found
    }

    /// Counts a step that ran because its input had no digest.
    pub(crate) fn count_unhashable(&self) {
        self.unhashable.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self) -> CacheStats {
        let (entries, bytes) = match &self.disk {
            Some(disk) => disk.size(),
            None => (self.memory.lock().len() as u64, 0),
        };
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            unhashable: self.unhashable.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }

    fn clear(&self) {
        self.memory.lock().clear();
        self.digests.lock().clear();
        if let Some(disk) = &self.disk {
            disk.clear();
        }
        for counter in [&self.hits, &self.misses, &self.unhashable] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// The registry's cache slot (an extension): empty until `set_cache`.
#[derive(Default)]
struct CacheSlot(RwLock<Option<Arc<StepCache>>>);

/// What gives an opaque host object a stable digest (a binding's objects:
/// for Python, the object's `__module_registry_token__()`): its bytes, or
/// `None` when the object has none (the step is then `unhashable`).
pub type OpaqueToken = dyn Fn(&Opaque) -> Option<Vec<u8>> + Send + Sync;

#[derive(Default)]
struct TokenSlot(RwLock<Option<Arc<OpaqueToken>>>);

/// What identifies code given at run time in every process (a binding's
/// digest of it: for Python, of the handler's code object), or `None`.
pub type CodeDigest = dyn Fn(&ModuleInfo) -> Option<String> + Send + Sync;

#[derive(Default)]
struct DigestSlot(RwLock<Option<Arc<CodeDigest>>>);

impl ModuleRegistry {
    /// Gives the registry a step cache (replacing any it had, and what that
    /// held). Workflow steps marked `cache` use it. Needs `admin`.
    pub fn set_cache(&self, settings: CacheSettings) -> Result<()> {
        self.authorize(Permission::Admin, "set_cache", None)?;
        let cache = StepCache::new(&settings)?;
        *self.extension::<CacheSlot>().0.write() = Some(Arc::new(cache));
        Ok(())
    }

    /// How the cache was set up; `None` when the registry has no cache.
    pub fn cache_settings(&self) -> Option<CacheSettings> {
        self.step_cache().map(|c| c.settings.clone())
    }

    /// The cache's counters; `None` when the registry has no cache.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.step_cache().map(|c| c.stats())
    }

    /// Empties the cache and resets its counters. Needs `admin`.
    pub fn clear_cache(&self) -> Result<()> {
        self.authorize(Permission::Admin, "clear_cache", None)?;
        if let Some(cache) = self.step_cache() {
            cache.clear();
        }
        Ok(())
    }

    /// How opaque host objects in cached steps' inputs are digested (see
    /// [`OpaqueToken`]); without one they are `unhashable`.
    pub fn set_opaque_token(&self, token: Arc<OpaqueToken>) {
        *self.extension::<TokenSlot>().0.write() = Some(token);
    }

    /// How code given at run time is identified in cache keys (see
    /// [`CodeDigest`]); without one (or when it gives `None`) such code is
    /// known by its registration, in memory only.
    pub fn set_code_digest(&self, digest: Arc<CodeDigest>) {
        *self.extension::<DigestSlot>().0.write() = Some(digest);
    }

    /// The code digester, if one is set.
    pub(crate) fn code_digest(&self) -> Option<Arc<CodeDigest>> {
        self.extension::<DigestSlot>().0.read().clone()
    }

    /// The opaque-object digester, if one is set.
    pub(crate) fn opaque_token(&self) -> Option<Arc<OpaqueToken>> {
        self.extension::<TokenSlot>().0.read().clone()
    }

    /// The cache steps use, if one is set.
    pub(crate) fn step_cache(&self) -> Option<Arc<StepCache>> {
        self.extension::<CacheSlot>().0.read().clone()
    }
}

/// Whether `info`'s metadata allows caching it.
pub(crate) fn cacheable(info: &ModuleInfo) -> bool {
    info.metadata().get("cacheable").map(String::as_str) != Some("false")
}

/// The key of running `info` with `config` on `input`; `None` when the
/// input (or the config) holds an opaque host object that `token` gives no
/// digest for. (Public to show what a key covers, and to measure it.)
pub fn step_key(
    info: &ModuleInfo,
    config: &Value,
    input: &Value,
    token: Option<&OpaqueToken>,
    code: Option<&str>,
) -> Option<Key> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"module-registry step cache 1\0");
    text(&mut hasher, info.kind().as_str());
    text(&mut hasher, info.name());
    text(&mut hasher, info.version_text());
    implementation(&mut hasher, info, code);
    encode(&mut hasher, config, token)?;
    encode(&mut hasher, input, token)?;
    Some(*hasher.finalize().as_bytes())
}

/// Whether `info`'s key means the same code in every process (a script's
/// digest, a native's crate version, a declared `code_version`, the digest
/// `code` of code given at run time), so that its outputs may be kept on
/// disk; without one, code given at run time is known only by its
/// registration, which another process does not share.
pub fn persistent(info: &ModuleInfo, code: Option<&str>) -> bool {
    code.is_some()
        || info.metadata().contains_key("code_version")
        || matches!(
            info.implementation(),
            Implementation::Rhai(_) | Implementation::Native
        )
}

/// What identifies the module's code.
fn implementation(hasher: &mut blake3::Hasher, info: &ModuleInfo, code: Option<&str>) {
    if let Some(version) = info.metadata().get("code_version") {
        text(hasher, "code_version");
        text(hasher, version);
    }
    match info.implementation() {
        Implementation::Rhai(script) => {
            text(hasher, "rhai");
            text(hasher, &script.sha256);
            for import in &script.imports {
                text(hasher, &import.path);
                text(hasher, &import.sha256);
            }
        }
        Implementation::Native => {
            text(hasher, "native");
            text(hasher, env!("CARGO_PKG_VERSION"));
        }
        // Code given at run time and declaring its `code_version`: that.
        other if info.metadata().contains_key("code_version") => text(hasher, other.kind()),
        // Code given at run time that its binding can digest: the digest.
        other if code.is_some() => {
            text(hasher, other.kind());
            text(hasher, code.unwrap_or_default());
        }
        // Otherwise this very registration (its entries hold it, so the
        // number is not reused meanwhile).
        other => {
            text(hasher, other.kind());
            hasher.update(&(info.registration_key() as u64).to_le_bytes());
        }
    }
}

fn text(hasher: &mut blake3::Hasher, s: &str) {
    hasher.update(&(s.len() as u64).to_le_bytes());
    hasher.update(s.as_bytes());
}

/// The canonical encoding of `value`: a tag, then lengths and contents;
/// maps in their order; floats by their bits; an opaque object by its type
/// and its token. `None` for an opaque object without a token.
fn encode(hasher: &mut blake3::Hasher, value: &Value, token: Option<&OpaqueToken>) -> Option<()> {
    match value {
        Value::Null => {
            hasher.update(&[0]);
        }
        Value::Bool(b) => {
            hasher.update(&[1, u8::from(*b)]);
        }
        Value::Int(i) => {
            hasher.update(&[2]);
            hasher.update(&i.to_le_bytes());
        }
        Value::Float(f) => {
            hasher.update(&[3]);
            hasher.update(&f.to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            hasher.update(&[4]);
            text(hasher, s);
        }
        Value::Bytes(b) => {
            hasher.update(&[5]);
            hasher.update(&(b.len() as u64).to_le_bytes());
            hasher.update(b);
        }
        Value::List(items) => {
            hasher.update(&[6]);
            hasher.update(&(items.len() as u64).to_le_bytes());
            for item in items {
                encode(hasher, item, token)?;
            }
        }
        Value::Map(map) => {
            hasher.update(&[7]);
            hasher.update(&(map.len() as u64).to_le_bytes());
            for (key, item) in map {
                text(hasher, key);
                encode(hasher, item, token)?;
            }
        }
        Value::Opaque(object) => {
            let bytes = token.and_then(|t| t(object))?;
            hasher.update(&[8]);
            text(hasher, object.type_name());
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
    Some(())
}
