//! Declarations carry three types (input, output, config type): `any` when
//! not declared, so untyped declarations, their manifests and equality are
//! as before; declared ones travel through `ModuleInfo` and manifests.

use module_registry::{ModuleConfig, ModuleRegistry, Schema};

use super::t;

fn typed() -> ModuleConfig {
    ModuleConfig::new()
        .with_name("word-count")
        .with_version("1.0.0")
        .with_input(t("str"))
        .with_output(t("int"))
        .with_config_type(t("{min_length?: int}"))
}

#[test]
fn an_undeclared_type_is_any_and_changes_nothing() -> module_registry::Result<()> {
    let plain = ModuleConfig::new().with_name("plain");
    assert!(plain.input().is_any() && plain.output().is_any() && plain.config_type().is_any());
    // Declaring `any` is not declaring: the same declaration.
    assert_eq!(plain.clone().with_input(Schema::any()), plain);
    let registry = ModuleRegistry::new();
    let info = registry.register(plain)?;
    assert!(info.input().is_any() && info.output().is_any());
    let manifest = registry.export_manifest()?;
    assert!(
        !manifest.contains("\"input\"") && !manifest.contains("config_type"),
        "{manifest}"
    );
    Ok(())
}

#[test]
fn declared_types_reach_the_record_and_equality() -> module_registry::Result<()> {
    let config = typed();
    assert_eq!(config.input(), &t("str"));
    assert_ne!(config, config.clone().with_output(t("float")));
    assert_ne!(config, config.clone().with_input(Schema::any()));
    let registry = ModuleRegistry::new();
    let info = registry.register(config.with_handler(Ok))?;
    assert_eq!(info.input().to_string(), "str");
    assert_eq!(info.output().to_string(), "int");
    assert_eq!(info.config_type().to_string(), "{min_length?: int}");
    assert_eq!(
        registry.get("word-count").map(|i| i.output().clone()),
        Some(t("int"))
    );
    Ok(())
}

#[test]
fn declared_types_travel_through_manifests() -> module_registry::Result<()> {
    let registry = ModuleRegistry::new();
    registry.register(typed())?;
    let manifest = registry.export_manifest()?;
    assert!(
        manifest.contains(r#""input":"str""#) || manifest.contains(r#""input": "str""#),
        "{manifest}"
    );
    let rebuilt = ModuleRegistry::from_manifest(&manifest)?;
    let info = rebuilt.get("word-count").expect("rebuilt");
    assert_eq!(info.input(), &t("str"));
    assert_eq!(info.output(), &t("int"));
    assert_eq!(info.config_type(), &t("{min_length?: int}"));
    // A manifest with a bad type is refused, naming it; nothing is registered.
    let bad = manifest.replace("\"str\"", "\"lst[str]\"");
    let err = ModuleRegistry::from_manifest(&bad).unwrap_err();
    assert!(err.report().contains("lst"), "{}", err.report());
    Ok(())
}
