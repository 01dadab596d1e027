//! What scripts see of the registry: the `registry` variable of an
//! orchestration script and the instances it creates.
//!
//! | Rhai | does |
//! |---|---|
//! | `registry.discover(["cap", ...])` | array of maps `#{name, version, kind, type, capabilities}` having every capability |
//! | `registry.list()` | every registration, same maps |
//! | `registry.contains("name")` | whether a module or plugin of that name exists |
//! | `registry.create("name")`, `registry.create("name", "^1")` | an instance |
//! | `instance.process(x)` | runs the module |
//! | `instance.close()`, `instance.name`, `instance.version` | |
//! | `workflow("name")` | a new workflow |
//! | `wf.step(#{ id: .., "module": .., after: [..], retries: .., ... })` | adds a step in place (the file form's keys) |
//! | `wf.output = "id"` | chooses the output step |
//! | `wf.to_json()`, `wf.to_mermaid()`, `wf.to_dot()` | the file form and pictures |
//! | `registry.run_workflow(wf, input)` | `#{ output, steps: [#{ id, module, version, status, attempts, duration, error }] }` |

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position};

use super::convert::{from_dynamic, to_dynamic};
use crate::config::ModuleKind;
use crate::module::ModuleInstance;
use crate::query::CapabilityQuery;
use crate::registry::{ModuleInfo, ModuleRegistry};

/// The registry as a script sees it.
#[derive(Clone)]
pub struct ScriptRegistry(pub ModuleRegistry);

/// A workflow being built by a script.
#[derive(Clone)]
pub struct ScriptWorkflow(pub crate::workflow::Workflow);

/// A module instance as a script sees it.
#[derive(Clone)]
pub struct ScriptInstance(pub Arc<ModuleInstance>);

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail(e: crate::Error) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(e.to_string()),
        Position::NONE,
    ))
}

fn info_map(info: &ModuleInfo) -> Dynamic {
    let mut m = Map::new();
    m.insert(
        "name".into(),
        Dynamic::from(ImmutableString::from(info.name())),
    );
    m.insert(
        "version".into(),
        Dynamic::from(info.version_text().to_string()),
    );
    m.insert("kind".into(), Dynamic::from(info.kind().as_str()));
    m.insert(
        "type".into(),
        Dynamic::from(info.module_type().name().to_string()),
    );
    let caps: Array = info
        .capabilities()
        .iter()
        .map(|c| Dynamic::from(c.to_string()))
        .collect();
    m.insert("capabilities".into(), Dynamic::from_array(caps));
    Dynamic::from_map(m)
}

fn strings(items: Array, what: &str) -> Res<Vec<String>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            d.into_string().map_err(|t| {
                Box::new(EvalAltResult::ErrorRuntime(
                    Dynamic::from(format!("{what}[{i}] must be a string, not {t}")),
                    Position::NONE,
                ))
            })
        })
        .collect()
}

fn discover(r: &mut ScriptRegistry, caps: Array) -> Res<Array> {
    let q = CapabilityQuery::new().with_required_capabilities(strings(caps, "capabilities")?);
    Ok(r.0
        .discover(&q)
        .map_err(fail)?
        .iter()
        .map(info_map)
        .collect())
}

fn create(r: &mut ScriptRegistry, name: &str, requirement: Option<&str>) -> Res<ScriptInstance> {
    let instance =
        r.0.create_with(ModuleKind::Module, name, requirement, crate::Value::Null)
            .map_err(fail)?;
    Ok(ScriptInstance(Arc::new(instance)))
}

fn runtime(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message),
        Position::NONE,
    ))
}

fn add_step(wf: &mut ScriptWorkflow, step: Map) -> Res<()> {
    let value = from_dynamic(Dynamic::from_map(step));
    let json = value.to_json().map_err(fail)?;
    let step: crate::workflow::WorkflowStep =
        serde_json::from_value(json).map_err(|e| runtime(format!("invalid workflow step: {e}")))?;
    wf.0.add_step(step);
    Ok(())
}

fn run_workflow(r: &mut ScriptRegistry, wf: ScriptWorkflow, input: Dynamic) -> Res<Dynamic> {
    let result = r.0.run_workflow(&wf.0, from_dynamic(input)).map_err(fail)?;
    let steps: Array = result
        .steps
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("id".into(), Dynamic::from(s.id.clone()));
            m.insert("module".into(), Dynamic::from(s.module.clone()));
            m.insert("version".into(), Dynamic::from(s.version.clone()));
            m.insert("status".into(), Dynamic::from(s.status.as_str()));
            m.insert("attempts".into(), Dynamic::from_int(i64::from(s.attempts)));
            m.insert(
                "duration".into(),
                Dynamic::from_float(s.duration.as_secs_f64()),
            );
            m.insert(
                "error".into(),
                s.error.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            Dynamic::from_map(m)
        })
        .collect();
    let mut out = Map::new();
    out.insert("output".into(), to_dynamic(result.output));
    out.insert("steps".into(), Dynamic::from_array(steps));
    Ok(Dynamic::from_map(out))
}

/// Registers the types and functions above on `engine`.
pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<ScriptRegistry>("Registry")
        .register_fn("discover", discover)
        .register_fn("list", |r: &mut ScriptRegistry| -> Array {
            r.0.list().iter().map(info_map).collect()
        })
        .register_fn("contains", |r: &mut ScriptRegistry, name: &str| {
            r.0.contains(name)
        })
        .register_fn("len", |r: &mut ScriptRegistry| r.0.len() as rhai::INT)
        .register_fn("create", |r: &mut ScriptRegistry, name: &str| {
            create(r, name, None)
        })
        .register_fn("create", |r: &mut ScriptRegistry, name: &str, req: &str| {
            create(r, name, Some(req))
        })
        .register_fn(
            "create_plugin",
            |r: &mut ScriptRegistry, name: &str| -> Res<ScriptInstance> {
                let instance =
                    r.0.create_with(ModuleKind::Plugin, name, None, crate::Value::Null)
                        .map_err(fail)?;
                Ok(ScriptInstance(Arc::new(instance)))
            },
        );
    engine
        .register_type_with_name::<ScriptInstance>("Instance")
        .register_fn(
            "process",
            |i: &mut ScriptInstance, input: Dynamic| -> Res<Dynamic> {
                let out = i.0.process_value(from_dynamic(input)).map_err(fail)?;
                Ok(to_dynamic(out))
            },
        )
        .register_fn("close", |i: &mut ScriptInstance| -> Res<()> {
            i.0.close().map_err(fail)
        })
        .register_get("name", |i: &mut ScriptInstance| i.0.name().to_string())
        .register_get("version", |i: &mut ScriptInstance| {
            i.0.version().to_string()
        });
    engine.register_type_with_name::<super::convert::OpaqueHandle>("Opaque");
    engine
        .register_type_with_name::<ScriptWorkflow>("Workflow")
        .register_fn("workflow", |name: &str| {
            ScriptWorkflow(crate::workflow::Workflow::new(name))
        })
        .register_fn("step", add_step)
        .register_get("name", |w: &mut ScriptWorkflow| w.0.name.clone())
        .register_get("len", |w: &mut ScriptWorkflow| w.0.steps.len() as rhai::INT)
        .register_set("output", |w: &mut ScriptWorkflow, id: &str| {
            w.0.output = Some(id.to_string())
        })
        .register_fn("to_mermaid", |w: &mut ScriptWorkflow| -> Res<String> {
            w.0.to_mermaid().map_err(fail)
        })
        .register_fn("to_dot", |w: &mut ScriptWorkflow| -> Res<String> {
            w.0.to_dot().map_err(fail)
        })
        .register_fn("to_json", |w: &mut ScriptWorkflow| -> Res<String> {
            w.0.to_json().map_err(fail)
        });
    engine.register_fn("run_workflow", run_workflow);
}
