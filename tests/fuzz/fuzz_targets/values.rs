//! Value conversion: arbitrary text as JSON converted to a Rhai value and
//! back must come back equal (or end in a typed error past the depth limit),
//! and the same text run as a Rhai script (arrays and maps nesting as deep
//! and growing as big as the limits allow) must end with a value or a typed
//! error: never a crash, whatever the nesting.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use module_registry::script::{from_dynamic, to_dynamic};
use module_registry::{ModuleRegistry, ScriptLimits, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        if let Ok(back) = from_dynamic(to_dynamic(value.clone())) {
            assert_eq!(back, value);
        }
    }
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            max_operations: Some(200_000),
            timeout: Some(Duration::from_millis(500)),
            ..ScriptLimits::default()
        })
        .unwrap();
    let _ = registry.run_script(text, ());
});
