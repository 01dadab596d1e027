//! Seed scenario "Service Discovery and Management": microservices declared
//! with descriptions and capabilities, found with a service query.
//!
//! Run: `cargo run -p module-registry --example service_discovery`

use module_registry::{
    ModuleConfig, ModuleRegistry, ModuleType, Result, ServiceDiscoveryQuery, Value,
};

fn main() -> Result<()> {
    let registry = ModuleRegistry::new();

    // Register microservice modules
    let microservices = vec![
        (
            "user-service",
            "User management service",
            vec!["user-management", "authentication"],
        ),
        (
            "order-service",
            "Order processing service",
            vec!["order-management", "payment-processing"],
        ),
        (
            "inventory-service",
            "Inventory management service",
            vec!["inventory-management", "stock-tracking"],
        ),
        (
            "notification-service",
            "Notification service",
            vec!["email", "sms", "push-notifications"],
        ),
    ];

    for (name, description, capabilities) in microservices {
        let mut config = ModuleConfig::new()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(ModuleType::Network)
            .with_metadata("description", description)
            .with_metadata("service_type", "microservice");

        for capability in capabilities {
            config = config.add_capability(capability);
        }

        // Each service answers a health check with its own name and capabilities.
        let service = name.to_string();
        let config = config.with_handler(move |request| {
            Ok(Value::from_iter([
                ("service", Value::Str(service.clone())),
                ("status", Value::from("up")),
                ("echo", request),
            ]))
        });
        registry.register(config)?;
    }

    // Discover services by capability
    let query = ServiceDiscoveryQuery::new().with_required_capabilities(vec!["user-management"]);

    let user_services = registry.discover_services(query)?;
    for info in &user_services {
        println!(
            "{} ({}): {:?}",
            info.name(),
            info.metadata()["description"],
            registry.create(info.name())?.process("ping")?
        );
    }

    let all = registry
        .discover_services(ServiceDiscoveryQuery::new().with_service_type("microservice"))?;
    println!(
        "{} microservices registered: {:?}",
        all.len(),
        all.iter().map(|i| i.name()).collect::<Vec<_>>()
    );
    Ok(())
}
