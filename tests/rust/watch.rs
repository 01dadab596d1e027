//! Script folders watched and reloaded as their files change.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use module_registry::{ModuleRegistry, ReloadEvent, ReloadKind, Value};
use parking_lot::Mutex;

use crate::common::temp;

fn script(name: &str, version: &str, answer: &str) -> String {
    format!(
        "const MODULE = #{{ name: \"{name}\", version: \"{version}\" }};\n\
         fn process(input) {{ \"{answer}\" }}\n"
    )
}

/// Waits up to 5 s for `f` to hold.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn answer(registry: &ModuleRegistry, name: &str) -> Option<String> {
    let out = registry.create(name).ok()?.process(()).ok()?;
    match out {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

type Events = Arc<Mutex<Vec<ReloadEvent>>>;

fn recording() -> (Events, impl Fn(&ReloadEvent) + Send + Sync + 'static) {
    let events: Events = Arc::default();
    let sink = events.clone();
    (events, move |e: &ReloadEvent| sink.lock().push(e.clone()))
}

fn kinds(events: &Events, path: &Path) -> Vec<ReloadKind> {
    events
        .lock()
        .iter()
        .filter(|e| e.path.file_name() == path.file_name())
        .map(|e| e.kind)
        .collect()
}

/// Replaces `path` as an editor saving by rename does.
fn write_by_rename(path: &PathBuf, text: &str) {
    let tmp = path.with_extension("rhai.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_folder_is_loaded_then_followed() {
    let dir = temp("watch-follow");
    let a = dir.join("a.rhai");
    std::fs::write(&a, script("wa", "1.0.0", "one")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a script").unwrap();
    let registry = ModuleRegistry::new();
    let (events, sink) = recording();
    let watcher = registry.watch_scripts(&dir, sink).unwrap();
    assert_eq!(kinds(&events, &a), [ReloadKind::Loaded]);
    assert_eq!(answer(&registry, "wa").as_deref(), Some("one"));
    let old = registry.create("wa").unwrap();

    // Same version: replaced for new instances; the old instance keeps its code.
    write_by_rename(&a, &script("wa", "1.0.0", "two"));
    eventually("reloaded", || {
        answer(&registry, "wa").as_deref() == Some("two")
    });
    assert_eq!(old.process(()).unwrap(), Value::from("one"));
    assert_eq!(
        registry
            .versions(module_registry::ModuleKind::Module, "wa")
            .len(),
        1
    );

    // A new version is registered beside the old.
    std::fs::write(&a, script("wa", "2.0.0", "three")).unwrap();
    eventually("new version", || {
        answer(&registry, "wa").as_deref() == Some("three")
    });
    assert_eq!(
        registry
            .versions(module_registry::ModuleKind::Module, "wa")
            .len(),
        2
    );

    // A new file is loaded.
    let b = dir.join("b.rhai");
    std::fs::write(&b, script("wb", "1.0.0", "bee")).unwrap();
    eventually("new file", || {
        answer(&registry, "wb").as_deref() == Some("bee")
    });
    assert_eq!(kinds(&events, &b), [ReloadKind::Loaded]);

    // A deleted file's modules are unregistered (every version it made).
    std::fs::remove_file(&a).unwrap();
    eventually("removed", || !registry.contains("wa"));
    let a_kinds = kinds(&events, &a);
    assert_eq!(a_kinds.last(), Some(&ReloadKind::Removed), "{a_kinds:?}");
    assert!(
        a_kinds
            .iter()
            .filter(|k| **k == ReloadKind::Reloaded)
            .count()
            >= 2
    );

    // Delete-and-create, as some editors save: the module is still there after.
    std::fs::remove_file(&b).unwrap();
    std::fs::write(&b, script("wb", "1.0.0", "bee again")).unwrap();
    eventually("recreated", || {
        answer(&registry, "wb").as_deref() == Some("bee again")
    });

    watcher.stop();
    assert!(!watcher.is_running());
    std::fs::write(&b, script("wb", "1.0.0", "after stop")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(answer(&registry, "wb").as_deref(), Some("bee again"));
}

#[test]
fn a_bad_edit_is_rejected_and_the_old_code_keeps_serving() {
    let dir = temp("watch-reject");
    let a = dir.join("a.rhai");
    std::fs::write(&a, script("wr", "1.0.0", "good")).unwrap();
    let registry = ModuleRegistry::new();
    let (events, sink) = recording();
    let _watcher = registry.watch_scripts(&dir, sink).unwrap();

    std::fs::write(
        &a,
        "const MODULE = #{ name: \"wr\", version: \"1.0.0\" };\nfn process(x) { x +* }",
    )
    .unwrap();
    eventually("rejected", || {
        kinds(&events, &a).contains(&ReloadKind::Rejected)
    });
    assert_eq!(answer(&registry, "wr").as_deref(), Some("good"));
    // The same broken text saved again is not rejected again.
    let bad = std::fs::read_to_string(&a).unwrap();
    std::fs::write(&a, &bad).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let rejections = kinds(&events, &a)
        .iter()
        .filter(|k| **k == ReloadKind::Rejected)
        .count();
    assert_eq!(rejections, 1, "{:?}", events.lock());
    let event = events
        .lock()
        .iter()
        .find(|e| e.kind == ReloadKind::Rejected)
        .cloned()
        .unwrap();
    assert_eq!(event.name.as_deref(), Some("wr"));
    assert!(
        event.error.as_deref().unwrap().contains("a.rhai"),
        "{event:?}"
    );
    assert!(registry
        .audit_events()
        .iter()
        .any(|e| e.operation == "reload-rejected" && e.module == "wr"));

    // Another name in the same file: rejected too.
    let before = events.lock().len();
    std::fs::write(&a, script("renamed", "1.0.0", "x")).unwrap();
    eventually("rename rejected", || events.lock().len() > before);
    assert_eq!(events.lock().last().unwrap().kind, ReloadKind::Rejected);
    assert!(!registry.contains("renamed"));
    assert_eq!(answer(&registry, "wr").as_deref(), Some("good"));

    // A second file declaring the same name and version: rejected.
    let twin = dir.join("twin.rhai");
    std::fs::write(&twin, script("wr", "1.0.0", "twin")).unwrap();
    eventually("twin rejected", || {
        kinds(&events, &twin) == [ReloadKind::Rejected]
    });
    assert_eq!(answer(&registry, "wr").as_deref(), Some("good"));

    // Fixed: applied.
    std::fs::write(&a, script("wr", "1.0.0", "fixed")).unwrap();
    eventually("fixed", || {
        answer(&registry, "wr").as_deref() == Some("fixed")
    });
}

#[test]
fn a_library_change_reloads_its_importers() {
    let dir = temp("watch-library");
    std::fs::write(dir.join("lib.rhai"), "fn word() { \"old\" }").unwrap();
    let user = dir.join("user.rhai");
    std::fs::write(
        &user,
        "import \"lib\" as lib;\nconst MODULE = #{ name: \"wl\", version: \"1.0.0\" };\nfn process(x) { lib::word() }",
    )
    .unwrap();
    let registry = ModuleRegistry::new();
    let _watcher = registry.watch_scripts(&dir, |_| {}).unwrap();
    assert_eq!(answer(&registry, "wl").as_deref(), Some("old"));
    std::fs::write(dir.join("lib.rhai"), "fn word() { \"new\" }").unwrap();
    eventually("importer reloaded", || {
        answer(&registry, "wl").as_deref() == Some("new")
    });
}

#[test]
fn reload_under_load_never_fails_a_call() {
    let dir = temp("watch-load");
    let a = dir.join("a.rhai");
    std::fs::write(&a, script("wl2", "1.0.0", "old")).unwrap();
    let registry = ModuleRegistry::new();
    let _watcher = registry.watch_scripts(&dir, |_| {}).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(registry.create("wl2").unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (registry, stop, calls, held) =
                (registry.clone(), stop.clone(), calls.clone(), held.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let out = if t % 2 == 0 {
                        registry.create("wl2").and_then(|i| i.process(()))
                    } else {
                        held.process(())
                    };
                    let out = out.unwrap_or_else(|e| panic!("a call failed during reloads: {e}"));
                    assert!(
                        out == Value::from("old") || out == Value::from("new"),
                        "{out:?}"
                    );
                    calls.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for i in 0..100 {
        let answer = if i % 2 == 0 { "new" } else { "old" };
        let text = script("wl2", "1.0.0", answer);
        if i % 3 == 0 {
            std::fs::write(&a, text).unwrap();
        } else {
            write_by_rename(&a, &text);
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    std::fs::write(&a, script("wl2", "1.0.0", "new")).unwrap();
    eventually("final code", || {
        answer(&registry, "wl2").as_deref() == Some("new")
    });
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert!(calls.load(Ordering::SeqCst) > 100);
    // The instance held from the start still runs the code it was built with.
    assert_eq!(held.process(()).unwrap(), Value::from("old"));
}

#[test]
fn watching_needs_a_folder_and_stops_from_its_own_callback() {
    let registry = ModuleRegistry::new();
    assert!(registry.watch_scripts("/no/such/folder", |_| {}).is_err());
    let dir = temp("watch-self-stop");
    let file = dir.join("f.rhai");
    std::fs::write(&file, "not a script at all ((").unwrap();
    let (events, sink) = recording();
    let watcher = registry.watch_scripts(&dir, sink).unwrap();
    assert_eq!(kinds(&events, &file), [ReloadKind::Rejected]);
    assert!(
        registry.watch_scripts(&file, |_| {}).is_err(),
        "a file is not a folder"
    );

    // A callback that stops its own watcher (and panics) does not hang or crash.
    let holder: Arc<Mutex<Option<module_registry::ScriptWatcher>>> = Arc::default();
    let h = holder.clone();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let dir2 = temp("watch-self-stop-2");
    let w = registry
        .watch_scripts(&dir2, move |_| {
            s.fetch_add(1, Ordering::SeqCst);
            if let Some(w) = h.lock().as_ref() {
                w.stop();
            }
            panic!("a careless callback");
        })
        .unwrap();
    *holder.lock() = Some(w);
    std::fs::write(dir2.join("g.rhai"), script("wg", "1.0.0", "g")).unwrap();
    eventually("callback ran", || seen.load(Ordering::SeqCst) == 1);
    eventually("stopped", || !holder.lock().as_ref().unwrap().is_running());
    drop(holder.lock().take());
    drop(watcher);
}

#[test]
fn a_view_without_admin_may_not_watch() {
    let registry = ModuleRegistry::new();
    registry.set_policy(Some(crate::common::policy())).unwrap();
    let dir = temp("watch-denied");
    let err = registry
        .as_principal("alice")
        .with(|r| r.watch_scripts(&dir, |_| {}).map(drop))
        .unwrap_err();
    assert!(
        matches!(err, module_registry::Error::PermissionDenied { .. }),
        "{err}"
    );
}

#[test]
fn orchestration_scripts_see_reloads_and_use_pools() {
    let dir = temp("watch-orchestration");
    let a = dir.join("a.rhai");
    std::fs::write(&a, script("wo", "1.0.0", "before")).unwrap();
    let registry = ModuleRegistry::new();
    let _watcher = registry.watch_scripts(&dir, |_| {}).unwrap();
    let run = || {
        registry
            .run_script(
                r#"let p = registry.pool("wo", 2); let out = [p.process(()), p.process(())]; p.close(); out"#,
                (),
            )
            .unwrap()
    };
    assert_eq!(run(), Value::List(vec!["before".into(), "before".into()]));
    write_by_rename(&a, &script("wo", "1.0.0", "after"));
    eventually("reloaded", || {
        answer(&registry, "wo").as_deref() == Some("after")
    });
    assert_eq!(run(), Value::List(vec!["after".into(), "after".into()]));
}

#[test]
fn a_callback_may_use_the_registry() {
    let dir = temp("watch-reentrant");
    std::fs::write(dir.join("r.rhai"), script("wre", "1.0.0", "one")).unwrap();
    let registry = ModuleRegistry::new();
    let answers: Arc<Mutex<Vec<String>>> = Arc::default();
    let (seen, r) = (answers.clone(), registry.clone());
    // The callback runs with no lock held: it can create what was just loaded.
    let _watcher = registry
        .watch_scripts(&dir, move |e| {
            if let Some(name) = &e.name {
                if let Some(a) = answer(&r, name) {
                    seen.lock().push(a);
                }
            }
        })
        .unwrap();
    assert_eq!(*answers.lock(), ["one"]);
    std::fs::write(dir.join("r.rhai"), script("wre", "1.0.0", "two")).unwrap();
    eventually("callback saw the new code", || {
        answers.lock().last().map(String::as_str) == Some("two")
    });
}

/// A watched folder with one module, `name`, loaded.
fn watched_folder(
    label: &str,
    name: &str,
) -> (
    PathBuf,
    ModuleRegistry,
    Events,
    module_registry::ScriptWatcher,
) {
    let dir = temp(label);
    std::fs::write(dir.join("m.rhai"), script(name, "1.0.0", "here")).unwrap();
    let registry = ModuleRegistry::new();
    let (events, sink) = recording();
    let watcher = registry.watch_scripts(&dir, sink).unwrap();
    assert_eq!(answer(&registry, name).as_deref(), Some("here"));
    (dir, registry, events, watcher)
}

/// The watch ended by itself: a `removed` event for the module, then a
/// `stopped` one naming the folder; not running; the reason kept.
fn assert_ended(
    events: &Events,
    watcher: &module_registry::ScriptWatcher,
    registry: &ModuleRegistry,
    name: &str,
) -> String {
    eventually("the watch ends", || !watcher.is_running());
    eventually("a stopped event", || {
        events.lock().iter().any(|e| e.kind == ReloadKind::Stopped)
    });
    let seen = events.lock().clone();
    let removed = seen
        .iter()
        .position(|e| e.kind == ReloadKind::Removed && e.name.as_deref() == Some(name));
    let stopped = seen
        .iter()
        .position(|e| e.kind == ReloadKind::Stopped)
        .unwrap();
    assert!(
        removed.is_some_and(|r| r < stopped),
        "removed, then stopped: {seen:?}"
    );
    assert_eq!(seen[stopped].path, watcher.folder());
    assert!(registry.get(name).is_none(), "its module is unregistered");
    let error = watcher.error().expect("the reason is kept");
    assert_eq!(seen[stopped].error.as_deref(), Some(error.as_str()));
    assert!(
        registry
            .audit_events()
            .iter()
            .any(|e| e.operation == "watch-stopped"),
        "the end is audited"
    );
    watcher.stop();
    error
}

#[test]
fn a_deleted_folder_ends_the_watch_with_events() {
    let (dir, registry, events, watcher) = watched_folder("watch-gone", "wgone");
    std::fs::remove_dir_all(&dir).unwrap();
    let error = assert_ended(&events, &watcher, &registry, "wgone");
    assert!(error.contains("removed or renamed"), "{error}");
}

#[test]
fn a_renamed_and_edited_folder_ends_the_watch_with_events() {
    let (dir, registry, events, watcher) = watched_folder("watch-renamed", "wrenamed");
    let moved = dir.with_file_name(format!(
        "{}-moved",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(moved.join("m.rhai"), script("wrenamed", "1.0.0", "edited")).unwrap();
    let error = assert_ended(&events, &watcher, &registry, "wrenamed");
    assert!(error.contains("removed or renamed"), "{error}");
    std::fs::remove_dir_all(&moved).unwrap();
}

#[test]
fn a_folder_replaced_by_a_file_ends_the_watch_with_events() {
    let (dir, registry, events, watcher) = watched_folder("watch-to-file", "wtofile");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "a file now").unwrap();
    let error = assert_ended(&events, &watcher, &registry, "wtofile");
    // Seen gone, or seen as the file (whichever check came first).
    assert!(
        error.contains("replaced by a file") || error.contains("removed or renamed"),
        "{error}"
    );
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn a_folder_replaced_by_another_folder_ends_the_watch() {
    let (dir, registry, events, watcher) = watched_folder("watch-swapped", "wswapped");
    let next = dir.with_extension("next");
    std::fs::create_dir_all(&next).unwrap();
    std::fs::write(next.join("m.rhai"), script("wswapped", "1.0.0", "new")).unwrap();
    let old = dir.with_extension("old");
    std::fs::rename(&dir, &old).unwrap();
    std::fs::rename(&next, &dir).unwrap();
    let error = assert_ended(&events, &watcher, &registry, "wswapped");
    assert!(
        error.contains("another folder") || error.contains("removed or renamed"),
        "{error}"
    );
    std::fs::remove_dir_all(&old).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_script_past_the_cap_is_rejected_unread() {
    let dir = temp("watch-big");
    let big = dir.join("big.rhai");
    // A valid script padded with a comment past 4 MiB.
    let mut text = script("wbig", "1.0.0", "big");
    text.push_str("// ");
    text.push_str(&"x".repeat(module_registry::script::watch::MAX_SCRIPT_BYTES as usize));
    std::fs::write(&big, &text).unwrap();
    let registry = ModuleRegistry::new();
    let (events, sink) = recording();
    let watcher = registry.watch_scripts(&dir, sink).unwrap();
    assert_eq!(kinds(&events, &big), [ReloadKind::Rejected]);
    let error = events.lock()[0].error.clone().unwrap();
    assert!(
        error.contains("4 MiB") && error.contains("not read"),
        "{error}"
    );
    assert!(registry.get("wbig").is_none());
    // Cut under the cap, it loads.
    write_by_rename(&big, &script("wbig", "1.0.0", "small"));
    eventually("loaded", || {
        answer(&registry, "wbig").as_deref() == Some("small")
    });
    watcher.stop();
}

#[test]
fn stop_does_not_wait_for_a_blocked_callback() {
    let dir = temp("watch-blocked");
    let registry = ModuleRegistry::new();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    let watcher = registry
        .watch_scripts(&dir, move |_| {
            let _ = entered_tx.send(());
            // Blocks until the test lets it go.
            let _ = released.lock().recv();
        })
        .unwrap();
    std::fs::write(dir.join("a.rhai"), script("wblocked", "1.0.0", "a")).unwrap();
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the callback ran");
    let watcher = Arc::new(watcher);
    let stopper = watcher.clone();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        stopper.stop();
        let _ = done_tx.send(());
    });
    let stopped = done.recv_timeout(Duration::from_secs(10));
    release.send(()).unwrap();
    stopped.expect("stop returned while the callback was blocked");
    assert!(!watcher.is_running() && watcher.error().is_none());
    // Nothing is applied after stop returned.
    std::fs::write(dir.join("b.rhai"), script("wblocked-b", "1.0.0", "b")).unwrap();
    std::thread::sleep(DEBOUNCE_WAIT);
    assert!(registry.get("wblocked-b").is_none());
}

/// Long enough for a change to have been applied had the watch been running.
const DEBOUNCE_WAIT: Duration = Duration::from_millis(300);
