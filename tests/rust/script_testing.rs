//! Tests written in Rhai: test files, their `fn test_*()`, and how they fail.

use std::path::Path;
use std::time::Duration;

use module_registry::script::is_script_test_file;
use module_registry::{Error, ModuleRegistry, ScriptLimits};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A folder of two modules (one using the other), a library and test files.
fn project(name: &str) -> std::path::PathBuf {
    let dir = crate::common::temp(name);
    write(
        &dir,
        "words.rhai",
        "fn words_of(line) { line.split(\" \") }\n",
    );
    write(
        &dir,
        "log-parse.rhai",
        "import \"words\" as words;\nconst MODULE = #{ name: \"log-parse\", version: \"1.0.0\" };\nfn process(line) { let w = words::words_of(line); #{ level: w[0], text: w[1] } }\n",
    );
    write(
        &dir,
        "test_parse.rhai",
        r#"import "words" as words;

fn test_parses_a_line() {
    let parsed = registry.create("log-parse").process("WARN disk");
    assert_eq(parsed.level, "WARN");
}

fn helper(x) { x }

fn test_uses_a_library() { assert_eq(words::words_of("a b").len(), 2); }

fn test_fails() {
    let parsed = registry.create("log-parse").process("INFO ok");
    assert_eq(parsed.level, "WARN", "the level");
}

fn test_with_a_parameter(x) { }

fn test_shadows() { let registry = 5; assert_eq(registry, 5); }
"#,
    );
    write(
        &dir,
        "forever_test.rhai",
        "fn test_never_ends() {\n    loop { }\n}\n",
    );
    dir
}

fn script_error(result: module_registry::Result<()>) -> (String, Option<usize>, String) {
    match result.unwrap_err() {
        Error::Script {
            script,
            line,
            message,
            ..
        } => (script, line, message),
        other => panic!("expected a script error, got {other}"),
    }
}

#[test]
fn test_files_are_named_test_x_or_x_test() {
    for yes in ["test_a.rhai", "dir/a_test.rhai", "test_.rhai"] {
        assert!(is_script_test_file(Path::new(yes)), "{yes}");
    }
    for no in [
        "a.rhai",
        "testa.rhai",
        "a_test.txt",
        "atest.rhai",
        "test_a.rhai.bak",
    ] {
        assert!(!is_script_test_file(Path::new(no)), "{no}");
    }
}

#[test]
fn test_functions_reach_the_loaded_modules_and_fail_at_their_line() {
    let dir = project("rhai-tests");
    let registry = ModuleRegistry::new();
    let loaded = registry.load_scripts_under_test(&dir).unwrap();
    let names: Vec<&str> = loaded.iter().map(|i| i.name()).collect();
    assert_eq!(names, ["log-parse"]);
    let file = dir.join("test_parse.rhai");
    let tests = registry.load_script_tests(&file).unwrap();
    let found: Vec<(&str, Option<usize>)> = tests
        .tests()
        .iter()
        .map(|t| (t.name.as_str(), t.line))
        .collect();
    // In the file's order; one with parameters is no test.
    assert_eq!(
        found,
        [
            ("test_parses_a_line", Some(3)),
            ("test_uses_a_library", Some(10)),
            ("test_fails", Some(12)),
            ("test_shadows", Some(19)),
        ]
    );
    tests.run("test_parses_a_line").unwrap();
    tests.run("test_uses_a_library").unwrap();
    tests.run("test_shadows").unwrap();
    let (script, line, message) = script_error(tests.run("test_fails"));
    assert_eq!((script, line), (file.display().to_string(), Some(14)));
    assert!(
        message.ends_with(r#"assertion failed: the level (left: "INFO", right: "WARN")"#),
        "{message}"
    );
    let unknown = tests.run("test_with_a_parameter").unwrap_err();
    assert!(matches!(unknown, Error::InvalidInput { .. }), "{unknown}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_test_that_never_ends_fails_at_the_limits() {
    let dir = project("rhai-tests-forever");
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            max_operations: Some(100_000),
            ..ScriptLimits::default()
        })
        .unwrap();
    let tests = registry
        .load_script_tests(dir.join("forever_test.rhai"))
        .unwrap();
    let (_, _, message) = script_error(tests.run("test_never_ends"));
    assert!(message.starts_with("too many operations"), "{message}");
    registry
        .set_script_limits(ScriptLimits {
            max_operations: None,
            timeout: Some(Duration::from_millis(100)),
            ..ScriptLimits::default()
        })
        .unwrap();
    let tests = registry
        .load_script_tests(dir.join("forever_test.rhai"))
        .unwrap();
    let (_, _, message) = script_error(tests.run("test_never_ends"));
    assert!(message.starts_with("timed out"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_broken_test_file_is_an_error_with_its_position() {
    let dir = crate::common::temp("rhai-tests-broken");
    write(&dir, "test_broken.rhai", "fn test_a() {\n  let = 1;\n}\n");
    let registry = ModuleRegistry::new();
    let err = registry
        .load_script_tests(dir.join("test_broken.rhai"))
        .unwrap_err();
    match err {
        Error::Script { line, message, .. } => {
            assert_eq!(line, Some(2));
            assert!(message.starts_with("syntax error"), "{message}");
        }
        other => panic!("expected a script error, got {other}"),
    }
    let missing = registry.load_script_tests(dir.join("test_missing.rhai"));
    assert!(matches!(missing, Err(Error::Io { .. })), "{missing:?}");
    // Under a policy, reading test files is an administrator's act.
    registry.set_policy(Some(crate::common::policy())).unwrap();
    let denied = registry.as_principal("alice").with(|r| {
        r.load_script_tests(dir.join("test_broken.rhai"))
            .map(|_| ())
    });
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
