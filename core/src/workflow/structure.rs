//! A workflow's shape, checked before any step runs: step ids, targets,
//! references, error policies, and the absence of cycles.

use super::{invalid, OnError, Workflow};
use crate::error::Result;

impl Workflow {
    /// The input of each step (indices into `steps`), after checking the
    /// shape: ids, targets, references, policies and the absence of cycles.
    /// Returns the steps in an order where each comes after its inputs.
    pub(crate) fn structure(&self) -> Result<Structure> {
        let name = &self.name;
        if self.steps.is_empty() {
            return Err(invalid(name, None, "a workflow needs at least one step"));
        }
        let mut index = std::collections::HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            crate::config::validate_name("step id", &step.id)
                .map_err(|e| invalid(name, Some(&step.id), e.report()))?;
            if index.insert(step.id.as_str(), i).is_some() {
                return Err(invalid(name, Some(&step.id), "the step id is used twice"));
            }
            match (&step.module, &step.capabilities) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        name,
                        Some(&step.id),
                        "give either module or capabilities, not both",
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        name,
                        Some(&step.id),
                        "give a module or capabilities",
                    ))
                }
                (None, Some(c)) if c.is_empty() => {
                    return Err(invalid(
                        name,
                        Some(&step.id),
                        "capabilities must not be empty",
                    ))
                }
                _ => {}
            }
            if step.retries > MAX_RETRIES {
                return Err(invalid(
                    name,
                    Some(&step.id),
                    format!(
                        "retries must be at most {MAX_RETRIES}, not {}",
                        step.retries
                    ),
                ));
            }
            if step.timeout_ms == Some(0) {
                return Err(invalid(
                    name,
                    Some(&step.id),
                    "a timeout of 0 ms would stop every attempt (omit it for none)",
                ));
            }
            match (step.on_error, &step.fallback) {
                (OnError::Fallback, None) => {
                    return Err(invalid(
                        name,
                        Some(&step.id),
                        "on_error = \"fallback\" needs a fallback module",
                    ))
                }
                (OnError::Fail | OnError::Skip, Some(_)) => {
                    return Err(invalid(
                        name,
                        Some(&step.id),
                        "fallback is set but on_error is not \"fallback\"",
                    ))
                }
                _ => {}
            }
        }
        let mut inputs = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let input = match &step.after {
                None if i == 0 => StepInput::Workflow,
                None => StepInput::One(i - 1),
                Some(ids) if ids.is_empty() => StepInput::Workflow,
                Some(ids) => {
                    let mut refs = Vec::with_capacity(ids.len());
                    let mut seen = std::collections::HashSet::with_capacity(ids.len());
                    for id in ids {
                        let Some(&j) = index.get(id.as_str()) else {
                            return Err(invalid(
                                name,
                                Some(&step.id),
                                format!("after names an unknown step {id:?}"),
                            ));
                        };
                        if !seen.insert(id.as_str()) {
                            return Err(invalid(
                                name,
                                Some(&step.id),
                                format!("after names {id:?} twice"),
                            ));
                        }
                        refs.push((id.clone(), j));
                    }
                    if refs.len() == 1 {
                        StepInput::One(refs[0].1)
                    } else {
                        StepInput::Map(refs)
                    }
                }
            };
            inputs.push(input);
        }
        // Kahn's algorithm: an order, or the steps left on a cycle.
        let n = self.steps.len();
        let mut pending: Vec<usize> = inputs.iter().map(|inp| inp.upstream().len()).collect();
        let mut dependents = vec![Vec::new(); n];
        for (i, inp) in inputs.iter().enumerate() {
            for u in inp.upstream() {
                dependents[u].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).rev().collect();
        let mut visited = 0;
        while let Some(i) = ready.pop() {
            visited += 1;
            for &d in dependents[i].iter().rev() {
                pending[d] -= 1;
                if pending[d] == 0 {
                    ready.push(d);
                }
            }
        }
        if visited < n {
            let cycle: Vec<&str> = (0..n)
                .filter(|&i| pending[i] > 0)
                .map(|i| self.steps[i].id.as_str())
                .collect();
            return Err(invalid(
                name,
                Some(cycle[0]),
                format!("the steps form a cycle: {}", cycle.join(", ")),
            ));
        }
        // The result: the step `output` names, else the one final step (no
        // step reads it), else a map from each final step's id to its output
        // (as a fan-in gets), so that no branch's result is dropped.
        let output = match &self.output {
            Some(id) => StepInput::One(*index.get(id.as_str()).ok_or_else(|| {
                invalid(name, None, format!("output names an unknown step {id:?}"))
            })?),
            None => {
                let finals: Vec<(String, usize)> = (0..n)
                    .filter(|&i| dependents[i].is_empty())
                    .map(|i| (self.steps[i].id.clone(), i))
                    .collect();
                match finals.as_slice() {
                    [(_, i)] => StepInput::One(*i),
                    _ => StepInput::Map(finals),
                }
            }
        };
        Ok(Structure {
            inputs,
            dependents,
            output,
        })
    }
}

/// The most retries a step may ask for: each attempt abandoned at its
/// timeout keeps a thread until the module returns, and a failing module
/// retried four billion times is a hang.
pub const MAX_RETRIES: u32 = 100;

/// Where a step's input comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StepInput {
    Workflow,
    One(usize),
    Map(Vec<(String, usize)>),
}

impl StepInput {
    pub(crate) fn upstream(&self) -> Vec<usize> {
        match self {
            StepInput::Workflow => Vec::new(),
            StepInput::One(i) => vec![*i],
            StepInput::Map(refs) => refs.iter().map(|(_, i)| *i).collect(),
        }
    }
}

/// A checked workflow shape.
#[derive(Debug, Clone)]
pub(crate) struct Structure {
    pub inputs: Vec<StepInput>,
    pub dependents: Vec<Vec<usize>>,
    /// What the run returns: one step's output, or a map of the final
    /// steps' outputs (never [`StepInput::Workflow`]).
    pub output: StepInput,
}
