//! The crate embedded in a Rust program, as an embedder writes it: a native
//! module found at compile time, modules whose code uses `?` on any error,
//! a factory that is handed its dependency and reads a typed config
//! (`config_as`: no config is the default), a typed module (serde in and
//! out), shared dependency instances, values converted both ways and
//! indexed, Rust functions for scripts, a parallel workflow handing back
//! every step's output and configuring a step's dependency, and errors that
//! print each level once.
//!
//! Run: `cargo run -p module-registry --example embedding`

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use module_registry::{
    native_module, rhai, semver, BoxError, Module, ModuleConfig, ModuleContext, ModuleInstance,
    ModuleRegistry, ModuleType, NativeModule, Value, Workflow, WorkflowStep,
};
use serde::{Deserialize, Serialize};

/// A counter shared by everything that depends on it.
struct Counter(AtomicI64);

impl Module for Counter {
    fn process(&self, input: Value) -> std::result::Result<Value, BoxError> {
        let step: i64 = input.try_into()?;
        Ok(Value::from(self.0.fetch_add(step, Ordering::SeqCst) + step))
    }
}

/// Where a counter starts (0 unless configured).
#[derive(Deserialize, Default)]
#[serde(default)]
struct CounterConfig {
    start: i64,
}

fn counter(context: &ModuleContext) -> std::result::Result<Box<dyn Module>, BoxError> {
    let config: CounterConfig = context.config_as()?;
    Ok(Box::new(Counter(AtomicI64::new(config.start))))
}

// Found at compile time; a bad name or version here is a compile error.
native_module!(NativeModule::new("counter", "1.0.0", counter)
    .with_type(ModuleType::Analytics)
    .with_capabilities(&["count"]));

/// What a `tally` instance is configured with (each field defaults, so a
/// `tally` created without config counts by 0 under the label "").
#[derive(Deserialize, Default)]
#[serde(default)]
struct TallyConfig {
    label: String,
    step: i64,
}

/// Adds its configured step to the shared counter and labels the total.
struct Tally {
    counter: Arc<ModuleInstance>,
    config: TallyConfig,
}

impl Module for Tally {
    fn process(&self, _: Value) -> std::result::Result<Value, BoxError> {
        let total: i64 = self.counter.process(self.config.step)?.try_into()?;
        Ok(Value::from(format!("{}: {total}", self.config.label)))
    }
}

#[derive(Serialize, Deserialize)]
struct Order {
    id: u32,
    items: Vec<String>,
}

#[derive(Serialize)]
struct Receipt {
    order: u32,
    lines: usize,
    summary: String,
}

/// `main` returns any error through `?`, as the modules do.
fn main() -> std::result::Result<(), BoxError> {
    // Every native module linked in; a clash would be reported, not dropped.
    let registry = ModuleRegistry::try_with_native_modules()?;

    // A handler that parses: `?` takes `ParseIntError` as it is.
    registry.register(
        ModuleConfig::new()
            .with_name("parse")
            .with_version("1.0.0")
            .with_handler(|input| {
                let text: String = input.try_into()?;
                let n: i64 = text.trim().parse()?;
                Ok(Value::from(n))
            }),
    )?;

    // A factory handed its dependency and a typed config.
    registry.register(
        ModuleConfig::new()
            .with_name("tally")
            .with_version("1.0.0")
            .with_dependency("counter", "^1")
            .with_factory(|context| {
                Ok(Box::new(Tally {
                    counter: context.require("counter")?,
                    config: context.config_as()?,
                }))
            }),
    )?;
    let tally = |label: &str, step: i64| {
        let config = Value::from_iter([("label", Value::from(label)), ("step", Value::from(step))]);
        registry
            .instance("tally")
            .version("^1")
            .config(config)
            .share_dependencies(true)
            .create()
    };
    let (apples, pears) = (tally("apples", 2)?, tally("pears", 5)?);
    apples.process(())?;
    let pears_total: String = pears.process(())?.try_into()?;
    println!("{pears_total}"); // pears: 7 (one counter for both)

    // Values: from Rust types and serde, and back.
    let order = module_registry::to_value(&Order {
        id: 7,
        items: vec!["tea".into(), "cake".into()],
    })?;
    println!("order as a value: {order}");
    assert_eq!(order["items"][1], Value::from("cake"));

    // A typed module: serde types in and out, no matching on `Value`.
    registry.register(
        ModuleConfig::new()
            .with_name("receipt")
            .with_version("1.0.0")
            .typed(|order: Order, _ctx| {
                Ok(Receipt {
                    order: order.id,
                    lines: order.items.len(),
                    summary: order.items.join(", "),
                })
            }),
    )?;
    let receipt = registry.create("receipt")?.process(order.clone())?;
    println!(
        "receipt: {} ({} lines)",
        receipt["summary"], receipt["lines"]
    );
    let refused = registry
        .create("receipt")?
        .process(serde_json::json!({"id": "seven"}));
    println!("a wrong order: {}", refused.unwrap_err().report());

    // Rust functions for every script the registry builds from now on.
    registry.register_script_functions(|engine: &mut rhai::Engine| {
        engine.register_fn("vat", |net: f64| (net * 1.2 * 100.0).round() / 100.0);
    })?;
    registry.register_script(
        r#"const MODULE = #{ name: "gross", version: "1.0.0", capabilities: ["prices"] };
           fn process(net) { vat(net.to_float()) }"#,
    )?;
    println!(
        "gross of 10.0: {}",
        registry.create("gross")?.process(10.0)?
    );

    // A workflow with a parallel branch, each step with a deadline: every
    // step's output comes back (no joining step), and a step configures its
    // module's dependency (this run's own counter starts at 100).
    let workflow = Workflow::new("prices")
        .step(
            WorkflowStep::module("net", "parse")
                .after_input()
                .timeout(Duration::from_secs(1)),
        )
        .step(
            WorkflowStep::module("gross", "gross")
                .after(["net"])
                .timeout(Duration::from_secs(1)),
        )
        .step(
            WorkflowStep::module("runs", "tally")
                .after_input()
                .config(Value::from_iter([
                    ("label", Value::from("runs")),
                    ("step", Value::from(1)),
                ]))
                .dependency_config("counter", Value::from_iter([("start", 100)])),
        );
    let result = registry.run_workflow(&workflow, "25")?;
    for (step, output) in result.outputs() {
        println!("step {step}: {output}");
    }
    // Errors: one level per line of the chain, and the module's own error.
    let err = registry.create("parse")?.process("twelve").unwrap_err();
    println!("error: {err}");
    println!("report: {}", err.report());
    let own = err.root_cause().downcast_ref::<std::num::ParseIntError>();
    println!("the module's own error: {own:?}");

    // Versions are `semver` types, re-exported.
    let counter = registry.get("counter").ok_or("counter is not registered")?;
    assert!(semver::VersionReq::parse("^1")?.matches(counter.version()));
    println!(
        "{} {} ({})",
        counter.name(),
        counter.version(),
        counter.module_type()
    );
    Ok(())
}
