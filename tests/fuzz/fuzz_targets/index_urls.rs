//! Arbitrary index URLs, file URLs and file paths: reading the index and
//! installing from it must end in packages written inside the install
//! folder, or a typed error; never a panic. Lines of the input: the index
//! URL, the URL the index names for its file, the file's path, and where
//! the server says the index was finally read from (a redirect).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use module_registry::distribution::{
    install, set_http_client, HttpClient, HttpError, InstallOptions, PackageIndex,
};

const SCRIPT: &str = "const MODULE = #{ name: \"alpha\", version: \"1.0.0\" };\nfn process(x) { x }\n";

struct Served {
    index: Vec<u8>,
    redirect: Option<String>,
}

impl HttpClient for Served {
    fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        self.get_final(url, limit).map(|(body, _)| body)
    }

    fn get_final(&self, url: &str, _limit: u64) -> Result<(Vec<u8>, String), HttpError> {
        let path = url.split(['?', '#']).next().unwrap_or_default();
        if path.ends_with(".minisig") {
            Err(HttpError::Failed("no signature".into()))
        } else if path.ends_with("index.json") {
            let at = self.redirect.clone().unwrap_or_else(|| url.to_string());
            Ok((self.index.clone(), at))
        } else {
            Ok((SCRIPT.as_bytes().to_vec(), url.to_string()))
        }
    }
}

fn into() -> PathBuf {
    std::env::temp_dir().join(format!("fuzz-index-urls-{}", std::process::id()))
}

/// Local paths are kept under a folder that does not exist, so no input
/// reads this machine's files (`/proc/kmsg` blocks).
fn confined(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        url.to_string()
    } else if lower.starts_with("file://") {
        format!("file:///nonexistent-fuzz/{}", url.get(7..).unwrap_or_default())
    } else {
        format!("/nonexistent-fuzz/{url}")
    }
}

fn sha256(text: &str) -> String {
    // The digest of SCRIPT, worked out once by the registry's own index.
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST
        .get_or_init(|| {
            let dir = into().with_extension("digest");
            let _ = std::fs::create_dir_all(&dir);
            std::fs::write(dir.join("alpha.rhai"), text).unwrap();
            let index = module_registry::distribution::build_index(&dir, None).unwrap();
            let digest = index.packages["alpha"][0].files[0].sha256.clone();
            let _ = std::fs::remove_dir_all(&dir);
            digest
        })
        .clone()
}

fn inside(root: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            inside(&path, found);
        } else {
            found.push(path);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let index_url = confined(lines.next().unwrap_or_default());
    let file_url = lines.next().unwrap_or("alpha.rhai").to_string();
    let file_path = lines.next().unwrap_or("alpha.rhai").to_string();
    let redirect = lines.next().map(confined);
    let index = serde_json::json!({
        "format": 1,
        "generated": "2026-01-01T00:00:00Z",
        "packages": {"alpha": [{
            "version": "1.0.0", "type": "DataProcessor", "capabilities": [],
            "files": [{"path": file_path, "url": file_url, "sha256": sha256(SCRIPT)}],
        }]},
    });
    set_http_client(Some(Arc::new(Served {
        index: index.to_string().into_bytes(),
        redirect,
    })));
    let _ = PackageIndex::load(&index_url);
    let into = into();
    let _ = std::fs::remove_dir_all(&into);
    let options = InstallOptions {
        index: index_url,
        into: into.clone(),
        ..InstallOptions::default()
    };
    if let Ok(installed) = install(&[("alpha".into(), "*".into())], &options) {
        let mut found = Vec::new();
        inside(&into, &mut found);
        for file in &installed[0].files {
            assert!(file.path.ends_with(".rhai"), "{file:?}");
            assert!(into.join(&file.path).is_file(), "{file:?}");
        }
        for path in found {
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(name.ends_with(".rhai") || name == "module-registry.lock", "{path:?}");
        }
    }
});
