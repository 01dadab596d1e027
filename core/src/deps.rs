//! Dependency resolution: from a root module to concrete versions of every
//! module it needs, highest satisfying version first, with backtracking.
//!
//! One version of each name is chosen. Missing modules, requirements no
//! version meets, requirements that contradict each other and cycles are
//! reported with the chain of modules that led to them.

use std::collections::HashMap;
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

struct Solver<'a, C: Catalog> {
    catalog: &'a C,
    steps: usize,
    root: String,
    assigned: HashMap<Key, Assigned>,
}

impl<C: Catalog> Solver<'_, C> {
    fn describe(task: &Task) -> String {
        let chain = chain_vec(&task.chain);
        format!("{} (required by {})", task.req, chain.join(" -> "))
    }

    /// Works through `work` (a stack) until it is empty, choosing versions.
    fn solve(&mut self, mut work: Vec<Rc<Task>>) -> Result<()> {
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

    fn solve_frame(&mut self, work: &mut Vec<Rc<Task>>, added: &mut Vec<Key>) -> Result<()> {
        while let Some(task) = work.pop() {
            self.steps += 1;
            if self.steps > RESOLUTION_STEP_LIMIT {
                return Err(Error::ResolutionLimit {
                    module: self.root.clone(),
                    steps: self.steps,
                });
            }
            let Some((kind, candidates)) = self.catalog.candidates(task.kind, &task.name) else {
                return Err(Error::MissingDependency {
                    dependency: task.name.clone(),
                    requirement: task.req.to_string(),
                    chain: chain_vec(&task.chain),
                    available: Vec::new(),
                });
            };
            let key = (kind, task.name.clone());
            if let Some(existing) = self.assigned.get_mut(&key) {
                if task.req.matches(existing.info.version()) {
                    existing.constraints.push(task.clone());
                    added.push(key);
                    continue;
                }
                let mut requirements: Vec<String> = existing
                    .constraints
                    .iter()
                    .map(|t| Self::describe(t))
                    .collect();
                requirements.push(Self::describe(&task));
                return Err(Error::VersionConflict {
                    dependency: task.name.clone(),
                    requirements,
                });
            }
            let matching: Vec<ModuleInfo> = candidates
                .iter()
                .filter(|c| task.req.matches(c.version()))
                .cloned()
                .collect();
            if matching.is_empty() {
                return Err(Error::MissingDependency {
                    dependency: task.name.clone(),
                    requirement: task.req.to_string(),
                    chain: chain_vec(&task.chain),
                    available: candidates.iter().map(|c| c.version().to_string()).collect(),
                });
            }
            let mut first_error = None;
            for candidate in matching {
                let node = Rc::new(ChainNode {
                    label: label(&candidate),
                    parent: task.chain.clone(),
                });
                let mut next = work.clone();
                // Push in reverse so the first declared dependency is handled first.
                let deps: Vec<_> = candidate.dependency_requirements().collect();
                for (name, req) in deps.into_iter().rev() {
                    next.push(Rc::new(Task {
                        kind,
                        name: name.to_string(),
                        req: req.clone(),
                        chain: Some(node.clone()),
                    }));
                }
                self.assigned.insert(
                    key.clone(),
                    Assigned {
                        info: candidate,
                        constraints: vec![task.clone()],
                    },
                );
                match self.solve(next) {
                    Ok(()) => return Ok(()),
                    Err(e @ Error::ResolutionLimit { .. }) => return Err(e),
                    Err(e) => {
                        self.assigned.remove(&key);
                        first_error.get_or_insert(e);
                    }
                }
            }
            return Err(first_error.expect("at least one candidate was tried"));
        }
        Ok(())
    }
}

/// Resolves `root` and everything it depends on.
pub(crate) fn resolve<C: Catalog>(catalog: &C, root: &ModuleInfo) -> Result<Resolution> {
    let root_key: Key = (root.kind(), root.name().to_string());
    let mut solver = Solver {
        catalog,
        steps: 0,
        root: label(root),
        assigned: HashMap::new(),
    };
    let node = Rc::new(ChainNode {
        label: label(root),
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
    solver.solve(work)?;

    // Order the chosen modules: depth-first post-order from the root, which
    // also finds cycles (a module reached again while still on the path).
    let assigned = solver.assigned;
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut order: Vec<ModuleInfo> = Vec::new();
    let mut edges: Vec<Vec<(String, usize)>> = Vec::new();
    let mut on_path: Vec<Key> = Vec::new();
    visit(
        catalog,
        &assigned,
        &root_key,
        &mut index,
        &mut order,
        &mut edges,
        &mut on_path,
    )?;
    Ok(Resolution { order, edges })
}

fn visit<C: Catalog>(
    catalog: &C,
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
        let (kind, _) = catalog
            .candidates(key.0, name)
            .expect("every dependency was found during solving");
        let dep_key = (kind, name.to_string());
        let i = visit(catalog, assigned, &dep_key, index, order, edges, on_path)?;
        my_edges.push((name.to_string(), i));
    }
    on_path.pop();
    order.push(info);
    edges.push(my_edges);
    let i = order.len() - 1;
    index.insert(key.clone(), i);
    Ok(i)
}
