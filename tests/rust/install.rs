//! Installing from hostile or careless indexes and folders (issue 26):
//! what a package may write, symbolic links, lockfiles that are not files
//! or of another format, concurrent installs, indexes read over http(s),
//! and the all-or-nothing promise.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use module_registry::distribution::{
    self, build_index, install, read_lockfile, set_http_client, sign, HttpClient, HttpError,
    InstallOptions, PackageIndex, LOCKFILE,
};
use module_registry::Error;

use crate::common::temp;

fn module(name: &str, version: &str) -> String {
    format!(
        "const MODULE = #{{ name: \"{name}\", version: \"{version}\" }};\nfn process(x) {{ x }}\n"
    )
}

/// Publishes one module per name (1.0.0) in `dir`; the index's path.
fn publish(dir: &Path, names: &[&str]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for name in names {
        std::fs::write(dir.join(format!("{name}.rhai")), module(name, "1.0.0")).unwrap();
    }
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

fn one(name: &str) -> Vec<(String, String)> {
    vec![(name.to_string(), "*".to_string())]
}

/// Every entry of `dir`, sorted (folders with a trailing `/`).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let slash = if e.file_type().unwrap().is_dir() {
                "/"
            } else {
                ""
            };
            format!("{}{slash}", e.file_name().to_string_lossy())
        })
        .collect();
    names.sort();
    names
}

/// Edits the index's JSON at `index` with `change`.
fn edit(index: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(index).unwrap()).unwrap();
    change(&mut json);
    std::fs::write(index, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

#[test]
fn a_package_writes_script_files_only() {
    let dir = temp("inst-paths");
    let index = publish(&dir.join("pub"), &["alpha"]);
    let into = dir.join("into");
    for path in [
        "conftest.py",
        ".git/hooks/pre-commit",
        ".git/hooks/pre-commit.rhai",
        LOCKFILE,
        "sub/alpha.rhai",
        "./alpha.rhai",
        "a\\b.rhai",
        "C:alpha.rhai",
        "",
    ] {
        edit(&index, |j| {
            j["packages"]["alpha"][0]["files"][0]["path"] = path.into()
        });
        let err = install(&one("alpha"), &options(&index, &into)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains("is refused")),
            "{path:?}: {err}"
        );
        assert!(!into.exists(), "{path:?}");
    }
}

#[test]
fn a_module_declaring_another_name_or_not_compiling_changes_nothing() {
    let dir = temp("inst-declared");
    let index = publish(&dir.join("pub"), &["alpha"]);
    let stored = dir.join("pub/alpha/1.0.0/alpha.rhai");
    let into = dir.join("into");
    std::fs::create_dir_all(&into).unwrap();
    std::fs::write(into.join("keep.txt"), "mine").unwrap();
    for (text, error) in [
        (module("evil", "9.9.9"), "declares module evil@9.9.9"),
        (module("alpha", "1.0.1"), "declares module alpha@1.0.1"),
        ("fn process(x) { x +* }".to_string(), "does not compile"),
        ("fn twice(x) { x * 2 }".to_string(), "declares no MODULE"),
    ] {
        // The file matches the digest the index lists.
        std::fs::write(&stored, &text).unwrap();
        let sha = sha256_hex(text.as_bytes());
        edit(&index, |j| {
            j["packages"]["alpha"][0]["files"][0]["sha256"] = sha.into()
        });
        let err = install(&one("alpha"), &options(&index, &into)).unwrap_err();
        assert!(
            err.to_string().contains(error) || format!("{err:?}").contains(error),
            "{err}"
        );
        assert_eq!(listing(&into), ["keep.txt"]);
    }
}

/// SHA-256 in lower-case hex, as the index lists digests.
fn sha256_hex(bytes: &[u8]) -> String {
    module_registry::native::sha256_hex(bytes)
}

#[test]
fn a_failure_while_moving_files_rolls_back_what_was_moved() {
    let dir = temp("inst-rollback");
    let index = publish(&dir.join("pub"), &["alpha", "beta"]);
    let into = dir.join("into");
    std::fs::create_dir_all(into.join("beta.rhai")).unwrap(); // a folder where a file goes
    std::fs::write(into.join("alpha.rhai"), "old").unwrap();
    let requests = [one("alpha"), one("beta")].concat();
    let err = install(&requests, &options(&index, &into)).unwrap_err();
    assert!(err.to_string().contains("beta.rhai"), "{err}");
    assert_eq!(
        std::fs::read_to_string(into.join("alpha.rhai")).unwrap(),
        "old"
    );
    assert_eq!(listing(&into), ["alpha.rhai", "beta.rhai/"]);
}

#[cfg(unix)]
#[test]
fn symbolic_links_in_the_install_folder_are_never_followed() {
    let dir = temp("inst-links");
    let publisher = dir.join("pub");
    std::fs::create_dir_all(publisher.join("sub")).unwrap();
    std::fs::write(publisher.join("sub/lib.rhai"), "fn one() { 1 }").unwrap();
    std::fs::write(
        publisher.join("alpha.rhai"),
        "import \"sub/lib\" as lib;\nconst MODULE = #{ name: \"alpha\", version: \"1.0.0\" };\nfn process(x) { lib::one() }\n",
    )
    .unwrap();
    build_index(&publisher, None).unwrap();
    let index = publisher.join("index.json").display().to_string();
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), "precious").unwrap();
    // A link at a subfolder of the install folder.
    let into = dir.join("into");
    std::fs::create_dir_all(&into).unwrap();
    std::os::unix::fs::symlink(&outside, into.join("sub")).unwrap();
    let err = install(&one("alpha"), &options(&index, &into)).unwrap_err();
    assert!(format!("{err:?}").contains("symbolic link"), "{err:?}");
    assert_eq!(listing(&outside), ["victim"]);
    assert_eq!(listing(&into), ["sub"]);
    // Links at every temporary name the lockfile could be written through.
    let into = dir.join("into2");
    std::fs::create_dir_all(&into).unwrap();
    let pid = std::process::id();
    let mut planted = vec![format!("module-registry.tmp-{pid}")];
    planted.extend((0..256).map(|n| format!(".{LOCKFILE}.tmp-{pid}-{n}")));
    for name in &planted {
        std::os::unix::fs::symlink(outside.join("victim"), into.join(name)).unwrap();
    }
    install(&one("alpha"), &options(&index, &into)).unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "precious"
    );
    assert!(std::fs::symlink_metadata(into.join(LOCKFILE))
        .unwrap()
        .is_file());
    assert_eq!(read_lockfile(&into.join(LOCKFILE)).unwrap().len(), 1);
    // A lockfile that is itself a link is refused, not read through.
    let into = dir.join("into3");
    std::fs::create_dir_all(&into).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), into.join(LOCKFILE)).unwrap();
    let err = install(&one("alpha"), &options(&index, &into)).unwrap_err();
    assert!(format!("{err:?}").contains("symbolic link"), "{err:?}");
}

#[cfg(unix)]
#[test]
fn a_lockfile_that_is_a_fifo_is_refused_without_blocking() {
    let dir = temp("inst-fifo");
    let index = publish(&dir.join("pub"), &["alpha"]);
    let into = dir.join("into");
    std::fs::create_dir_all(&into).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(into.join(LOCKFILE))
        .status()
        .unwrap();
    assert!(made.success());
    let err = install(&one("alpha"), &options(&index, &into)).unwrap_err();
    assert!(format!("{err:?}").contains("not a regular file"), "{err:?}");
    let err = read_lockfile(&into.join(LOCKFILE)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn lockfiles_are_merged_checked_and_of_a_known_format() {
    let dir = temp("inst-merge");
    let index = publish(&dir.join("pub"), &["alpha", "beta"]);
    let into = dir.join("into");
    install(&one("alpha"), &options(&index, &into)).unwrap();
    install(&one("beta"), &options(&index, &into)).unwrap();
    let names: Vec<String> = read_lockfile(&into.join(LOCKFILE))
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    // Another format version, or a package recorded twice: refused, and
    // the lockfile is left as it is.
    let text = std::fs::read_to_string(into.join(LOCKFILE)).unwrap();
    for bad in [
        text.replacen("version = 1", "version = 2", 1),
        format!("{text}\n{}", &text[text.find("[[package]]").unwrap()..]),
    ] {
        std::fs::write(into.join(LOCKFILE), &bad).unwrap();
        let err = install(&one("alpha"), &options(&index, &into)).unwrap_err();
        assert!(matches!(err, Error::Serialization { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(into.join(LOCKFILE)).unwrap(), bad);
    }
}

#[test]
fn eight_threads_installing_into_one_folder_are_all_recorded() {
    let dir = temp("inst-threads");
    let names: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let index = publish(&dir.join("pub"), &refs);
    let into = dir.join("into");
    std::thread::scope(|scope| {
        for name in &names {
            let (index, into) = (&index, &into);
            scope.spawn(move || install(&one(name), &options(index, into)).unwrap());
        }
    });
    let mut recorded: Vec<String> = read_lockfile(&into.join(LOCKFILE))
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    recorded.sort();
    assert_eq!(recorded, names);
    let mut expected: Vec<String> = names.iter().map(|n| format!("{n}.rhai")).collect();
    expected.push(LOCKFILE.to_string());
    expected.sort();
    assert_eq!(listing(&into), expected);
}

#[test]
fn duplicate_packages_or_versions_in_an_index_are_refused() {
    let dir = temp("inst-dupes");
    let index = publish(&dir.join("pub"), &["alpha"]);
    let text = std::fs::read_to_string(&index).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = serde_json::to_string(&json["packages"]["alpha"][0]).unwrap();
    let twice_key = text.replacen(
        "\"alpha\": [",
        &format!("\"alpha\": [{entry}], \"alpha\": ["),
        1,
    );
    let twice_version = text.replacen("\"alpha\": [", &format!("\"alpha\": [{entry}, "), 1);
    let twice_dependency = text.replacen(
        "\"dependencies\": {}",
        "\"dependencies\": {\"x\": \"^1\", \"x\": \"^2\"}",
        1,
    );
    for (bad, error) in [
        (twice_key, "given twice"),
        (twice_version, "twice"),
        (twice_dependency, "given twice"),
    ] {
        assert_ne!(bad, text);
        std::fs::write(&index, &bad).unwrap();
        let err = PackageIndex::load(&index).unwrap_err();
        assert!(
            matches!(&err, Error::Serialization { message } if message.contains(error)),
            "{err}"
        );
    }
}

#[test]
fn an_unknown_package_names_the_index() {
    let dir = temp("inst-unknown");
    let index = publish(&dir.join("pub"), &["alpha"]);
    let err = install(&one("nothere"), &options(&index, &dir.join("into"))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("package \"nothere\" is not in index file://"),
        "{text}"
    );
    assert!(!text.contains("registered"), "{text}");
    // A dependency missing from the index says so too.
    std::fs::write(
        dir.join("pub/beta.rhai"),
        "const MODULE = #{ name: \"beta\", version: \"1.0.0\", dependencies: #{ ghost: \"^1\" } };\nfn process(x) { x }\n",
    )
    .unwrap();
    build_index(&dir.join("pub"), None).unwrap();
    let err = install(&one("beta"), &options(&index, &dir.join("into"))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("package \"ghost\" (required by beta@1.0.0) is not in index"),
        "{text}"
    );
    assert!(!dir.join("into").exists());
}

#[test]
fn resolving_over_a_package_of_3000_versions_with_a_missing_dependency_fails_fast() {
    let dir = temp("inst-3000");
    std::fs::create_dir_all(&dir).unwrap();
    let file = serde_json::json!([{"path": "x.rhai", "url": "x.rhai", "sha256": "00"}]);
    let entry = |version: String, deps: serde_json::Value| {
        serde_json::json!({"version": version, "type": "DataProcessor", "capabilities": [],
                           "files": file, "dependencies": deps})
    };
    let mut packages = serde_json::Map::new();
    packages.insert(
        "big".into(),
        (0..3000)
            .map(|i| entry(format!("1.0.{i}"), serde_json::json!({})))
            .collect(),
    );
    let mut requests = Vec::new();
    for i in 0..20 {
        let mut deps = serde_json::json!({"big": "*"});
        if i == 19 {
            deps["missing"] = "*".into();
        }
        packages.insert(
            format!("p{i:02}"),
            serde_json::json!([entry("1.0.0".into(), deps)]),
        );
        requests.push((format!("p{i:02}"), "*".to_string()));
    }
    let index =
        serde_json::json!({"format": 1, "generated": "2026-01-01T00:00:00Z", "packages": packages});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    let index = dir.join("index.json").display().to_string();
    let err = install(&requests, &options(&index, &dir.join("into"))).unwrap_err();
    assert!(
        err.to_string()
            .contains("package \"missing\" (required by p19@1.0.0) is not in index"),
        "{err}"
    );
}

#[test]
fn yanking_a_signed_index_signs_it_again_or_is_refused() {
    let dir = temp("inst-yank");
    std::fs::write(dir.join("pub.rhai"), "").ok();
    let publisher = dir.join("pub");
    std::fs::create_dir_all(&publisher).unwrap();
    std::fs::write(publisher.join("alpha.rhai"), module("alpha", "1.0.0")).unwrap();
    build_index(&publisher, None).unwrap();
    std::fs::write(publisher.join("alpha.rhai"), module("alpha", "1.1.0")).unwrap();
    build_index(&publisher, None).unwrap();
    let index_path = publisher.join("index.json");
    let index = index_path.display().to_string();
    let (secret, public) = sign::keygen(&dir.join("k")).unwrap();
    distribution::sign_file(&index_path, &secret).unwrap();
    let before = std::fs::read(&index_path).unwrap();
    let err = distribution::yank(&index_path, "alpha", "1.1.0", None).unwrap_err();
    assert!(
        matches!(&err, Error::Signature { reason, .. } if reason.contains("give the secret key")),
        "{err}"
    );
    assert_eq!(std::fs::read(&index_path).unwrap(), before);
    let written = distribution::yank(&index_path, "alpha", "1.1.0", Some(&secret)).unwrap();
    assert_eq!(written, Some(PathBuf::from(format!("{index}.minisig"))));
    let trusted = InstallOptions {
        trusted_key: Some(public),
        ..options(&index, &dir.join("into"))
    };
    let installed = install(&one("alpha"), &trusted).unwrap();
    assert_eq!(installed[0].version, "1.0.0");
}

#[cfg(unix)]
#[test]
fn keygen_writes_the_secret_key_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp("inst-keygen");
    let (secret, public) = sign::keygen(&dir.join("k")).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(mode(&public) & 0o600, 0o600);
    let err = sign::keygen(&dir.join("k")).unwrap_err();
    assert!(err.to_string().contains("never overwritten"), "{err}");
    // A prefix with a dot keeps it.
    let (secret, _) = sign::keygen(&dir.join("team.v2")).unwrap();
    assert_eq!(secret, dir.join("team.v2.key"));
}

/// Serves an index and its files from a table, recording every URL asked.
struct Table {
    /// URL to (body, where it was finally read from).
    answers: Vec<(String, Vec<u8>, String)>,
    asked: Mutex<Vec<String>>,
}

impl HttpClient for Table {
    fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        self.get_final(url, limit).map(|(body, _)| body)
    }

    fn get_final(&self, url: &str, _: u64) -> Result<(Vec<u8>, String), HttpError> {
        self.asked.lock().unwrap().push(url.to_string());
        self.answers
            .iter()
            .find(|(u, _, _)| u == url)
            .map(|(_, body, at)| (body.clone(), at.clone()))
            .ok_or_else(|| HttpError::Failed("HTTP status 404".into()))
    }
}

#[test]
fn indexes_read_over_http_resolve_against_where_they_were_read() {
    // One test sets the process-wide client for all its cases.
    let dir = temp("inst-http");
    let publisher = dir.join("pub");
    let local = publish(&publisher, &["alpha"]);
    let (secret, public) = sign::keygen(&dir.join("k")).unwrap();
    let index_bytes = std::fs::read(&local).unwrap();
    let signature = sign::sign(&index_bytes, &secret).unwrap().into_bytes();
    let script = std::fs::read(publisher.join("alpha/1.0.0/alpha.rhai")).unwrap();
    let mut local_url = index_bytes.clone();
    {
        let text = String::from_utf8(local_url).unwrap().replace(
            "\"url\": \"alpha/1.0.0/alpha.rhai\"",
            &format!(
                "\"url\": \"file://{}\"",
                publisher.join("alpha/1.0.0/alpha.rhai").display()
            ),
        );
        local_url = text.into_bytes();
    }
    let table = Arc::new(Table {
        answers: vec![
            // A redirect: the files are beside the final URL.
            (
                "https://pkgs.test/latest/index.json".into(),
                index_bytes.clone(),
                "https://mirror.test/v2/index.json".into(),
            ),
            (
                "https://mirror.test/v2/alpha/1.0.0/alpha.rhai".into(),
                script.clone(),
                "https://mirror.test/v2/alpha/1.0.0/alpha.rhai".into(),
            ),
            // A query string: the signature is at the path + .minisig, query kept.
            (
                "https://pkgs.test/p/index.json?token=abc".into(),
                index_bytes.clone(),
                "https://pkgs.test/p/index.json?token=abc".into(),
            ),
            (
                "https://pkgs.test/p/index.json.minisig?token=abc".into(),
                signature,
                "https://pkgs.test/p/index.json.minisig?token=abc".into(),
            ),
            (
                "https://pkgs.test/p/alpha/1.0.0/alpha.rhai".into(),
                script.clone(),
                "https://pkgs.test/p/alpha/1.0.0/alpha.rhai".into(),
            ),
            // A remote index naming a local file.
            (
                "https://evil.test/index.json".into(),
                local_url,
                "https://evil.test/index.json".into(),
            ),
            // A redirect to another scheme.
            (
                "https://ftp.test/index.json".into(),
                index_bytes,
                "ftp://ftp.test/index.json".into(),
            ),
        ],
        asked: Mutex::new(Vec::new()),
    });
    set_http_client(Some(table.clone()));
    let redirected = install(
        &one("alpha"),
        &options("https://pkgs.test/latest/index.json", &dir.join("a")),
    );
    let queried = install(
        &one("alpha"),
        &InstallOptions {
            trusted_key: Some(public),
            ..options("https://pkgs.test/p/index.json?token=abc", &dir.join("b"))
        },
    );
    let remote_local = install(
        &one("alpha"),
        &options("https://evil.test/index.json", &dir.join("c")),
    );
    let other_scheme = PackageIndex::load("https://ftp.test/index.json");
    set_http_client(None);
    let redirected = redirected.unwrap();
    assert_eq!(
        redirected[0].files[0].url,
        "https://mirror.test/v2/alpha/1.0.0/alpha.rhai"
    );
    queried.unwrap();
    let err = remote_local.unwrap_err();
    assert!(
        matches!(&err, Error::Fetch { reason, .. } if reason.contains("only http(s) URLs")),
        "{err}"
    );
    assert!(!err.to_string().contains(&sha256_hex(&script)), "{err}");
    assert!(!dir.join("c").exists());
    let err = other_scheme.unwrap_err();
    assert!(
        err.to_string().contains("only http(s) is followed"),
        "{err}"
    );
    let asked = table.asked.lock().unwrap().clone();
    assert!(
        !asked
            .iter()
            .any(|u| u.starts_with("https://pkgs.test/latest/alpha")),
        "{asked:?}"
    );
}

#[test]
fn a_registry_install_of_a_module_already_registered_writes_nothing() {
    let dir = temp("inst-registered");
    let index = publish(&dir.join("pub"), &["alpha"]);
    let registry = module_registry::ModuleRegistry::new();
    registry.load_script(dir.join("pub/alpha.rhai")).unwrap();
    let into = dir.join("deep/er/into");
    let err = registry
        .install(&one("alpha"), &options(&index, &into))
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyRegistered { .. }), "{err}");
    // Nor are the folders it would have created left behind.
    assert!(!dir.join("deep").exists());
}

#[test]
fn an_install_downloads_a_bounded_number_of_files() {
    let dir = temp("inst-many");
    let index = publish(&dir.join("pub"), &["alpha"]);
    edit(&index, |j| {
        let file = j["packages"]["alpha"][0]["files"][0].clone();
        let files: Vec<serde_json::Value> = (0..2000)
            .map(|i| {
                let mut f = file.clone();
                if i > 0 {
                    f["path"] = format!("lib{i}.rhai").into();
                }
                f
            })
            .collect();
        j["packages"]["alpha"][0]["files"] = files.into();
    });
    let err = install(&one("alpha"), &options(&index, &dir.join("into"))).unwrap_err();
    assert!(err.to_string().contains("more than 1024 files"), "{err}");
    assert!(!dir.join("into").exists());
}

#[test]
fn a_registry_install_whose_registration_fails_leaves_the_folder_as_it_was() {
    let dir = temp("inst-register-fails");
    let index = publish(&dir.join("pub"), &["alpha", "beta"]);
    let into = dir.join("into");
    // A first install, so the folder holds files and a lockfile to keep.
    install(&one("alpha"), &options(&index, &into)).unwrap();
    let lock_before = std::fs::read(into.join(LOCKFILE)).unwrap();
    let before = listing(&into);
    // This registry's scripts may nest no expression: the file checks out
    // (it compiles under the default limits) but cannot be registered here,
    // which is found only once the files are in place.
    let registry = module_registry::ModuleRegistry::new();
    registry
        .set_script_limits(module_registry::ScriptLimits {
            max_expr_depth: Some(1),
            ..module_registry::ScriptLimits::default()
        })
        .unwrap();
    let err = registry
        .install(&one("beta"), &options(&index, &into))
        .unwrap_err();
    assert!(matches!(err, Error::Script { .. }), "{err:?}");
    assert_eq!(listing(&into), before);
    assert_eq!(std::fs::read(into.join(LOCKFILE)).unwrap(), lock_before);
    assert!(registry
        .versions(module_registry::ModuleKind::Module, "beta")
        .is_empty());
}

#[test]
fn a_link_at_an_import_subfolder_is_never_followed() {
    // Each folder on the way is opened once without following links and the
    // file moved in through it (`openat`, `renameat`), never through the
    // path again, so a link put there after the check is not followed
    // either (that race is closed by construction; here the link is there
    // from the start, at the folder of a module's import).
    let dir = temp("inst-swap");
    let publish_dir = dir.join("pub");
    std::fs::create_dir_all(publish_dir.join("lib")).unwrap();
    std::fs::write(publish_dir.join("lib/util.rhai"), "fn one() { 1 }\n").unwrap();
    std::fs::write(
        publish_dir.join("gamma.rhai"),
        "import \"lib/util\" as u;\nconst MODULE = #{ name: \"gamma\", version: \"1.0.0\" };\nfn process(x) { u::one() }\n",
    )
    .unwrap();
    build_index(&publish_dir, None).unwrap();
    let index = publish_dir.join("index.json").display().to_string();
    let (into, outside) = (dir.join("into"), dir.join("outside"));
    std::fs::create_dir_all(&into).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, into.join("lib")).unwrap();
    let err = install(&one("gamma"), &options(&index, &into)).unwrap_err();
    assert!(format!("{err:?}").contains("symbolic link"), "{err:?}");
    assert!(listing(&outside).is_empty());
    assert_eq!(listing(&into), ["lib"]);
    std::fs::remove_file(into.join("lib")).unwrap();
    install(&one("gamma"), &options(&index, &into)).unwrap();
    assert_eq!(listing(&into), ["gamma.rhai", "lib/", LOCKFILE]);
}
