//! The on-disk store: one SQLite file (WAL mode) in the cache folder, which
//! several processes can read and write at once. SQLite is the store
//! because it gives atomic writes, concurrent readers and writers across
//! processes, and crash safety without a server; the bundled library needs
//! nothing installed.
//!
//! A file that cannot be opened or read (damaged, truncated, not SQLite)
//! is set aside with a warning and a fresh one is started: never a crash
//! or a wrong result; a file another process holds locked past the busy
//! timeout is an error, never set aside. A store of another format is
//! another file name, so it is ignored. The store's files are never
//! followed through a symbolic link (one planted in a shared folder would
//! have SQLite write elsewhere): such a link is refused. Whoever can write
//! the folder can write entries: give it only to processes you trust.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::Key;
use crate::error::{Error, Result};

/// The store's file inside the cache folder (its format is in the name).
pub const FILE_NAME: &str = "steps-v1.sqlite";

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) struct DiskStore {
    path: PathBuf,
    connection: Mutex<Connection>,
    max_bytes: Option<u64>,
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn open_at(file: &Path) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let connection = Connection::open_with_flags(file, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // Set before the table exists: the file then shrinks as entries go.
    connection.pragma_update(None, "auto_vacuum", "FULL")?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS entries (
             key BLOB PRIMARY KEY,
             value BLOB NOT NULL,
             size INTEGER NOT NULL,
             used INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS entries_used ON entries (used);",
    )?;
    // Reading it through finds a damaged file now rather than later.
    connection.query_row("SELECT count(*), total(size) FROM entries", [], |_| Ok(()))?;
    let check: String = connection.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(check),
        ));
    }
    Ok(connection)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl DiskStore {
    /// Opens (or creates) the store in `folder`; a damaged file is set
    /// aside with a warning on stderr and replaced by a fresh one.
    pub(crate) fn open(folder: &Path, max_bytes: Option<u64>) -> Result<Self> {
        create_folder(folder)?;
        // The folder's real path: SQLite is told to follow no link at all.
        let folder = &std::fs::canonicalize(folder).map_err(|source| Error::Io {
            path: folder.display().to_string(),
            source,
        })?;
        let file = folder.join(FILE_NAME);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let path = folder.join(format!("{FILE_NAME}{suffix}"));
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(io(
                    &path,
                    "the cache's file is a symbolic link, which the cache never follows \
                     (remove it, or choose another folder)",
                ));
            }
        }
        let connection = match open_at(&file) {
            Ok(c) => c,
            // Held by another process past the busy timeout, or not
            // readable by this one: not damaged, not to be set aside.
            Err(e) if !is_damaged(&e) => return Err(io(&file, e)),
            Err(first) => {
                let aside = folder.join(format!(
                    "{FILE_NAME}.damaged-{}-{}",
                    std::process::id(),
                    now()
                ));
                eprintln!(
                    "module-registry: warning: the cache file {} cannot be used ({first}); it is set aside as {} and a fresh cache is started",
                    file.display(),
                    aside.display()
                );
                let _ = std::fs::rename(&file, &aside);
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(folder.join(format!("{FILE_NAME}{suffix}")));
                }
                open_at(&file).map_err(|e| io(&file, e))?
            }
        };
        Ok(DiskStore {
            path: file,
            connection: Mutex::new(connection),
            max_bytes,
        })
    }

    /// The value kept under `key`, if any (a read failure is a miss, with a
    /// warning).
    pub(crate) fn get(&self, key: &Key) -> Option<Vec<u8>> {
        let connection = self.connection.lock();
        let found = connection
            .query_row(
                "SELECT value FROM entries WHERE key = ?1",
                params![&key[..]],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional();
        match found {
            Ok(Some(value)) => {
                let _ = connection.execute(
                    "UPDATE entries SET used = ?2 WHERE key = ?1",
                    params![&key[..], now()],
                );
                Some(value)
            }
            Ok(None) => None,
            Err(e) => {
                self.warn("read", &e);
                None
            }
        }
    }

    /// Keeps `value` under `key`, dropping the least recently used other
    /// entries while the store holds more than `max_bytes`. An entry that
    /// cannot fit even alone is not kept, and then nothing is dropped.
    pub(crate) fn put(&self, key: &Key, value: &[u8]) {
        let size = value.len() + key.len();
        if self.max_bytes.is_some_and(|max| size as u64 >= max) {
            return;
        }
        let mut connection = self.connection.lock();
        if let Err(e) = write(&mut connection, key, value, self.max_bytes) {
            self.warn("write", &e);
        }
    }

    /// Rows held, and the database's size in bytes (its pages).
    pub(crate) fn size(&self) -> (u64, u64) {
        let connection = self.connection.lock();
        let rows = connection
            .query_row("SELECT count(*) FROM entries", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0);
        let bytes = connection
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0);
        (rows as u64, bytes as u64)
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        if let Err(e) = self.connection.lock().execute("DELETE FROM entries", []) {
            self.warn("clear", &e);
        }
    }

    fn warn(&self, what: &str, e: &rusqlite::Error) {
        eprintln!(
            "module-registry: warning: cannot {what} the cache file {}: {e}",
            self.path.display()
        );
    }
}

/// Whether opening failed because the file is not a sound database (set
/// aside), rather than because it is busy, locked or not allowed.
fn is_damaged(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Creates the cache folder (only the owner may enter one it creates).
fn create_folder(folder: &Path) -> Result<()> {
    let fail = |source| Error::Io {
        path: folder.display().to_string(),
        source,
    };
    if folder.is_dir() {
        return Ok(());
    }
    if folder.exists() {
        return Err(fail(std::io::Error::other(
            "it exists and is not a folder: a cache needs a folder",
        )));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder).map_err(fail)
}

/// The write and what it evicts, as one transaction (taken at once, so that
/// writers of other processes wait their turn rather than fail): rolled back
/// when the entry does not fit even with every other entry gone.
fn write(
    connection: &mut Connection,
    key: &Key,
    value: &[u8],
    max: Option<u64>,
) -> rusqlite::Result<()> {
    let size = (value.len() + key.len()) as i64;
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT OR REPLACE INTO entries (key, value, size, used) VALUES (?1, ?2, ?3, ?4)",
        params![&key[..], value, size, now()],
    )?;
    if let Some(max) = max {
        if !evict(&tx, key, max)? {
            return tx.rollback();
        }
    }
    tx.commit()
}

/// The bytes the database's pages in use take (freed pages leave the
/// file when the transaction commits, auto-vacuum being on).
fn used_bytes(c: &Connection) -> rusqlite::Result<u64> {
    let count: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((count - free).max(0) * size) as u64)
}

/// Drops least recently used entries other than `keep` until the
/// database's pages fit in `max` bytes; `false` when they cannot.
fn evict(connection: &Connection, keep: &Key, max: u64) -> rusqlite::Result<bool> {
    let mut oldest =
        connection.prepare("SELECT key FROM entries WHERE key != ?1 ORDER BY used LIMIT 8")?;
    while used_bytes(connection)? > max {
        let victims: Vec<Vec<u8>> = oldest
            .query_map(params![&keep[..]], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if victims.is_empty() {
            return Ok(false);
        }
        for victim in victims {
            connection.execute("DELETE FROM entries WHERE key = ?1", params![victim])?;
        }
    }
    Ok(true)
}
