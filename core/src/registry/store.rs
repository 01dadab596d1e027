//! The store: registrations in numbered slots, and per namespace a table from
//! name to the slots of its versions (highest first). The capability index
//! ([`CapabilityIndex`]) is kept beside it, in step.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use semver::{Version, VersionReq};

use super::index::CapabilityIndex;
use crate::config::ModuleConfig;
use crate::deps::Catalog;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;
use crate::query::CapabilityQuery;

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

/// The registry's contents: slots of registrations, names by kind, and the
/// capability index.
#[derive(Default)]
pub(super) struct State {
    pub(super) slots: Vec<Option<ModuleInfo>>,
    pub(super) free: Vec<u32>,
    /// Per kind: the slot ids of each name, found by hashing the name. The
    /// table holds no copy of the name: it compares against the name in the
    /// first slot, so a name costs a few bytes here.
    names: [HashTable<NameIds>; 2],
    hasher: DefaultHashBuilder,
    pub(super) index: CapabilityIndex,
    pub(super) len: usize,
}

/// The name of the module in slot `id` (live by the names table's invariant).
fn slot_name(slots: &[Option<ModuleInfo>], id: u32) -> &str {
    slots[id as usize]
        .as_ref()
        .expect("the names table points at live slots")
        .name()
}

impl State {
    pub(super) fn info(&self, id: u32) -> &ModuleInfo {
        self.slots[id as usize]
            .as_ref()
            .expect("index points at a live slot")
    }

    fn name_hash(&self, name: &str) -> u32 {
        self.hasher.hash_one(name) as u32
    }

    /// The slot ids of `name`'s versions in the `kind` namespace, highest first.
    pub(super) fn versions(&self, kind: ModuleKind, name: &str) -> Option<&[u32]> {
        let hash = self.name_hash(name);
        self.names[kind_index(kind)]
            .find(spread(hash), |ids| {
                ids.hash() == hash && slot_name(&self.slots, ids.as_slice()[0]) == name
            })
            .map(NameIds::as_slice)
    }

    /// The registered versions of `name`, as text (for error messages).
    pub(super) fn available(&self, kind: ModuleKind, name: &str) -> Vec<String> {
        self.versions(kind, name)
            .map(|ids| {
                ids.iter()
                    .map(|&id| self.info(id).version().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The slot of exactly `version` of `name` (build metadata ignored).
    pub(super) fn find_version(
        &self,
        kind: ModuleKind,
        name: &str,
        version: &Version,
    ) -> Option<u32> {
        self.versions(kind, name).and_then(|ids| {
            ids.iter()
                .copied()
                .find(|&id| self.info(id).version().cmp_precedence(version) == Ordering::Equal)
        })
    }

    /// Inserts a validated config; the caller has checked for duplicates.
    pub(super) fn insert(&mut self, mut config: ModuleConfig, version: Version) -> ModuleInfo {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 modules")
            }
        };
        let types = (config.input().clone(), config.output().clone());
        self.index
            .add(id, &mut config.capabilities, (&types.0, &types.1));
        config.capabilities.shrink_to_fit();
        let kind = config.kind;
        let info = ModuleInfo::new(config, version);
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

    pub(super) fn remove(&mut self, kind: ModuleKind, id: u32) -> ModuleInfo {
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
        self.index
            .remove(id, info.capabilities(), (info.input(), info.output()));
        self.free.push(id);
        self.len -= 1;
        info
    }

    /// The version to use for `name`: the highest matching `req`, or, without
    /// a requirement, the highest release (a pre-release only when there is
    /// nothing else).
    pub(super) fn select(
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

    /// The matches of `q`, sorted by name, then version (highest first).
    ///
    /// Candidates are gathered as references and sorted before any is
    /// cloned: cloning bumps an atomic count, which would stall on each
    /// candidate's cache miss in turn rather than letting them overlap.
    pub(super) fn discover(
        &self,
        q: &CapabilityQuery,
        req: Option<&VersionReq>,
    ) -> Vec<ModuleInfo> {
        let mut found: Vec<&ModuleInfo> = Vec::new();
        self.index.gather(&self.slots, q, req, &mut found);
        found.sort_unstable_by(|a, b| a.order(b));
        found.into_iter().cloned().collect()
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
