//! One run of one Rhai script, bare or through the registry, for counting
//! instructions under `valgrind --tool=callgrind` (repeatable on a busy
//! machine, where wall-clock medians move by several percent).
//!
//! `MR_RHAI_FILE=path MR_RHAI_MODE=bare|registry|default|unlimited target/release/deps/rhai_instructions-*`
//! `make bench-report` runs it on Rhai's own benchmark scripts when they are
//! there (see `benches/README.md`). Without the variables it does nothing,
//! so `cargo bench` passes over it.
//!
//! Modes: `bare` is `rhai::Engine::new()`; `registry` every limit on, sized
//! so that the script fits; `default` the registry's default limits;
//! `unlimited` the registry with `ScriptLimits::unlimited()` (`default`
//! against `unlimited` is what the limits cost, issue 32 item 6).

use module_registry::{ModuleRegistry, ScriptLimits};

/// As in the Python wheel: the allocator that counts script memory.
#[global_allocator]
static ALLOCATOR: module_registry::ScriptAllocator = module_registry::ScriptAllocator;

fn main() {
    let (Some(file), Some(mode)) = (
        std::env::var_os("MR_RHAI_FILE"),
        std::env::var("MR_RHAI_MODE").ok(),
    ) else {
        return;
    };
    let source = std::fs::read_to_string(file).expect("MR_RHAI_FILE is readable");
    // Rhai's scripts print their timings: keep the output out of the way.
    let source = format!(
        "fn debug_off(x) {{ }}\n{}",
        source.replace("print(", "debug_off(")
    );
    match mode.as_str() {
        "bare" => {
            let _result = rhai::Engine::new()
                .eval::<rhai::Dynamic>(&source)
                .expect("the script runs");
        }
        "registry" => {
            // Every limit on, sized so that the script fits.
            let registry = ModuleRegistry::new();
            registry
                .set_script_limits(ScriptLimits {
                    max_operations: Some(1_000_000_000),
                    max_array_size: Some(2_000_000),
                    timeout: Some(std::time::Duration::from_secs(600)),
                    ..ScriptLimits::default()
                })
                .expect("limits are valid");
            registry.run_script(&source, ()).expect("the script runs");
        }
        "default" | "unlimited" => {
            let registry = ModuleRegistry::new();
            if mode == "unlimited" {
                registry
                    .set_script_limits(ScriptLimits::unlimited())
                    .expect("limits are valid");
            }
            registry.run_script(&source, ()).expect("the script runs");
        }
        other => {
            panic!("MR_RHAI_MODE must be bare, registry, default or unlimited, not {other:?}")
        }
    }
}
