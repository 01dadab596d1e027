//! The audit log and its durable JSON-lines file.

use std::thread;

use module_registry::{AuditLog, ModuleConfig, ModuleRegistry, Outcome};

use crate::common::temp;

#[test]
fn the_audit_file_gets_one_complete_line_per_event() {
    let dir = temp("audit");
    let path = dir.join("audit.jsonl");
    let r = ModuleRegistry::with_native_modules();
    r.set_audit_file(Some(&path)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let r = r.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    let name = format!("t{t}-m{i}");
                    r.register(ModuleConfig::new().with_name(&name).with_handler(Ok))
                        .unwrap();
                    r.create(&name).unwrap();
                    r.unregister(&name, "0.1.0").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let _ = r.as_principal("eve").with(|r| r.create("nope"));
    r.set_audit_file(None).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let events = AuditLog::read_file(&path).unwrap();
    assert_eq!(events.len(), 4 * 50 * 3 + 1);
    assert_eq!(text.lines().count(), events.len());
    assert!(
        events.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "file order is event order"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (
            last.operation.as_str(),
            last.principal.as_str(),
            last.outcome
        ),
        ("create", "eve", Outcome::Error)
    );
    for op in ["register", "create", "unregister"] {
        assert_eq!(
            events
                .iter()
                .filter(|e| e.operation == op && e.outcome == Outcome::Ok)
                .count(),
            200,
            "{op}"
        );
    }
    // Appends, never truncates; a line cut short at the end (a killed process) is skipped.
    let r2 = ModuleRegistry::new();
    r2.set_audit_file(Some(&path)).unwrap();
    r2.register(ModuleConfig::new().with_name("later")).unwrap();
    assert_eq!(AuditLog::read_file(&path).unwrap().len(), 602);
    std::fs::write(&path, format!("{text}{{\"sequence\": 9, \"ti")).unwrap();
    assert_eq!(AuditLog::read_file(&path).unwrap().len(), 601);
    std::fs::write(&path, "not json\n").unwrap();
    assert!(AuditLog::read_file(&path)
        .unwrap_err()
        .to_string()
        .contains(":1:"));
    assert!(r
        .set_audit_file(Some(&dir.join("no/such/dir/a.jsonl")))
        .is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_audit_file_with_an_impossible_time_is_an_error_not_a_panic() {
    let dir = temp("audit-times");
    for time in ["1e308", "-1", "1e19"] {
        let file = dir.join("audit.jsonl");
        std::fs::write(
            &file,
            format!(
                "{{\"sequence\":1,\"time\":{time},\"operation\":\"register\",\"principal\":\"system\",\"kind\":\"module\",\"module\":\"m\",\"version\":\"1.0.0\",\"outcome\":\"ok\",\"detail\":null}}\n"
            ),
        )
        .unwrap();
        let err = AuditLog::read_file(&file).unwrap_err();
        let message = err.report();
        assert!(
            matches!(err, module_registry::Error::Serialization { .. })
                && message.contains(":1:")
                && message.contains("not a time"),
            "{time}: {message}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn an_audit_file_must_be_a_regular_file() {
    let dir = temp("audit-fifo");
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let r = ModuleRegistry::new();
    // A FIFO without a reader would block the open forever: refused at once.
    let err = r.set_audit_file(Some(&fifo)).unwrap_err();
    assert!(err.report().contains("regular file"), "{err}");
    let err = r.set_audit_file(Some(&dir)).unwrap_err();
    assert!(err.report().contains("regular file"), "{err}");
    assert!(r.audit_log().file().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_events_keep_a_bounded_part_of_long_messages() {
    let r = ModuleRegistry::new();
    let long = "é".repeat(8 * 1024 * 1024); // 16 MiB of two-byte characters
    r.register(
        ModuleConfig::new()
            .with_name("loud")
            .with_handler(move |_| Err(module_registry::Error::invalid_input(long.clone()).into())),
    )
    .unwrap();
    let instance = r.create("loud").unwrap();
    for _ in 0..20 {
        assert!(instance.process(()).is_err());
    }
    let events = r.audit_events();
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Error)
        .collect();
    assert_eq!(failures.len(), 20);
    for e in failures {
        let detail = e.detail.as_deref().unwrap();
        assert!(
            detail.len() <= module_registry::audit::MAX_DETAIL_BYTES + 64,
            "{}",
            detail.len()
        );
        assert!(detail.ends_with("more bytes not kept)"), "says it was cut");
    }
}
