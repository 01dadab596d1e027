//! Editor support and the reference: the Rhai language server's definition
//! files (`script_definitions`) and the Markdown reference of the script
//! API (`script_reference`, committed as `docs/reference/script-api.md`).

use std::path::Path;

use module_registry::{Error, ModuleRegistry, Value};

use crate::common::temp;

fn read(folder: &Path, file: &str) -> String {
    std::fs::read_to_string(folder.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn definitions_name_every_parameter_and_type() {
    let registry = ModuleRegistry::new();
    let folder = temp("definitions").join("out");
    let written = registry.script_definitions(&folder).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for file in [
        "__builtin__.d.rhai",
        "__builtin-operators__.d.rhai",
        "__static__.d.rhai",
        "module-registry-globals.d.rhai",
    ] {
        assert!(names.iter().any(|n| n == file), "{file} not in {names:?}");
        assert!(folder.join(file).is_file(), "{file}");
    }
    let api = read(&folder, "__static__.d.rhai");
    for expected in [
        "fn discover(registry: Registry, capabilities: array) -> array;",
        "fn create(registry: Registry, name: String, requirement: String) -> Instance;",
        "fn process(instance: Instance, input: ?) -> ?;",
        "fn pool(registry: Registry, target: ?, options: ?) -> Pool;",
        "fn run_workflow(registry: Registry, wf: Workflow, input: ?) -> map;",
        "fn csv_rows(text: String, delimiter: char) -> array;",
        "fn assert_eq(left: ?, right: ?, message: String) -> ();",
        "fn get len(pool: Pool) -> int;",
        // A doc comment the language server shows.
        "/// Runs the module on `input`",
    ] {
        assert!(api.contains(expected), "{expected} missing from:\n{api}");
    }
    // No Rust types leaking through, no unnamed parameters, no missing
    // return types (in the declarations; Rhai's doc comments may name them).
    for line in api.lines().filter(|l| !l.starts_with("///")) {
        assert!(!line.contains("EvalAltResult"), "{line}");
        assert!(!line.contains("ImmutableString"), "{line}");
        assert!(!line.contains("(_: ") && !line.contains(", _: "), "{line}");
        assert!(!line.ends_with("-> ;"), "{line}");
    }
    let globals = read(&folder, "module-registry-globals.d.rhai");
    for expected in ["const registry: Registry;", "const input: ?;", "this.deps"] {
        assert!(
            globals.contains(expected),
            "{expected} missing from:\n{globals}"
        );
    }
    // Writing again replaces the files.
    assert_eq!(registry.script_definitions(&folder).unwrap(), written);
}

#[test]
fn definitions_list_the_functions_an_embedder_added() {
    let registry = ModuleRegistry::new();
    registry
        .register_script_function("total", |args| Ok(Value::Int(args.len() as i64)))
        .unwrap();
    registry
        .register_script_functions(|engine| {
            engine.register_fn("double", |x: i64| x * 2);
        })
        .unwrap();
    let folder = temp("definitions-added");
    registry.script_definitions(&folder).unwrap();
    let api = read(&folder, "__static__.d.rhai");
    assert!(api.contains("fn total() -> ?;"), "{api}");
    assert!(api.contains("fn total(arg1: ?, arg2: ?) -> ?;"), "{api}");
    assert!(api.contains("fn double("), "{api}");
    // The scripts still call them.
    assert_eq!(
        registry.run_script("total(1, 2) + double(4)", ()).unwrap(),
        Value::Int(10)
    );
}

#[test]
fn a_definitions_folder_that_is_a_file_is_refused() {
    let registry = ModuleRegistry::new();
    let file = temp("definitions-file").join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    for target in [file.clone(), file.join("below")] {
        match registry.script_definitions(&target) {
            Err(Error::Io { path, .. }) => assert!(path.contains("not-a-folder"), "{path}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn writing_definitions_is_an_administrators_act() {
    let registry = ModuleRegistry::new();
    registry.set_policy(Some(crate::common::policy())).unwrap();
    let folder = temp("definitions-policy").join("out");
    let denied = registry
        .as_principal("alice")
        .with(|r| r.script_definitions(&folder));
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
    assert!(!folder.exists());
    let written = registry
        .as_principal("root")
        .with(|r| r.script_definitions(&folder))
        .unwrap();
    assert!(!written.is_empty());
}

/// `docs/reference/script-api.md` is `script_reference()` of a new
/// registry; `make script-api` (this test with `UPDATE_SCRIPT_API=1`)
/// writes it.
#[cfg(feature = "workflows")]
#[test]
fn the_script_api_reference_is_current() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reference/script-api.md");
    let current = ModuleRegistry::new().script_reference();
    if std::env::var_os("UPDATE_SCRIPT_API").is_some() {
        std::fs::create_dir_all(page.parent().unwrap()).unwrap();
        std::fs::write(&page, &current).unwrap();
    }
    let committed = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(
        committed == current,
        "{} is stale: run `make script-api` and commit it",
        page.display()
    );
    for expected in [
        "### `registry.discover(capabilities)`",
        "### `instance.process(input)`",
        "### `pool.stats()`",
        "### `wf.output = id`",
        "### `assert_eq(left, right)`",
        "### `lower_chars(text)`",
        "```rhai",
    ] {
        assert!(
            current.contains(expected),
            "{expected} missing from:\n{current}"
        );
    }
}
