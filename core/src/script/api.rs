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
//! | `registry.pool(target, size)` | an instance pool (see `pool_api.rs`) |
//! | `registry.run_workflow(wf, input)` | `#{ output, outputs: #{ step_id: value, .. }, steps: [#{ id, module, version, status, attempts, cache, duration, error, output }] }` |

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position};

use super::convert::{from_dynamic, to_dynamic};
use super::definitions::described;
use crate::info::ModuleInfo;
use crate::instance::ModuleInstance;
use crate::kind::ModuleKind;
use crate::query::CapabilityQuery;
use crate::registry::ModuleRegistry;

/// The registry as a script sees it.
#[derive(Clone)]
pub struct ScriptRegistry(pub ModuleRegistry);

/// A module instance as a script sees it.
#[derive(Clone)]
pub struct ScriptInstance(pub Arc<ModuleInstance>);

pub(super) type Res<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn fail(e: crate::Error) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(e.report()),
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
    m.insert("input".into(), Dynamic::from(info.input().to_string()));
    m.insert("output".into(), Dynamic::from(info.output().to_string()));
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

/// `registry.discover(#{ capabilities: [..], input: "str", output: "int" })`:
/// every key optional; `input` and `output` are type expressions.
fn discover_by(r: &mut ScriptRegistry, query: Map) -> Res<Array> {
    let mut q = CapabilityQuery::new();
    for (key, value) in query {
        let text = |value: Dynamic| {
            value
                .into_string()
                .map_err(|t| {
                    runtime_error(format!(
                        "discover: {key} must be a type expression, not {t}"
                    ))
                })
                .and_then(|t| crate::schema::Schema::parse(&t).map_err(fail))
        };
        q = match key.as_str() {
            "capabilities" => {
                let caps = value.into_array().map_err(|t| {
                    runtime_error(format!("discover: capabilities must be an array, not {t}"))
                })?;
                q.with_required_capabilities(strings(caps, "capabilities")?)
            }
            "input" => q.with_input(text(value)?),
            "output" => q.with_output(text(value)?),
            other => {
                return Err(runtime_error(format!(
                    "discover: unknown key {other:?} (capabilities, input, output)"
                )))
            }
        };
    }
    Ok(r.0
        .discover(&q)
        .map_err(fail)?
        .iter()
        .map(info_map)
        .collect())
}

fn runtime_error(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message),
        Position::NONE,
    ))
}

fn create(r: &mut ScriptRegistry, name: &str, requirement: Option<&str>) -> Res<ScriptInstance> {
    let instance =
        r.0.create_with(ModuleKind::Module, name, requirement, crate::Value::Null)
            .map_err(fail)?;
    Ok(ScriptInstance(Arc::new(instance)))
}

#[cfg(feature = "workflows")]
pub(super) fn runtime(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message),
        Position::NONE,
    ))
}

/// Registers the types and functions above on `engine`.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptRegistry>("Registry");
    described(
        "discover(registry: Registry, capabilities: Array) -> Array",
        "The modules having every capability, each a map `#{ name, version, kind, type, capabilities }`.",
        r#"let found = registry.discover(["text"]);"#,
    )
    .register_into_engine(engine, discover);
    described(
        "discover(registry: Registry, query: Map) -> Array",
        "The modules a query finds: `#{ capabilities: [..], any: [..], input: \"str\", output: \"int\" }` (each key optional; `input`/`output` are types), as maps like `discover`'s.",
        r#"let found = registry.discover(#{ input: "str", output: "str" });"#,
    )
    .register_into_engine(engine, discover_by);
    described(
        "list(registry: Registry) -> Array",
        "Every registration the script's principal may discover, as maps like `discover`'s.",
        "for m in registry.list() { print(m.name); }",
    )
    .register_into_engine(engine, |r: &mut ScriptRegistry| -> Array {
        r.0.list().iter().map(info_map).collect()
    });
    described(
        "contains(registry: Registry, name: String) -> bool",
        "Whether a module or plugin of that name is registered.",
        r#"if registry.contains("slugify") { print("yes"); }"#,
    )
    .register_into_engine(engine, |r: &mut ScriptRegistry, name: &str| {
        r.0.contains(name)
    });
    // What the script's principal may discover, as `list` shows.
    described(
        "len(registry: Registry) -> int",
        "How many registrations `list` shows.",
        "let n = registry.len();",
    )
    .register_into_engine(engine, |r: &mut ScriptRegistry| {
        r.0.list().len() as rhai::INT
    });
    described(
        "create(registry: Registry, name: String) -> Instance",
        "A new instance of the newest version of module `name`, its dependencies built first.",
        r#"let slug = registry.create("slugify");"#,
    )
    .register_into_engine(engine, |r: &mut ScriptRegistry, name: &str| {
        create(r, name, None)
    });
    described(
        "create(registry: Registry, name: String, requirement: String) -> Instance",
        "A new instance of the newest version of module `name` that meets a version requirement.",
        r#"let slug = registry.create("slugify", "^1");"#,
    )
    .register_into_engine(engine, |r: &mut ScriptRegistry, name: &str, req: &str| {
        create(r, name, Some(req))
    });
    described(
        "create_plugin(registry: Registry, name: String) -> Instance",
        "A new instance of plugin `name`.",
        r#"let p = registry.create_plugin("my-plugin");"#,
    )
    .register_into_engine(
        engine,
        |r: &mut ScriptRegistry, name: &str| -> Res<ScriptInstance> {
            let instance =
                r.0.create_with(ModuleKind::Plugin, name, None, crate::Value::Null)
                    .map_err(fail)?;
            Ok(ScriptInstance(Arc::new(instance)))
        },
    );
    register_instance(engine);
    super::opaque::register(engine);
    super::pool_api::register(engine);
    #[cfg(feature = "workflows")]
    super::workflow_api::register(engine);
}

fn register_instance(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptInstance>("Instance");
    described(
        "process(instance: Instance, input: ?) -> ?",
        "Runs the module on `input` (under the script's deadline) and returns its output.",
        r#"let out = registry.create("slugify").process("Hello World");"#,
    )
    .register_into_engine(
        engine,
        |i: &mut ScriptInstance, input: Dynamic| -> Res<Dynamic> {
            let input = from_dynamic(input).map_err(fail)?;
            let out = super::engine::call_within_deadline(&i.0, input)?.map_err(fail)?;
            Ok(to_dynamic(out))
        },
    );
    described(
        "close(instance: Instance)",
        "Shuts the instance down (its `shutdown` runs once); later calls fail.",
        "instance.close();",
    )
    .register_into_engine(engine, |i: &mut ScriptInstance| -> Res<()> {
        i.0.close().map_err(fail)
    });
    described(
        "get name(instance: Instance) -> String",
        "The instance's module name.",
        "print(instance.name);",
    )
    .register_into_engine(engine, |i: &mut ScriptInstance| i.0.name().to_string());
    described(
        "get version(instance: Instance) -> String",
        "The instance's module version.",
        "print(instance.version);",
    )
    .register_into_engine(engine, |i: &mut ScriptInstance| i.0.version().to_string());
}
