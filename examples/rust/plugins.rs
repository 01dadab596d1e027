//! Seed scenario "Extensible Application Framework": plugins registered with
//! descriptions and capabilities, found with a plugin query, and run.
//!
//! Run: `cargo run -p module-registry --example plugins`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use module_registry::{
    BoxError, Error, ModuleRegistry, PluginConfig, PluginDiscoveryQuery, PluginType, Result, Value,
};
use sha2::{Digest, Sha256};

/// Normalises text: trims, collapses whitespace, lower-cases.
fn transform(input: Value) -> std::result::Result<Value, BoxError> {
    let text = String::from_utf8_lossy(input.bytes_or_text()?).into_owned();
    Ok(Value::Str(
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
    ))
}

/// A keyed stream cipher: SHA-256 in counter mode XORed over the data.
/// Encrypting twice with the same key decrypts. (A demonstration, not a
/// vetted cipher.)
fn keystream_xor(key: &[u8], data: &[u8]) -> Vec<u8> {
    data.chunks(32)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let block = Sha256::new()
                .chain_update(key)
                .chain_update((i as u64).to_le_bytes())
                .finalize();
            chunk
                .iter()
                .zip(block)
                .map(|(d, k)| d ^ k)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn main() -> Result<()> {
    let registry = ModuleRegistry::with_native_modules();

    // Register plugin modules
    let plugins = vec![
        (
            "data-processor-plugin",
            "Data processing plugin",
            vec!["data-processing", "transformation"],
        ),
        (
            "encryption-plugin",
            "Encryption plugin",
            vec!["encryption", "decryption", "key-management"],
        ),
        (
            "compression-plugin",
            "Compression plugin",
            vec!["compression", "decompression", "optimization"],
        ),
        (
            "monitoring-plugin",
            "Monitoring plugin",
            vec!["monitoring", "logging", "alerting"],
        ),
    ];

    let calls = Arc::new(AtomicU64::new(0));
    for (name, description, capabilities) in plugins {
        let mut config = PluginConfig::new()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(PluginType::DataProcessor)
            .with_metadata("description", description)
            .with_metadata("plugin_type", "extension");

        for capability in capabilities {
            config = config.add_capability(capability);
        }

        let config = match name {
            "data-processor-plugin" => config.with_handler(transform),
            "encryption-plugin" => config.with_handler(|input| {
                let key = input
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::invalid_input("needs a \"key\""))?;
                let data = input
                    .get("data")
                    .ok_or_else(|| Error::invalid_input("needs \"data\""))?
                    .bytes_or_text()?;
                Ok(Value::Bytes(keystream_xor(key.as_bytes(), data)))
            }),
            // Built on the native gzip module, declared as a dependency.
            "compression-plugin" => {
                config
                    .with_dependency("gzip-compress", "^1")
                    .with_factory(|context| {
                        Ok(Box::new(Compressor(context.require("gzip-compress")?)))
                    })
            }
            _ => {
                let calls = calls.clone();
                config.with_handler(move |event| {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    let level = event.get("level").and_then(Value::as_str).unwrap_or("info");
                    Ok(Value::from_iter([
                        ("seen", Value::Int(n as i64)),
                        ("alert", Value::Bool(level == "error")),
                    ]))
                })
            }
        };
        registry.register_plugin(config)?;
    }

    // Discover plugins by capability
    let query = PluginDiscoveryQuery::new().with_required_capabilities(vec!["data-processing"]);

    let data_plugins = registry.discover_plugins(query)?;
    for info in &data_plugins {
        let out = registry
            .create_plugin(info.name())?
            .process("  Hello   PLUGIN World ")?;
        println!("{} -> {out:?}", info.name());
    }

    let crypto = registry.create_plugin("encryption-plugin")?;
    let sealed = crypto.process(Value::from_iter([
        ("key", Value::from("k1")),
        ("data", Value::from("secret")),
    ]))?;
    let opened = crypto.process(Value::from_iter([
        ("key", Value::from("k1")),
        ("data", sealed.clone()),
    ]))?;
    println!(
        "encryption-plugin: {} bytes sealed, opened to {:?}",
        sealed.as_bytes().map_or(0, <[u8]>::len),
        String::from_utf8_lossy(opened.as_bytes().unwrap_or_default())
    );

    let packed = registry
        .create_plugin("compression-plugin")?
        .process("aaaa".repeat(100))?;
    println!(
        "compression-plugin: 400 bytes -> {} bytes",
        packed.as_bytes().map_or(0, <[u8]>::len)
    );

    let monitor = registry.create_plugin("monitoring-plugin")?;
    monitor.process(Value::from_iter([("level", "info")]))?;
    println!(
        "monitoring-plugin -> {:?}",
        monitor.process(Value::from_iter([("level", "error")]))?
    );
    Ok(())
}

/// Compresses through the `gzip-compress` instance its factory was given.
struct Compressor(Arc<module_registry::ModuleInstance>);

impl module_registry::Module for Compressor {
    fn process(&self, input: Value) -> std::result::Result<Value, BoxError> {
        Ok(self.0.process(input)?)
    }
}
