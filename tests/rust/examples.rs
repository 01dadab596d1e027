//! Runs every Rust example (built by `cargo test` beside the test binaries)
//! and checks what it prints.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("examples");
    let path: PathBuf = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example binary {} is missing: run the tests with `cargo test` (which builds the examples)",
        path.display()
    );
    let out = Command::new(&path).output().expect("example runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn quickstart() {
    let out = example("quickstart");
    assert!(out.contains("word-count -> Int(9)"), "{out}");
    assert!(
        out.contains("compression module: gzip-compress 1.0.0"),
        "{out}"
    );
}

#[test]
fn web_framework() {
    let out = example("web_framework");
    assert!(out.contains("auth-module says Bool(true)"), "{out}");
    assert!(out.contains("401: bad credentials"), "{out}");
}

#[test]
fn content_management() {
    let out = example("content_management");
    assert!(
        out.contains("<h1>Title</h1><p>Some <em>fine</em> text</p>"),
        "{out}"
    );
    assert!(
        out.contains("\"width\": Int(800), \"height\": Int(600)"),
        "{out}"
    );
    assert!(out.contains("Hello PDF"), "{out}");
}

#[test]
fn service_discovery() {
    let out = example("service_discovery");
    assert!(
        out.contains("user-service (User management service)"),
        "{out}"
    );
    assert!(out.contains("4 microservices registered"), "{out}");
}

#[test]
fn service_orchestration() {
    let out = example("service_orchestration");
    assert!(
        out.contains("step by step: Your order of $1.63 is confirmed"),
        "{out}"
    );
    assert!(out.contains("partly backordered"), "{out}");
}

#[test]
fn plugins() {
    let out = example("plugins");
    assert!(out.contains("hello plugin world"), "{out}");
    assert!(out.contains("opened to \"secret\""), "{out}");
}

#[test]
fn plugin_marketplace() {
    let out = example("plugin_marketplace");
    assert!(out.contains("Str(\"Uryyb\")"), "{out}");
    assert!(out.contains("4 listings"), "{out}");
}

#[test]
fn embedding_shares_a_dependency_and_reports_errors_once() {
    let out = example("embedding");
    assert!(
        out.contains("pears: 7"),
        "one counter serves both tallies:\n{out}"
    );
    assert!(out.contains("gross of 10.0: 12.0"), "{out}");
    assert!(out.contains(r#"receipt: "tea, cake" (2 lines)"#), "{out}");
    assert!(out.contains("a wrong order: module receipt@1.0.0 failed in process: invalid input: receipt@1.0.0: the input does not fit at id: invalid type"), "{out}");
    assert!(out.contains("step net: 25\n"), "{out}");
    assert!(out.contains("step gross: 30.0\n"), "{out}");
    assert!(out.contains("step runs: \"runs: 101\"\n"), "{out}");
    assert!(
        out.contains("error: module parse@1.0.0 failed in process\n"),
        "{out}"
    );
    assert!(
        out.contains("report: module parse@1.0.0 failed in process: invalid digit found in string"),
        "{out}"
    );
    assert!(out.contains("Some(ParseIntError"), "{out}");
    assert!(out.contains("counter 1.0.0 (Analytics)"), "{out}");
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_host_awaits_calls_and_a_workflow_and_gives_up_at_a_deadline() {
    let out = example("tokio_host");
    assert!(out.contains("50 requests: 45 answered 200"), "{out}");
    assert!(out.contains("the slow call gave up after 50 ms"), "{out}");
    assert!(
        out.contains(r#"workflow output: "{\"body\":\"200 /api/users\",\"status\":200}""#)
            || out.contains(r#"workflow output: "{\"status\":200,\"body\":\"200 /api/users\"}""#),
        "{out}"
    );
}
