//! What scripts see of workflows (`workflows` feature): `workflow("name")`,
//! `wf.step(..)`, `wf.output`, the file form and pictures, and
//! `registry.run_workflow(wf, input)`.

use rhai::{Array, Dynamic, Engine, Map};

use super::api::{fail, runtime, Res, ScriptRegistry};
use super::convert::{from_dynamic, to_dynamic};
use super::definitions::described;
use crate::workflow::{Workflow, WorkflowStep};

/// A workflow being built by a script.
#[derive(Clone)]
pub struct ScriptWorkflow(pub Workflow);

fn add_step(wf: &mut ScriptWorkflow, step: Map) -> Res<()> {
    let value = from_dynamic(Dynamic::from_map(step)).map_err(fail)?;
    let json = value.to_json().map_err(fail)?;
    let step: WorkflowStep =
        serde_json::from_value(json).map_err(|e| runtime(format!("invalid workflow step: {e}")))?;
    wf.0.add_step(step);
    Ok(())
}

/// Runs `workflow` for a script: within the script's deadline (the run goes
/// on this thread's helper thread, and is cancelled and abandoned when the
/// deadline passes, which ends the script as timed out), its output charged
/// to the script's memory.
fn run_bounded(
    registry: &crate::ModuleRegistry,
    workflow: Workflow,
    input: crate::Value,
) -> Res<crate::workflow::WorkflowResult> {
    let mark = super::memory::mark();
    let result = match super::engine::deadline() {
        None => registry.run_workflow(&workflow, input),
        Some(deadline) => {
            let cancel = crate::workflow::CancelToken::new();
            let (registry, token) = (registry.clone(), cancel.clone());
            let caller = crate::access::Caller::current();
            let run = move || {
                caller.enter(|| registry.run_workflow_cancellable(&workflow, input, &token))
            };
            match super::helper::run(run, deadline) {
                Ok(result) => result,
                Err(super::helper::NotDone::TimedOut) => {
                    // No step starts after this; the ones running finish alone.
                    cancel.cancel();
                    return Err(super::engine::timed_out());
                }
                Err(super::helper::NotDone::NoThread(e)) => Err(crate::Error::invalid_input(
                    format!("cannot start a thread to run a workflow: {e}"),
                )),
            }
        }
    }
    .map_err(fail)?;
    super::memory::received_all(
        mark,
        std::iter::once(&result.output).chain(result.steps.iter().filter_map(|s| s.output())),
    );
    Ok(result)
}

fn run_workflow(r: &mut ScriptRegistry, wf: ScriptWorkflow, input: Dynamic) -> Res<Dynamic> {
    let input = from_dynamic(input).map_err(fail)?;
    let result = run_bounded(&r.0, wf.0, input)?;
    let mut result = result;
    let outputs: Map = result
        .outputs()
        .into_iter()
        .map(|(id, v)| (id.into(), to_dynamic(v.clone())))
        .collect();
    let steps: Array = result
        .steps
        .iter_mut()
        .map(|s| {
            let mut m = Map::new();
            m.insert("id".into(), Dynamic::from(s.id.to_string()));
            m.insert("module".into(), Dynamic::from(s.module.to_string()));
            m.insert("version".into(), Dynamic::from(s.version.to_string()));
            m.insert("status".into(), Dynamic::from(s.status.as_str()));
            m.insert("attempts".into(), Dynamic::from_int(i64::from(s.attempts)));
            m.insert("cache".into(), Dynamic::from(s.cache.as_str()));
            m.insert(
                "duration".into(),
                Dynamic::from_float(s.duration.as_secs_f64()),
            );
            m.insert(
                "error".into(),
                s.error.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            m.insert(
                "output".into(),
                s.take_output().map_or(Dynamic::UNIT, to_dynamic),
            );
            Dynamic::from_map(m)
        })
        .collect();
    let mut out = Map::new();
    out.insert("output".into(), to_dynamic(result.output));
    out.insert("steps".into(), Dynamic::from_array(steps));
    out.insert("outputs".into(), Dynamic::from_map(outputs));
    Ok(Dynamic::from_map(out))
}

/// Registers the workflow type and functions on `engine`.
pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptWorkflow>("Workflow");
    described(
        "workflow(name: String) -> Workflow",
        "A new, empty workflow.",
        r#"let wf = workflow("report");"#,
    )
    .register_into_engine(engine, |name: &str| ScriptWorkflow(Workflow::new(name)));
    described(
        "step(wf: Workflow, step: Map)",
        "Adds a step in place, with the workflow file's keys (`id`, `module`, `after`, `retries`, ...).",
        r#"wf.step(#{ id: "slug", "module": "slugify" });"#,
    )
    .register_into_engine(engine, add_step);
    described(
        "get name(wf: Workflow) -> String",
        "The workflow's name.",
        "print(wf.name);",
    )
    .register_into_engine(engine, |w: &mut ScriptWorkflow| w.0.name.clone());
    described(
        "get len(wf: Workflow) -> int",
        "How many steps the workflow has.",
        "print(wf.len);",
    )
    .register_into_engine(engine, |w: &mut ScriptWorkflow| {
        w.0.steps.len() as rhai::INT
    });
    described(
        "set output(wf: Workflow, id: String)",
        "Chooses the step whose output is the workflow's output.",
        r#"wf.output = "slug";"#,
    )
    .register_into_engine(engine, |w: &mut ScriptWorkflow, id: &str| {
        w.0.output = Some(id.to_string())
    });
    described(
        "set input(wf: Workflow, schema: String)",
        "Declares the type of the workflow's input (checked against its first steps' input types).",
        r#"wf.input = "str";"#,
    )
    .register_into_engine(engine, |w: &mut ScriptWorkflow, schema: &str| -> Res<()> {
        w.0.input = Some(crate::schema::Schema::parse(schema).map_err(fail)?);
        Ok(())
    });
    described(
        "to_mermaid(wf: Workflow) -> String",
        "The workflow as a Mermaid flowchart.",
        "print(wf.to_mermaid());",
    )
    .register_into_engine(engine, |w: &mut ScriptWorkflow| -> Res<String> {
        w.0.to_mermaid().map_err(fail)
    });
    described(
        "to_dot(wf: Workflow) -> String",
        "The workflow as a Graphviz DOT graph.",
        "print(wf.to_dot());",
    )
    .register_into_engine(engine, |w: &mut ScriptWorkflow| -> Res<String> {
        w.0.to_dot().map_err(fail)
    });
    described(
        "to_json(wf: Workflow) -> String",
        "The workflow in its JSON file form.",
        "print(wf.to_json());",
    )
    .register_into_engine(engine, |w: &mut ScriptWorkflow| -> Res<String> {
        w.0.to_json().map_err(fail)
    });
    described(
        "run_workflow(registry: Registry, wf: Workflow, input: ?) -> Map",
        "Runs the workflow: `#{ output, outputs: #{ step_id: value }, steps: [#{ id, module, version, status, attempts, cache, duration, error, output }] }`.",
        r#"let result = registry.run_workflow(wf, "Hello World"); result.output"#,
    )
    .register_into_engine(engine, run_workflow);
}
