//! Capability discovery: every condition of a query, the seed's query types, errors.

use module_registry::{
    CapabilityQuery, Error, ModuleKind, ModuleRegistry, ModuleType, PluginConfig,
    PluginDiscoveryQuery, ServiceDiscoveryQuery,
};

use crate::common::{config, names};

fn sample() -> ModuleRegistry {
    let registry = ModuleRegistry::new();
    registry
        .register(config(
            "markdown",
            "1.0.0",
            &["markdown", "text-processing"],
        ))
        .unwrap();
    registry
        .register(config(
            "markdown",
            "2.0.0",
            &["markdown", "text-processing", "html"],
        ))
        .unwrap();
    registry
        .register(config(
            "pdf",
            "1.0.0",
            &["pdf-processing", "text-extraction"],
        ))
        .unwrap();
    registry
        .register(
            config("image", "1.5.0", &["image-processing", "resizing"])
                .with_type(ModuleType::Compute)
                .with_metadata("tier", "gpu"),
        )
        .unwrap();
    registry
        .register_plugin(
            PluginConfig::new()
                .with_name("spell")
                .with_version("0.3.0")
                .add_capability("text-processing"),
        )
        .unwrap();
    registry
}

#[test]
fn required_any_and_excluded_capabilities() {
    let r = sample();
    let q = CapabilityQuery::new().with_required_capabilities(vec!["text-processing"]);
    assert_eq!(
        names(&r.discover_capabilities(q).unwrap()),
        ["markdown@2.0.0", "markdown@1.0.0", "spell@0.3.0"]
    );
    let q = CapabilityQuery::new().with_required_capabilities(["text-processing", "html"]);
    assert_eq!(names(&r.discover(&q).unwrap()), ["markdown@2.0.0"]);
    let q = CapabilityQuery::new().with_any_capabilities(["pdf-processing", "resizing"]);
    assert_eq!(
        names(&r.discover(&q).unwrap()),
        ["image@1.5.0", "pdf@1.0.0"]
    );
    let q = CapabilityQuery::new()
        .with_required_capabilities(["text-processing"])
        .with_excluded_capabilities(["html"]);
    assert_eq!(
        names(&r.discover(&q).unwrap()),
        ["markdown@1.0.0", "spell@0.3.0"]
    );
    let q = CapabilityQuery::new().with_required_capabilities(["nothing-has-this"]);
    assert!(r.discover(&q).unwrap().is_empty());
}

#[test]
fn type_kind_version_and_metadata_filters() {
    let r = sample();
    let q = CapabilityQuery::new().with_type(ModuleType::Compute);
    assert_eq!(names(&r.discover(&q).unwrap()), ["image@1.5.0"]);
    let q = CapabilityQuery::new().with_kind(ModuleKind::Plugin);
    assert_eq!(names(&r.discover(&q).unwrap()), ["spell@0.3.0"]);
    let q = CapabilityQuery::new()
        .with_required_capabilities(["markdown"])
        .with_version_req("^1");
    assert_eq!(names(&r.discover(&q).unwrap()), ["markdown@1.0.0"]);
    let q = CapabilityQuery::new().with_metadata("tier", "gpu");
    assert_eq!(names(&r.discover(&q).unwrap()), ["image@1.5.0"]);
    let q = CapabilityQuery::new().with_metadata("tier", "cpu");
    assert!(r.discover(&q).unwrap().is_empty());
    assert_eq!(r.discover(&CapabilityQuery::new()).unwrap().len(), 5);
}

#[test]
fn service_and_plugin_queries_pick_their_kind() {
    let r = sample();
    r.register(
        config("user-service", "1.0.0", &["user-management"])
            .with_type(ModuleType::Network)
            .with_metadata("service_type", "microservice"),
    )
    .unwrap();
    let services = r
        .discover_services(
            ServiceDiscoveryQuery::new().with_required_capabilities(vec!["text-processing"]),
        )
        .unwrap();
    assert_eq!(names(&services), ["markdown@2.0.0", "markdown@1.0.0"]);
    let services = r
        .discover_services(ServiceDiscoveryQuery::new().with_service_type("microservice"))
        .unwrap();
    assert_eq!(names(&services), ["user-service@1.0.0"]);
    let plugins = r
        .discover_plugins(
            PluginDiscoveryQuery::new().with_required_capabilities(vec!["text-processing"]),
        )
        .unwrap();
    assert_eq!(names(&plugins), ["spell@0.3.0"]);
}

#[test]
fn bad_queries_are_typed_errors() {
    let r = sample();
    let err = r
        .discover(&CapabilityQuery::new().with_required_capabilities(["Bad Cap"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidName {
                what: "capability",
                ..
            }
        ),
        "{err}"
    );
    let err = r
        .discover(&CapabilityQuery::new().with_version_req("not a req"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequirement { .. }), "{err}");
}

#[test]
fn discovery_follows_unregister() {
    let r = sample();
    r.unregister("markdown", "2.0.0").unwrap();
    let q = CapabilityQuery::new().with_required_capabilities(["markdown"]);
    assert_eq!(names(&r.discover(&q).unwrap()), ["markdown@1.0.0"]);
    r.unregister("markdown", "1.0.0").unwrap();
    assert!(r.discover(&q).unwrap().is_empty());
}
