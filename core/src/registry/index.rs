//! The capability index: each capability's sorted slot ids, and each pair of
//! capabilities' sorted slot ids, so that a query reads the shortest list
//! that can hold its matches instead of the whole registry.

use std::sync::Arc;

use hashbrown::HashMap;
use semver::VersionReq;

use crate::info::ModuleInfo;
use crate::query::CapabilityQuery;
use crate::schema::Schema;

/// Modules with at most this many capabilities are indexed by pairs
/// (at most 28 pairs each); the rest are checked one by one.
const PAIR_LIMIT: usize = 8;

/// Capability name -> id, id -> sorted slot ids, and the pair lists.
#[derive(Default)]
pub(super) struct CapabilityIndex {
    /// Each capability name once (registrations share this `Arc<str>`).
    pub(super) cap_ids: HashMap<Arc<str>, u32>,
    /// Capability id -> sorted slot ids having it.
    pub(super) postings: Vec<Vec<u32>>,
    /// Capability pair (lower id first) -> sorted slot ids having both: a
    /// query with two or more required capabilities reads one short list.
    pub(super) pairs: HashMap<(u32, u32), Vec<u32>>,
    /// Slots with more than `PAIR_LIMIT` capabilities (not in `pairs`).
    pub(super) unpaired: Vec<u32>,
    /// Declared input and output types -> sorted slot ids (a typed query
    /// without capabilities reads these instead of every slot).
    pub(super) types: TypeIndex,
}

/// Each declared type's slots: a query for modules taking or giving a
/// type checks each distinct declared type once, not each module.
#[derive(Default)]
pub(super) struct TypeIndex {
    /// Input type (`any` too: it takes every type) -> slot ids.
    inputs: HashMap<Schema, Vec<u32>>,
    /// Declared output type (never `any`) -> slot ids.
    outputs: HashMap<Schema, Vec<u32>>,
}

/// Whether a module giving `output` gives values of type `want`: an
/// undeclared output (`any`) only when `any` is asked.
pub(super) fn gives(output: &Schema, want: &Schema) -> bool {
    (!output.is_any() || want.is_any()) && output.is_assignable_to(want)
}

impl TypeIndex {
    fn add(&mut self, id: u32, input: &Schema, output: &Schema) {
        sorted_insert(self.inputs.entry(input.clone()).or_default(), id);
        if !output.is_any() {
            sorted_insert(self.outputs.entry(output.clone()).or_default(), id);
        }
    }

    fn remove(&mut self, id: u32, input: &Schema, output: &Schema) {
        for (map, key) in [(&mut self.inputs, input), (&mut self.outputs, output)] {
            if let Some(list) = map.get_mut(key) {
                sorted_remove(list, id);
                if list.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    /// The slots whose types can match `q`'s (`None` when `q` asks for
    /// no type, or for an output of `any`, which every module gives).
    fn candidates(&self, q: &CapabilityQuery) -> Option<Vec<u32>> {
        let mut ids: Vec<u32> = match (&q.output, &q.input) {
            (Some(want), _) if !want.is_any() => self
                .outputs
                .iter()
                .filter(|(have, _)| gives(have, want))
                .flat_map(|(_, list)| list.iter().copied())
                .collect(),
            (_, Some(given)) => self
                .inputs
                .iter()
                .filter(|(takes, _)| given.is_assignable_to(takes))
                .flat_map(|(_, list)| list.iter().copied())
                .collect(),
            _ => return None,
        };
        ids.sort_unstable();
        Some(ids)
    }
}

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

/// The registration in slot `id` (live by the index's invariant).
fn live(slots: &[Option<ModuleInfo>], id: u32) -> &ModuleInfo {
    slots[id as usize]
        .as_ref()
        .expect("index points at a live slot")
}

/// Whether `info` satisfies every condition of `q` (the required
/// capabilities only when `check_required`: an index list may already
/// guarantee them).
pub(super) fn matches(
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
    if q.input
        .as_ref()
        .is_some_and(|t| !t.is_assignable_to(info.input()))
    {
        return false;
    }
    if q.output.as_ref().is_some_and(|t| !gives(info.output(), t)) {
        return false;
    }
    q.metadata
        .iter()
        .all(|(k, v)| info.metadata().get(k).is_some_and(|mine| mine == v))
}

impl CapabilityIndex {
    fn intern(&mut self, cap: &Arc<str>) -> (Arc<str>, u32) {
        if let Some((k, &id)) = self.cap_ids.get_key_value(cap) {
            return (k.clone(), id);
        }
        let id = u32::try_from(self.postings.len()).expect("fewer than 2^32 capabilities");
        self.cap_ids.insert(cap.clone(), id);
        self.postings.push(Vec::new());
        (cap.clone(), id)
    }

    /// Indexes slot `id` under `caps` and its types, replacing each
    /// capability by the index's shared copy of its name.
    pub(super) fn add(&mut self, id: u32, caps: &mut [Arc<str>], types: (&Schema, &Schema)) {
        self.types.add(id, types.0, types.1);
        let mut cap_ids = Vec::with_capacity(caps.len());
        for cap in caps.iter_mut() {
            let (shared, cid) = self.intern(cap);
            *cap = shared;
            cap_ids.push(cid);
        }
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
    }

    /// Removes slot `id`, indexed under `caps` and its types; emptied
    /// lists are dropped.
    pub(super) fn remove(&mut self, id: u32, caps: &[Arc<str>], types: (&Schema, &Schema)) {
        self.types.remove(id, types.0, types.1);
        let mut cap_ids: Vec<u32> = caps
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
    }

    /// Pushes the registrations of `slots` matching `q` onto `found`, in no
    /// particular order, reading the shortest index list that holds them.
    pub(super) fn gather<'s>(
        &self,
        slots: &'s [Option<ModuleInfo>],
        q: &CapabilityQuery,
        req: Option<&VersionReq>,
        found: &mut Vec<&'s ModuleInfo>,
    ) {
        if q.required.len() >= 2 {
            let Some(mut ids) = self.ids_of(&q.required) else {
                return; // a required capability nobody has
            };
            ids.sort_unstable();
            ids.dedup();
            if ids.len() >= 2 {
                return self.gather_paired(slots, q, req, &ids, found);
            }
        }
        if !q.required.is_empty() {
            self.gather_required(slots, q, req, found);
        } else if !q.any.is_empty() {
            self.gather_any(slots, q, req, found);
        } else if let Some(ids) = self.types.candidates(q) {
            found.extend(
                ids.into_iter()
                    .map(|id| live(slots, id))
                    .filter(|info| matches(info, q, req, false)),
            );
        } else {
            found.extend(
                slots
                    .iter()
                    .flatten()
                    .filter(|info| matches(info, q, req, false)),
            );
        }
    }

    /// The id of each capability of `caps`; `None` when one has none (no
    /// module has it).
    fn ids_of(&self, caps: &[String]) -> Option<Vec<u32>> {
        caps.iter()
            .map(|cap| self.cap_ids.get(cap.as_str()).copied())
            .collect()
    }

    /// Two or more distinct required capabilities (`ids`): the shortest
    /// pair list holds every paired match; modules with many capabilities
    /// are checked one by one.
    fn gather_paired<'s>(
        &self,
        slots: &'s [Option<ModuleInfo>],
        q: &CapabilityQuery,
        req: Option<&VersionReq>,
        ids: &[u32],
        found: &mut Vec<&'s ModuleInfo>,
    ) {
        let matching = |id: u32, check_required: bool| {
            let info = live(slots, id);
            matches(info, q, req, check_required).then_some(info)
        };
        let shortest = id_pairs(ids)
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
            && q.input.is_none()
            && q.output.is_none()
            && req.is_none();
        if pair_is_exact && nothing_else {
            found.extend(shortest.iter().map(|&id| live(slots, id)));
        } else {
            found.extend(
                shortest
                    .iter()
                    .filter_map(|&id| matching(id, !pair_is_exact)),
            );
        }
        found.extend(self.unpaired.iter().filter_map(|&id| matching(id, true)));
    }

    /// Required capabilities (one, or one after duplicates): the ids in
    /// every one's list, walking the shortest.
    fn gather_required<'s>(
        &self,
        slots: &'s [Option<ModuleInfo>],
        q: &CapabilityQuery,
        req: Option<&VersionReq>,
        found: &mut Vec<&'s ModuleInfo>,
    ) {
        let Some(ids) = self.ids_of(&q.required) else {
            return;
        };
        let mut lists: Vec<&[u32]> = ids
            .iter()
            .map(|&cid| self.postings[cid as usize].as_slice())
            .collect();
        lists.sort_by_key(|l| l.len());
        let (first, rest) = lists
            .split_first()
            .expect("at least one required capability");
        found.reserve(first.len());
        found.extend(
            first
                .iter()
                .filter(|&id| rest.iter().all(|l| l.binary_search(id).is_ok()))
                .map(|&id| live(slots, id))
                .filter(|info| matches(info, q, req, false)),
        );
    }

    /// No required capability, some of `any`: the union of their lists.
    fn gather_any<'s>(
        &self,
        slots: &'s [Option<ModuleInfo>],
        q: &CapabilityQuery,
        req: Option<&VersionReq>,
        found: &mut Vec<&'s ModuleInfo>,
    ) {
        let mut ids: Vec<u32> = Vec::new();
        for cap in &q.any {
            if let Some(&cid) = self.cap_ids.get(cap.as_str()) {
                ids.extend_from_slice(&self.postings[cid as usize]);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        found.reserve(ids.len());
        found.extend(
            ids.into_iter()
                .map(|id| live(slots, id))
                .filter(|info| matches(info, q, req, false)),
        );
    }
}
