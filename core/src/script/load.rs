//! The registry's script methods: loading script modules (from source, a
//! file or a folder, optionally pinned) and running orchestration scripts.

use std::path::{Path, PathBuf};

use rhai::{Dynamic, Scope};

use super::calls::KnownFunctions;
use super::convert::{from_dynamic, to_dynamic};
use super::engine::run_limited;
use super::module::script_error;
use super::{
    folder_of, host, not_a_module, prepare_checked, prepare_pinned, read, Imports, ScriptLimits,
    ScriptRegistry, TEXT_LABEL,
};
use crate::config::ImportedScript;

include!(concat!(env!("OUT_DIR"), "/bundled_scripts.rs"));
use crate::config::ModuleConfig;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::registry::{ModuleRegistry, RegistryView, Replace};
use crate::value::Value;

impl ModuleRegistry {
    /// Compiles a script module recorded in a manifest, checking its digest
    /// (and its recorded imports' digests); `imports` are what it imports
    /// from, `path` the file it was loaded from.
    pub(crate) fn prepare_script(
        &self,
        label: &str,
        source: &str,
        imports: Imports<'_>,
        path: Option<&Path>,
        sha256: &str,
    ) -> Result<ModuleConfig> {
        prepare_pinned(&host(self), label, source, imports, path, Some(sha256))?
            .ok_or_else(|| not_a_module(label))
    }

    /// Reading a file names what the process may read, not what a principal
    /// was granted: under a policy, a view needs `admin` on `*` to load or
    /// run a script from a path (source text needs only the usual grants).
    pub(crate) fn authorize_file_read(&self, operation: &'static str) -> Result<()> {
        self.authorize(crate::access::Permission::Admin, operation, None)
    }

    /// The limits scripts run under on this registry.
    pub fn script_limits(&self) -> ScriptLimits {
        host(self).limits()
    }

    /// Change the limits scripts run under. Applies to scripts loaded and
    /// instances created from now on.
    pub fn set_script_limits(&self, limits: ScriptLimits) -> Result<()> {
        self.authorize(crate::access::Permission::Admin, "set_script_limits", None)?;
        limits.validate()?;
        host(self).set_limits(limits);
        Ok(())
    }

    /// Registers a script module given as source text. Loading the same name
    /// and version again replaces it (for new instances); a new version is
    /// registered beside the old. Source text cannot `import` (there is no
    /// folder to import from): load the script from a file for that.
    pub fn register_script(&self, source: &str) -> Result<ModuleInfo> {
        self.register_script_pinned(source, None)
    }

    /// [`register_script`](Self::register_script), refusing the script with
    /// [`Error::Integrity`] (and registering nothing) unless its SHA-256 is `sha256`.
    pub fn register_script_pinned(&self, source: &str, sha256: Option<&str>) -> Result<ModuleInfo> {
        let host = host(self);
        let config = prepare_pinned(&host, TEXT_LABEL, source, Imports::None, None, sha256)?
            .ok_or_else(|| not_a_module(TEXT_LABEL))?;
        self.register_with_operation(config, Replace::Scripts, "register_script")
    }

    /// Loads one `.rhai` file as a script module (see
    /// [`register_script`](Self::register_script)); errors name the path.
    pub fn load_script(&self, path: impl AsRef<Path>) -> Result<ModuleInfo> {
        self.load_script_pinned(path, None)
    }

    /// [`load_script`](Self::load_script), refusing the file with
    /// [`Error::Integrity`] (and registering nothing) unless its SHA-256 is `sha256`.
    pub fn load_script_pinned(
        &self,
        path: impl AsRef<Path>,
        sha256: Option<&str>,
    ) -> Result<ModuleInfo> {
        let path = path.as_ref();
        let label = path.display().to_string();
        self.authorize_file_read("load_script")?;
        let source = read(path)?;
        let host = host(self);
        let config = prepare_pinned(
            &host,
            &label,
            &source,
            Imports::Folder(&folder_of(path)),
            Some(path),
            sha256,
        )?
        .ok_or_else(|| not_a_module(&label))?;
        self.register_with_operation(config, Replace::Scripts, "load_script")
    }

    /// Loads every `*.rhai` file of a folder (not its subfolders), in name
    /// order. Files declaring no `MODULE` and no `process` are libraries for
    /// the others to import, and are skipped. All files are compiled and
    /// checked before any is registered: on error nothing is registered.
    pub fn load_scripts(&self, dir: impl AsRef<Path>) -> Result<Vec<ModuleInfo>> {
        let dir = dir.as_ref();
        self.authorize_file_read("load_scripts")?;
        let paths = rhai_files(dir)?;
        let mut scripts = Vec::with_capacity(paths.len());
        for path in paths {
            let source = read(&path)?;
            scripts.push((path.display().to_string(), source, Some(path)));
        }
        self.register_script_set(scripts, Imports::Folder(dir), "load_script")
    }

    /// Checks every `*.rhai` file of a folder as
    /// [`load_scripts`](Self::load_scripts) would load it (compiled with
    /// strict variables, declarations read, names and versions not
    /// declared twice) and more (calls to functions that exist nowhere:
    /// not in the script, its imports, this registry's engine or Rhai,
    /// which loading allows, as functions may be added later),
    /// registering nothing, and returns every problem, one error per bad
    /// file, in name order (empty when all are fine). Fails only when the
    /// folder cannot be read.
    pub fn check_scripts(&self, dir: impl AsRef<Path>) -> Result<Vec<Error>> {
        let dir = dir.as_ref();
        self.authorize_file_read("check_scripts")?;
        let paths = rhai_files(dir)?;
        let host = host(self);
        let known = KnownFunctions::of(&host.engine());
        let mut problems = Vec::new();
        let mut declared: Vec<(String, String, String)> = Vec::new();
        for path in paths {
            let label = path.display().to_string();
            let config = read(&path).and_then(|source| {
                prepare_checked(
                    &host,
                    &label,
                    &source,
                    Imports::Folder(dir),
                    Some(&path),
                    None,
                    Some(&known),
                )
            });
            let (config, unknown) = match config {
                Err(e) => {
                    problems.push(e);
                    continue;
                }
                Ok(checked) => checked,
            };
            // One error per file: calls to nothing first, then a clash.
            let mut problem = unknown;
            if let Some(config) = config {
                let key = (config.name().to_string(), config.version().to_string());
                if let Some((_, _, first)) =
                    declared.iter().find(|(n, v, _)| (n, v) == (&key.0, &key.1))
                {
                    problem.get_or_insert_with(|| {
                        Error::script(
                            label.clone(),
                            None,
                            None,
                            format!("declares {}@{}, already declared by {first}", key.0, key.1),
                        )
                    });
                } else {
                    declared.push((key.0, key.1, label));
                }
            }
            problems.extend(problem);
        }
        Ok(problems)
    }

    /// A registry holding the native modules and the script modules shipped
    /// with this crate (see [`load_bundled_scripts`](Self::load_bundled_scripts)).
    pub fn with_bundled_scripts() -> Self {
        let registry = Self::with_native_modules();
        registry
            .load_bundled_scripts()
            .expect("the shipped scripts compile and do not clash (checked by the tests)");
        registry
    }

    /// Registers the script modules shipped with this crate, compiled into
    /// the program (the Python package carries the same files, see
    /// `module_registry.bundled_scripts()`): text tools such as `slugify`,
    /// `markdown` (which imports the `html` library), `csv-records` and
    /// `template`. They import only one another; nothing is read from disk.
    pub fn load_bundled_scripts(&self) -> Result<Vec<ModuleInfo>> {
        let libraries: Vec<ImportedScript> = BUNDLED_SCRIPTS
            .iter()
            .map(|(file, source)| ImportedScript {
                path: file.trim_end_matches(".rhai").to_string(),
                source: source.to_string(),
                sha256: crate::native::sha256_hex(source.as_bytes()),
            })
            .collect();
        let scripts = BUNDLED_SCRIPTS
            .iter()
            .map(|(file, source)| (format!("bundled:{file}"), source.to_string(), None))
            .collect();
        self.register_script_set(
            scripts,
            Imports::Recorded(&libraries),
            "load_bundled_scripts",
        )
    }

    /// The declaration of the script at `path` (its imports read from
    /// `dir`), with the scripts it imports recorded; `None` for a library
    /// (no `MODULE`, no `process`). Nothing is registered.
    #[cfg(feature = "distribution")]
    pub(crate) fn describe_script(&self, path: &Path, dir: &Path) -> Result<Option<ModuleConfig>> {
        let source = read(path)?;
        self.describe_script_source(path, &source, dir)
    }

    /// [`describe_script`](Self::describe_script) for `source`, already read from `path`.
    #[cfg(any(feature = "distribution", feature = "watch"))]
    pub(crate) fn describe_script_source(
        &self,
        path: &Path,
        source: &str,
        dir: &Path,
    ) -> Result<Option<ModuleConfig>> {
        let label = path.display().to_string();
        prepare_pinned(
            &host(self),
            &label,
            source,
            Imports::Folder(dir),
            Some(path),
            None,
        )
    }

    /// Compiles every `(label, source, file)` script, then registers the
    /// modules among them all together (none if one fails; libraries, with
    /// no `MODULE` and no `process`, are skipped).
    pub(super) fn register_script_set(
        &self,
        scripts: Vec<(String, String, Option<PathBuf>)>,
        imports: Imports<'_>,
        operation: &'static str,
    ) -> Result<Vec<ModuleInfo>> {
        let host = host(self);
        let mut configs: Vec<ModuleConfig> = Vec::new();
        for (label, source, path) in &scripts {
            let Some(config) =
                prepare_pinned(&host, label, source, imports, path.as_deref(), None)?
            else {
                continue;
            };
            let clash = configs.iter().find(|c| {
                c.name() == config.name()
                    && c.version() == config.version()
                    && c.kind() == config.kind()
            });
            if let Some(first) = clash {
                return Err(Error::script(
                    label.clone(),
                    None,
                    None,
                    format!(
                        "declares {}@{}, already declared by {}",
                        config.name(),
                        config.version(),
                        first
                            .metadata()
                            .get("script")
                            .map_or("another script", String::as_str)
                    ),
                ));
            }
            configs.push(config);
        }
        // All or none, also against another thread registering meanwhile;
        // none if one would take the place of a module that is not a script.
        self.register_all_with(configs, Replace::Scripts, operation)
    }

    /// Runs an orchestration script given as source text, with the
    /// registry bound as `registry` and `input` as `input`; the last
    /// expression is the result. It reads no file (see
    /// [`run_script_file`](Self::run_script_file)). Fails with
    /// [`Error::FeatureDisabled`] when workflow orchestration is off.
    ///
    /// ```
    /// use module_registry::{ModuleRegistry, Value};
    ///
    /// let registry = ModuleRegistry::with_native_modules();
    /// let out = registry.run_script(r#"registry.create("text-encode").process(input).len()"#, "héllo")?;
    /// assert_eq!(out, Value::Int(6));
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn run_script(&self, source: &str, input: impl Into<Value>) -> Result<Value> {
        self.require_orchestration()?;
        self.run_orchestration("<script>", source.to_string(), None, input.into())
    }

    /// Runs the orchestration script in the file at `path` as
    /// [`run_script`](Self::run_script) runs source text; its `import`s are
    /// read beside it. Reads a file: under a policy, needs `admin` on `*`.
    pub fn run_script_file(
        &self,
        path: impl AsRef<Path>,
        input: impl Into<Value>,
    ) -> Result<Value> {
        self.require_orchestration()?;
        let path = path.as_ref();
        self.authorize_file_read("run_script")?;
        let source = read(path)?;
        let label = path.display().to_string();
        self.run_orchestration(&label, source, Some(folder_of(path)), input.into())
    }

    /// The bindings' convenience: a path when the text names a `.rhai`
    /// file (or an existing file, for a principal that may read files),
    /// else source text. Only who may read files learns whether one exists.
    #[doc(hidden)]
    pub fn run_script_source_or_path(
        &self,
        source_or_path: &str,
        input: impl Into<Value>,
    ) -> Result<Value> {
        let path = Path::new(source_or_path);
        let looks_like_path = !source_or_path.contains('\n') && source_or_path.ends_with(".rhai");
        let may_read = self.allowed(crate::access::Permission::Admin, None);
        if looks_like_path || (may_read && path.is_file()) {
            self.run_script_file(path, input)
        } else {
            self.run_script(source_or_path, input)
        }
    }

    fn run_orchestration(
        &self,
        label: &str,
        source: String,
        folder: Option<PathBuf>,
        input: Value,
    ) -> Result<Value> {
        let host = host(self);
        let compiled = host.compile(label, &source, folder.as_deref().into(), false)?;
        let engine = host.engine();
        // Evaluating, converting the result and dropping the scope all
        // recurse through nested values: all on the script stack.
        let result = run_limited(&host.limits(), || {
            let mut scope = Scope::new();
            scope.push("registry", ScriptRegistry(self.clone()));
            scope.push("input", to_dynamic(input));
            engine
                .eval_ast_with_scope::<Dynamic>(&mut scope, &compiled.ast)
                .map_err(|e| script_error(label, &e, &host))
                .and_then(|out| match super::opaque::take() {
                    Some(misuse) => Err(misuse.into_error(label)),
                    None => from_dynamic(out).map_err(|e| in_script(label, e)),
                })
        })
        .and_then(|r| r);
        self.audit_log().push(
            "run_script",
            crate::config::ModuleKind::Module,
            label,
            None,
            if result.is_ok() {
                crate::audit::Outcome::Ok
            } else {
                crate::audit::Outcome::Error
            },
            result.as_ref().err().map(crate::error::Error::report),
        );
        result
    }
}

/// A conversion error of a script's result, naming the script.
fn in_script(label: &str, error: Error) -> Error {
    Error::script(
        label.to_string(),
        None,
        None,
        format!("its result cannot be converted: {}", error.report()),
    )
}

impl RegistryView {
    /// [`ModuleRegistry::register_script`] as this principal.
    pub fn register_script(&self, source: &str) -> Result<ModuleInfo> {
        self.with(|r| r.register_script(source))
    }

    /// [`ModuleRegistry::load_script`] as this principal.
    pub fn load_script(&self, path: impl AsRef<Path>) -> Result<ModuleInfo> {
        self.with(|r| r.load_script(path))
    }

    /// [`ModuleRegistry::run_script`] as this principal: the script has this
    /// principal's permissions, never more.
    pub fn run_script(&self, source: &str, input: impl Into<Value>) -> Result<Value> {
        self.with(|r| r.run_script(source, input))
    }

    /// [`ModuleRegistry::run_script_file`] as this principal.
    pub fn run_script_file(
        &self,
        path: impl AsRef<Path>,
        input: impl Into<Value>,
    ) -> Result<Value> {
        self.with(|r| r.run_script_file(path, input))
    }
}

/// The `*.rhai` files of folder `dir` (not its subfolders), in name order:
/// what `load_scripts`, `check_scripts` and the script tests read.
pub(super) fn rhai_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    paths.sort();
    Ok(paths)
}
