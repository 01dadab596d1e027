//! Arbitrary text as a workflow file (TOML and JSON): parsing, checking and
//! drawing must end with a value or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use module_registry::{ModuleRegistry, Workflow};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let registry = ModuleRegistry::with_native_modules();
    for parsed in [Workflow::from_toml(text), Workflow::from_json(text)] {
        if let Ok(wf) = parsed {
            let _ = registry.check_workflow(&wf);
            let _ = wf.to_mermaid();
            let _ = wf.to_dot();
            if let Ok(json) = wf.to_json() {
                assert_eq!(Workflow::from_json(&json).ok().as_ref(), Some(&wf), "JSON round trip");
            }
        }
    }
});
