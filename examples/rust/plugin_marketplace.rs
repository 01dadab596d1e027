//! Seed scenario "Plugin Marketplace": plugins listed with descriptions and
//! licence types, created by name, and browsed through the catalogue.
//!
//! Run: `cargo run -p module-registry --example plugin_marketplace`

use module_registry::{ModuleRegistry, PluginConfig, PluginMarketplace, PluginType, Result, Value};

fn main() -> Result<()> {
    // The seed's own call, kept compiling (`ModuleRegistry::builder()` is the new way).
    #[allow(deprecated)]
    let registry = ModuleRegistry::new().with_plugin_marketplace(true);

    // Register marketplace plugins
    let marketplace_plugins = vec![
        (
            "premium-data-processor",
            "Premium data processor",
            "commercial",
        ),
        (
            "open-source-encryption",
            "Open source encryption",
            "open-source",
        ),
        ("enterprise-analytics", "Enterprise analytics", "enterprise"),
        ("community-monitoring", "Community monitoring", "community"),
    ];

    for (name, description, license_type) in marketplace_plugins {
        let config = PluginConfig::new()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(PluginType::DataProcessor)
            .with_metadata("description", description)
            .with_metadata("license_type", license_type)
            .with_metadata("marketplace", "true");

        // Each plugin does a small, real job on a list of numbers.
        let config = match name {
            "premium-data-processor" => config.with_handler(|v| {
                let mut xs: Vec<f64> = v
                    .as_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Value::as_float)
                    .collect();
                xs.sort_by(f64::total_cmp);
                Ok(Value::List(xs.into_iter().map(Value::Float).collect()))
            }),
            "open-source-encryption" => config.with_handler(|v| {
                // ROT13 on text: a classic open-source toy cipher.
                let s = v.as_str().unwrap_or_default();
                Ok(Value::Str(
                    s.chars()
                        .map(|c| match c {
                            'a'..='z' => (((c as u8 - b'a' + 13) % 26) + b'a') as char,
                            'A'..='Z' => (((c as u8 - b'A' + 13) % 26) + b'A') as char,
                            _ => c,
                        })
                        .collect(),
                ))
            }),
            "enterprise-analytics" => config.with_handler(|v| {
                let xs: Vec<f64> = v
                    .as_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Value::as_float)
                    .collect();
                let mean = if xs.is_empty() {
                    0.0
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                };
                Ok(Value::from_iter([
                    ("count", Value::Int(xs.len() as i64)),
                    ("mean", Value::Float(mean)),
                ]))
            }),
            _ => config.with_handler(|v| {
                let xs: Vec<f64> = v
                    .as_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Value::as_float)
                    .collect();
                Ok(Value::Bool(xs.iter().any(|x| *x > 100.0)))
            }),
        };
        registry.register_plugin(config)?;
    }

    // Use marketplace plugins
    let premium_processor = registry.create_plugin("premium-data-processor")?;
    let open_source_encryption = registry.create_plugin("open-source-encryption")?;
    let enterprise_analytics = registry.create_plugin("enterprise-analytics")?;
    let community_monitoring = registry.create_plugin("community-monitoring")?;

    let readings = Value::List(vec![Value::Float(42.0), Value::Int(7), Value::Float(120.5)]);
    println!(
        "premium-data-processor -> {:?}",
        premium_processor.process(readings.clone())?
    );
    println!(
        "open-source-encryption -> {:?}",
        open_source_encryption.process("Hello")?
    );
    println!(
        "enterprise-analytics -> {:?}",
        enterprise_analytics.process(readings.clone())?
    );
    println!(
        "community-monitoring alert -> {:?}",
        community_monitoring.process(readings)?
    );

    let catalogue: PluginMarketplace = registry.plugin_marketplace()?;
    println!(
        "{} listings; licences on offer: {:?}",
        catalogue.len(),
        catalogue.licenses()
    );
    for listing in catalogue.by_license("open-source") {
        println!(
            "open source: {} - {}",
            listing.name(),
            listing.metadata()["description"]
        );
    }
    Ok(())
}
