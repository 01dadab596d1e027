//! The package index: one JSON file listing every version of every script
//! module package, with each file's digest.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fetch::{Location, MAX_INDEX_BYTES};
use crate::config::Implementation;
use crate::error::{Error, Result};
use crate::registry::ModuleRegistry;
use crate::schema::Schema;

/// The index format this version writes and reads.
pub const INDEX_FORMAT: u32 = 1;

/// A package index (`index.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageIndex {
    /// [`INDEX_FORMAT`].
    pub format: u32,
    /// When it was written (RFC 3339).
    pub generated: String,
    /// Every version of each package, by name (a name listed twice is
    /// refused when read: JSON readers disagree on which one wins).
    #[serde(deserialize_with = "unique_keys")]
    pub packages: BTreeMap<String, Vec<PackageInfo>>,
    /// Where it was read from (relative file URLs resolve against it).
    #[serde(skip)]
    pub(crate) location: Option<Location>,
}

/// One version of one package: a script module and the scripts it imports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    /// The module's name (filled in from the index's key when read).
    #[serde(skip)]
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its type.
    #[serde(rename = "type")]
    pub module_type: String,
    /// Its capabilities.
    pub capabilities: Vec<String>,
    /// The `description` of its `MODULE`'s metadata.
    #[serde(default)]
    pub description: String,
    /// The `license` of its `MODULE`'s metadata.
    #[serde(default)]
    pub license: String,
    /// The module's file first, then each script it imports.
    pub files: Vec<PackageFile>,
    /// Its dependencies: name to semver requirement.
    #[serde(default, deserialize_with = "unique_keys")]
    pub dependencies: BTreeMap<String, String>,
    /// A yanked version is skipped by resolution unless a lockfile pins it.
    #[serde(default)]
    pub yanked: bool,
    /// What the module takes, from its `MODULE.input` (`any` when not
    /// declared: then the entry has no `input` key, as before types).
    #[serde(
        default,
        skip_serializing_if = "Schema::is_any",
        deserialize_with = "input_type"
    )]
    pub input: Schema,
    /// What it gives, from `MODULE.output`.
    #[serde(
        default,
        skip_serializing_if = "Schema::is_any",
        deserialize_with = "output_type"
    )]
    pub output: Schema,
    /// Its config's type, from `MODULE.config_type`.
    #[serde(
        default,
        skip_serializing_if = "Schema::is_any",
        deserialize_with = "config_type_type"
    )]
    pub config_type: Schema,
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFile {
    /// Where it is written, relative to the folder installed into.
    pub path: String,
    /// Where it is read: relative to the index, or `http(s)://`, or `file://`.
    pub url: String,
    /// Lower-case hex SHA-256 of its content.
    pub sha256: String,
}

impl PackageIndex {
    /// An empty index.
    pub fn new() -> Self {
        PackageIndex {
            format: INDEX_FORMAT,
            generated: now(),
            packages: BTreeMap::new(),
            location: None,
        }
    }

    /// Parses an index's text; `location` is where it came from.
    pub(crate) fn parse(text: &[u8], location: Option<Location>) -> Result<Self> {
        let where_ = location
            .as_ref()
            .map_or_else(|| "index".to_string(), Location::url);
        let mut index: PackageIndex =
            serde_json::from_slice(text).map_err(|e| Error::Serialization {
                message: format!("{where_} is not a package index: {e}"),
            })?;
        if index.format != INDEX_FORMAT {
            return Err(Error::Serialization {
                message: format!(
                    "{where_} has index format {}; this version reads {INDEX_FORMAT}",
                    index.format
                ),
            });
        }
        for (name, versions) in &mut index.packages {
            crate::validate::validate_name("package name", name)?;
            let mut seen: Vec<semver::Version> = Vec::with_capacity(versions.len());
            for package in versions.iter_mut() {
                package.name = name.clone();
                let version = crate::validate::parse_version(name, &package.version)?;
                if let Some(first) = seen
                    .iter()
                    .find(|v| v.cmp_precedence(&version) == std::cmp::Ordering::Equal)
                {
                    return Err(Error::Serialization {
                        message: format!(
                            "{where_}: {name} lists version {} twice ({first} and {version}): \
                             each version is listed once",
                            package.version
                        ),
                    });
                }
                seen.push(version);
                if package.files.is_empty() {
                    return Err(Error::Serialization {
                        message: format!("{where_}: {name}@{} has no files", package.version),
                    });
                }
                for (n, file) in package.files.iter().enumerate() {
                    super::install::check_package_path(name, &file.path, n == 0)?;
                }
            }
        }
        index.location = location;
        Ok(index)
    }

    /// Reads the index at `url` (`http(s)://`, `file://` or a path).
    pub fn load(url: &str) -> Result<Self> {
        let location = Location::parse(url)?;
        let text = location.read(MAX_INDEX_BYTES)?;
        Self::parse(&text, Some(location))
    }

    /// The index as JSON (what `index.json` holds).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// The highest version of each package that is not yanked, by name.
    pub fn packages(&self) -> Vec<&PackageInfo> {
        self.packages
            .values()
            .filter_map(|versions| {
                versions
                    .iter()
                    .filter(|p| !p.yanked)
                    .max_by(|a, b| version_of(a).cmp(&version_of(b)))
            })
            .collect()
    }

    /// [`packages`](Self::packages) whose name, description or a capability
    /// holds `text` (any case).
    pub fn search(&self, text: &str) -> Vec<&PackageInfo> {
        let needle = text.to_lowercase();
        self.packages()
            .into_iter()
            .filter(|p| {
                p.name.to_lowercase().contains(&needle)
                    || p.description.to_lowercase().contains(&needle)
                    || p.capabilities
                        .iter()
                        .any(|c| c.to_lowercase().contains(&needle))
            })
            .collect()
    }

    /// [`packages`](Self::packages) under `license` (any case).
    pub fn by_license(&self, license: &str) -> Vec<&PackageInfo> {
        self.packages()
            .into_iter()
            .filter(|p| p.license.eq_ignore_ascii_case(license))
            .collect()
    }

    /// Every license named by [`packages`](Self::packages), sorted, once each.
    pub fn licenses(&self) -> Vec<String> {
        let mut found: Vec<String> = self
            .packages()
            .into_iter()
            .map(|p| p.license.clone())
            .filter(|l| !l.is_empty())
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Marks `name@version` yanked (resolution skips it unless a lockfile pins it).
    pub fn yank(&mut self, name: &str, version: &str) -> Result<()> {
        let available: Vec<String> = self
            .packages
            .get(name)
            .map(|v| v.iter().map(|p| p.version.clone()).collect())
            .unwrap_or_default();
        let package = self
            .packages
            .get_mut(name)
            .and_then(|versions| versions.iter_mut().find(|p| p.version == version))
            .ok_or_else(|| Error::NotFound {
                kind: crate::kind::ModuleKind::Module,
                name: name.to_string(),
                requirement: Some(format!("={version}")),
                available,
            })?;
        package.yanked = true;
        self.generated = now();
        Ok(())
    }
}

impl Default for PackageIndex {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn version_of(package: &PackageInfo) -> semver::Version {
    semver::Version::parse(&package.version).unwrap_or(semver::Version::new(0, 0, 0))
}

/// The time now, RFC 3339 in UTC.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Builds (or extends) `dir/index.json` from every script module in `dir`:
/// each module is a package of its file and the scripts it imports (read
/// without running the module); a script without `MODULE` is a library,
/// only a file of the packages that import it. Each version's files are
/// copied to `dir/NAME/VERSION/` and listed from there. Versions the index
/// already lists are kept; a listed version whose files changed is
/// refused. File URLs are relative to the index, or under `base_url`.
pub fn build_index(dir: &Path, base_url: Option<&str>) -> Result<PackageIndex> {
    // The folder must be there already: nothing is created for a mistyped one.
    match dir.metadata() {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Io {
                path: dir.display().to_string(),
                source: std::io::Error::other("is not a folder of script modules"),
            })
        }
        Err(source) => {
            return Err(Error::Io {
                path: dir.display().to_string(),
                source,
            })
        }
    }
    let index_path = dir.join("index.json");
    let mut index = if index_path.symlink_metadata().is_ok() {
        let location = Location::File(index_path.clone());
        PackageIndex::parse(&location.read(MAX_INDEX_BYTES)?, Some(location))?
    } else {
        PackageIndex::new()
    };
    let registry = ModuleRegistry::new();
    for path in script_files(dir)? {
        let Some(config) = registry.describe_script(&path, dir)? else {
            continue; // a library
        };
        let package = release(dir, &path, &config, base_url)?;
        let versions = index.packages.entry(package.name.clone()).or_default();
        match versions.iter().find(|p| p.version == package.version) {
            Some(listed) if listed.files.iter().map(|f| (&f.path, &f.sha256)).eq(package
                .files
                .iter()
                .map(|f| (&f.path, &f.sha256))) => {}
            Some(_) => {
                return Err(Error::InvalidConfig {
                    name: package.name.clone(),
                    reason: format!(
                        "version {} is already in the index with other contents ({}): publish a new version",
                        package.version,
                        path.display()
                    ),
                })
            }
            None => versions.push(package),
        }
        versions.sort_by_key(|p| std::cmp::Reverse(version_of(p)));
    }
    index.generated = now();
    let text = index.to_json()?;
    write_replacing(&index_path, text.as_bytes())?;
    index.location = Some(Location::File(index_path));
    Ok(index)
}

/// The `.rhai` files directly in `dir`, sorted.
fn script_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The package of the script module at `path` (declared as `config`): its
/// files (the script and those it imports) copied to `dir/NAME/VERSION/`,
/// written once and never changed, so every listed version stays
/// installable after the scripts in `dir` move on; their URLs relative to
/// the index, or under `base_url`.
fn release(
    dir: &Path,
    path: &Path,
    config: &crate::config::ModuleConfig,
    base_url: Option<&str>,
) -> Result<PackageInfo> {
    let Implementation::Rhai(script) = config.implementation() else {
        unreachable!("a script's declaration records its source");
    };
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let release = format!("{}/{}", config.name(), config.version());
    let mut contents = vec![(file_name, script.source.clone(), script.sha256.clone())];
    for import in &script.imports {
        contents.push((
            format!("{}.rhai", import.path),
            import.source.clone(),
            import.sha256.clone(),
        ));
    }
    let mut files = Vec::with_capacity(contents.len());
    for (file, source, sha256) in contents {
        let stored = format!("{release}/{file}");
        keep_release_file(config.name(), &dir.join(&stored), source.as_bytes())?;
        files.push(PackageFile {
            url: match base_url {
                Some(base) => format!("{}/{stored}", base.trim_end_matches('/')),
                None => stored,
            },
            path: file,
            sha256,
        });
    }
    let metadata = config.metadata();
    Ok(PackageInfo {
        name: config.name().to_string(),
        version: config.version().to_string(),
        module_type: config.module_type().name().to_string(),
        capabilities: config.capabilities().map(str::to_string).collect(),
        description: metadata.get("description").cloned().unwrap_or_default(),
        license: metadata.get("license").cloned().unwrap_or_default(),
        files,
        dependencies: config.dependencies().clone(),
        yanked: false,
        input: config.input().clone(),
        output: config.output().clone(),
        config_type: config.config_type().clone(),
    })
}

/// A type key of an entry, read with the key named in its error.
fn type_of<'de, D: serde::Deserializer<'de>>(
    key: &str,
    deserializer: D,
) -> std::result::Result<Schema, D::Error> {
    let text = String::deserialize(deserializer)?;
    Schema::parse(&text).map_err(|e| serde::de::Error::custom(format!("{key}: {e}")))
}

fn input_type<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Schema, D::Error> {
    type_of("input", d)
}

fn output_type<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Schema, D::Error> {
    type_of("output", d)
}

fn config_type_type<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Schema, D::Error> {
    type_of("config_type", d)
}

/// Writes a released file once: refuses to change one already written.
fn keep_release_file(package: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    match std::fs::read(path) {
        Ok(existing) if existing == bytes => Ok(()),
        Ok(_) => Err(Error::InvalidConfig {
            name: package.to_string(),
            reason: format!(
                "{} was released with other contents: publish a new version",
                path.display()
            ),
        }),
        Err(_) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            write_replacing(path, bytes)
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder
/// and a rename, so a reader sees the old file or the new one. The
/// temporary file is created new (a file or symbolic link already at its
/// name is never written through) under a name unique to this call.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let (temporary, mut file) = create_temporary(path).map_err(io)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    drop(file);
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        io(e)
    })
}

/// A new file beside `path` (`.NAME.tmp-PID-N-RANDOM`), created with
/// `create_new` so nothing planted at that name is followed.
pub(crate) fn create_temporary(
    path: &Path,
) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let folder = path.parent().unwrap_or(Path::new(""));
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A random part too, so names planted ahead of time miss it.
        let random = {
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(n);
            hasher.finish()
        };
        let temporary = folder.join(format!(
            ".{name}.tmp-{}-{n}-{random:016x}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
        {
            Ok(file) => return Ok((temporary, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name was free")))
}

/// A JSON object read into a map, refusing a key given twice (serde keeps
/// the last one silently, where a reviewer reads the first).
fn unique_keys<'de, D, V>(deserializer: D) -> std::result::Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "the key {key:?} is given twice"
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique(std::marker::PhantomData))
}
