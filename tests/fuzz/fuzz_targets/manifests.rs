//! Arbitrary text as a manifest: rebuilding must end with a registry or a
//! typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use module_registry::ModuleRegistry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(registry) = ModuleRegistry::from_manifest(text) {
        let _ = registry.export_manifest();
    }
});
