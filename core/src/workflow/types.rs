//! A workflow's types checked before anything runs: every edge (a step's
//! input type must accept what its `after` steps give: one producer's
//! output, the record keyed by step id of a fan-in, or the workflow's
//! `input` type for `after = []`), every fallback (it takes the step's
//! input, and its output goes where the step's does), every config
//! (against the module's config type), and the choice of a step by
//! capabilities (only among providers whose input type fits). A mismatch
//! is an [`Error::WorkflowType`]. Part of planning, so a batch checks once.

use super::plan::PlannedStep;
use super::{OnError, StepInput, Structure, Workflow, WorkflowStep};
use crate::error::{Error, Result, WorkflowTypeError};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;
use crate::query::CapabilityQuery;
use crate::registry::ModuleRegistry;
use crate::schema::{Mismatch, Schema};
use crate::value::Value;

/// `name@version`.
fn label(info: &ModuleInfo) -> String {
    format!("{}@{}", info.name(), info.version())
}

/// What gives a step its input, as the error names it.
struct Given {
    schema: Schema,
    /// `step "count" (word-count@1.0.0) gives`, `the workflow input is`.
    who: String,
    /// The producing step (one), if any.
    producer: Option<String>,
}

/// Checks the types of `workflow`'s planned `steps` (in `structure`'s
/// order); a step chosen by capabilities whose input type does not fit is
/// chosen again among the providers that fit.
pub(crate) fn check(
    registry: &ModuleRegistry,
    workflow: &Workflow,
    structure: &Structure,
    steps: &mut [PlannedStep],
) -> Result<()> {
    // Nothing to check when every type is `any` (the common, untyped case).
    let typed = workflow.input.as_ref().is_some_and(|s| !s.is_any())
        || steps.iter().any(|s| declares_types(&s.info))
        || steps
            .iter()
            .any(|s| s.fallback.as_ref().is_some_and(declares_types));
    if !typed {
        return Ok(());
    }
    let mut outputs: Vec<Option<Schema>> = vec![None; steps.len()];
    for i in topological(structure) {
        let given = given(workflow, structure, steps, &outputs, i)?;
        let step = &workflow.steps[i];
        if !given.schema.is_assignable_to(steps[i].info.input()) {
            if let Some(fit) = refit(registry, step, &given.schema)? {
                steps[i].info = fit;
            }
        }
        let planned = &steps[i];
        edge(workflow, step, &planned.info, "", &given)?;
        if let Some(fallback) = &planned.fallback {
            edge(workflow, step, fallback, "fallback ", &given)?;
        }
        config(workflow, step, planned)?;
        outputs[i] = Some(output_of(planned, &given.schema)?);
    }
    Ok(())
}

/// What flows out of each step of a planned (so checked) workflow: its
/// module's output type, with its fallback's and, with `skip`, its input's.
#[cfg(feature = "pictures")]
pub(crate) fn flows(
    workflow: &Workflow,
    structure: &Structure,
    steps: &[PlannedStep],
) -> Result<Vec<Schema>> {
    let mut outputs: Vec<Option<Schema>> = vec![None; steps.len()];
    for i in topological(structure) {
        let given = given(workflow, structure, steps, &outputs, i)?;
        outputs[i] = Some(output_of(&steps[i], &given.schema)?);
    }
    Ok(outputs
        .into_iter()
        .map(|o| o.unwrap_or_else(Schema::any))
        .collect())
}

fn declares_types(info: &ModuleInfo) -> bool {
    !(info.input().is_any() && info.output().is_any() && info.config_type().is_any())
}

/// The steps in an order where each comes after its inputs (Kahn's).
fn topological(structure: &Structure) -> Vec<usize> {
    let n = structure.inputs.len();
    let mut pending: Vec<usize> = structure
        .inputs
        .iter()
        .map(|i| i.upstream().len())
        .collect();
    let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).rev().collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        order.push(i);
        for &d in structure.dependents[i].iter().rev() {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(d);
            }
        }
    }
    order
}

/// What step `i` is given (its producers' outputs already known).
fn given(
    workflow: &Workflow,
    structure: &Structure,
    steps: &[PlannedStep],
    outputs: &[Option<Schema>],
    i: usize,
) -> Result<Given> {
    let out = |j: usize| outputs[j].clone().unwrap_or_else(Schema::any);
    let gives = |j: usize| format!("step {:?} ({}) gives", steps[j].id, label(&steps[j].info));
    Ok(match &structure.inputs[i] {
        StepInput::Workflow => Given {
            schema: workflow.input.clone().unwrap_or_else(Schema::any),
            who: "the workflow input is".to_string(),
            producer: None,
        },
        StepInput::One(j) => Given {
            schema: out(*j),
            who: gives(*j),
            producer: Some(steps[*j].id.clone()),
        },
        StepInput::Map(refs) => {
            let fields = refs.iter().map(|(id, j)| (id.clone(), out(*j), true));
            let ids: Vec<String> = refs.iter().map(|(id, _)| format!("{id:?}")).collect();
            Given {
                schema: Schema::record(fields, false)?,
                who: format!("steps {} give", ids.join(", ")),
                producer: None,
            }
        }
    })
}

/// A step chosen by capabilities whose module does not take `given`: the
/// highest-version provider that does; `None` for a step naming its
/// module, or when none fits (the edge check then reports the mismatch).
fn refit(
    registry: &ModuleRegistry,
    step: &WorkflowStep,
    given: &Schema,
) -> Result<Option<ModuleInfo>> {
    let Some(caps) = &step.capabilities else {
        return Ok(None);
    };
    let mut query = CapabilityQuery::new()
        .with_required_capabilities(caps.clone())
        .with_kind(ModuleKind::Module)
        .with_input(given.clone());
    if let Some(v) = &step.version {
        query = query.with_version_req(v.clone());
    }
    Ok(registry
        .discover(&query)?
        .into_iter()
        .filter(|i| i.has_implementation())
        .reduce(|best, i| {
            if i.version() > best.version() {
                i
            } else {
                best
            }
        }))
}

/// Checks that `info` (the step's module, or its fallback: `role`) takes
/// what the step is given.
fn edge(
    workflow: &Workflow,
    step: &WorkflowStep,
    info: &ModuleInfo,
    role: &str,
    given: &Given,
) -> Result<()> {
    let Some(why) = given.schema.mismatch(info.input()) else {
        return Ok(());
    };
    let chosen = if step.capabilities.is_some() && role.is_empty() {
        " (no provider of its capabilities takes it)"
    } else {
        ""
    };
    let message = format!(
        "step {:?} ({role}{}) takes {}, but {} {}{chosen}",
        step.id,
        label(info),
        info.input(),
        given.who,
        given.schema
    );
    Err(type_error(
        workflow,
        step,
        info,
        given.producer.clone(),
        why,
        message,
    ))
}

/// Checks a step's config against its module's config type (a missing
/// config is checked as `{}`: an error when the type has required fields).
fn config(workflow: &Workflow, step: &WorkflowStep, planned: &PlannedStep) -> Result<()> {
    let want = planned.info.config_type();
    if want.is_any() {
        return Ok(());
    }
    // A missing field of a record reads as `no field`, as in an edge.
    let Err(Error::SchemaMismatch {
        path,
        expected,
        found,
        ..
    }) = (if planned.config.is_null() && !want.accepts(&Value::Null) {
        want.validate(&Value::Map(Default::default()))
    } else {
        want.validate(&planned.config)
    })
    else {
        return Ok(());
    };
    let given = if planned.config.is_null() {
        "no config is given"
    } else {
        "its config does not fit"
    };
    let message = format!(
        "step {:?} ({}) takes a config of type {want}, but {given}",
        step.id,
        label(&planned.info)
    );
    let why = Mismatch {
        path,
        expected,
        found,
    };
    Err(type_error(
        workflow,
        step,
        &planned.info,
        None,
        why,
        message,
    ))
}

/// What the step passes on: its module's output, or its fallback's; with
/// `skip`, its input too.
fn output_of(planned: &PlannedStep, given: &Schema) -> Result<Schema> {
    let mut members = vec![planned.info.output().clone()];
    if let Some(fallback) = &planned.fallback {
        members.push(fallback.output().clone());
    }
    if planned.on_error == OnError::Skip {
        members.push(given.clone());
    }
    Schema::union(members)
}

fn type_error(
    workflow: &Workflow,
    step: &WorkflowStep,
    info: &ModuleInfo,
    producer: Option<String>,
    why: Mismatch,
    mut message: String,
) -> Error {
    if why.path != "$" {
        message.push_str(&format!(
            " (at {}: expected {}, found {})",
            why.path, why.expected, why.found
        ));
    }
    Error::WorkflowType(Box::new(WorkflowTypeError {
        workflow: workflow.name.clone(),
        step: step.id.clone(),
        module: label(info),
        producer,
        path: why.path,
        expected: why.expected,
        found: why.found,
        message,
    }))
}
