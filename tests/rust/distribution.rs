//! Package indexes from Rust: build, sign, install (offline, from paths),
//! the lockfile, and what is refused.

use std::path::Path;

use module_registry::distribution::{
    self, build_index, install, read_lockfile, sign, InstallOptions, PackageIndex,
};
use module_registry::{Error, ModuleRegistry, Value};

use crate::common::{policy, temp};

const LIB: &str = "fn twice(x) { x * 2 }";

fn module(name: &str, version: &str, deps: &str, body: &str) -> String {
    format!(
        "import \"lib\" as lib;\nconst MODULE = #{{ name: \"{name}\", version: \"{version}\", capabilities: [\"math\"], dependencies: #{{ {deps} }}, metadata: #{{ license: \"MIT\", description: \"{name} module\" }} }};\nfn process(x) {{ {body} }}"
    )
}

/// `double` 1.0.0 and 2.0.0 and `quad` 1.0.0 (needs double ^1), published in `dir`.
fn published(dir: &Path) -> String {
    std::fs::write(dir.join("lib.rhai"), LIB).unwrap();
    std::fs::write(
        dir.join("double.rhai"),
        module("double", "1.0.0", "", "lib::twice(x)"),
    )
    .unwrap();
    build_index(dir, None).unwrap();
    std::fs::write(
        dir.join("double.rhai"),
        module("double", "2.0.0", "", "lib::twice(x) + 0"),
    )
    .unwrap();
    std::fs::write(
        dir.join("quad.rhai"),
        module(
            "quad",
            "1.0.0",
            "double: \"^1\"",
            "lib::twice(lib::twice(x))",
        ),
    )
    .unwrap();
    build_index(dir, None).unwrap();
    dir.join("index.json").display().to_string()
}

fn options(index: &str, into: &Path) -> InstallOptions {
    InstallOptions {
        index: index.to_string(),
        into: into.to_path_buf(),
        ..InstallOptions::default()
    }
}

#[test]
fn install_resolves_writes_locks_and_registers() {
    let dir = temp("dist-install");
    let index = published(&dir.join("pub").tap_mkdir());
    let into = dir.join("into");
    let r = ModuleRegistry::new();
    let installed = r
        .install(&[("quad".into(), "*".into())], &options(&index, &into))
        .unwrap();
    let names: Vec<String> = installed
        .iter()
        .map(|i| format!("{}@{}", i.name(), i.version()))
        .collect();
    assert_eq!(names, ["double@1.0.0", "quad@1.0.0"]);
    assert_eq!(
        r.create("quad").unwrap().process(3i64).unwrap(),
        Value::Int(12)
    );
    let lock = read_lockfile(&into.join(distribution::LOCKFILE)).unwrap();
    assert_eq!(lock.len(), 2);
    assert_eq!(lock[0].files[0].path, "double.rhai");
    assert!(lock[0].files[0].url.starts_with("file://"));
    // --locked gives the same files.
    let again = dir.join("again");
    std::fs::create_dir_all(&again).unwrap();
    std::fs::copy(
        into.join(distribution::LOCKFILE),
        again.join(distribution::LOCKFILE),
    )
    .unwrap();
    let locked = install(
        &[],
        &InstallOptions {
            locked: true,
            ..options(&index, &again)
        },
    )
    .unwrap();
    assert_eq!(locked, lock);
    // Search and licenses.
    let idx = PackageIndex::load(&index).unwrap();
    assert_eq!(idx.search("QUAD").len(), 1);
    assert_eq!(idx.licenses(), ["MIT"]);
    assert_eq!(
        idx.packages()
            .iter()
            .find(|p| p.name == "double")
            .unwrap()
            .version,
        "2.0.0"
    );
    // Under a policy, installing (files and network) needs admin.
    r.set_policy(Some(policy())).unwrap();
    let bob = r.as_principal("bob");
    assert!(matches!(
        bob.with(|r| r.install(
            &[("double".into(), "*".into())],
            &options(&index, &dir.join("bob"))
        )),
        Err(Error::PermissionDenied { .. })
    ));
}

#[test]
fn a_tampered_file_or_index_changes_nothing() {
    let dir = temp("dist-tamper");
    let index = published(&dir.join("pub").tap_mkdir());
    let stored = dir.join("pub/quad/1.0.0/lib.rhai");
    std::fs::write(&stored, "fn twice(x) { x * 3 }").unwrap();
    let into = dir.join("into");
    std::fs::create_dir_all(&into).unwrap();
    std::fs::write(into.join("keep.txt"), "mine").unwrap();
    let err = install(&[("quad".into(), "^1".into())], &options(&index, &into)).unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
    let left: Vec<_> = std::fs::read_dir(&into)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["keep.txt"]);
    // Signatures: a signed index installs with the trusted key; one byte
    // changed in the index is refused.
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (secret, public) = sign::keygen(&keys.join("k")).unwrap();
    std::fs::write(&stored, "fn twice(x) { x * 2 }").unwrap();
    distribution::sign_file(Path::new(&index), &secret).unwrap();
    let trusted = InstallOptions {
        trusted_key: Some(public),
        ..options(&index, &dir.join("signed"))
    };
    install(&[("double".into(), "^2".into())], &trusted).unwrap();
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace("double module", "double modulE")).unwrap();
    let err = install(
        &[("double".into(), "^2".into())],
        &InstallOptions {
            into: dir.join("signed-again"),
            ..trusted
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    assert!(!dir.join("signed-again").exists());
}

#[test]
fn conflicts_and_escapes_are_refused() {
    let dir = temp("dist-refuse");
    let index = published(&dir.join("pub").tap_mkdir());
    let err = install(
        &[("quad".into(), "*".into()), ("double".into(), "^2".into())],
        &options(&index, &dir.join("into")),
    )
    .unwrap_err();
    assert!(err.report().contains("double"), "{err}");
    let text = std::fs::read_to_string(&index).unwrap().replacen(
        "\"path\": \"double.rhai\"",
        "\"path\": \"../../escape.rhai\"",
        1,
    );
    std::fs::write(&index, text).unwrap();
    let err = install(
        &[("double".into(), "*".into())],
        &options(&index, &dir.join("into")),
    )
    .unwrap_err();
    assert!(err.report().contains("outside the install folder"), "{err}");
    assert!(!dir.join("into").exists());
}

trait MkDir {
    fn tap_mkdir(self) -> Self;
}

impl MkDir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn two_packages_writing_one_file_differently_conflict() {
    let dir = temp("dist-files").join("pub").tap_mkdir();
    std::fs::write(dir.join("lib.rhai"), LIB).unwrap();
    std::fs::write(
        dir.join("double.rhai"),
        module("double", "1.0.0", "", "lib::twice(x)"),
    )
    .unwrap();
    build_index(&dir, None).unwrap();
    // The library changed before `triple` was released (`double` 1.0.0 is
    // kept in the index and under double/1.0.0/): both packages carry a
    // `lib.rhai`, with other contents.
    std::fs::remove_file(dir.join("double.rhai")).unwrap();
    std::fs::write(dir.join("lib.rhai"), "fn twice(x) { x + x }").unwrap();
    std::fs::write(
        dir.join("triple.rhai"),
        module("triple", "1.0.0", "", "lib::twice(x) + x"),
    )
    .unwrap();
    let index = build_index(&dir, None).unwrap();
    assert_eq!(index.packages.len(), 2);
    let into = dir.join("../into");
    let both = [
        ("double".to_string(), "*".to_string()),
        ("triple".to_string(), "*".to_string()),
    ];
    let err = install(
        &both,
        &options(&dir.join("index.json").display().to_string(), &into),
    )
    .unwrap_err();
    assert!(
        err.report().contains("lib.rhai") && err.report().contains("another package"),
        "{err}"
    );
    assert!(!into.exists());
    // Each alone installs.
    install(
        &both[..1],
        &options(&dir.join("index.json").display().to_string(), &into),
    )
    .unwrap();
}
