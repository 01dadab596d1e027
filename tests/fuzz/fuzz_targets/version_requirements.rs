//! Arbitrary versions and requirements in declarations and queries:
//! registration, discovery and resolution end with a value or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use module_registry::{CapabilityQuery, ModuleConfig, ModuleKind, ModuleRegistry};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let (version, requirement, other) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let registry = ModuleRegistry::new();
    let _ = registry.register(ModuleConfig::new().with_name("dep").with_version(version));
    let _ = registry.register(ModuleConfig::new().with_name("dep").with_version(other));
    let _ = registry.register(ModuleConfig::new().with_name("root").with_dependency("dep", requirement).with_handler(Ok));
    let _ = registry.resolve(ModuleKind::Module, "root", None);
    let _ = registry.find(ModuleKind::Module, "dep", Some(requirement));
    let _ = registry.discover(&CapabilityQuery::new().with_version_req(requirement));
});
