//! Arbitrary bytes as an install folder's lockfile: reading it, installing
//! beside it (its packages merged) and installing `--locked` from it must
//! end in a lockfile that reads back, or a typed error; never a panic.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use module_registry::distribution::{build_index, install, read_lockfile, InstallOptions, LOCKFILE};

const SCRIPT: &str = "const MODULE = #{ name: \"alpha\", version: \"1.0.0\" };\nfn process(x) { x }\n";

fn base() -> PathBuf {
    std::env::temp_dir().join(format!("fuzz-lockfiles-{}", std::process::id()))
}

fn index() -> String {
    static INDEX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            let dir = base().join("pub");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("alpha.rhai"), SCRIPT).unwrap();
            build_index(&dir, None).unwrap();
            dir.join("index.json").display().to_string()
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    // The bytes as they are, and after a valid header with a package table
    // begun (so most inputs reach past the TOML parser).
    let mut framed = b"version = 1\n[[package]]\nname = \"alpha\"\n".to_vec();
    framed.extend_from_slice(data);
    check(data);
    check(&framed);
});

fn check(data: &[u8]) {
    let index = index();
    let into = base().join("into");
    let _ = std::fs::remove_dir_all(&into);
    std::fs::create_dir_all(&into).unwrap();
    let lock = into.join(LOCKFILE);
    std::fs::write(&lock, data).unwrap();
    let read = read_lockfile(&lock);
    for locked in [true, false] {
        let options = InstallOptions {
            index: index.clone(),
            into: into.clone(),
            locked,
            ..InstallOptions::default()
        };
        let before = std::fs::read(&lock).unwrap();
        match install(&[("alpha".into(), "*".into())], &options) {
            Ok(_) => {
                let after = read_lockfile(&lock).expect("a lockfile written reads back");
                assert!(after.iter().any(|p| p.name == "alpha"));
                if let Ok(packages) = &read {
                    for old in packages {
                        assert!(after.iter().any(|p| p.name == old.name), "{old:?} dropped");
                    }
                }
            }
            Err(_) => assert_eq!(std::fs::read(&lock).unwrap(), before, "a failed install changed the lockfile"),
        }
    }
}
