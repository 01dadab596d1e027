//! Step results kept for reuse: a workflow step marked `cache` that already
//! ran on this input, with this code and this config, is not run again.
//!
//! The key is a BLAKE3 digest of the module's kind, name and exact version,
//! the identity of its code and of the code of every module it depends on
//! (transitively; see [`CodeId`]): for each, a `code_version`
//! metadata value when it declares one (the author's promise), else a
//! script's SHA-256 and those of every script it imports, a native
//! module's crate version, or the binding's digest of code given at run
//! time (for Python: bytecode, constants, defaults, closure values, the
//! globals it reads, a callable object's class and state; see
//! `module_registry._pickling.code_digest`), computed once per run; code
//! the binding cannot digest is known by its registration (in memory
//! only), and code holding state without a stable digest makes the step
//! `unhashable`. Then the step's config and a canonical encoding of the
//! input (type-tagged: `1`, `1.0` and `true` differ; maps in their order;
//! floats by their bits, so `-0.0` is not `0.0`). An input holding an
//! opaque host object is encoded by the token its binding gives it
//! ([`ModuleRegistry::set_opaque_token`]); without one the step runs and
//! reports `unhashable`. Only successful runs of the step's own module are
//! kept; a module whose metadata says `cacheable = "false"` is never cached.

mod code;
mod codec;
#[cfg(feature = "cache-disk")]
mod disk;
#[cfg(not(feature = "cache-disk"))]
#[path = "no_disk.rs"]
mod disk;

pub use self::code::CodeId;
pub(crate) use self::code::{consult, Lookup, StepCode};
pub use self::disk::{flush_all, FILE_NAME};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::access::Permission;
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
    /// The input holds an opaque host object, or the code holds state,
    /// which has no stable digest: the module ran, nothing was kept.
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
    /// Outputs kept in memory (least recently used dropped first); the
    /// memory grows with what is kept, nothing is reserved ahead.
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
    /// The registration that produced it, and those its key names by their
    /// number (dependencies known only by their registration): held, so
    /// that a key naming a registration cannot be reused by another one
    /// while the entry lives.
    info: ModuleInfo,
    _held: Arc<[ModuleInfo]>,
}

/// The registry's step cache.
pub(crate) struct StepCache {
    settings: CacheSettings,
    /// Unbounded in its own type (which would reserve room for
    /// `memory_items` at once): trimmed to `memory_items` as it grows.
    memory: Mutex<lru::LruCache<Key, Entry>>,
    disk: Option<Arc<disk::DiskStore>>,
    hits: AtomicU64,
    misses: AtomicU64,
    unhashable: AtomicU64,
    metrics: Arc<crate::metrics::Metrics>,
}

impl StepCache {
    fn new(settings: &CacheSettings, metrics: Arc<crate::metrics::Metrics>) -> Result<Self> {
        if settings.memory_items == 0 {
            return Err(Error::invalid_input(
                "memory_items must be at least 1 (leave the cache unset for none)",
            ));
        }
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
            memory: Mutex::new(lru::LruCache::unbounded()),
            disk,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            unhashable: AtomicU64::new(0),
            metrics,
        })
    }

    /// The kept output for `key` (in memory, else on disk when `persistent`).
    pub(crate) fn get(
        &self,
        key: &Key,
        info: &ModuleInfo,
        held: &Arc<[ModuleInfo]>,
        persistent: bool,
    ) -> Option<Value> {
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
                    self.remember(*key, output.clone(), info, held);
                }
            }
        }
        match found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        (self.metrics).count_cache(if found.is_some() { "hit" } else { "miss" });
        found
    }

    /// Keeps `output` for `key` (on disk too when `persistent` and it has
    /// a binary form).
    pub(crate) fn put(
        &self,
        key: Key,
        output: Value,
        info: &ModuleInfo,
        held: &Arc<[ModuleInfo]>,
        persistent: bool,
    ) {
        if persistent {
            if let (Some(disk), Some(bytes)) = (&self.disk, codec::encode(&output)) {
                disk.put(&key, &bytes);
            }
        }
        self.remember(key, output, info, held);
    }

    fn remember(&self, key: Key, output: Value, info: &ModuleInfo, held: &Arc<[ModuleInfo]>) {
        let entry = Entry {
            output,
            info: info.clone(),
            _held: held.clone(),
        };
        let mut memory = self.memory.lock();
        memory.put(key, entry);
        // What is dropped is dropped after the lock (an output may hold a
        // host object whose release runs code).
        let mut dropped = Vec::new();
        while memory.len() > self.settings.memory_items {
            dropped.extend(memory.pop_lru());
        }
        drop(memory);
        drop(dropped);
    }

    /// Writes the disk store's pending batch now (nothing without one).
    pub(crate) fn flush(&self) {
        if let Some(disk) = &self.disk {
            disk.flush();
        }
    }

    /// Counts a step that ran because its input had no digest.
    pub(crate) fn count_unhashable(&self) {
        self.unhashable.fetch_add(1, Ordering::Relaxed);
        self.metrics.count_cache("unhashable");
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
        let dropped = std::mem::replace(&mut *self.memory.lock(), lru::LruCache::unbounded());
        drop(dropped);
        if let Some(disk) = &self.disk {
            disk.clear();
        }
        for counter in [&self.hits, &self.misses, &self.unhashable] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

impl Drop for StepCache {
    /// The disk store's pending batch is written now, whoever else (the
    /// flush timer, for a moment) still holds the store.
    fn drop(&mut self) {
        self.flush();
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
/// digest of it: for Python, of the handler's code and the state it holds),
/// computed once per run for each module a cached step uses; see [`CodeId`].
pub type CodeDigest = dyn Fn(&ModuleInfo) -> CodeId + Send + Sync;

#[derive(Default)]
struct DigestSlot(RwLock<Option<Arc<CodeDigest>>>);

impl ModuleRegistry {
    /// Gives the registry a step cache (replacing any it had, and what that
    /// held). Workflow steps marked `cache` use it. Needs `admin`.
    pub fn set_cache(&self, settings: CacheSettings) -> Result<()> {
        self.authorize(Permission::Admin, "set_cache", None)?;
        let cache = StepCache::new(&settings, self.metrics_store().clone())?;
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

    /// Adds counts taken elsewhere (the hits, misses and unhashable steps
    /// of runs on executor workers, each with a copy of this registry) to
    /// the cache's counters, so that [`cache_stats`](Self::cache_stats)
    /// tells the whole batch. Nothing without a cache.
    pub fn add_cache_counts(&self, hits: u64, misses: u64, unhashable: u64) {
        if let Some(cache) = self.step_cache() {
            cache.hits.fetch_add(hits, Ordering::Relaxed);
            cache.misses.fetch_add(misses, Ordering::Relaxed);
            cache.unhashable.fetch_add(unhashable, Ordering::Relaxed);
        }
    }

    /// Adds counts made on executor workers, on copies of this registry
    /// ([`take_metrics_delta`](Self::take_metrics_delta) there), to its
    /// metrics and to the step cache's counters
    /// ([`cache_stats`](Self::cache_stats)). Refuses a snapshot naming a
    /// metric or labels this crate does not define, adding nothing.
    pub fn merge_worker_metrics(&self, counts: &crate::metrics::MetricsSnapshot) -> Result<()> {
        self.merge_metrics(counts)?;
        let cache = "module_registry_cache_requests_total";
        let n = |result: &str| counts.value(cache, &[("result", result)]);
        self.add_cache_counts(n("hit"), n("miss"), n("unhashable"));
        Ok(())
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
    /// [`CodeDigest`]); without one (or when it gives [`CodeId::Unknown`])
    /// such code is known by its registration, in memory only.
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

/// The key of running `info` with `config` on `input`, its code being
/// `code` (the identity of the code of `info` and of its dependencies, as a
/// run computes it once; `None`: `info`'s own implementation, code given at
/// run time by its registration); `None` when the input (or the config)
/// holds an opaque host object that `token` gives no digest for. (Public to
/// show what a key covers, and to measure it.)
pub fn step_key(
    info: &ModuleInfo,
    config: &Value,
    input: &Value,
    token: Option<&OpaqueToken>,
    code: Option<&[u8]>,
) -> Option<Key> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"module-registry step cache 2\0");
    text(&mut hasher, info.kind().as_str());
    text(&mut hasher, info.name());
    text(&mut hasher, info.version_text());
    match code {
        Some(code) => {
            hasher.update(&(code.len() as u64).to_le_bytes());
            hasher.update(code);
        }
        None => {
            if let StepCode::Known { digest, .. } = code::own_code(info) {
                hasher.update(&digest);
            }
        }
    }
    encode(&mut hasher, config, token)?;
    encode(&mut hasher, input, token)?;
    Some(*hasher.finalize().as_bytes())
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
