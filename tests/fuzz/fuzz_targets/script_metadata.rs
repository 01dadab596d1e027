//! Arbitrary text as a script module: registering it must end with a
//! registration or a typed error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use module_registry::{ModuleRegistry, ScriptLimits};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let registry = ModuleRegistry::new();
    let _ = registry.set_script_limits(ScriptLimits {
        max_operations: Some(10_000),
        timeout: Some(std::time::Duration::from_millis(200)),
        ..ScriptLimits::default()
    });
    if let Ok(info) = registry.register_script(source) {
        if let Ok(instance) = registry.create(info.name()) {
            let _ = instance.process(1i64);
        }
    }
});
