//! Dependency resolution: from a root module to concrete versions of every
//! module it needs, highest satisfying version first, with backtracking.
//!
//! One version of each name is chosen. Missing modules, requirements no
//! version meets, requirements that contradict each other and cycles are
//! reported with the chain of modules that led to them.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use semver::VersionReq;

use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;

/// How many resolver steps are explored before giving up with
/// [`Error::ResolutionLimit`].
pub const RESOLUTION_STEP_LIMIT: usize = 100_000;

/// A resolved dependency tree: every module in build order (dependencies
/// before their dependents, the root last) and the direct edges.
#[derive(Debug, Clone)]
pub struct Resolution {
    order: Vec<ModuleInfo>,
    edges: Vec<Vec<(String, usize)>>,
}

impl Resolution {
    /// Every module, dependencies first, the root last.
    pub fn modules(&self) -> &[ModuleInfo] {
        &self.order
    }

    /// The module that was resolved.
    pub fn root(&self) -> &ModuleInfo {
        self.order
            .last()
            .expect("a resolution always holds its root")
    }

    /// The direct dependencies of `modules()[index]`, as (declared name, index).
    pub fn dependencies_of(&self, index: usize) -> &[(String, usize)] {
        &self.edges[index]
    }

    /// How many modules (the root included).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Never true: a resolution holds at least its root.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// `name@version` of every module, in build order.
    pub fn labels(&self) -> Vec<String> {
        self.order.iter().map(label).collect()
    }
}

pub(crate) fn label(info: &ModuleInfo) -> String {
    format!("{}@{}", info.name(), info.version())
}

/// Finds the candidates for a dependency: `(kind found in, versions highest first)`.
pub(crate) trait Catalog {
    fn candidates(
        &self,
        preferred: ModuleKind,
        name: &str,
    ) -> Option<(ModuleKind, Vec<ModuleInfo>)>;
}

struct ChainNode {
    label: String,
    key: Key,
    parent: Option<Rc<ChainNode>>,
}

fn chain_vec(node: &Option<Rc<ChainNode>>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = node.clone();
    while let Some(n) = cur {
        out.push(n.label.clone());
        cur = n.parent.clone();
    }
    out.reverse();
    out
}

/// The modules whose chosen versions led to a task (its chain).
fn chain_keys(node: &Option<Rc<ChainNode>>, into: &mut HashSet<Key>) {
    let mut cur = node.as_ref();
    while let Some(n) = cur {
        into.insert(n.key.clone());
        cur = n.parent.as_ref();
    }
}

struct Task {
    kind: ModuleKind,
    name: String,
    req: VersionReq,
    chain: Option<Rc<ChainNode>>,
}

struct Assigned {
    info: ModuleInfo,
    constraints: Vec<Rc<Task>>,
}

type Key = (ModuleKind, String);

/// What a catalog lists for one name, looked up once per resolution.
type Candidates = Option<(ModuleKind, Rc<[ModuleInfo]>)>;

/// A failed branch: the error, and the modules whose chosen versions it
/// depends on (its culprits). A choice that is not among them cannot mend
/// it, so the search jumps back past that choice instead of trying its
/// other versions one by one (conflict-directed backjumping): a package
/// with thousands of versions above an unrelated failure is not retried
/// thousands of times.
struct Failure {
    error: Error,
    culprits: HashSet<Key>,
}

struct Solver<'a, C: Catalog> {
    catalog: &'a C,
    steps: usize,
    root: String,
    assigned: HashMap<Key, Assigned>,
    /// Each name's candidates, asked of the catalog once (building them
    /// may cost as much as the catalog holds versions).
    cache: HashMap<Key, Candidates>,
}

/// A requirement and the chain that asks for it.
fn describe(task: &Task) -> String {
    let chain = chain_vec(&task.chain);
    format!("{} (required by {})", task.req, chain.join(" -> "))
}

impl<C: Catalog> Solver<'_, C> {
    fn candidates(&mut self, kind: ModuleKind, name: &str) -> Candidates {
        let key = (kind, name.to_string());
        if let Some(found) = self.cache.get(&key) {
            return found.clone();
        }
        let found = self
            .catalog
            .candidates(kind, name)
            .map(|(kind, list)| (kind, Rc::<[ModuleInfo]>::from(list)));
        self.steps += found.as_ref().map_or(1, |(_, list)| list.len() / 16 + 1);
        self.cache.insert(key, found.clone());
        found
    }

    /// Counts `work` more steps; past the limit, the resolution gives up.
    fn charge(&mut self, work: usize) -> std::result::Result<(), Box<Failure>> {
        self.steps = self.steps.saturating_add(work);
        if self.steps > RESOLUTION_STEP_LIMIT {
            return Err(Box::new(Failure {
                error: Error::ResolutionLimit {
                    module: self.root.clone(),
                    steps: self.steps,
                },
                culprits: HashSet::new(),
            }));
        }
        Ok(())
    }

    /// Works through `work` (a stack) until it is empty, choosing versions.
    fn solve(&mut self, mut work: Vec<Rc<Task>>) -> std::result::Result<(), Box<Failure>> {
        // Constraints added to already-assigned modules in this frame, undone on failure.
        let mut added: Vec<Key> = Vec::new();
        let result = self.solve_frame(&mut work, &mut added);
        if result.is_err() {
            for key in added.into_iter().rev() {
                if let Some(a) = self.assigned.get_mut(&key) {
                    a.constraints.pop();
                }
            }
        }
        result
    }

    /// Takes tasks off `work` until one needs a version chosen (then the
    /// rest is [`choose`](Self::choose)'s), or `work` is empty.
    fn solve_frame(
        &mut self,
        work: &mut Vec<Rc<Task>>,
        added: &mut Vec<Key>,
    ) -> std::result::Result<(), Box<Failure>> {
        while let Some(task) = work.pop() {
            self.charge(1)?;
            let Some((kind, candidates)) = self.candidates(task.kind, &task.name) else {
                return Err(failure(&task, missing(&task, Vec::new()), &[]));
            };
            let key = (kind, task.name.clone());
            if let Some(existing) = self.assigned.get_mut(&key) {
                if task.req.matches(existing.info.version()) {
                    existing.constraints.push(task.clone());
                    added.push(key);
                    continue;
                }
                return Err(conflict(existing, &task, key));
            }
            return self.choose(&task, kind, key, &candidates, work);
        }
        Ok(())
    }

    /// Tries each candidate of `task` that its requirement matches, with
    /// its dependencies on top of `work`, until one solves the rest. A
    /// failure another version cannot mend (its culprits do not include
    /// `key`) ends the search at once.
    fn choose(
        &mut self,
        task: &Rc<Task>,
        kind: ModuleKind,
        key: Key,
        candidates: &[ModuleInfo],
        work: &[Rc<Task>],
    ) -> std::result::Result<(), Box<Failure>> {
        let mut first_error: Option<Error> = None;
        let mut culprits: HashSet<Key> = HashSet::new();
        let mut tried = false;
        for candidate in candidates {
            self.charge(1)?;
            if !task.req.matches(candidate.version()) {
                continue;
            }
            tried = true;
            let next = self.with_dependencies(task, kind, &key, candidate, work)?;
            self.assigned.insert(
                key.clone(),
                Assigned {
                    info: candidate.clone(),
                    constraints: vec![task.clone()],
                },
            );
            match self.solve(next) {
                Ok(()) => return Ok(()),
                Err(f) if matches!(f.error, Error::ResolutionLimit { .. }) => return Err(f),
                Err(f) => {
                    let f = *f;
                    self.assigned.remove(&key);
                    if !f.culprits.contains(&key) {
                        // This choice played no part: no other version mends it.
                        return Err(Box::new(f));
                    }
                    culprits.extend(f.culprits.into_iter().filter(|k| *k != key));
                    first_error.get_or_insert(f.error);
                }
            }
        }
        if !tried {
            let available = candidates.iter().map(|c| c.version().to_string()).collect();
            return Err(failure(task, missing(task, available), &[]));
        }
        chain_keys(&task.chain, &mut culprits);
        Err(Box::new(Failure {
            error: first_error.expect("at least one candidate was tried"),
            culprits,
        }))
    }

    /// `work` with `candidate`'s dependencies pushed on top (in reverse, so
    /// that the first declared is handled first), each chained to it.
    fn with_dependencies(
        &mut self,
        task: &Task,
        kind: ModuleKind,
        key: &Key,
        candidate: &ModuleInfo,
        work: &[Rc<Task>],
    ) -> std::result::Result<Vec<Rc<Task>>, Box<Failure>> {
        let node = Rc::new(ChainNode {
            label: label(candidate),
            key: key.clone(),
            parent: task.chain.clone(),
        });
        let mut next = work.to_vec();
        let deps: Vec<_> = candidate.dependency_requirements().collect();
        self.charge((next.len() + deps.len()) / 16)?;
        for (name, req) in deps.into_iter().rev() {
            next.push(Rc::new(Task {
                kind,
                name: name.to_string(),
                req: req.clone(),
                chain: Some(node.clone()),
            }));
        }
        Ok(next)
    }
}

/// A failed branch of `task`: `error`, its culprits the modules on the
/// task's chain and on each of `extra`.
fn failure(task: &Task, error: Error, extra: &[&Option<Rc<ChainNode>>]) -> Box<Failure> {
    let mut culprits = HashSet::new();
    chain_keys(&task.chain, &mut culprits);
    for chain in extra {
        chain_keys(chain, &mut culprits);
    }
    Box::new(Failure { error, culprits })
}

/// No version of `task`'s module matches (`available`: the versions there are).
fn missing(task: &Task, available: Vec<String>) -> Error {
    Error::MissingDependency {
        dependency: task.name.clone(),
        requirement: task.req.to_string(),
        chain: chain_vec(&task.chain),
        available,
    }
}

/// `task` asks for a version of `key` other than the one already chosen:
/// every requirement on it is named, and another version of the module
/// itself may mend it.
fn conflict(existing: &Assigned, task: &Task, key: Key) -> Box<Failure> {
    let mut requirements: Vec<String> = existing.constraints.iter().map(|t| describe(t)).collect();
    requirements.push(describe(task));
    let chains: Vec<&Option<Rc<ChainNode>>> =
        existing.constraints.iter().map(|t| &t.chain).collect();
    let mut failure = failure(
        task,
        Error::VersionConflict {
            dependency: task.name.clone(),
            requirements,
        },
        &chains,
    );
    failure.culprits.insert(key);
    failure
}

/// Resolves `root` and everything it depends on.
pub(crate) fn resolve<C: Catalog>(catalog: &C, root: &ModuleInfo) -> Result<Resolution> {
    let root_key: Key = (root.kind(), root.name().to_string());
    let mut solver = Solver {
        catalog,
        steps: 0,
        root: label(root),
        assigned: HashMap::new(),
        cache: HashMap::new(),
    };
    let node = Rc::new(ChainNode {
        label: label(root),
        key: root_key.clone(),
        parent: None,
    });
    let exact = VersionReq::parse(&format!("={}", root.version())).unwrap_or(VersionReq::STAR);
    solver.assigned.insert(
        root_key.clone(),
        Assigned {
            info: root.clone(),
            constraints: vec![Rc::new(Task {
                kind: root.kind(),
                name: root.name().to_string(),
                req: exact,
                chain: None,
            })],
        },
    );
    let deps: Vec<_> = root.dependency_requirements().collect();
    let work = deps
        .into_iter()
        .rev()
        .map(|(name, req)| {
            Rc::new(Task {
                kind: root.kind(),
                name: name.to_string(),
                req: req.clone(),
                chain: Some(node.clone()),
            })
        })
        .collect();
    solver.solve(work).map_err(|f| f.error)?;

    // Order the chosen modules: depth-first post-order from the root, which
    // also finds cycles (a module reached again while still on the path).
    let assigned = solver.assigned;
    let cache = solver.cache;
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut order: Vec<ModuleInfo> = Vec::new();
    let mut edges: Vec<Vec<(String, usize)>> = Vec::new();
    let mut on_path: Vec<Key> = Vec::new();
    visit(
        &cache,
        &assigned,
        &root_key,
        &mut index,
        &mut order,
        &mut edges,
        &mut on_path,
    )?;
    Ok(Resolution { order, edges })
}

fn visit(
    cache: &HashMap<Key, Candidates>,
    assigned: &HashMap<Key, Assigned>,
    key: &Key,
    index: &mut HashMap<Key, usize>,
    order: &mut Vec<ModuleInfo>,
    edges: &mut Vec<Vec<(String, usize)>>,
    on_path: &mut Vec<Key>,
) -> Result<usize> {
    if let Some(pos) = on_path.iter().position(|k| k == key) {
        let mut cycle: Vec<String> = on_path[pos..]
            .iter()
            .map(|k| label(&assigned[k].info))
            .collect();
        cycle.push(label(&assigned[key].info));
        return Err(Error::DependencyCycle { cycle });
    }
    if let Some(&i) = index.get(key) {
        return Ok(i);
    }
    let info = assigned[key].info.clone();
    on_path.push(key.clone());
    let mut my_edges = Vec::new();
    for (name, _) in info.dependency_requirements() {
        let (kind, _) = cache
            .get(&(key.0, name.to_string()))
            .and_then(Option::as_ref)
            .expect("every dependency was found during solving");
        let dep_key = (*kind, name.to_string());
        let i = visit(cache, assigned, &dep_key, index, order, edges, on_path)?;
        my_edges.push((name.to_string(), i));
    }
    on_path.pop();
    order.push(info);
    edges.push(my_edges);
    let i = order.len() - 1;
    index.insert(key.clone(), i);
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModuleConfig;
    use std::cell::Cell;

    /// A catalog from a table, counting how often it is asked.
    struct Table {
        modules: HashMap<String, Vec<ModuleInfo>>,
        asked: Cell<usize>,
    }

    impl Catalog for Table {
        fn candidates(&self, _: ModuleKind, name: &str) -> Option<(ModuleKind, Vec<ModuleInfo>)> {
            self.asked.set(self.asked.get() + 1);
            self.modules
                .get(name)
                .map(|list| (ModuleKind::Module, list.clone()))
        }
    }

    fn info(name: &str, version: &str, deps: &[(&str, &str)]) -> ModuleInfo {
        let mut config = ModuleConfig::new().with_name(name).with_version(version);
        for (dep, req) in deps {
            config = config.with_dependency(*dep, *req);
        }
        ModuleInfo::detached(config).unwrap()
    }

    #[test]
    fn a_missing_dependency_under_a_package_of_3000_versions_fails_at_once() {
        // 20 packages need `big` (3,000 versions); the last one also needs
        // `missing`, which no catalog lists. No version of `big` can mend
        // that: the search must not retry `big` 3,000 times (each retry
        // re-walking the 20 packages and asking the catalog again).
        let mut modules = HashMap::new();
        modules.insert(
            "big".to_string(),
            (0..3000)
                .rev()
                .map(|i| info("big", &format!("1.0.{i}"), &[]))
                .collect(),
        );
        let mut root_deps = Vec::new();
        let names: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
        for (i, name) in names.iter().enumerate() {
            let deps: &[(&str, &str)] = if i == 19 {
                &[("big", "*"), ("missing", "*")]
            } else {
                &[("big", "*")]
            };
            modules.insert(name.clone(), vec![info(name, "1.0.0", deps)]);
            root_deps.push((name.as_str(), "*"));
        }
        let table = Table {
            modules,
            asked: Cell::new(0),
        };
        let root = info("root", "0.0.0", &root_deps);
        let err = resolve(&table, &root).unwrap_err();
        assert!(
            matches!(&err, Error::MissingDependency { dependency, .. } if dependency == "missing"),
            "{err}"
        );
        // Each name asked once (cached), not once per retry.
        assert!(table.asked.get() <= 22, "asked {} times", table.asked.get());
    }

    #[test]
    fn backjumping_still_finds_the_version_that_mends_a_conflict() {
        // `app` needs `lib` (2.0 or 1.0) and `tool`; `tool` needs `lib ^1`:
        // lib 2.0 is tried first, conflicts, and lib 1.0 is found.
        let mut modules = HashMap::new();
        modules.insert(
            "lib".to_string(),
            vec![info("lib", "2.0.0", &[]), info("lib", "1.0.0", &[])],
        );
        modules.insert(
            "tool".to_string(),
            vec![info("tool", "1.0.0", &[("lib", "^1")])],
        );
        let table = Table {
            modules,
            asked: Cell::new(0),
        };
        let root = info("app", "0.0.0", &[("lib", "*"), ("tool", "*")]);
        let resolution = resolve(&table, &root).unwrap();
        assert_eq!(
            resolution.labels(),
            ["lib@1.0.0", "tool@1.0.0", "app@0.0.0"]
        );
    }
}
