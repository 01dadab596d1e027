//! Script errors found before a module runs (strict variables) and errors
//! that point at the right place (the file, the call chain, the thrown value).

use module_registry::{Error, ModuleRegistry, ScriptFrame, ScriptLimits, Value};

use crate::common::temp;

fn script_error(err: &Error) -> &Error {
    let root = err.root_cause();
    assert!(matches!(root, Error::Script { .. }), "{err}");
    root
}

#[test]
fn an_undefined_variable_is_an_error_at_load_time_with_its_position() {
    let registry = ModuleRegistry::new();
    let err = registry
        .register_script(
            "const MODULE = #{ name: \"typo\", version: \"1.0.0\" };\nfn process(x) {\n    x + y\n}\n",
        )
        .map(|_| ())
        .unwrap_err();
    match script_error(&err) {
        Error::Script {
            line,
            column,
            message,
            ..
        } => {
            assert_eq!((*line, *column), (Some(3), Some(9)), "{err}");
            assert!(message.contains('y'), "{message}");
        }
        _ => unreachable!(),
    }
    assert!(!registry.contains("typo"));
}

#[test]
fn a_module_reads_its_own_module_constant() {
    let registry = ModuleRegistry::new();
    registry
        .register_script(
            r#"const MODULE = #{ name: "self-aware", version: "2.1.0" };
fn process(x) { `${MODULE.name}@${MODULE.version}` }
"#,
        )
        .unwrap();
    let out = registry.create("self-aware").unwrap().process(()).unwrap();
    assert_eq!(out, Value::from("self-aware@2.1.0"));
}

#[test]
fn an_error_in_a_library_names_the_library_and_the_call_chain() {
    let dir = temp("badlib");
    std::fs::write(
        dir.join("badlib.rhai"),
        "fn boom(x) {\n    let y = 1;\n    y / x\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("libfail.rhai"),
        "import \"badlib\" as b;\nconst MODULE = #{ name: \"libfail\", version: \"1.0.0\" };\n\nfn process(x) {\n    b::boom(x)\n}\n",
    )
    .unwrap();
    let registry = ModuleRegistry::new();
    registry.load_script(dir.join("libfail.rhai")).unwrap();
    let err = registry
        .create("libfail")
        .unwrap()
        .process(0i64)
        .unwrap_err();
    let lib = dir.join("badlib.rhai").display().to_string();
    let importer = dir.join("libfail.rhai").display().to_string();
    match script_error(&err) {
        Error::Script {
            script,
            line,
            trace,
            ..
        } => {
            assert_eq!(script, &lib, "{err}");
            assert_eq!(*line, Some(3), "{err}");
            assert_eq!(
                trace,
                &[
                    ScriptFrame {
                        script: lib.clone(),
                        function: Some("boom".into()),
                        line: Some(3),
                        column: Some(7),
                    },
                    ScriptFrame {
                        script: importer.clone(),
                        function: Some("process".into()),
                        line: Some(5),
                        column: Some(8),
                    },
                ]
            );
        }
        _ => unreachable!(),
    }
    let text = script_error(&err).to_string();
    assert!(
        text.contains(&format!("called from {importer} 5:8 (fn process)")),
        "{text}"
    );
}

#[test]
fn a_thrown_value_is_carried() {
    let registry = ModuleRegistry::new();
    registry
        .register_script(
            r#"const MODULE = #{ name: "thrower", version: "1.0.0" };
fn process(x) { throw #{ code: 42 }; }
"#,
        )
        .unwrap();
    let err = registry.create("thrower").unwrap().process(()).unwrap_err();
    match script_error(&err) {
        Error::Script { script, value, .. } => {
            // A script given as text is named by its module's name.
            assert_eq!(script, "thrower");
            let expected: Value = [("code", Value::Int(42))].into_iter().collect();
            assert_eq!(value.as_deref(), Some(&expected));
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_size_limit_error_names_its_value_and_the_field_to_raise() {
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            max_array_size: Some(10),
            ..ScriptLimits::default()
        })
        .unwrap();
    registry
        .register_script(
            r#"const MODULE = #{ name: "grower", version: "1.0.0" };
fn helper() { let a = []; for i in 0..100 { a.push(i); } a }
fn process(x) { helper() }
"#,
        )
        .unwrap();
    let err = registry.create("grower").unwrap().process(()).unwrap_err();
    let text = script_error(&err).to_string();
    assert!(
        text.contains("limit of 10 (ScriptLimits.max_array_size)"),
        "{text}"
    );
}

#[test]
fn check_scripts_reports_every_bad_file_and_registers_nothing() {
    let dir = temp("check-scripts");
    std::fs::write(
        dir.join("a.rhai"),
        "const MODULE = #{ name: \"a\", version: \"1.0.0\" };\nfn process(x) { x + }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.rhai"),
        "const MODULE = #{ name: \"b\", version: \"1.0.0\" };\nfn process(x) { nope }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("c.rhai"),
        "const MODULE = #{ name: \"b\", version: \"1.0.0\" };\nfn process(x) { x }\n",
    )
    .unwrap();
    std::fs::write(dir.join("lib.rhai"), "fn helper(x) { x }\n").unwrap();
    let registry = ModuleRegistry::new();
    let problems = registry.check_scripts(&dir).unwrap();
    let files: Vec<String> = problems
        .iter()
        .map(|e| match e {
            Error::Script { script, .. } => script.rsplit('/').next().unwrap().to_string(),
            other => panic!("{other}"),
        })
        .collect();
    // c.rhai declares b@1.0.0 again; b.rhai itself is bad, so c is the first to declare it.
    assert_eq!(files, ["a.rhai", "b.rhai"], "{problems:?}");
    assert!(registry.is_empty());
}

#[test]
fn check_scripts_reports_calls_to_functions_that_exist_nowhere() {
    let dir = temp("check-calls");
    std::fs::write(dir.join("lib.rhai"), "fn shout(x) { x.to_upper() }\n").unwrap();
    // Calls that exist: its own functions, the natives, Rhai's packages and
    // keywords, a library's, a function pointer in a variable or a map.
    std::fs::write(
        dir.join("good.rhai"),
        r#"import "lib" as lib;
const MODULE = #{ name: "good", version: "1.0.0" };
fn helper(x) { x + 1 }
fn process(x) {
    let f = Fn("helper");
    let obj = #{ action: |v| v * 2 };
    let t = type_of(x);
    helper(f.call(1)) + obj.action(2) + lower_chars(lib::shout("a")).len() + [1, 2].len() + t.len()
}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("typo.rhai"),
        r#"import "lib" as lib;
const MODULE = #{ name: "typo", version: "1.0.0" };
fn helper(x) { x }
fn process(x) {
    let a = helpr(x);
    let b = lib::shuot(a);
    x.frobnicate() + later(b) + helpr(1)
}
"#,
    )
    .unwrap();
    let registry = ModuleRegistry::new();
    let problems = registry.check_scripts(&dir).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    match &problems[0] {
        Error::Script {
            script,
            line,
            column,
            message,
            ..
        } => {
            assert!(script.ends_with("typo.rhai"), "{script}");
            assert_eq!((*line, *column), (Some(5), Some(13)), "{message}");
            assert!(
                message.contains("helpr (5:13), lib::shuot (6:18), frobnicate (7:7), later (7:22)"),
                "{message}"
            );
        }
        other => panic!("{other}"),
    }
    // Loading does not refuse them (functions may be added after loading),
    // and a function added before the check is known to it.
    registry.load_scripts(&dir).unwrap();
    registry
        .register_script_function("later", |args| {
            Ok(args.into_iter().next().unwrap_or(Value::Null))
        })
        .unwrap();
    let problems = registry.check_scripts(&dir).unwrap();
    let text = problems[0].to_string();
    assert!(!text.contains("later"), "{text}");
    assert!(text.contains("helpr (5:13)"), "{text}");
}

#[test]
fn a_script_given_as_text_is_named_by_its_module() {
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            max_array_size: Some(10),
            ..ScriptLimits::default()
        })
        .unwrap();
    registry
        .register_script(
            r#"const MODULE = #{ name: "grower", version: "1.0.0" };
fn helper() { let a = []; for i in 0..100 { a.push(i); } a }
fn process(x) { helper() }
"#,
        )
        .unwrap();
    let err = registry.create("grower").unwrap().process(()).unwrap_err();
    let text = script_error(&err).to_string();
    assert!(text.starts_with("script error in grower"), "{text}");
    assert!(!text.contains("<source>"), "{text}");
    match script_error(&err) {
        Error::Script { script, trace, .. } => {
            assert_eq!(script, "grower");
            assert!(trace.iter().all(|f| f.script == "grower"), "{trace:?}");
        }
        _ => unreachable!(),
    }
    // Before its declaration is read there is no name: a syntax error is
    // still in `<source>`.
    let err = registry
        .register_script("const MODULE = #{ name: \"x\" };\nfn process(x) { x + }")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("script error in <source> at 2:"),
        "{err}"
    );
}
