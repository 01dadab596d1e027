//! A workflow's shape, checked before any step runs: step ids, targets,
//! references, error policies, and the absence of cycles.

use std::collections::{HashMap, HashSet};

use super::{invalid, OnError, Workflow, WorkflowStep};
use crate::error::Result;

type Index<'a> = HashMap<&'a str, usize>;

impl Workflow {
    /// The input of each step (indices into `steps`), after checking the
    /// shape: ids, targets, references, policies and the absence of cycles.
    /// Returns the steps in an order where each comes after its inputs.
    pub(crate) fn structure(&self) -> Result<Structure> {
        if self.steps.is_empty() {
            return Err(invalid(
                &self.name,
                None,
                "a workflow needs at least one step",
            ));
        }
        let index = self.check_steps()?;
        let inputs = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| self.input_of(i, step, &index))
            .collect::<Result<Vec<_>>>()?;
        let dependents = self.check_acyclic(&inputs)?;
        let output = self.output_of(&index, &dependents)?;
        Ok(Structure {
            inputs,
            dependents,
            output,
        })
    }

    /// Each step's id valid and unique, and the step checked on its own
    /// (see [`check_step`]): the index of each id.
    fn check_steps(&self) -> Result<Index<'_>> {
        let mut index = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            crate::config::validate_name("step id", &step.id)
                .map_err(|e| invalid(&self.name, Some(&step.id), e.report()))?;
            if index.insert(step.id.as_str(), i).is_some() {
                return Err(invalid(
                    &self.name,
                    Some(&step.id),
                    "the step id is used twice",
                ));
            }
            check_step(&self.name, step)?;
        }
        Ok(index)
    }

    /// Where step `i` takes its input from: `after`'s steps (each known,
    /// none twice), else the step before it, else the workflow's input.
    fn input_of(&self, i: usize, step: &WorkflowStep, index: &Index<'_>) -> Result<StepInput> {
        let ids = match &step.after {
            None if i == 0 => return Ok(StepInput::Workflow),
            None => return Ok(StepInput::One(i - 1)),
            Some(ids) if ids.is_empty() => return Ok(StepInput::Workflow),
            Some(ids) => ids,
        };
        let mut refs = Vec::with_capacity(ids.len());
        let mut seen = HashSet::with_capacity(ids.len());
        for id in ids {
            let Some(&j) = index.get(id.as_str()) else {
                return Err(invalid(
                    &self.name,
                    Some(&step.id),
                    format!("after names an unknown step {id:?}"),
                ));
            };
            if !seen.insert(id.as_str()) {
                return Err(invalid(
                    &self.name,
                    Some(&step.id),
                    format!("after names {id:?} twice"),
                ));
            }
            refs.push((id.clone(), j));
        }
        Ok(if refs.len() == 1 {
            StepInput::One(refs[0].1)
        } else {
            StepInput::Map(refs)
        })
    }

    /// The steps that read each step's output, after checking (Kahn's
    /// algorithm) that no steps form a cycle.
    fn check_acyclic(&self, inputs: &[StepInput]) -> Result<Vec<Vec<usize>>> {
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
                &self.name,
                Some(cycle[0]),
                format!("the steps form a cycle: {}", cycle.join(", ")),
            ));
        }
        Ok(dependents)
    }

    /// The result: the step `output` names, else the one final step (no
    /// step reads it), else a map from each final step's id to its output
    /// (as a fan-in gets), so that no branch's result is dropped.
    fn output_of(&self, index: &Index<'_>, dependents: &[Vec<usize>]) -> Result<StepInput> {
        if let Some(id) = &self.output {
            return index
                .get(id.as_str())
                .map(|&i| StepInput::One(i))
                .ok_or_else(|| {
                    invalid(
                        &self.name,
                        None,
                        format!("output names an unknown step {id:?}"),
                    )
                });
        }
        let finals: Vec<(String, usize)> = (0..dependents.len())
            .filter(|&i| dependents[i].is_empty())
            .map(|i| (self.steps[i].id.clone(), i))
            .collect();
        Ok(match finals.as_slice() {
            [(_, i)] => StepInput::One(*i),
            _ => StepInput::Map(finals),
        })
    }
}

/// One step of workflow `name` on its own: one target (a module or
/// capabilities), retries, timeout and error policy.
fn check_step(name: &str, step: &WorkflowStep) -> Result<()> {
    let refuse = |message: String| Err(invalid(name, Some(&step.id), message));
    match (&step.module, &step.capabilities) {
        (Some(_), Some(_)) => return refuse("give either module or capabilities, not both".into()),
        (None, None) => return refuse("give a module or capabilities".into()),
        (None, Some(c)) if c.is_empty() => return refuse("capabilities must not be empty".into()),
        _ => {}
    }
    if step.retries > MAX_RETRIES {
        return refuse(format!(
            "retries must be at most {MAX_RETRIES}, not {}",
            step.retries
        ));
    }
    if step.timeout_ms == Some(0) {
        return refuse("a timeout of 0 ms would stop every attempt (omit it for none)".into());
    }
    match (step.on_error, &step.fallback) {
        (OnError::Fallback, None) => {
            refuse("on_error = \"fallback\" needs a fallback module".into())
        }
        (OnError::Fail | OnError::Skip, Some(_)) => {
            refuse("fallback is set but on_error is not \"fallback\"".into())
        }
        _ => Ok(()),
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
