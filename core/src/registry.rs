//! [`ModuleRegistry`]: the shared store of declarations, with its capability
//! index, and [`ModuleInfo`], the read-only view of one registered declaration.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use indexmap::IndexMap;
use parking_lot::RwLock;
use semver::{Version, VersionReq};

use crate::access::{self, AccessPolicy, Permission};
use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::config::{
    parse_requirement, parse_version, ModuleConfig, ModuleKind, ModuleType, PluginConfig,
};
use crate::deps::{self, Catalog, Resolution};
use crate::error::{Error, Result};
use crate::marketplace::{self, PluginMarketplace};
use crate::module::ModuleInstance;
use crate::native;
use crate::orchestration::WorkflowOrchestration;
use crate::query::{CapabilityQuery, PluginDiscoveryQuery, ServiceDiscoveryQuery};
use crate::value::Value;
use crate::workflow::{self, Workflow, WorkflowResult};

/// A registered declaration (validated, normalised, immutable).
pub(crate) struct Entry {
    pub(crate) config: ModuleConfig,
    pub(crate) version: Version,
}

/// A read-only, cheaply cloned view of one registered module or plugin.
#[derive(Clone)]
pub struct ModuleInfo(Arc<Entry>);

impl ModuleInfo {
    pub(crate) fn entry(&self) -> &Entry {
        &self.0
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.0.config.name
    }

    /// The version.
    pub fn version(&self) -> &Version {
        &self.0.version
    }

    /// The version as text (what `version().to_string()` gives, without
    /// formatting it again).
    pub fn version_text(&self) -> &str {
        self.0.config.version()
    }

    /// The type.
    pub fn module_type(&self) -> &ModuleType {
        self.0.config.module_type()
    }

    /// Module or plugin.
    pub fn kind(&self) -> ModuleKind {
        self.0.config.kind
    }

    /// The capabilities, sorted and without duplicates.
    pub fn capabilities(&self) -> &[Arc<str>] {
        &self.0.config.capabilities
    }

    /// Whether the module has capability `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.0
            .config
            .capabilities
            .binary_search_by(|c| (**c).cmp(capability))
            .is_ok()
    }

    /// The metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        self.0.config.metadata()
    }

    /// The dependencies: name to requirement text.
    pub fn dependencies(&self) -> &BTreeMap<String, String> {
        self.0.config.dependencies()
    }

    /// The dependencies with their parsed requirements.
    pub fn dependency_requirements(&self) -> impl Iterator<Item = (&str, &VersionReq)> {
        self.0
            .config
            .dependencies()
            .keys()
            .map(String::as_str)
            .zip(self.0.config.requirements())
    }

    /// Whether it can be created (it has a factory), rather than being a
    /// declaration only.
    pub fn has_implementation(&self) -> bool {
        self.0.config.has_factory()
    }

    /// How the module is implemented.
    pub fn implementation(&self) -> &crate::config::Implementation {
        self.0.config.implementation()
    }

    /// The full declaration as registered.
    pub fn config(&self) -> &ModuleConfig {
        &self.0.config
    }

    /// Whether both views are of the very same registration.
    pub fn same_registration(&self, other: &ModuleInfo) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A number telling this registration apart from every other one alive
    /// (registered, or held by a view): equal keys mean
    /// [`same_registration`](Self::same_registration). A key may be used
    /// again once a registration and all its views are gone.
    pub fn registration_key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    fn order(&self, other: &ModuleInfo) -> Ordering {
        self.name()
            .cmp(other.name())
            .then_with(|| other.version().cmp(self.version()))
            .then_with(|| self.kind().cmp(&other.kind()))
    }
}

impl PartialEq for ModuleInfo {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.kind() == other.kind()
                && self.name() == other.name()
                && self.version() == other.version())
    }
}

impl fmt::Debug for ModuleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleInfo")
            .field("kind", &self.kind())
            .field("name", &self.name())
            .field("version", &self.version().to_string())
            .field("type", &self.module_type())
            .field("capabilities", &self.capabilities())
            .field("metadata", self.metadata())
            .field("dependencies", self.dependencies())
            .field("has_implementation", &self.has_implementation())
            .finish()
    }
}

impl fmt::Display for ModuleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}@{}", self.kind(), self.name(), self.version())
    }
}

fn kind_index(kind: ModuleKind) -> usize {
    match kind {
        ModuleKind::Module => 0,
        ModuleKind::Plugin => 1,
    }
}

/// The slot ids of one name's versions, highest version first, with the
/// name's hash (so the table grows without reading names back). Most names
/// have one version, kept inline in 16 bytes.
enum NameIds {
    One { hash: u32, id: u32 },
    Many(Box<ManyIds>),
}

struct ManyIds {
    hash: u32,
    ids: Vec<u32>,
}

impl NameIds {
    fn as_slice(&self) -> &[u32] {
        match self {
            NameIds::One { id, .. } => std::slice::from_ref(id),
            NameIds::Many(many) => &many.ids,
        }
    }

    fn hash(&self) -> u32 {
        match self {
            NameIds::One { hash, .. } => *hash,
            NameIds::Many(many) => many.hash,
        }
    }

    fn insert(&mut self, pos: usize, id: u32) {
        match self {
            NameIds::One { hash, id: first } => {
                let mut ids = vec![*first];
                ids.insert(pos, id);
                *self = NameIds::Many(Box::new(ManyIds { hash: *hash, ids }));
            }
            NameIds::Many(many) => many.ids.insert(pos, id),
        }
    }

    /// Removes `id`; false when nothing is left.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            NameIds::One { id: first, .. } => *first != id,
            NameIds::Many(many) => {
                many.ids.retain(|&x| x != id);
                match many.ids.as_slice() {
                    [] => false,
                    [only] => {
                        *self = NameIds::One {
                            hash: many.hash,
                            id: *only,
                        };
                        true
                    }
                    _ => true,
                }
            }
        }
    }
}

/// The table's 64-bit hash from the 32 bits kept per name.
fn spread(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

/// The registry's contents: slots of entries, names by kind, and an inverted
/// index from capability to the (sorted) slot ids having it.
#[derive(Default)]
struct State {
    slots: Vec<Option<ModuleInfo>>,
    free: Vec<u32>,
    /// Per kind: the slot ids of each name, found by hashing the name. The
    /// table holds no copy of the name: it compares against the name in the
    /// first slot, so a name costs a few bytes here.
    names: [HashTable<NameIds>; 2],
    hasher: DefaultHashBuilder,
    cap_ids: HashMap<Arc<str>, u32>,
    postings: Vec<Vec<u32>>,
    /// Capability pair (lower id first) -> sorted slot ids having both: a
    /// query with two or more required capabilities reads one short list.
    pairs: HashMap<(u32, u32), Vec<u32>>,
    /// Slots with more than `PAIR_LIMIT` capabilities (not in `pairs`).
    unpaired: Vec<u32>,
    len: usize,
}

/// Modules with at most this many capabilities are indexed by pairs
/// (at most 28 pairs each); the rest are checked one by one.
const PAIR_LIMIT: usize = 8;

fn sorted_insert(list: &mut Vec<u32>, id: u32) {
    // New slots have the highest id: most inserts append.
    if list.last().is_none_or(|&last| last < id) {
        list.push(id);
        return;
    }
    let pos = list.binary_search(&id).unwrap_or_else(|p| p);
    list.insert(pos, id);
}

fn sorted_remove(list: &mut Vec<u32>, id: u32) {
    if let Ok(pos) = list.binary_search(&id) {
        list.remove(pos);
    }
}

/// Every pair of distinct ids, lower first (`ids` sorted and deduplicated).
fn id_pairs(ids: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    ids.iter()
        .enumerate()
        .flat_map(move |(i, &a)| ids[i + 1..].iter().map(move |&b| (a, b)))
}

/// The name of the module in slot `id` (live by the names table's invariant).
fn slot_name(slots: &[Option<ModuleInfo>], id: u32) -> &str {
    slots[id as usize]
        .as_ref()
        .expect("the names table points at live slots")
        .name()
}

impl State {
    fn info(&self, id: u32) -> &ModuleInfo {
        self.slots[id as usize]
            .as_ref()
            .expect("index points at a live slot")
    }

    fn name_hash(&self, name: &str) -> u32 {
        self.hasher.hash_one(name) as u32
    }

    fn versions(&self, kind: ModuleKind, name: &str) -> Option<&[u32]> {
        let hash = self.name_hash(name);
        self.names[kind_index(kind)]
            .find(spread(hash), |ids| {
                ids.hash() == hash && slot_name(&self.slots, ids.as_slice()[0]) == name
            })
            .map(NameIds::as_slice)
    }

    fn available(&self, kind: ModuleKind, name: &str) -> Vec<String> {
        self.versions(kind, name)
            .map(|ids| {
                ids.iter()
                    .map(|&id| self.info(id).version().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn intern(&mut self, cap: &Arc<str>) -> (Arc<str>, u32) {
        if let Some((k, &id)) = self.cap_ids.get_key_value(cap) {
            return (k.clone(), id);
        }
        let id = u32::try_from(self.postings.len()).expect("fewer than 2^32 capabilities");
        self.cap_ids.insert(cap.clone(), id);
        self.postings.push(Vec::new());
        (cap.clone(), id)
    }

    /// Inserts a validated config; the caller has checked for duplicates.
    fn insert(&mut self, mut config: ModuleConfig, version: Version) -> ModuleInfo {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 modules")
            }
        };
        let mut cap_ids = Vec::with_capacity(config.capabilities.len());
        for cap in config.capabilities.iter_mut() {
            let (shared, cid) = self.intern(cap);
            *cap = shared;
            cap_ids.push(cid);
        }
        config.capabilities.shrink_to_fit();
        for &cid in &cap_ids {
            sorted_insert(&mut self.postings[cid as usize], id);
        }
        cap_ids.sort_unstable();
        if cap_ids.len() <= PAIR_LIMIT {
            for pair in id_pairs(&cap_ids) {
                sorted_insert(self.pairs.entry(pair).or_default(), id);
            }
        } else {
            sorted_insert(&mut self.unpaired, id);
        }
        let kind = config.kind;
        let info = ModuleInfo(Arc::new(Entry { config, version }));
        self.slots[id as usize] = Some(info.clone());
        let hash = self.name_hash(info.name());
        let State { slots, names, .. } = self;
        let table = &mut names[kind_index(kind)];
        let found = table.find_mut(spread(hash), |ids| {
            ids.hash() == hash && slot_name(slots, ids.as_slice()[0]) == info.name()
        });
        match found {
            Some(ids) => {
                let pos = ids.as_slice().partition_point(|&other| {
                    slots[other as usize]
                        .as_ref()
                        .is_some_and(|o| o.version() > info.version())
                });
                ids.insert(pos, id);
            }
            None => {
                table.insert_unique(spread(hash), NameIds::One { hash, id }, |ids| {
                    spread(ids.hash())
                });
            }
        }
        self.len += 1;
        info
    }

    fn remove(&mut self, kind: ModuleKind, id: u32) -> ModuleInfo {
        // The names table reads names from the slots: update it first.
        let hash = self.name_hash(self.info(id).name());
        let State { slots, names, .. } = self;
        let name = slot_name(slots, id);
        if let Ok(mut entry) = names[kind_index(kind)].find_entry(spread(hash), |ids| {
            ids.hash() == hash && slot_name(slots, ids.as_slice()[0]) == name
        }) {
            if !entry.get_mut().remove(id) {
                entry.remove();
            }
        }
        let info = self.slots[id as usize]
            .take()
            .expect("removing a live slot");
        let mut cap_ids: Vec<u32> = info
            .capabilities()
            .iter()
            .filter_map(|cap| self.cap_ids.get(cap).copied())
            .collect();
        for &cid in &cap_ids {
            sorted_remove(&mut self.postings[cid as usize], id);
        }
        cap_ids.sort_unstable();
        if cap_ids.len() <= PAIR_LIMIT {
            for pair in id_pairs(&cap_ids) {
                if let Some(list) = self.pairs.get_mut(&pair) {
                    sorted_remove(list, id);
                    if list.is_empty() {
                        self.pairs.remove(&pair);
                    }
                }
            }
        } else {
            sorted_remove(&mut self.unpaired, id);
        }
        self.free.push(id);
        self.len -= 1;
        info
    }

    /// The version to use for `name`: the highest matching `req`, or, without
    /// a requirement, the highest release (a pre-release only when there is
    /// nothing else).
    fn select(
        &self,
        kind: ModuleKind,
        name: &str,
        req: Option<&VersionReq>,
        req_text: Option<&str>,
    ) -> Result<ModuleInfo> {
        let not_found = || Error::NotFound {
            kind,
            name: name.to_string(),
            requirement: req_text.map(str::to_string),
            available: self.available(kind, name),
        };
        let ids = self.versions(kind, name).ok_or_else(not_found)?;
        let found = match req {
            Some(req) => ids
                .iter()
                .map(|&id| self.info(id))
                .find(|i| req.matches(i.version())),
            None => ids
                .iter()
                .map(|&id| self.info(id))
                .find(|i| i.version().pre.is_empty())
                .or_else(|| ids.first().map(|&id| self.info(id))),
        };
        found.cloned().ok_or_else(not_found)
    }

    fn matches(
        &self,
        info: &ModuleInfo,
        q: &CapabilityQuery,
        req: Option<&VersionReq>,
        check_required: bool,
    ) -> bool {
        if check_required && !q.required.iter().all(|c| info.has_capability(c)) {
            return false;
        }
        if !q.any.is_empty() && !q.any.iter().any(|c| info.has_capability(c)) {
            return false;
        }
        if q.excluded.iter().any(|c| info.has_capability(c)) {
            return false;
        }
        if q.kind.is_some_and(|k| k != info.kind()) {
            return false;
        }
        if q.module_type
            .as_ref()
            .is_some_and(|t| t != info.module_type())
        {
            return false;
        }
        if req.is_some_and(|r| !r.matches(info.version())) {
            return false;
        }
        q.metadata
            .iter()
            .all(|(k, v)| info.metadata().get(k).is_some_and(|mine| mine == v))
    }

    /// The matches of `q`, sorted by name, then version (highest first).
    ///
    /// Candidates are gathered as references and sorted before any is
    /// cloned: cloning bumps an atomic count, which would stall on each
    /// candidate's cache miss in turn rather than letting them overlap.
    fn discover(&self, q: &CapabilityQuery, req: Option<&VersionReq>) -> Vec<ModuleInfo> {
        let mut found: Vec<&ModuleInfo> = Vec::new();
        self.gather(q, req, &mut found);
        found.sort_unstable_by(|a, b| a.order(b));
        found.into_iter().cloned().collect()
    }

    fn gather<'s>(
        &'s self,
        q: &CapabilityQuery,
        req: Option<&VersionReq>,
        found: &mut Vec<&'s ModuleInfo>,
    ) {
        let matching = |id: u32, check_required: bool| {
            let info = self.info(id);
            self.matches(info, q, req, check_required).then_some(info)
        };
        if q.required.len() >= 2 {
            let mut ids = Vec::with_capacity(q.required.len());
            for cap in &q.required {
                match self.cap_ids.get(cap.as_str()) {
                    Some(&cid) => ids.push(cid),
                    None => return,
                }
            }
            ids.sort_unstable();
            ids.dedup();
            if ids.len() >= 2 {
                // The shortest pair list holds every paired match; modules
                // with many capabilities are checked one by one.
                let shortest = id_pairs(&ids)
                    .map(|pair| self.pairs.get(&pair).map_or(&[][..], Vec::as_slice))
                    .min_by_key(|l| l.len())
                    .unwrap_or(&[]);
                found.reserve(shortest.len() + self.unpaired.len());
                // With two required capabilities, a pair list is exactly the
                // modules having both: only the other conditions are left.
                let pair_is_exact = ids.len() == 2;
                let nothing_else = q.any.is_empty()
                    && q.excluded.is_empty()
                    && q.kind.is_none()
                    && q.module_type.is_none()
                    && q.metadata.is_empty()
                    && req.is_none();
                if pair_is_exact && nothing_else {
                    found.extend(shortest.iter().map(|&id| self.info(id)));
                } else {
                    found.extend(
                        shortest
                            .iter()
                            .filter_map(|&id| matching(id, !pair_is_exact)),
                    );
                }
                found.extend(self.unpaired.iter().filter_map(|&id| matching(id, true)));
                return;
            }
        }
        if !q.required.is_empty() {
            let mut lists = Vec::with_capacity(q.required.len());
            for cap in &q.required {
                match self.cap_ids.get(cap.as_str()) {
                    Some(&cid) => lists.push(self.postings[cid as usize].as_slice()),
                    None => return,
                }
            }
            lists.sort_by_key(|l| l.len());
            let (first, rest) = lists
                .split_first()
                .expect("at least one required capability");
            found.reserve(first.len());
            found.extend(
                first
                    .iter()
                    .filter(|&id| rest.iter().all(|l| l.binary_search(id).is_ok()))
                    .filter_map(|&id| matching(id, false)),
            );
        } else if !q.any.is_empty() {
            let mut ids: Vec<u32> = Vec::new();
            for cap in &q.any {
                if let Some(&cid) = self.cap_ids.get(cap.as_str()) {
                    ids.extend_from_slice(&self.postings[cid as usize]);
                }
            }
            ids.sort_unstable();
            ids.dedup();
            found.reserve(ids.len());
            found.extend(ids.into_iter().filter_map(|id| matching(id, false)));
        } else {
            found.extend(
                self.slots
                    .iter()
                    .flatten()
                    .filter(|info| self.matches(info, q, req, false)),
            );
        }
    }
}

impl Catalog for State {
    fn candidates(
        &self,
        preferred: ModuleKind,
        name: &str,
    ) -> Option<(ModuleKind, Vec<ModuleInfo>)> {
        // A plugin's dependency is looked up among plugins, then modules.
        let kinds: &[ModuleKind] = match preferred {
            ModuleKind::Module => &[ModuleKind::Module],
            ModuleKind::Plugin => &[ModuleKind::Plugin, ModuleKind::Module],
        };
        kinds.iter().find_map(|&kind| {
            self.versions(kind, name)
                .map(|ids| (kind, ids.iter().map(|&id| self.info(id).clone()).collect()))
        })
    }
}

struct Inner {
    state: RwLock<State>,
    audit: Arc<AuditLog>,
    workflow_orchestration: AtomicBool,
    plugin_marketplace: AtomicBool,
    scripts: Arc<crate::script::ScriptHost>,
    policy: RwLock<Option<Arc<AccessPolicy>>>,
}

/// The registry of modules and plugins.
///
/// Cheap to clone (clones share one registry), `Send + Sync`, and every
/// method takes `&self`: reads never block each other, and no lock is held
/// while module code (factories, hooks, `process`) runs, so modules may call
/// back into the registry.
#[derive(Clone)]
pub struct ModuleRegistry {
    inner: Arc<Inner>,
}

impl Default for ModuleRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ModuleRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleRegistry")
            .field("len", &self.len())
            .field(
                "workflow_orchestration",
                &self.workflow_orchestration_enabled(),
            )
            .field("plugin_marketplace", &self.plugin_marketplace_enabled())
            .finish()
    }
}

impl ModuleRegistry {
    /// An empty registry: workflow orchestration on, plugin marketplace off.
    pub fn new() -> Self {
        ModuleRegistry {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                audit: Arc::new(AuditLog::default()),
                workflow_orchestration: AtomicBool::new(true),
                plugin_marketplace: AtomicBool::new(false),
                scripts: Arc::default(),
                policy: RwLock::new(None),
            }),
        }
    }

    /// A registry holding every native module linked into the program (see
    /// [`native_module!`](crate::native_module)). A native module whose
    /// name and version is declared twice is registered once; the clash is
    /// recorded as a failed `register` audit event.
    pub fn with_native_modules() -> Self {
        let registry = Self::new();
        for config in native::configs() {
            let _ = registry.register_config(config, false);
        }
        registry
    }

    /// Registers every native module linked into the program, failing on the
    /// first error (already registered, invalid declaration).
    pub fn register_native_modules(&self) -> Result<Vec<ModuleInfo>> {
        native::configs()
            .into_iter()
            .map(|config| self.register_config(config, false))
            .collect()
    }

    /// Switch workflow orchestration on or off (on by default). When off,
    /// [`orchestrate`](Self::orchestrate) (and every other way of running a
    /// chain of modules through the registry) fails with
    /// [`Error::FeatureDisabled`]; registering, discovering and creating
    /// single modules still work.
    pub fn with_workflow_orchestration(self, enabled: bool) -> Self {
        self.inner
            .workflow_orchestration
            .store(enabled, AtomicOrdering::Release);
        self
    }

    /// See [`with_workflow_orchestration`](Self::with_workflow_orchestration).
    pub fn set_workflow_orchestration(&self, enabled: bool) -> Result<()> {
        self.authorize(Permission::Admin, "set_workflow_orchestration", None)?;
        self.inner
            .workflow_orchestration
            .store(enabled, AtomicOrdering::Release);
        Ok(())
    }

    /// Whether workflow orchestration is on.
    pub fn workflow_orchestration_enabled(&self) -> bool {
        self.inner
            .workflow_orchestration
            .load(AtomicOrdering::Acquire)
    }

    /// Switch the plugin marketplace on or off (off by default). When on,
    /// a plugin registered with metadata `marketplace = "true"` must also
    /// carry `description` and `license_type` metadata (else
    /// [`Error::InvalidConfig`]), and [`plugin_marketplace`](Self::plugin_marketplace)
    /// lists those plugins. When off, `plugin_marketplace` fails with
    /// [`Error::FeatureDisabled`].
    pub fn with_plugin_marketplace(self, enabled: bool) -> Self {
        self.inner
            .plugin_marketplace
            .store(enabled, AtomicOrdering::Release);
        self
    }

    /// See [`with_plugin_marketplace`](Self::with_plugin_marketplace).
    pub fn set_plugin_marketplace(&self, enabled: bool) -> Result<()> {
        self.authorize(Permission::Admin, "set_plugin_marketplace", None)?;
        self.inner
            .plugin_marketplace
            .store(enabled, AtomicOrdering::Release);
        Ok(())
    }

    /// Whether the plugin marketplace is on.
    pub fn plugin_marketplace_enabled(&self) -> bool {
        self.inner.plugin_marketplace.load(AtomicOrdering::Acquire)
    }

    /// Keep at most `capacity` audit events (default
    /// [`DEFAULT_AUDIT_CAPACITY`](crate::audit::DEFAULT_AUDIT_CAPACITY)).
    pub fn with_audit_capacity(self, capacity: usize) -> Self {
        self.inner.audit.set_capacity(capacity);
        self
    }

    pub(crate) fn inner_set_settings(
        &self,
        orchestration: bool,
        marketplace: bool,
        audit_capacity: usize,
        limits: crate::script::ScriptLimits,
    ) {
        self.inner
            .workflow_orchestration
            .store(orchestration, AtomicOrdering::Release);
        self.inner
            .plugin_marketplace
            .store(marketplace, AtomicOrdering::Release);
        self.inner.audit.set_capacity(audit_capacity);
        self.script_host().set_limits(limits);
    }

    // ----- access control -------------------------------------------------

    /// Set (or, with `None`, remove) the access policy. Needs `admin`.
    pub fn set_policy(&self, policy: Option<AccessPolicy>) -> Result<()> {
        self.authorize(Permission::Admin, "set_policy", None)?;
        *self.inner.policy.write() = policy.map(Arc::new);
        Ok(())
    }

    /// The access policy in force, if any.
    pub fn policy(&self) -> Option<AccessPolicy> {
        self.inner.policy.read().as_deref().cloned()
    }

    /// A view of this registry whose every call acts as `principal` and is
    /// checked against the policy.
    pub fn as_principal(&self, principal: impl Into<String>) -> RegistryView {
        RegistryView {
            registry: self.clone(),
            principal: Arc::from(principal.into()),
        }
    }

    /// Whether the current principal may do `permission` on `module` (on
    /// some module when `None`). The system, and everyone when there is no
    /// policy, may do anything.
    pub(crate) fn allowed(&self, permission: Permission, module: Option<&str>) -> bool {
        let Some(principal) = access::current_principal() else {
            return true;
        };
        match self.inner.policy.read().as_deref() {
            None => true,
            Some(policy) => policy.allows(&principal, permission, module),
        }
    }

    /// [`allowed`](Self::allowed), or [`Error::PermissionDenied`] recorded as a `denied` audit event.
    pub(crate) fn authorize(
        &self,
        permission: Permission,
        operation: &str,
        module: Option<&str>,
    ) -> Result<()> {
        if self.allowed(permission, module) {
            return Ok(());
        }
        let principal =
            access::current_principal().map_or_else(|| "system".to_string(), |p| p.to_string());
        let module = module.unwrap_or("*");
        let error = Error::PermissionDenied {
            principal,
            operation: operation.to_string(),
            module: module.to_string(),
        };
        self.inner.audit.push(
            operation,
            ModuleKind::Module,
            module,
            None,
            Outcome::Denied,
            Some(error.to_string()),
        );
        Err(error)
    }

    /// Keeps the registrations the current principal may discover.
    fn visible(&self, mut infos: Vec<ModuleInfo>) -> Vec<ModuleInfo> {
        if access::current_principal().is_some() && self.inner.policy.read().is_some() {
            infos.retain(|i| self.allowed(Permission::Discover, Some(i.name())));
        }
        infos
    }

    // ----- registration -------------------------------------------------

    /// Registers a module. Fails if the same name and version is already
    /// registered as a module, or if any field is invalid; on failure the
    /// registry is unchanged.
    pub fn register(&self, config: ModuleConfig) -> Result<ModuleInfo> {
        self.register_config(config.with_kind(ModuleKind::Module), false)
    }

    /// Registers a plugin (the plugin namespace is separate from the modules').
    pub fn register_plugin(&self, config: PluginConfig) -> Result<ModuleInfo> {
        self.register_config(config.into_module_config(), false)
    }

    /// Registers a module, replacing an existing registration of the same
    /// name and version if there is one. Instances already created keep
    /// running the code they were built with.
    pub fn replace(&self, config: ModuleConfig) -> Result<ModuleInfo> {
        self.register_config(config.with_kind(ModuleKind::Module), true)
    }

    /// [`replace`](Self::replace) for plugins.
    pub fn replace_plugin(&self, config: PluginConfig) -> Result<ModuleInfo> {
        self.register_config(config.into_module_config(), true)
    }

    /// Registers a declaration into the namespace its [`kind`](ModuleConfig::kind)
    /// names; with `replace`, an existing registration of the same name and
    /// version is replaced instead of being an error.
    pub fn register_config(&self, config: ModuleConfig, replace: bool) -> Result<ModuleInfo> {
        self.register_with_operation(
            config,
            replace,
            if replace { "replace" } else { "register" },
        )
    }

    pub(crate) fn script_host(&self) -> Arc<crate::script::ScriptHost> {
        self.inner.scripts.clone()
    }

    /// [`register_config`](Self::register_config), audited as `operation`.
    pub(crate) fn register_with_operation(
        &self,
        config: ModuleConfig,
        replace: bool,
        operation: &'static str,
    ) -> Result<ModuleInfo> {
        self.authorize(Permission::Register, operation, Some(config.name()))?;
        match self.register_inner(config, replace) {
            Ok(info) => {
                self.inner.audit.record(Outcome::Ok, operation, &info, None);
                Ok(info)
            }
            Err((e, config)) => {
                self.inner.audit.push(
                    operation,
                    config.kind,
                    config.name(),
                    Some(config.version().to_string()),
                    Outcome::Error,
                    Some(e.to_string()),
                );
                Err(e)
            }
        }
    }

    /// Registers `config`; on failure, hands it back with the error (for
    /// the audit log) and leaves the registry as it was.
    fn register_inner(
        &self,
        mut config: ModuleConfig,
        replace: bool,
    ) -> std::result::Result<ModuleInfo, (Error, Box<ModuleConfig>)> {
        let version = match config.validate().and_then(|version| {
            if config.kind == ModuleKind::Plugin && self.plugin_marketplace_enabled() {
                marketplace::validate_listing(&config)?;
            }
            Ok(version)
        }) {
            Ok(version) => version,
            Err(e) => return Err((e, Box::new(config))),
        };
        let mut state = self.inner.state.write();
        let existing = state.versions(config.kind, config.name()).and_then(|ids| {
            ids.iter()
                .copied()
                .find(|&id| state.info(id).version().cmp_precedence(&version) == Ordering::Equal)
        });
        if let Some(id) = existing {
            if !replace {
                let e = Error::AlreadyRegistered {
                    kind: config.kind,
                    name: config.name.to_string(),
                    version: state.info(id).version().to_string(),
                };
                return Err((e, Box::new(config)));
            }
            state.remove(config.kind, id);
        }
        Ok(state.insert(config, version))
    }

    /// Removes one version of a module. Instances already created keep working.
    pub fn unregister(&self, name: &str, version: &str) -> Result<ModuleInfo> {
        let mut removed = self.remove(ModuleKind::Module, name, Some(version))?;
        Ok(removed.remove(0))
    }

    /// Removes one version of a plugin.
    pub fn unregister_plugin(&self, name: &str, version: &str) -> Result<ModuleInfo> {
        let mut removed = self.remove(ModuleKind::Plugin, name, Some(version))?;
        Ok(removed.remove(0))
    }

    /// Removes `version` of `name` from the `kind` namespace, or every
    /// version when `version` is `None`. Returns what was removed; fails with
    /// [`Error::NotFound`] when nothing matched.
    pub fn remove(
        &self,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<ModuleInfo>> {
        self.authorize(Permission::Unregister, "unregister", Some(name))?;
        let result = self.remove_inner(kind, name, version);
        match &result {
            Ok(removed) => {
                for info in removed {
                    self.inner
                        .audit
                        .record(Outcome::Ok, "unregister", info, None);
                }
            }
            Err(e) => self.inner.audit.push(
                "unregister",
                kind,
                name,
                version.map(str::to_string),
                Outcome::Error,
                Some(e.to_string()),
            ),
        }
        result
    }

    fn remove_inner(
        &self,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<ModuleInfo>> {
        let version = version.map(|v| parse_version(name, v)).transpose()?;
        let mut state = self.inner.state.write();
        let ids: Vec<u32> = state
            .versions(kind, name)
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|&id| {
                        version.as_ref().is_none_or(|v| {
                            state.info(id).version().cmp_precedence(v) == Ordering::Equal
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(Error::NotFound {
                kind,
                name: name.to_string(),
                requirement: version.map(|v| format!("={v}")),
                available: state.available(kind, name),
            });
        }
        Ok(ids.into_iter().map(|id| state.remove(kind, id)).collect())
    }

    // ----- lookup ---------------------------------------------------------

    /// The highest release of module `name` (a pre-release only when it has
    /// no release), if registered.
    pub fn get(&self, name: &str) -> Option<ModuleInfo> {
        self.get_matching(ModuleKind::Module, name, None)
            .ok()
            .flatten()
    }

    /// [`get`](Self::get) for plugins.
    pub fn get_plugin(&self, name: &str) -> Option<ModuleInfo> {
        self.get_matching(ModuleKind::Plugin, name, None)
            .ok()
            .flatten()
    }

    /// The highest version of `name` in the `kind` namespace that satisfies
    /// `requirement` (as [`get`](Self::get) when `None`).
    pub fn find(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
    ) -> Result<ModuleInfo> {
        self.authorize(Permission::Discover, "get", Some(name))?;
        let req = requirement
            .map(|r| parse_requirement(name, r))
            .transpose()?;
        self.inner
            .state
            .read()
            .select(kind, name, req.as_ref(), requirement)
    }

    /// Like [`find`](Self::find), but `None` when there is no match or the
    /// current principal may not discover it; an invalid requirement is still an error.
    pub fn get_matching(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
    ) -> Result<Option<ModuleInfo>> {
        if !self.allowed(Permission::Discover, Some(name)) {
            return Ok(None);
        }
        match self.find(kind, name, requirement) {
            Ok(info) => Ok(Some(info)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every registered version of `name` in the `kind` namespace, highest first.
    pub fn versions(&self, kind: ModuleKind, name: &str) -> Vec<ModuleInfo> {
        if !self.allowed(Permission::Discover, Some(name)) {
            return Vec::new();
        }
        let state = self.inner.state.read();
        state
            .versions(kind, name)
            .map(|ids| ids.iter().map(|&id| state.info(id).clone()).collect())
            .unwrap_or_default()
    }

    /// Every registration, modules and plugins, by name then version descending.
    pub fn list(&self) -> Vec<ModuleInfo> {
        let all = self
            .inner
            .state
            .read()
            .discover(&CapabilityQuery::new(), None);
        self.visible(all)
    }

    /// How many registrations (every version of every module and plugin).
    pub fn len(&self) -> usize {
        self.inner.state.read().len
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `info` is still registered: this very registration, not a
    /// later one of the same name and version.
    pub fn is_registered(&self, info: &ModuleInfo) -> bool {
        let state = self.inner.state.read();
        state
            .versions(info.kind(), info.name())
            .is_some_and(|ids| ids.iter().any(|&id| state.info(id).same_registration(info)))
    }

    /// Whether a module or plugin named `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        let state = self.inner.state.read();
        [ModuleKind::Module, ModuleKind::Plugin]
            .into_iter()
            .any(|kind| state.versions(kind, name).is_some())
    }

    // ----- discovery ------------------------------------------------------

    /// Modules and plugins matching `query`, by name ascending then version
    /// descending. Uses the capability index: the cost follows the size of
    /// the rarest required capability, not the registry's.
    pub fn discover(&self, query: &CapabilityQuery) -> Result<Vec<ModuleInfo>> {
        query.validate()?;
        let req = query
            .version_req
            .as_deref()
            .map(|r| parse_requirement("discovery query", r))
            .transpose()?;
        self.authorize(Permission::Discover, "discover", None)?;
        let found = self.inner.state.read().discover(query, req.as_ref());
        Ok(self.visible(found))
    }

    /// [`discover`](Self::discover), taking the query by value as in the seed examples.
    pub fn discover_capabilities(&self, query: CapabilityQuery) -> Result<Vec<ModuleInfo>> {
        self.discover(&query)
    }

    /// Modules (not plugins) matching a service query.
    pub fn discover_services(&self, query: ServiceDiscoveryQuery) -> Result<Vec<ModuleInfo>> {
        self.discover(&query.into_query())
    }

    /// Plugins matching a plugin query.
    pub fn discover_plugins(&self, query: PluginDiscoveryQuery) -> Result<Vec<ModuleInfo>> {
        self.discover(&query.into_query())
    }

    // ----- dependencies ---------------------------------------------------

    /// Resolves the dependency tree of `name` (highest version satisfying
    /// `requirement`) to concrete versions, in build order.
    pub fn resolve(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
    ) -> Result<Resolution> {
        let req = requirement
            .map(|r| parse_requirement(name, r))
            .transpose()?;
        let state = self.inner.state.read();
        let root = state.select(kind, name, req.as_ref(), requirement)?;
        deps::resolve(&*state, &root)
    }

    // ----- instances ------------------------------------------------------

    /// Creates an instance of the highest release of module `name`, building
    /// its dependencies first.
    pub fn create(&self, name: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Module, name, None, Value::Null)
    }

    /// Creates an instance of the highest version of module `name` that
    /// satisfies `requirement` (for example `"^1"`).
    pub fn create_version(&self, name: &str, requirement: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Module, name, Some(requirement), Value::Null)
    }

    /// Creates an instance of plugin `name`.
    pub fn create_plugin(&self, name: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Plugin, name, None, Value::Null)
    }

    /// Creates an instance of the highest version of plugin `name` satisfying `requirement`.
    pub fn create_plugin_version(&self, name: &str, requirement: &str) -> Result<ModuleInstance> {
        self.create_with(ModuleKind::Plugin, name, Some(requirement), Value::Null)
    }

    /// The general form of `create`: namespace, optional requirement and the
    /// per-instance config handed to the module's `init`.
    pub fn create_with(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
        config: Value,
    ) -> Result<ModuleInstance> {
        self.authorize(Permission::Create, "create", Some(name))?;
        let result = self.create_inner(kind, name, requirement, config);
        self.audit_create(&result, kind, name, requirement);
        result
    }

    /// Audits a create: the instance made, or on failure what was asked for.
    fn audit_create(
        &self,
        result: &Result<ModuleInstance>,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
    ) {
        match result {
            Ok(instance) => self
                .inner
                .audit
                .record(Outcome::Ok, "create", instance.info(), None),
            Err(e) => self.inner.audit.push(
                "create",
                kind,
                name,
                version.map(str::to_string),
                Outcome::Error,
                Some(e.to_string()),
            ),
        }
    }

    fn create_inner(
        &self,
        kind: ModuleKind,
        name: &str,
        requirement: Option<&str>,
        config: Value,
    ) -> Result<ModuleInstance> {
        let req = requirement
            .map(|r| parse_requirement(name, r))
            .transpose()?;
        let root = self
            .inner
            .state
            .read()
            .select(kind, name, req.as_ref(), requirement)?;
        self.build(root, config)
    }

    /// Creates an instance of exactly this registration (dependencies
    /// first), audited as `create`.
    pub(crate) fn instantiate(&self, root: ModuleInfo, config: Value) -> Result<ModuleInstance> {
        self.authorize(Permission::Create, "create", Some(root.name()))?;
        let subject = root.clone();
        let result = self.build(root, config);
        self.audit_create(
            &result,
            subject.kind(),
            subject.name(),
            Some(subject.version_text()),
        );
        result
    }

    fn build(&self, root: ModuleInfo, config: Value) -> Result<ModuleInstance> {
        if root.entry().config.requirements().is_empty() {
            return ModuleInstance::build(
                root,
                config,
                IndexMap::new(),
                Vec::new(),
                self.inner.audit.clone(),
            );
        }
        let resolution = deps::resolve(&*self.inner.state.read(), &root)?;
        // The lock is released: module code runs from here on.
        let modules = resolution.modules();
        let mut built: Vec<Arc<ModuleInstance>> = Vec::with_capacity(modules.len() - 1);
        for (i, info) in modules[..modules.len() - 1].iter().enumerate() {
            let context_deps = resolution
                .dependencies_of(i)
                .iter()
                .map(|(dep_name, j)| (dep_name.clone(), built[*j].clone()))
                .collect();
            match ModuleInstance::build(
                info.clone(),
                Value::Null,
                context_deps,
                Vec::new(),
                self.inner.audit.clone(),
            ) {
                Ok(instance) => built.push(Arc::new(instance)),
                Err(e) => {
                    for b in built.iter().rev() {
                        let _ = b.close();
                    }
                    return Err(e);
                }
            }
        }
        let context_deps = resolution
            .dependencies_of(modules.len() - 1)
            .iter()
            .map(|(dep_name, j)| (dep_name.clone(), built[*j].clone()))
            .collect();
        ModuleInstance::build(root, config, context_deps, built, self.inner.audit.clone())
    }

    // ----- workflows ----------------------------------------------------------

    fn orchestration_allowed(&self) -> Result<()> {
        if self.workflow_orchestration_enabled() {
            Ok(())
        } else {
            Err(Error::FeatureDisabled {
                feature: "workflow orchestration",
                hint: "ModuleRegistry::with_workflow_orchestration(true)",
            })
        }
    }

    /// Checks a workflow against this registry without running it: its
    /// shape (ids, references, cycles, policies) and every module and
    /// capability query. Errors name the step.
    pub fn check_workflow(&self, workflow: &Workflow) -> Result<()> {
        workflow::plan(self, workflow).map(|_| ())
    }

    /// Runs a workflow on `input`: everything is checked first, one instance
    /// per step is built, steps run in dependency order (independent
    /// branches in parallel), and the instances are closed after.
    pub fn run_workflow(
        &self,
        workflow: &Workflow,
        input: impl Into<Value>,
    ) -> Result<WorkflowResult> {
        let mut results =
            self.run_workflow_batch_with_progress(workflow, [input.into()], |_, _| {})?;
        Ok(results.remove(0))
    }

    /// Runs a workflow on each input in turn, reusing one set of instances;
    /// results in input order. Stops at the first failed run.
    pub fn run_workflow_batch<I, V>(
        &self,
        workflow: &Workflow,
        inputs: I,
    ) -> Result<Vec<WorkflowResult>>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.run_workflow_batch_with_progress(workflow, inputs, |_, _| {})
    }

    /// [`run_workflow_batch`](Self::run_workflow_batch), calling
    /// `on_progress(done, total)` after each run.
    pub fn run_workflow_batch_with_progress<I, V>(
        &self,
        workflow: &Workflow,
        inputs: I,
        mut on_progress: impl FnMut(usize, usize),
    ) -> Result<Vec<WorkflowResult>>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.orchestration_allowed()?;
        let inputs: Vec<Value> = inputs.into_iter().map(Into::into).collect();
        let result = (|| {
            let plan = Arc::new(workflow::plan(self, workflow)?);
            let instances = Arc::new(workflow::instantiate(self, &plan)?);
            let total = inputs.len();
            let mut out = Vec::with_capacity(total);
            let mut outcome = Ok(());
            for (n, input) in inputs.into_iter().enumerate() {
                match workflow::execute(self, &plan, &instances, input) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        outcome = Err(if total > 1 {
                            match e {
                                Error::Workflow {
                                    workflow,
                                    step,
                                    message,
                                    source,
                                } => Error::Workflow {
                                    workflow,
                                    step,
                                    message: format!("input #{n}: {message}"),
                                    source,
                                },
                                other => other,
                            }
                        } else {
                            e
                        });
                        break;
                    }
                }
                on_progress(n + 1, total);
            }
            for instance in instances.iter().rev() {
                let _ = instance.close();
            }
            outcome.map(|()| out)
        })();
        self.inner.audit.push(
            "run_workflow",
            ModuleKind::Module,
            &workflow.name,
            None,
            if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            },
            result.as_ref().err().map(ToString::to_string),
        );
        result
    }

    /// A workflow chaining `modules`, each step taking the previous output.
    pub fn pipeline<I, S>(&self, modules: I) -> Workflow
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Workflow::pipeline("pipeline", modules)
    }

    // ----- orchestration and marketplace -----------------------------------

    /// Runs a sequential chain of modules: each step's output is the next
    /// step's input. Every step's instance is created, used once and closed.
    /// Fails with [`Error::FeatureDisabled`] when workflow orchestration is off.
    pub fn orchestrate(
        &self,
        orchestration: &WorkflowOrchestration,
        input: impl Into<Value>,
    ) -> Result<Value> {
        self.orchestration_allowed()?;
        Ok(self
            .run_workflow(&orchestration.to_workflow(), input)?
            .output)
    }

    /// The marketplace catalogue: every plugin whose metadata has
    /// `marketplace = "true"`. Fails with [`Error::FeatureDisabled`] unless
    /// the marketplace is on.
    pub fn plugin_marketplace(&self) -> Result<PluginMarketplace> {
        if !self.plugin_marketplace_enabled() {
            return Err(Error::FeatureDisabled {
                feature: "the plugin marketplace",
                hint: "ModuleRegistry::with_plugin_marketplace(true)",
            });
        }
        let listed = self.discover(
            &PluginDiscoveryQuery::new()
                .with_metadata("marketplace", "true")
                .into_query(),
        )?;
        Ok(PluginMarketplace::new(listed))
    }

    // ----- audit ----------------------------------------------------------

    /// The audit events kept, oldest first.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.inner.audit.events()
    }

    /// Append every audit event from now on to `path`, one JSON object per
    /// line, flushed per event (`None` stops). Needs `admin`.
    pub fn set_audit_file(&self, path: Option<&std::path::Path>) -> Result<()> {
        self.authorize(Permission::Admin, "set_audit_file", None)?;
        self.inner.audit.set_file(path)
    }

    /// The audit log itself (capacity, totals, clearing).
    pub fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, version: &str, caps: &[&str]) -> ModuleConfig {
        ModuleConfig::new()
            .with_name(name)
            .with_version(version)
            .add_capabilities(caps.iter().copied())
    }

    #[test]
    fn postings_stay_sorted_with_slot_reuse() {
        let r = ModuleRegistry::new();
        for i in 0..10 {
            r.register(m(&format!("m{i}"), "1.0.0", &["x"])).unwrap();
        }
        r.unregister("m3", "1.0.0").unwrap();
        r.unregister("m7", "1.0.0").unwrap();
        r.register(m("z", "1.0.0", &["x"])).unwrap();
        let state = r.inner.state.read();
        let list = &state.postings[state.cap_ids["x"] as usize];
        assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        assert_eq!(list.len(), 9);
        assert_eq!(state.free.len(), 1);
    }

    #[test]
    fn pair_index_and_many_capability_modules_agree() {
        let r = ModuleRegistry::new();
        let many: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        r.register(m(
            "wide",
            "1.0.0",
            &many.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
        .unwrap();
        r.register(m("narrow", "1.0.0", &["c1", "c2"])).unwrap();
        r.register(m("other", "1.0.0", &["c2", "c3"])).unwrap();
        let names = |caps: &[&str]| -> Vec<String> {
            r.discover(&CapabilityQuery::new().with_required_capabilities(caps.iter().copied()))
                .unwrap()
                .iter()
                .map(|i| i.name().to_string())
                .collect()
        };
        assert_eq!(names(&["c1", "c2"]), ["narrow", "wide"]);
        assert_eq!(names(&["c2", "c3"]), ["other", "wide"]);
        assert_eq!(names(&["c1", "c2", "c3"]), ["wide"]);
        assert_eq!(names(&["c2", "c2"]), ["narrow", "other", "wide"]);
        r.unregister("wide", "1.0.0").unwrap();
        r.unregister("narrow", "1.0.0").unwrap();
        assert_eq!(names(&["c1", "c2"]), Vec::<String>::new());
        let state = r.inner.state.read();
        assert!(state.unpaired.is_empty());
        assert_eq!(state.pairs.len(), 1, "emptied pair lists are dropped");
    }

    #[test]
    fn name_table_tracks_versions_through_churn() {
        // Registers and removes versions in a scrambled order, in both
        // namespaces, and checks every name's versions against a model.
        let r = ModuleRegistry::new().with_audit_capacity(0);
        let mut model: BTreeMap<(ModuleKind, String), Vec<Version>> = BTreeMap::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..3_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let kind = if x % 5 == 0 {
                ModuleKind::Plugin
            } else {
                ModuleKind::Module
            };
            let name = format!("n{}", (x >> 8) % 40);
            let version = Version::new(1, (x >> 16) % 4, 0);
            let versions = model.entry((kind, name.clone())).or_default();
            if let Some(pos) = versions.iter().position(|v| *v == version) {
                r.remove(kind, &name, Some(&version.to_string())).unwrap();
                versions.remove(pos);
            } else {
                let config = m(&name, &version.to_string(), &["c"]).with_kind(kind);
                r.register_config(config, false).unwrap();
                versions.push(version);
            }
        }
        let state = r.inner.state.read();
        for ((kind, name), versions) in &model {
            let mut expected = versions.clone();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            let got: Vec<Version> = state
                .versions(*kind, name)
                .unwrap_or_default()
                .iter()
                .map(|&id| state.info(id).version().clone())
                .collect();
            assert_eq!(got, expected, "{kind} {name}");
        }
        assert_eq!(state.len, model.values().map(Vec::len).sum::<usize>());
    }

    #[test]
    fn module_types_and_extras_round_trip() {
        let plain = m("p", "1.0.0", &[]);
        assert!(plain.extras.is_none(), "a plain declaration has no extras");
        let custom = plain
            .clone()
            .with_type(ModuleType::Custom("Security".into()));
        assert_eq!(
            custom.module_type(),
            &ModuleType::Custom("Security".into()),
            "a custom type is kept as given"
        );
        let back = custom.with_type(ModuleType::Network);
        assert_eq!(back.module_type(), &ModuleType::Network);
        let r = ModuleRegistry::new();
        let info = r.register(back).unwrap();
        assert_eq!(info.module_type(), &ModuleType::Network);
        assert!(
            info.config().extras.is_none(),
            "empty extras are dropped on registration"
        );
        for text in ["1.2.3", " 1.2.3 ", "1.0.0-alpha.1+build.007", "0.0.1-x-y"] {
            let info = r
                .register(m("versions", text, &[]))
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(info.version_text(), info.version().to_string());
            assert_eq!(info.config().version(), info.version_text());
            r.unregister("versions", text.trim()).unwrap();
        }
        let rich = r
            .register(
                m("q", "1.0.0", &[])
                    .with_type(ModuleType::custom("Video"))
                    .with_metadata("k", "v")
                    .with_dependency("p", "^1"),
            )
            .unwrap();
        assert_eq!(rich.module_type().name(), "Video");
        assert_eq!(rich.metadata()["k"], "v");
        let deps: Vec<_> = rich.dependency_requirements().collect();
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0].0, "p");
        assert!(deps[0].1.matches(&Version::new(1, 0, 0)));
    }

    #[test]
    fn registrations_are_told_apart() {
        let r = ModuleRegistry::new();
        let first = r.register(m("a", "1.0.0", &[])).unwrap();
        let again = r.get("a").unwrap();
        assert_eq!(first.registration_key(), again.registration_key());
        assert!(r.is_registered(&first));
        let replaced = r.replace(m("a", "1.0.0", &["new"])).unwrap();
        assert_ne!(first.registration_key(), replaced.registration_key());
        assert!(!r.is_registered(&first), "replaced");
        assert!(r.is_registered(&replaced));
        r.unregister("a", "1.0.0").unwrap();
        assert!(!r.is_registered(&replaced), "removed");
    }

    #[test]
    fn capabilities_are_interned_once() {
        let r = ModuleRegistry::new();
        let a = r.register(m("a", "1.0.0", &["shared"])).unwrap();
        let b = r.register(m("b", "1.0.0", &["shared"])).unwrap();
        assert!(Arc::ptr_eq(&a.capabilities()[0], &b.capabilities()[0]));
    }
}

/// A view of a registry bound to a principal: every call acts as that
/// principal and is checked against the registry's
/// [`AccessPolicy`]. Made by [`ModuleRegistry::as_principal`].
#[derive(Clone)]
pub struct RegistryView {
    registry: ModuleRegistry,
    principal: Arc<str>,
}

impl fmt::Debug for RegistryView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryView")
            .field("principal", &self.principal)
            .finish()
    }
}

impl RegistryView {
    /// The principal this view acts as.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Runs `f` on the registry acting as this view's principal: every call
    /// inside, including those a script or a workflow makes, is checked.
    pub fn with<T>(&self, f: impl FnOnce(&ModuleRegistry) -> T) -> T {
        access::with_principal(Some(self.principal.clone()), || f(&self.registry))
    }

    /// [`ModuleRegistry::register`] as this principal.
    pub fn register(&self, config: ModuleConfig) -> Result<ModuleInfo> {
        self.with(|r| r.register(config))
    }

    /// [`ModuleRegistry::register_plugin`] as this principal.
    pub fn register_plugin(&self, config: PluginConfig) -> Result<ModuleInfo> {
        self.with(|r| r.register_plugin(config))
    }

    /// [`ModuleRegistry::unregister`] as this principal.
    pub fn unregister(&self, name: &str, version: &str) -> Result<ModuleInfo> {
        self.with(|r| r.unregister(name, version))
    }

    /// [`ModuleRegistry::get`] as this principal.
    pub fn get(&self, name: &str) -> Option<ModuleInfo> {
        self.with(|r| r.get(name))
    }

    /// [`ModuleRegistry::list`] as this principal (only what it may discover).
    pub fn list(&self) -> Vec<ModuleInfo> {
        self.with(ModuleRegistry::list)
    }

    /// [`ModuleRegistry::discover`] as this principal (only what it may discover).
    pub fn discover(&self, query: &CapabilityQuery) -> Result<Vec<ModuleInfo>> {
        self.with(|r| r.discover(query))
    }

    /// [`ModuleRegistry::create`] as this principal.
    pub fn create(&self, name: &str) -> Result<ModuleInstance> {
        self.with(|r| r.create(name))
    }

    /// [`ModuleRegistry::create_version`] as this principal.
    pub fn create_version(&self, name: &str, requirement: &str) -> Result<ModuleInstance> {
        self.with(|r| r.create_version(name, requirement))
    }

    /// [`ModuleRegistry::register_script`] as this principal.
    pub fn register_script(&self, source: &str) -> Result<ModuleInfo> {
        self.with(|r| r.register_script(source))
    }

    /// [`ModuleRegistry::load_script`] as this principal.
    pub fn load_script(&self, path: impl AsRef<std::path::Path>) -> Result<ModuleInfo> {
        self.with(|r| r.load_script(path))
    }

    /// [`ModuleRegistry::run_script`] as this principal: the script has this
    /// principal's permissions, never more.
    pub fn run_script(&self, source_or_path: &str, input: impl Into<Value>) -> Result<Value> {
        self.with(|r| r.run_script(source_or_path, input))
    }

    /// [`ModuleRegistry::run_workflow`] as this principal.
    pub fn run_workflow(
        &self,
        workflow: &Workflow,
        input: impl Into<Value>,
    ) -> Result<WorkflowResult> {
        self.with(|r| r.run_workflow(workflow, input))
    }
}
