//! The audit trail: one [`AuditEvent`] per register, unregister, create and
//! failure, kept in a bounded in-memory ring.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::kind::ModuleKind;

/// How many events a registry keeps by default (the oldest are dropped first).
pub const DEFAULT_AUDIT_CAPACITY: usize = 10_000;

/// The principal of operations made on the registry directly.
pub const SYSTEM_PRINCIPAL: &str = crate::access::SYSTEM;

/// How an audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It was refused for lack of permission.
    Denied,
    /// It failed.
    Error,
}

impl Outcome {
    /// `"ok"`, `"denied"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audited operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the registry's sequence of events (starts at 1, never reused).
    pub sequence: u64,
    /// When it happened.
    pub time: SystemTime,
    /// The operation (`register`, `unregister`, `create`, `process`, ...).
    pub operation: String,
    /// Who did it (`system` for direct calls).
    pub principal: String,
    /// Module or plugin.
    pub kind: ModuleKind,
    /// The module concerned.
    pub module: String,
    /// Its version, when known.
    pub version: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The error message for failures.
    pub detail: Option<String>,
}

/// The bounded log behind [`ModuleRegistry::audit_events`](crate::ModuleRegistry::audit_events).
#[derive(Debug)]
pub struct AuditLog {
    ring: Mutex<Ring>,
    sequence: AtomicU64,
}

/// An event as the ring keeps it: text the registry already holds is
/// borrowed or shared, so recording a registration allocates once (the
/// module name). [`AuditEvent`]s are made from these when read.
#[derive(Debug)]
struct Kept {
    sequence: u64,
    time: SystemTime,
    operation: Cow<'static, str>,
    principal: Option<Arc<str>>,
    kind: ModuleKind,
    module: Box<str>,
    version: Option<KeptVersion>,
    outcome: Outcome,
    detail: Option<String>,
}

#[derive(Debug)]
enum KeptVersion {
    Parsed(semver::Version),
    Text(String),
}

impl From<&Kept> for AuditEvent {
    fn from(k: &Kept) -> Self {
        AuditEvent {
            sequence: k.sequence,
            time: k.time,
            operation: k.operation.to_string(),
            principal: k
                .principal
                .as_deref()
                .unwrap_or(SYSTEM_PRINCIPAL)
                .to_string(),
            kind: k.kind,
            module: k.module.to_string(),
            version: k.version.as_ref().map(|v| match v {
                KeptVersion::Parsed(v) => v.to_string(),
                KeptVersion::Text(t) => t.clone(),
            }),
            outcome: k.outcome,
            detail: k.detail.clone(),
        }
    }
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Kept>,
    capacity: usize,
    /// The append-only JSON-lines file every event also goes to, if set.
    file: Option<(std::path::PathBuf, std::fs::File)>,
    /// Events that could not be written to the file.
    file_failures: u64,
    /// Whether the last write failed (a warning is given once per streak).
    failing: bool,
}

/// One line of the audit file.
#[derive(Serialize, Deserialize)]
struct Line {
    sequence: u64,
    /// Seconds since the Unix epoch.
    time: f64,
    operation: String,
    principal: String,
    kind: ModuleKind,
    module: String,
    version: Option<String>,
    outcome: Outcome,
    detail: Option<String>,
}

impl From<AuditEvent> for Line {
    fn from(e: AuditEvent) -> Self {
        Line {
            sequence: e.sequence,
            time: e
                .time
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            operation: e.operation,
            principal: e.principal,
            kind: e.kind,
            module: e.module,
            version: e.version,
            outcome: e.outcome,
            detail: e.detail,
        }
    }
}

impl TryFrom<Line> for AuditEvent {
    type Error = String;

    /// Fails on a time that is not a point in time (negative, not finite,
    /// or past what the clock can hold).
    fn try_from(l: Line) -> std::result::Result<Self, String> {
        let time = std::time::Duration::try_from_secs_f64(l.time)
            .ok()
            .and_then(|d| std::time::UNIX_EPOCH.checked_add(d))
            .ok_or_else(|| format!("time {} is not a time in seconds since 1970", l.time))?;
        Ok(AuditEvent {
            sequence: l.sequence,
            time,
            operation: l.operation,
            principal: l.principal,
            kind: l.kind,
            module: l.module,
            version: l.version,
            outcome: l.outcome,
            detail: l.detail,
        })
    }
}

/// The most bytes of an error message an audit event keeps (in the ring
/// and in the file): a log of 10,000 events stays tens of megabytes however
/// long the messages of the failures it records.
pub const MAX_DETAIL_BYTES: usize = 4096;

/// `detail` cut to [`MAX_DETAIL_BYTES`] at a character boundary, saying how
/// much was left out.
fn bounded_detail(mut detail: String) -> String {
    if detail.len() <= MAX_DETAIL_BYTES {
        return detail;
    }
    let mut end = MAX_DETAIL_BYTES;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    let cut = detail.len() - end;
    detail.truncate(end);
    detail.push_str(&format!("... ({cut} more bytes not kept)"));
    detail.shrink_to_fit();
    detail
}

impl Default for AuditLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_AUDIT_CAPACITY)
    }
}

impl AuditLog {
    /// A log keeping at most `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        AuditLog {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                capacity,
                file: None,
                file_failures: 0,
                failing: false,
            }),
            sequence: AtomicU64::new(0),
        }
    }

    /// Change how many events are kept (dropping the oldest if needed).
    pub fn set_capacity(&self, capacity: usize) {
        let mut ring = self.ring.lock();
        ring.capacity = capacity;
        while ring.events.len() > capacity {
            ring.events.pop_front();
        }
    }

    /// How many events are kept at most.
    pub fn capacity(&self) -> usize {
        self.ring.lock().capacity
    }

    /// Appends an event, dropping the oldest past capacity.
    pub fn push(
        &self,
        operation: &str,
        kind: ModuleKind,
        module: &str,
        version: Option<String>,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        self.keep(
            Cow::Owned(operation.to_string()),
            kind,
            module,
            version.map(KeptVersion::Text),
            outcome,
            detail,
        );
    }

    /// Records an operation on a registered module: `subject` is its kind,
    /// name and version.
    pub(crate) fn record(
        &self,
        outcome: Outcome,
        operation: &'static str,
        subject: (ModuleKind, &str, &semver::Version),
        detail: Option<String>,
    ) {
        let (kind, name, version) = subject;
        self.keep(
            Cow::Borrowed(operation),
            kind,
            name,
            Some(KeptVersion::Parsed(version.clone())),
            outcome,
            detail,
        );
    }

    pub(crate) fn record_error(
        &self,
        operation: &'static str,
        subject: (ModuleKind, &str, &semver::Version),
        error: &Error,
    ) {
        self.record(Outcome::Error, operation, subject, Some(error.report()));
    }

    fn keep(
        &self,
        operation: Cow<'static, str>,
        kind: ModuleKind,
        module: &str,
        version: Option<KeptVersion>,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        let detail = detail.map(bounded_detail);
        let mut ring = self.ring.lock();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        if ring.capacity == 0 && ring.file.is_none() {
            return;
        }
        let kept = Kept {
            sequence,
            time: SystemTime::now(),
            operation,
            principal: crate::access::current_principal(),
            kind,
            module: module.into(),
            version,
            outcome,
            detail,
        };
        if let Some((_, file)) = ring.file.as_mut() {
            // One write per complete line, under the lock: lines never interleave,
            // and the OS has each line as soon as the event happens.
            use std::io::Write;
            let line = Line::from(AuditEvent::from(&kept));
            let mut line = serde_json::to_string(&line).unwrap_or_default();
            line.push('\n');
            match file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                Ok(()) => ring.failing = false,
                Err(e) => {
                    ring.file_failures += 1;
                    if !ring.failing {
                        // Once per run of failures (a full disk fails every
                        // write): the count says how many were lost.
                        ring.failing = true;
                        let path = ring.file.as_ref().map(|(p, _)| p.display().to_string());
                        eprintln!(
                            "module-registry: warning: cannot write to the audit file {}: {e}; events are lost until a write succeeds (AuditLog::file_failures counts them)",
                            path.unwrap_or_default()
                        );
                    }
                }
            }
        }
        if ring.capacity == 0 {
            return;
        }
        let oldest = if ring.events.len() >= ring.capacity {
            ring.events.pop_front()
        } else {
            None
        };
        ring.events.push_back(kept);
        drop(ring);
        drop(oldest); // its text is freed outside the lock
    }

    /// Append every event from now on to `path` as one JSON object per line
    /// (created if missing, never truncated); `None` stops writing.
    pub fn set_file(&self, path: Option<&std::path::Path>) -> crate::error::Result<()> {
        let file = match path {
            None => None,
            Some(p) => Some((p.to_path_buf(), open_regular(p, true)?)),
        };
        self.ring.lock().file = file;
        Ok(())
    }

    /// The audit file, if one is set.
    pub fn file(&self) -> Option<std::path::PathBuf> {
        self.ring.lock().file.as_ref().map(|(p, _)| p.clone())
    }

    /// How many events could not be written to the audit file.
    pub fn file_failures(&self) -> u64 {
        self.ring.lock().file_failures
    }

    /// Reads an audit file back. A last line cut short (a process killed
    /// mid-write) is skipped; any other malformed line is an error naming it.
    pub fn read_file(path: impl AsRef<std::path::Path>) -> crate::error::Result<Vec<AuditEvent>> {
        use std::io::Read;
        let path = path.as_ref();
        let mut text = String::new();
        open_regular(path, false)?
            .read_to_string(&mut text)
            .map_err(|source| crate::error::Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(line) {
                Ok(l) => out.push(AuditEvent::try_from(l).map_err(|e| {
                    crate::error::Error::Serialization {
                        message: format!("{}:{}: not an audit event: {e}", path.display(), i + 1),
                    }
                })?),
                Err(_) if i + 1 == lines.len() && !complete => break,
                Err(e) => {
                    return Err(crate::error::Error::Serialization {
                        message: format!("{}:{}: not an audit event: {e}", path.display(), i + 1),
                    })
                }
            }
        }
        Ok(out)
    }

    /// A copy of the events kept, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.ring
            .lock()
            .events
            .iter()
            .map(AuditEvent::from)
            .collect()
    }

    /// How many events were ever recorded (including those dropped).
    pub fn total(&self) -> u64 {
        self.sequence.load(Ordering::Relaxed)
    }

    /// Forget every kept event ([`ModuleRegistry::clear_audit`] checks the
    /// permission first).
    ///
    /// [`ModuleRegistry::clear_audit`]: crate::ModuleRegistry::clear_audit
    pub(crate) fn clear(&self) {
        self.ring.lock().events.clear();
    }
}

/// Opens the audit file at `path` (to append, created if missing, or to
/// read), refusing what is not a regular file: a FIFO or a device would
/// block or never end, and a symbolic link at the audit file's name could
/// send the registry's records (written with its rights) anywhere, so one
/// is not followed to append (it is, to read). Opened without blocking,
/// then checked on the opened file, so nothing swapped in after a check
/// counts.
fn open_regular(path: &std::path::Path, append: bool) -> crate::error::Result<std::fs::File> {
    let refuse = |what: &str| crate::error::Error::InvalidConfig {
        name: path.display().to_string(),
        reason: format!("an audit file must be a regular file, and this is {what}"),
    };
    let io = |source| crate::error::Error::Io {
        path: path.display().to_string(),
        source,
    };
    // Without the flags below (no `scripts` feature), the check before
    // opening is what there is.
    // Reading follows a link (it writes nothing); appending does not.
    let looked = match append {
        true => std::fs::symlink_metadata(path),
        false => std::fs::metadata(path),
    };
    match looked {
        Ok(meta) if meta.file_type().is_symlink() => return Err(refuse("a symbolic link")),
        Ok(meta) if !meta.is_file() => return Err(refuse("a folder, FIFO or device")),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    if append {
        options.create(true).append(true);
    } else {
        options.read(true);
    }
    #[cfg(all(unix, feature = "scripts"))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let no_follow = if append { libc::O_NOFOLLOW } else { 0 };
        options.custom_flags(libc::O_NONBLOCK | no_follow);
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(all(unix, feature = "scripts"))]
        {
            // A symbolic link put there after the check (O_NOFOLLOW), or a
            // FIFO with no reader (O_NONBLOCK for writing).
            match e.raw_os_error() {
                Some(libc::ELOOP) => return refuse("a symbolic link"),
                Some(libc::ENXIO) => return refuse("a FIFO"),
                _ => {}
            }
        }
        io(e)
    })?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(refuse("a folder, FIFO or device"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn an_audit_file_is_a_regular_file_not_a_fifo_or_a_link() {
        let dir = std::env::temp_dir().join(format!("mr-audit-kinds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = AuditLog::default();
        // A FIFO: refused at once (opening it to write would wait for a reader).
        let fifo = dir.join("fifo.jsonl");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = log.set_file(Some(&fifo)).unwrap_err();
            assert!(err.to_string().contains("regular file"), "{err}");
            let err = AuditLog::read_file(&fifo).unwrap_err();
            assert!(err.to_string().contains("regular file"), "{err}");
        }
        // A symbolic link planted at the audit file's name: not followed.
        let target = dir.join("elsewhere");
        std::fs::write(&target, "precious\n").unwrap();
        let link = dir.join("link.jsonl");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = log.set_file(Some(&link)).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        assert!(log.file().is_none());
        // A device: refused, never read.
        assert!(AuditLog::read_file("/dev/zero").is_err());
        // A regular file works, and reads back.
        let file = dir.join("a.jsonl");
        log.set_file(Some(&file)).unwrap();
        log.push("register", ModuleKind::Module, "m", None, Outcome::Ok, None);
        assert_eq!(AuditLog::read_file(&file).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ring_is_bounded_and_ordered() {
        let log = AuditLog::with_capacity(3);
        for i in 0..5 {
            log.push(
                "register",
                ModuleKind::Module,
                &format!("m{i}"),
                None,
                Outcome::Ok,
                None,
            );
        }
        let events = log.events();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events.iter().map(|e| e.module.as_str()).collect::<Vec<_>>(),
            ["m2", "m3", "m4"]
        );
        assert_eq!(events[0].sequence, 3);
        assert_eq!(log.total(), 5);
        log.set_capacity(1);
        assert_eq!(log.events().len(), 1);
    }
}
