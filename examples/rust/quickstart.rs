//! The end-to-end demo: native modules found at compile time, a module of our
//! own with a dependency, discovery by capability, and a chain of modules.
//!
//! Run: `cargo run -p module-registry --example quickstart`

use module_registry::{
    BoxError, CapabilityQuery, Module, ModuleConfig, ModuleInstance, ModuleRegistry, ModuleType,
    Result, Value, WorkflowOrchestration,
};
use std::sync::Arc;

/// Counts words, using its `text-decode` dependency to accept bytes.
struct WordCount {
    decoder: Arc<ModuleInstance>,
}

impl Module for WordCount {
    fn process(&self, input: Value) -> std::result::Result<Value, BoxError> {
        let text = self.decoder.process(input)?;
        let words = text.as_str().unwrap_or_default().split_whitespace().count();
        Ok(Value::Int(words as i64))
    }
}

fn main() -> Result<()> {
    let registry = ModuleRegistry::with_native_modules();
    println!("native modules found at compile time: {}", registry.len());

    registry.register(
        ModuleConfig::new()
            .with_name("word-count")
            .with_version("1.0.0")
            .with_type(ModuleType::Analytics)
            .add_capability("text-statistics")
            .with_dependency("text-decode", "^1")
            .with_factory(|context| {
                let decoder = context.require("text-decode")?;
                Ok(Box::new(WordCount { decoder }))
            }),
    )?;

    let query = CapabilityQuery::new().with_required_capabilities(vec!["compression"]);
    for info in registry.discover_capabilities(query)? {
        println!("compression module: {} {}", info.name(), info.version());
    }

    let counter = registry.create("word-count")?;
    let words = counter.process(b"the quick brown fox jumps over the lazy dog")?;
    println!(
        "word-count -> {words:?} (dependencies built first: {})",
        counter.dependencies()[0].name()
    );

    let chain = WorkflowOrchestration::new("pack-and-fingerprint")
        .step("gzip-compress")
        .step("gzip-decompress")
        .step("sha256");
    let digest = registry.orchestrate(&chain, b"input data")?;
    println!(
        "gzip -> gunzip -> sha256 -> {}",
        digest.as_str().unwrap_or_default()
    );

    let events = registry.audit_events();
    println!("audit events recorded: {}", events.len());
    Ok(())
}
