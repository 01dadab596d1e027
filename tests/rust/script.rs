//! Rhai script modules, orchestration scripts, limits and reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use module_registry::{CapabilityQuery, Error, ModuleKind, ModuleRegistry, ScriptLimits, Value};

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

fn shipped() -> ModuleRegistry {
    let registry = ModuleRegistry::with_native_modules();
    registry.load_scripts(scripts_dir()).unwrap();
    registry
}

fn run(r: &ModuleRegistry, name: &str, input: impl Into<Value>) -> Value {
    r.create(name).unwrap().process(input).unwrap()
}

fn map(pairs: &[(&str, Value)]) -> Value {
    pairs.iter().cloned().collect()
}

fn script_err(
    result: module_registry::Result<impl std::fmt::Debug>,
) -> (String, Option<usize>, Option<usize>, String) {
    match result.map(|_| ()).unwrap_err().root_cause() {
        Error::Script {
            script,
            line,
            column,
            message,
            ..
        } => (script.clone(), *line, *column, message.clone()),
        other => panic!("expected a script error, got {other}"),
    }
}

#[test]
fn a_folder_loads_in_one_call() {
    let registry = ModuleRegistry::new();
    let loaded = registry.load_scripts(scripts_dir()).unwrap();
    let names: Vec<&str> = loaded.iter().map(|i| i.name()).collect();
    // html.rhai is a library (no MODULE): skipped.
    assert_eq!(
        names,
        [
            "csv-records",
            "json-pick",
            "markdown",
            "slugify",
            "template",
            "text-stats"
        ]
    );
    for info in &loaded {
        assert_eq!(info.metadata()["implementation"], "rhai");
        assert!(info.metadata()["script"].ends_with(".rhai"));
        assert!(info.metadata().contains_key("description"));
    }
    assert_eq!(
        registry.get("text-stats").unwrap().module_type().name(),
        "Analytics"
    );
}

#[test]
fn markdown_renders_the_subset() {
    let r = shipped();
    let html = run(&r, "markdown", "# Title *x*\n\nSome **bold** and `code` & [a link](http://x.y).\nSame paragraph.\n\n- one\n- two <b>");
    assert_eq!(
        html.as_str().unwrap(),
        "<h1>Title <em>x</em></h1>\n<p>Some <strong>bold</strong> and <code>code</code> &amp; <a href=\"http://x.y\">a link</a>. Same paragraph.</p>\n<ul><li>one</li><li>two &lt;b&gt;</li></ul>"
    );
    assert_eq!(run(&r, "markdown", b"plain"), Value::from("<p>plain</p>"));
}

#[test]
fn text_stats_counts() {
    let r = shipped();
    let out = run(&r, "text-stats", "The cat and the hat.\nThe end\n");
    assert_eq!(out.get("lines"), Some(&Value::Int(2)));
    assert_eq!(out.get("words"), Some(&Value::Int(7)));
    assert_eq!(out.get("chars"), Some(&Value::Int(29)));
    let top = out.get("top_words").unwrap().as_list().unwrap();
    assert_eq!(top[0], Value::List(vec!["the".into(), 3i64.into()]));
    assert_eq!(top.len(), 3);
    let one = r
        .create_with(
            ModuleKind::Module,
            "text-stats",
            None,
            map(&[("top", 1i64.into())]),
        )
        .unwrap()
        .process("a b b")
        .unwrap();
    assert_eq!(one.get("top_words").unwrap().as_list().unwrap().len(), 1);
}

#[test]
fn csv_records_parse_quotes_and_report_bad_rows() {
    let r = shipped();
    let out = run(
        &r,
        "csv-records",
        "name,note\nada,\"likes, commas\"\nbob,\"say \"\"hi\"\"\"\n",
    );
    assert_eq!(
        out,
        Value::List(vec![
            map(&[("name", "ada".into()), ("note", "likes, commas".into())]),
            map(&[("name", "bob".into()), ("note", "say \"hi\"".into())]),
        ])
    );
    let semi = r
        .create_with(
            ModuleKind::Module,
            "csv-records",
            None,
            map(&[("delimiter", ";".into())]),
        )
        .unwrap()
        .process("a;b\n1;2")
        .unwrap();
    assert_eq!(
        semi,
        Value::List(vec![map(&[("a", "1".into()), ("b", "2".into())])])
    );
    let (script, line, _, message) = script_err(r.create("csv-records").unwrap().process("a\n1,2"));
    assert!(script.ends_with("csv-records.rhai"), "{script}");
    assert!(line.is_some());
    assert!(message.contains("row 2 has 2 fields"), "{message}");
}

#[test]
fn json_pick_follows_paths() {
    let r = shipped();
    let data = Value::from_json(
        serde_json::json!({"user": {"addresses": [{"city": "Oslo"}, {"city": "Rome"}]}}),
    );
    let out = run(
        &r,
        "json-pick",
        map(&[
            ("data", data.clone()),
            ("path", "user.addresses[1].city".into()),
        ]),
    );
    assert_eq!(out, Value::from("Rome"));
    assert_eq!(
        run(
            &r,
            "json-pick",
            map(&[("data", data.clone()), ("path", "user.nope".into())])
        ),
        Value::Null
    );
    let strict = r
        .create_with(
            ModuleKind::Module,
            "json-pick",
            None,
            map(&[
                ("path", "user.addresses[5]".into()),
                ("strict", true.into()),
            ]),
        )
        .unwrap();
    let (_, _, _, message) = script_err(strict.process(data));
    assert!(
        message.contains("nothing at user.addresses[5]"),
        "{message}"
    );
}

#[test]
fn template_renders_and_escapes() {
    let r = shipped();
    let out = run(
        &r,
        "template",
        map(&[
            ("template", "Hi {{ user.name }}, {{{raw}}} {{x}}".into()),
            (
                "values",
                Value::from_json(
                    serde_json::json!({"user": {"name": "<Ada>"}, "raw": "<b>", "x": 3}),
                ),
            ),
        ]),
    );
    assert_eq!(out, Value::from("Hi &lt;Ada&gt;, <b> 3"));
    let (_, _, _, message) = script_err(r.create("template").unwrap().process(map(&[
        ("template", "{{missing}}".into()),
        ("values", map(&[])),
    ])));
    assert!(message.contains("no value for {{missing}}"), "{message}");
}

#[test]
fn slugify_normalises() {
    let r = shipped();
    assert_eq!(
        run(&r, "slugify", "  Héllo, Wörld! Ça va? "),
        Value::from("hello-world-ca-va")
    );
    let short = r
        .create_with(
            ModuleKind::Module,
            "slugify",
            None,
            map(&[("max_length", 12i64.into())]),
        )
        .unwrap()
        .process("The quick brown fox")
        .unwrap();
    assert_eq!(short, Value::from("the-quick"));
}

#[test]
fn orchestration_scripts_drive_the_registry() {
    let r = shipped();
    let report = r
        .run_script_file(
            scripts_dir().join("orchestration/text-report.rhai"),
            "My Title\nthe body the end",
        )
        .unwrap();
    assert_eq!(report.get("slug"), Some(&Value::from("my-title")));
    assert_eq!(
        report.get("analysed_by"),
        Some(&Value::from("text-stats@1.0.0"))
    );
    assert_eq!(
        report.get("stats").unwrap().get("words"),
        Some(&Value::Int(6))
    );
    assert_eq!(report.get("sha256").unwrap().as_str().unwrap().len(), 64);

    let post = r
        .run_script_file(
            scripts_dir().join("orchestration/publish.rhai"),
            map(&[
                ("title", "Hello World".into()),
                ("body", "Some *text*".into()),
            ]),
        )
        .unwrap();
    assert_eq!(
        post.get("path"),
        Some(&Value::from("posts/hello-world.html"))
    );
    let html = post.get("html").unwrap().as_str().unwrap();
    assert!(
        html.contains("<title>Hello World</title>") && html.contains("<p>Some <em>text</em></p>"),
        "{html}"
    );
}

#[test]
fn script_api_discover_create_and_native_modules() {
    let r = ModuleRegistry::with_native_modules();
    let out = r
        .run_script(
            r#"
            let found = registry.discover(["gzip", "compress"]);
            let packed = registry.create(found[0].name, "^1").process(input);
            let back = registry.create("gzip-decompress").process(packed);
            #{ found: found[0].name, caps: found[0].capabilities, same: back == input, kind: found[0].kind, n: registry.len() > 5 }
            "#,
            b"blob data".to_vec(),
        )
        .unwrap();
    assert_eq!(out.get("found"), Some(&Value::from("gzip-compress")));
    assert_eq!(out.get("same"), Some(&Value::Bool(true)));
    assert_eq!(out.get("kind"), Some(&Value::from("module")));
    assert_eq!(out.get("n"), Some(&Value::Bool(true)));
    assert!(out
        .get("caps")
        .unwrap()
        .as_list()
        .unwrap()
        .contains(&Value::from("gzip")));
    let err = r.run_script(r#"registry.create("nope")"#, ()).unwrap_err();
    assert!(err.report().contains("no module named \"nope\""), "{err}");
    // Opaque values pass through scripts unchanged.
    let handle = module_registry::Opaque::new(42u32);
    match r
        .run_script("input", Value::Opaque(handle.clone()))
        .unwrap()
    {
        Value::Opaque(o) => assert!(o.ptr_eq(&handle)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn instances_keep_their_own_state() {
    let r = ModuleRegistry::new();
    r.register_script(
        r#"
        const MODULE = #{ name: "acc", version: "1.0.0" };
        fn init(config) { this.total = config ?? 0; this.log = []; }
        fn process(x) { this.total += x; this.log.push(x); #{ total: this.total, calls: this.log.len() } }
        fn shutdown() { }
        "#,
    )
    .unwrap();
    let a = r.create("acc").unwrap();
    let b = r
        .create_with(ModuleKind::Module, "acc", None, Value::Int(100))
        .unwrap();
    a.process(1i64).unwrap();
    assert_eq!(a.process(2i64).unwrap().get("total"), Some(&Value::Int(3)));
    assert_eq!(
        b.process(1i64).unwrap(),
        map(&[("total", 101i64.into()), ("calls", 1i64.into())])
    );
}

#[test]
fn versions_side_by_side_and_reload_replaces_for_new_instances() {
    let r = ModuleRegistry::new();
    let v = |version: &str, out: &str| {
        format!(
            r#"const MODULE = #{{ name: "greet", version: "{version}" }}; fn process(x) {{ "{out}" }}"#
        )
    };
    r.register_script(&v("1.0.0", "one")).unwrap();
    r.register_script(&v("2.0.0", "two")).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(run(&r, "greet", ()), Value::from("two"));
    assert_eq!(
        r.create_version("greet", "^1")
            .unwrap()
            .process(())
            .unwrap(),
        Value::from("one")
    );

    // Instances keep running the code they were built with while a reload happens.
    let old = Arc::new(r.create("greet").unwrap());
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let old = old.clone();
            thread::spawn(move || {
                for _ in 0..300 {
                    assert_eq!(old.process(()).unwrap(), Value::from("two"));
                }
            })
        })
        .collect();
    for i in 0..20 {
        r.register_script(&v("2.0.0", &format!("reloaded-{i}")))
            .unwrap();
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(run(&r, "greet", ()), Value::from("reloaded-19"));
    assert_eq!(r.len(), 2);
}

#[test]
fn runaway_scripts_end_with_clear_errors() {
    let r = ModuleRegistry::new();
    // An operation budget alone, so the outcome does not depend on the machine's speed.
    r.set_script_limits(ScriptLimits {
        max_operations: Some(500_000),
        timeout: None,
        ..ScriptLimits::default()
    })
    .unwrap();
    let start = Instant::now();
    let (_, line, column, message) = script_err(r.run_script("let x = 0;\nloop { x += 1; }", ()));
    assert!(message.contains("too many operations"), "{message}");
    assert_eq!(line, Some(2));
    assert!(column.is_some());

    let (_, _, _, message) = script_err(r.run_script("fn f(n) { f(n + 1) } f(0)", ()));
    assert!(message.contains("call stack overflow"), "{message}");

    let (_, _, _, message) = script_err(r.run_script(r#"let s = "x"; loop { s += s; }"#, ()));
    assert!(message.contains("exceeds the size limit"), "{message}");

    let small = ModuleRegistry::new();
    small
        .set_script_limits(ScriptLimits {
            max_array_size: Some(1000),
            max_map_size: Some(1000),
            timeout: None,
            ..ScriptLimits::default()
        })
        .unwrap();
    let (_, _, _, message) = script_err(small.run_script("let a = []; loop { a.push(1); }", ()));
    assert!(message.contains("exceeds the size limit"), "{message}");
    let (_, _, _, message) = script_err(small.run_script(
        "let m = #{}; let i = 0; loop { let one = #{}; one[`k${i}`] = i; m += one; i += 1; }",
        (),
    ));
    assert!(
        message.contains("object map exceeds the size limit"),
        "{message}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "limits stop scripts quickly"
    );

    // Wall-clock limit, with the operation limit lifted.
    r.set_script_limits(ScriptLimits {
        max_operations: None,
        timeout: Some(Duration::from_millis(200)),
        ..ScriptLimits::default()
    })
    .unwrap();
    let start = Instant::now();
    let (_, _, _, message) = script_err(r.run_script("loop {}", ()));
    assert!(message.contains("timed out"), "{message}");
    assert!(start.elapsed() < Duration::from_secs(5));

    // The same limits hold inside script modules, and the registry is unharmed.
    r.register_script("const MODULE = #{ name: \"spin\", version: \"1.0.0\" };\nfn process(x) {\n  while true { }\n}")
        .unwrap();
    let spin = r.create("spin").unwrap();
    let err = spin.process(()).unwrap_err();
    assert!(
        matches!(&err, Error::ModuleFailed { module, .. } if module == "spin"),
        "{err}"
    );
    let (script, _, _, message) = script_err(Err::<(), _>(err));
    // A script given as text is named by its module's name.
    assert_eq!(script, "spin");
    // Rhai gives no position for limits hit inside a function: the function is named instead.
    assert!(
        message.contains("timed out") && message.contains("in fn process"),
        "{message}"
    );
    assert_eq!(r.len(), 1);
    assert!(r.run_script("40 + 2", ()).unwrap() == Value::Int(42));

    r.set_script_limits(ScriptLimits::unlimited()).unwrap();
    assert_eq!(r.script_limits(), ScriptLimits::unlimited());
    assert_eq!(
        r.run_script("let n = 0; for i in 0..100000 { n += i; } n", ())
            .unwrap(),
        Value::Int(4_999_950_000)
    );
}

#[test]
fn bad_scripts_are_refused_with_positions() {
    let r = ModuleRegistry::new();
    let (script, line, column, message) =
        script_err(r.register_script("const MODULE = #{ name: \"x\" };\nfn process(x) { x + }"));
    assert_eq!(script, "<source>");
    assert_eq!(line, Some(2));
    assert!(column.is_some());
    assert!(message.starts_with("syntax error"), "{message}");

    let cases = [
        ("fn process(x) { x }", "declares no MODULE"),
        (
            "const MODULE = #{ version: \"1.0.0\" }; fn process(x) { x }",
            "MODULE.name is missing",
        ),
        (
            "const MODULE = #{ name: \"x\", colour: \"red\" }; fn process(x) { x }",
            "unknown key \"colour\"",
        ),
        ("const MODULE = #{ name: \"x\" };", "no fn process"),
        (
            "const MODULE = #{ name: \"x\" }; fn process(a, b) { a }",
            "1 parameter",
        ),
        (
            "const MODULE = #{ name: \"x\", capabilities: \"one\" }; fn process(x) { x }",
            "array of strings",
        ),
        (
            "const MODULE = #{ name: \"x\", kind: \"thing\" }; fn process(x) { x }",
            "kind",
        ),
        ("const MODULE = 5; fn process(x) { x }", "object map"),
    ];
    for (source, expected) in cases {
        let err = r.register_script(source).unwrap_err();
        assert!(err.report().contains(expected), "{source}: {err}");
    }
    // Declarations are validated like any other.
    let err = r
        .register_script("const MODULE = #{ name: \"Bad Name\" }; fn process(x) { x }")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    let err = r
        .register_script("const MODULE = #{ name: \"x\", version: \"one\" }; fn process(x) { x }")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidVersion { .. }), "{err}");
    // A runtime error names the line and column.
    r.register_script(
        "const MODULE = #{ name: \"div\" };\nfn process(x) {\n    let y = x.nope;\n    y\n}",
    )
    .unwrap();
    let (_, line, column, _) = script_err(r.create("div").unwrap().process(1i64));
    assert_eq!((line, column), (Some(3), Some(15)));
    assert_eq!(r.len(), 1);
}

#[test]
fn script_modules_declare_everything_and_plugins() {
    let r = ModuleRegistry::new();
    r.register_script(
        r#"const MODULE = #{
            name: "full", version: "2.1.0", type: "Storage", kind: "plugin",
            capabilities: ["a", "b"], metadata: #{ owner: "team" }, dependencies: #{ base: "^1" },
        };
        fn process(x) { x }"#,
    )
    .unwrap();
    let info = r.get_plugin("full").unwrap();
    assert_eq!(info.version().to_string(), "2.1.0");
    assert_eq!(info.module_type().name(), "Storage");
    assert_eq!(info.metadata()["owner"], "team");
    assert_eq!(info.dependencies()["base"], "^1");
    assert_eq!(
        r.discover(&CapabilityQuery::new().with_required_capabilities(["a", "b"]))
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        r.create_plugin("full"),
        Err(Error::MissingDependency { .. })
    ));
}

#[test]
fn imports_stay_inside_the_folder() {
    let dir = std::env::temp_dir().join(format!("mr-imports-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("lib.rhai"), "fn twice(x) { x * 2 }").unwrap();
    std::fs::write(
        dir.join("user.rhai"),
        "import \"lib\" as lib;\nconst MODULE = #{ name: \"user\" };\nfn process(x) { lib::twice(x) }",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/escape.rhai"),
        "import \"../lib\" as lib;\nconst MODULE = #{ name: \"escape\" };\nfn process(x) { lib::twice(x) }",
    )
    .unwrap();
    let r = ModuleRegistry::new();
    let loaded = r.load_scripts(&dir).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(run(&r, "user", 21i64), Value::Int(42));
    let (_, _, _, message) = script_err(r.load_script(dir.join("sub/escape.rhai")));
    assert!(message.contains("imports must stay inside"), "{message}");
    // Nor through a symbolic link, to a file or a folder outside.
    #[cfg(unix)]
    {
        let outside = dir.join("outside");
        std::fs::create_dir_all(outside.join("secret")).unwrap();
        std::fs::write(outside.join("secret.rhai"), "fn twice(x) { x * 2 }").unwrap();
        std::fs::write(outside.join("secret/lib.rhai"), "fn twice(x) { x * 2 }").unwrap();
        let linked = dir.join("linked");
        std::fs::create_dir_all(&linked).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.rhai"), linked.join("lib.rhai")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), linked.join("dir")).unwrap();
        for import in ["lib", "dir/lib"] {
            std::fs::write(
                linked.join("user.rhai"),
                format!("import \"{import}\" as lib;\nconst MODULE = #{{ name: \"linked\" }};\nfn process(x) {{ lib::twice(x) }}"),
            )
            .unwrap();
            let (_, _, _, message) = script_err(r.load_script(linked.join("user.rhai")));
            assert!(
                message.contains("imports must stay inside"),
                "{import}: {message}"
            );
        }
        assert!(r.get("linked").is_none());
        std::fs::remove_dir_all(&outside).unwrap();
        std::fs::remove_dir_all(&linked).unwrap();
    }
    // Source text has no folder to import from.
    assert!(r
        .register_script(
            "import \"lib\" as lib; const MODULE = #{ name: \"z\" }; fn process(x) { x }"
        )
        .is_err());
    // A folder with one bad script registers nothing.
    std::fs::write(
        dir.join("zz-bad.rhai"),
        "const MODULE = #{ name: \"bad\" }; fn process(x) { x + }",
    )
    .unwrap();
    let fresh = ModuleRegistry::new();
    assert!(fresh.load_scripts(&dir).is_err());
    assert!(fresh.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(
        r.load_script(dir.join("gone.rhai")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn benchmark_workloads_give_the_same_results_as_a_bare_engine() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/rhai");
    let expected = [
        ("fibonacci", Value::Int(6765)),
        ("primes", Value::Int(2262)),
        ("loop", Value::Int(44_999_850_000)),
        ("strings", Value::Int(2000)),
        ("maps", Value::Int(499_500)),
    ];
    let registry = ModuleRegistry::new();
    // Every default limit but the deadline: the results are what is tested,
    // and a debug build on a loaded machine can take longer than 5 s.
    registry
        .set_script_limits(module_registry::ScriptLimits {
            timeout: None,
            ..module_registry::ScriptLimits::default()
        })
        .unwrap();
    let mut bare = rhai::Engine::new();
    bare.set_max_call_levels(64); // debug builds default to 8
    for (name, value) in expected {
        let source = std::fs::read_to_string(dir.join(format!("{name}.rhai"))).unwrap();
        assert_eq!(
            registry.run_script(&source, ()).unwrap(),
            value,
            "{name} through the registry"
        );
        assert_eq!(
            module_registry::script::from_dynamic(bare.eval(&source).unwrap()).unwrap(),
            value,
            "{name} on a bare engine"
        );
    }
}

/// A script building an array nested `depth` levels deep, as a module.
fn deep_nester(depth: usize) -> String {
    format!(
        r#"const MODULE = #{{ name: "nester" }};
        fn process(x) {{ let a = []; for i in 0..{depth} {{ a = [a]; }} a }}"#
    )
}

#[test]
fn deeply_nested_script_values_are_typed_errors_on_every_thread() {
    // On a thread with a main thread's stack, as run_script and process run
    // for a caller.
    let caller = thread::Builder::new()
        .stack_size(8 * 1024 * 1024)
        .spawn(|| {
            let registry = ModuleRegistry::new();
            let err = registry
                .run_script(
                    "let a = []; for i in 0..2000 { a = [a]; } a",
                    (),
                )
                .unwrap_err();
            assert!(
                matches!(&err, Error::Script { message, .. } if message.contains("nests deeper than 256")),
                "{err}"
            );
            registry.register_script(&deep_nester(2_000)).unwrap();
            let err = registry.create("nester").unwrap().process(()).unwrap_err();
            assert!(err.report().contains("nests deeper than 256"), "{err}");
            // At the limit it converts.
            registry.register_script(&deep_nester(255)).unwrap();
            assert!(registry.create("nester").unwrap().process(()).is_ok());
        })
        .unwrap();
    caller.join().expect("no crash on the caller's thread");
    // On the workflow worker threads (parallel branches and timed steps).
    let registry = ModuleRegistry::new();
    registry.register_script(&deep_nester(2_000)).unwrap();
    let wf = module_registry::Workflow::new("deep")
        .step(module_registry::WorkflowStep::module("a", "nester").after([]))
        .step(
            module_registry::WorkflowStep::module("b", "nester")
                .after([])
                .timeout(std::time::Duration::from_millis(60_000)),
        );
    let err = registry.run_workflow(&wf, ()).unwrap_err();
    assert!(
        matches!(err, Error::Workflow { .. })
            && err.root_cause().to_string().contains("nests deeper"),
        "{err}"
    );
}

#[test]
fn a_timeout_too_long_to_be_a_deadline_is_no_deadline() {
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            timeout: Some(Duration::from_secs(u64::MAX)),
            ..ScriptLimits::default()
        })
        .unwrap();
    assert_eq!(registry.run_script("40 + 2", ()).unwrap(), Value::Int(42));
}

#[test]
fn a_script_never_silently_replaces_another_kind_of_module() {
    let registry = ModuleRegistry::with_native_modules();
    // `identity` 1.0.0 is native: a script of that name and version is refused.
    let err = registry
        .register_script(
            r#"const MODULE = #{ name: "identity", version: "1.0.0" }; fn process(x) { 0 }"#,
        )
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyRegistered { .. }), "{err}");
    assert_eq!(
        registry.create("identity").unwrap().process(7i64).unwrap(),
        Value::Int(7),
        "the native module still serves"
    );
    // A script replaces a script (reloading), and a new version sits beside.
    let v1 = r#"const MODULE = #{ name: "greet", version: "1.0.0" }; fn process(x) { "hi" }"#;
    registry.register_script(v1).unwrap();
    registry
        .register_script(&v1.replace("\"hi\"", "\"hello\""))
        .unwrap();
    assert_eq!(
        registry.create("greet").unwrap().process(()).unwrap(),
        Value::from("hello")
    );
    // A folder with one file clashing with a native module registers none.
    let dir = std::env::temp_dir().join(format!("mr-clash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.rhai"),
        r#"const MODULE = #{ name: "aaa-first" }; fn process(x) { x }"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("b.rhai"),
        r#"const MODULE = #{ name: "sha256", version: "1.0.0" }; fn process(x) { x }"#,
    )
    .unwrap();
    let err = registry.load_scripts(&dir).unwrap_err();
    assert!(matches!(err, Error::AlreadyRegistered { .. }), "{err}");
    assert!(
        !registry.contains("aaa-first"),
        "nothing from the folder registered"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sleeping_does_not_outlast_the_time_limit() {
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            timeout: Some(Duration::from_millis(200)),
            ..ScriptLimits::default()
        })
        .unwrap();
    let start = Instant::now();
    let err = registry.run_script("sleep(8); 1", ()).unwrap_err();
    assert!(
        matches!(&err, Error::Script { message, .. } if message.contains("timed out")),
        "{err}"
    );
    registry
        .register_script(r#"const MODULE = #{ name: "sleeper" }; fn process(s) { sleep(s); s }"#)
        .unwrap();
    let sleeper = registry.create("sleeper").unwrap();
    let err = sleeper.process(100i64).unwrap_err();
    assert!(err.report().contains("timed out"), "{err}");
    // Both ended at the deadline, not after 8 and 100 seconds.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // A short sleep, a zero or a negative one just return.
    assert_eq!(sleeper.process(0.01f64).unwrap(), Value::Float(0.01));
    assert_eq!(sleeper.process(-1i64).unwrap(), Value::Int(-1));
}

#[test]
fn bundled_scripts_are_the_shipped_folder_compiled_in() {
    let r = ModuleRegistry::with_bundled_scripts();
    let from_folder = ModuleRegistry::new();
    let loaded = from_folder.load_scripts(scripts_dir()).unwrap();
    let bundled: Vec<_> = r
        .list()
        .into_iter()
        .filter(|i| i.implementation().kind() == "rhai")
        .collect();
    assert!(!bundled.is_empty());
    let names = |infos: &[module_registry::ModuleInfo]| -> Vec<String> {
        infos
            .iter()
            .map(|i| format!("{}@{}", i.name(), i.version()))
            .collect()
    };
    assert_eq!(names(&bundled), names(&loaded));
    // `markdown` imports `html`: served from the compiled-in scripts.
    let html = r.create("markdown").unwrap().process("# Title").unwrap();
    assert_eq!(
        html,
        from_folder
            .create("markdown")
            .unwrap()
            .process("# Title")
            .unwrap()
    );
    assert!(r.get("identity").is_some(), "the native modules too");
    // Loading them again replaces them (as loading a folder again does).
    assert_eq!(r.load_bundled_scripts().unwrap().len(), bundled.len());
    assert_eq!(
        r.list().len(),
        bundled.len() + ModuleRegistry::with_native_modules().list().len()
    );
}

#[test]
fn embedders_add_rust_functions_to_scripts() {
    use module_registry::rhai::Engine;

    let registry = ModuleRegistry::new();
    registry
        .register_script(
            r#"const MODULE = #{ name: "early", version: "1.0.0" }; fn process(x) { triple(x) }"#,
        )
        .unwrap();
    let before = registry.create("early").unwrap();
    let seen = registry.clone();
    registry
        .register_script_functions(move |engine: &mut Engine| {
            // A setup may use the registry (it runs with no lock held).
            let _ = seen.len();
            engine.register_fn("triple", |x: i64| x * 3);
        })
        .unwrap();
    // Scripts loaded before: instances created from now on see the function.
    assert_eq!(
        registry.create("early").unwrap().process(2i64).unwrap(),
        Value::Int(6)
    );
    // An instance built before keeps the engine it was built with.
    assert!(before.process(2i64).is_err());
    // Scripts loaded later, and orchestration scripts, see it too.
    registry
        .register_script(r#"const MODULE = #{ name: "late", version: "1.0.0" }; fn process(x) { triple(x) + 1 }"#)
        .unwrap();
    assert_eq!(
        registry.create("late").unwrap().process(2i64).unwrap(),
        Value::Int(7)
    );
    assert_eq!(
        registry.run_script("triple(input)", 5i64).unwrap(),
        Value::Int(15)
    );
    // A setup that panics is refused, and nothing changes.
    let err = registry
        .register_script_functions(|_: &mut Engine| panic!("a careless setup"))
        .unwrap_err();
    assert!(err.report().contains("panicked"), "{err}");
    assert_eq!(
        registry.create("late").unwrap().process(1i64).unwrap(),
        Value::Int(4)
    );
    // Extending scripts is an administrator's act.
    registry.set_policy(Some(crate::common::policy())).unwrap();
    let denied = registry
        .as_principal("alice")
        .with(|r| r.register_script_functions(|_: &mut Engine| {}));
    assert!(matches!(
        denied,
        Err(module_registry::Error::PermissionDenied { .. })
    ));
}

/// A gate scripts call as `hold()`: the first call says it is in and waits
/// until `open` (30 s at most, only a hang guard); later calls pass.
struct Gate {
    state: parking_lot::Mutex<(usize, bool)>,
    changed: parking_lot::Condvar,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Gate {
            state: parking_lot::Mutex::new((0, false)),
            changed: parking_lot::Condvar::new(),
        })
    }

    fn hold(&self) {
        let mut s = self.state.lock();
        s.0 += 1;
        self.changed.notify_all();
        if s.0 == 1 {
            let guard = Instant::now() + Duration::from_secs(30);
            while !s.1 && !self.changed.wait_until(&mut s, guard).timed_out() {}
        }
    }

    fn wait_for_first(&self) {
        let mut s = self.state.lock();
        let guard = Instant::now() + Duration::from_secs(30);
        while s.0 == 0 && !self.changed.wait_until(&mut s, guard).timed_out() {}
        assert!(s.0 > 0, "the first call never came");
    }

    fn open(&self) {
        self.state.lock().1 = true;
        self.changed.notify_all();
    }
}

fn gated_counter(registry: &ModuleRegistry) -> Arc<Gate> {
    let gate = Gate::new();
    let g = gate.clone();
    registry
        .register_script_functions(move |engine: &mut module_registry::rhai::Engine| {
            let g = g.clone();
            engine.register_fn("hold", move || g.hold());
        })
        .unwrap();
    registry
        .register_script(
            r#"const MODULE = #{ name: "gated" };
               fn process(x) {
                   if x == "hold" { hold(); }
                   if x == "fail" { this.n = 100; throw "no"; }
                   this.n = (this.n ?? 0) + 1;
                   this.n
               }"#,
        )
        .unwrap();
    gate
}

#[test]
fn calls_on_one_script_instance_do_not_wait_for_each_other() {
    let registry = ModuleRegistry::new();
    let gate = gated_counter(&registry);
    let instance = Arc::new(registry.create("gated").unwrap());
    let held = {
        let i = instance.clone();
        thread::spawn(move || i.process("hold"))
    };
    gate.wait_for_first();
    // The first call is inside the script: a second one runs meanwhile
    // (before, it waited on the instance's state lock until the first ended).
    let (tx, rx) = std::sync::mpsc::channel();
    let i = instance.clone();
    thread::spawn(move || tx.send(i.process("go")));
    let second = rx.recv_timeout(Duration::from_secs(20));
    gate.open();
    assert_eq!(
        second.expect("the second call waited").unwrap(),
        Value::Int(1)
    );
    // Both began from the same state; the last to finish decided it.
    assert_eq!(held.join().unwrap().unwrap(), Value::Int(1));
    assert_eq!(instance.process("go").unwrap(), Value::Int(2));
    // A failed call leaves the state as it was (its `this.n = 100` is dropped).
    assert!(instance.process("fail").is_err());
    assert_eq!(instance.process("go").unwrap(), Value::Int(3));
}

#[cfg(feature = "workflows")]
#[test]
fn a_retry_after_a_timeout_does_not_wait_for_the_abandoned_attempt() {
    use module_registry::{Workflow, WorkflowStep};
    let registry = ModuleRegistry::new();
    let gate = gated_counter(&registry);
    // The first attempt holds at the gate past its time limit; the retry
    // runs on the same instance.
    let wf = Workflow::new("retry").step(
        WorkflowStep::module("g", "gated")
            .retries(1)
            .timeout(Duration::from_secs(2)),
    );
    let result = registry.run_workflow(&wf, "hold");
    gate.open();
    let result = result.unwrap();
    assert_eq!(result.steps[0].attempts, 2);
    assert_eq!(result.output, Value::Int(1));
}

#[cfg(feature = "workflows")]
#[test]
fn values_a_script_receives_from_pools_and_workflows_count_against_its_memory() {
    use module_registry::ModuleConfig;
    let registry = ModuleRegistry::new();
    // Not native nor a script: called on a helper thread under a deadline,
    // so what it returns is allocated off the script's thread.
    registry
        .register(
            ModuleConfig::new()
                .with_name("big")
                .with_handler(|_| Ok(Value::Str("x".repeat(4 << 20)))),
        )
        .unwrap();
    registry
        .set_script_limits(ScriptLimits {
            max_memory: Some(16 << 20),
            max_string_size: None,
            ..ScriptLimits::default()
        })
        .unwrap();
    let through_pool = r#"let p = registry.pool("big", 2); let m = #{};
        for i in 0..8 { m["k" + i] = p.process(i); } m.len()"#;
    let err = registry.run_script(through_pool, ()).unwrap_err();
    assert!(err.report().contains("out of memory"), "{err}");
    let through_instance = r#"let b = registry.create("big"); let m = #{};
        for i in 0..8 { m["k" + i] = b.process(i); } m.len()"#;
    let err = registry.run_script(through_instance, ()).unwrap_err();
    assert!(err.report().contains("out of memory"), "{err}");
    let through_workflow = r#"let wf = workflow("w"); wf.step(#{ id: "b", "module": "big" });
        let m = #{}; for i in 0..8 { m["k" + i] = registry.run_workflow(wf, i).output; } m.len()"#;
    let err = registry.run_script(through_workflow, ()).unwrap_err();
    assert!(err.report().contains("out of memory"), "{err}");
    // What fits, fits: two values of 4 MiB.
    let two = through_pool.replace("0..8", "0..2");
    assert_eq!(registry.run_script(&two, ()).unwrap(), Value::Int(2));
}

#[cfg(feature = "workflows")]
#[test]
fn a_workflow_run_from_a_script_ends_at_the_scripts_deadline() {
    use module_registry::ModuleConfig;
    use std::sync::atomic::{AtomicBool, Ordering};
    let registry = ModuleRegistry::new();
    let gate = Gate::new();
    let returned = Arc::new(AtomicBool::new(false));
    let (g, r) = (gate.clone(), returned.clone());
    registry
        .register(
            ModuleConfig::new()
                .with_name("stuck")
                .with_handler(move |v| {
                    g.hold();
                    r.store(true, Ordering::SeqCst);
                    Ok(v)
                }),
        )
        .unwrap();
    registry
        .set_script_limits(ScriptLimits {
            timeout: Some(Duration::from_millis(500)),
            ..ScriptLimits::default()
        })
        .unwrap();
    let script = r#"let wf = workflow("w"); wf.step(#{ id: "s", "module": "stuck" });
        wf.step(#{ id: "t", "module": "stuck" }); registry.run_workflow(wf, 1).output"#;
    let err = registry.run_script(script, ()).unwrap_err();
    // It ended while the step was still inside the module.
    let still_inside = !returned.load(Ordering::SeqCst);
    gate.open();
    assert!(err.report().contains("timed out"), "{err}");
    assert!(still_inside);
}

#[cfg(unix)]
#[test]
fn script_files_are_read_bounded_and_only_when_regular() {
    let dir = std::env::temp_dir().join(format!("mr-script-read-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A link to /dev/zero: endless; before, read until memory ran out.
    let zero = dir.join("zero.rhai");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let registry = ModuleRegistry::new();
    let err = registry.load_script(&zero).unwrap_err().report();
    assert!(err.contains("not a regular file"), "{err}");
    // A file past the cap.
    let big = dir.join("big.rhai");
    let mut text = String::from("const MODULE = #{ name: \"big\" };\nfn process(x) { x }\n//");
    text.push_str(&"x".repeat(module_registry::script::MAX_SCRIPT_BYTES as usize));
    std::fs::write(&big, text).unwrap();
    let err = registry.load_script(&big).unwrap_err().report();
    assert!(err.contains("4 MiB") && err.contains("not read"), "{err}");
    let err = registry.run_script_file(&big, ()).unwrap_err().report();
    assert!(err.contains("4 MiB"), "{err}");
    // A FIFO is refused without blocking.
    let fifo = dir.join("fifo.rhai");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(made, 0);
    let err = registry.load_script(&fifo).unwrap_err().report();
    assert!(err.contains("not a regular file"), "{err}");
    // Not UTF-8.
    let bad = dir.join("bad.rhai");
    std::fs::write(&bad, b"const MODULE = #{ name: \"b\" };\xff").unwrap();
    let err = registry.load_script(&bad).unwrap_err().report();
    assert!(err.contains("not UTF-8"), "{err}");
    assert!(registry.list().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
