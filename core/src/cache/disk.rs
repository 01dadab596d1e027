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
//!
//! Writes (and the last-use times of hits) are batched: kept in memory and
//! written as one transaction when a workflow run or batch returns, once
//! [`FLUSH_ENTRIES`] or [`FLUSH_BYTES`] are pending, when the oldest pending
//! one is [`FLUSH_AGE`] old (a timer thread, `module-registry-cache`, checks
//! every store), when the stats are read, when the store is dropped, and at
//! exit ([`flush_all`], which the Python binding calls from its exit hook). Other processes see an entry
//! once its batch is written; a crash loses the pending batch only (those
//! steps run again). Each entry keeps its own eviction rule inside the
//! batch (a savepoint each), as when it was written alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::Key;
use crate::error::{Error, Result};

/// The store's file inside the cache folder (its format is in the name).
pub const FILE_NAME: &str = "steps-v1.sqlite";

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Pending writes that make a batch written at once.
pub(crate) const FLUSH_ENTRIES: usize = 256;
/// Pending bytes that make a batch written at once.
pub(crate) const FLUSH_BYTES: usize = 4 << 20;
/// The age of the oldest pending write at which its batch is written.
pub(crate) const FLUSH_AGE: Duration = Duration::from_millis(200);

pub(crate) struct DiskStore {
    path: PathBuf,
    state: Mutex<State>,
    max_bytes: Option<u64>,
    /// The process that opened it: a forked child never writes its
    /// parent's pending batch through the parent's connection.
    pid: u32,
}

/// The connection and what waits to be written through it.
struct State {
    connection: Connection,
    /// Entries not yet written, by key (the value and its order).
    writes: HashMap<Key, (Vec<u8>, i64)>,
    /// Entries read since the last batch, with the time of their use.
    touched: HashMap<Key, i64>,
    bytes: usize,
    since: Option<Instant>,
}

impl State {
    fn pending(&self) -> bool {
        !self.writes.is_empty() || !self.touched.is_empty()
    }
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
    pub(crate) fn open(folder: &Path, max_bytes: Option<u64>) -> Result<Arc<Self>> {
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
        let store = Arc::new(DiskStore {
            path: file,
            state: Mutex::new(State {
                connection,
                writes: HashMap::new(),
                touched: HashMap::new(),
                bytes: 0,
                since: None,
            }),
            max_bytes,
            pid: std::process::id(),
        });
        enlist(&store);
        Ok(store)
    }

    /// The value kept under `key`, if any (a read failure is a miss, with a
    /// warning).
    pub(crate) fn get(&self, key: &Key) -> Option<Vec<u8>> {
        let mut state = self.state.lock();
        if let Some((value, _)) = state.writes.get(key) {
            return Some(value.clone());
        }
        let found = state
            .connection
            .prepare_cached("SELECT value FROM entries WHERE key = ?1")
            .and_then(|mut select| {
                select
                    .query_row(params![&key[..]], |r| r.get::<_, Vec<u8>>(0))
                    .optional()
            });
        match found {
            Ok(Some(value)) => {
                state.touched.insert(*key, now());
                state.since.get_or_insert_with(Instant::now);
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
        let mut state = self.state.lock();
        let order = now();
        if let Some((old, _)) = state.writes.insert(*key, (value.to_vec(), order)) {
            state.bytes -= old.len();
        }
        state.bytes += value.len();
        state.since.get_or_insert_with(Instant::now);
        if state.writes.len() >= FLUSH_ENTRIES
            || state.bytes >= FLUSH_BYTES
            || state.since.is_some_and(|t| t.elapsed() >= FLUSH_AGE)
        {
            self.flush_locked(&mut state);
        }
    }

    /// Writes the pending batch now (nothing in a forked child: the batch
    /// is its parent's).
    pub(crate) fn flush(&self) {
        if !self.ours() {
            return;
        }
        let mut state = self.state.lock();
        self.flush_locked(&mut state);
    }

    /// Writes the pending batch if its oldest write is [`FLUSH_AGE`] old.
    fn flush_if_old(&self) {
        if !self.ours() {
            return;
        }
        let mut state = self.state.lock();
        if state.since.is_some_and(|t| t.elapsed() >= FLUSH_AGE) {
            self.flush_locked(&mut state);
        }
    }

    /// Whether this process opened the store. A forked child never takes
    /// its parent's store's lock (a thread of the parent may have held it
    /// at the fork, and no thread of the child would ever release it).
    fn ours(&self) -> bool {
        std::process::id() == self.pid
    }

    fn flush_locked(&self, state: &mut State) {
        if !state.pending() {
            return;
        }
        let writes = std::mem::take(&mut state.writes);
        let touched = std::mem::take(&mut state.touched);
        state.bytes = 0;
        state.since = None;
        if std::process::id() != self.pid {
            return;
        }
        let mut writes: Vec<_> = writes.into_iter().collect();
        writes.sort_by_key(|(_, (_, order))| *order);
        if let Err(e) = write_batch(&mut state.connection, &writes, &touched, self.max_bytes) {
            self.warn("write", &e);
        }
    }

    /// Rows held, and the database's size in bytes (its pages).
    pub(crate) fn size(&self) -> (u64, u64) {
        let mut state = self.state.lock();
        self.flush_locked(&mut state);
        let connection = &state.connection;
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
        let mut state = self.state.lock();
        state.writes.clear();
        state.touched.clear();
        state.bytes = 0;
        state.since = None;
        if let Err(e) = state.connection.execute("DELETE FROM entries", []) {
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

/// The batch as one transaction (taken at once, so that writers of other
/// processes wait their turn rather than fail): each write and what it
/// evicts under a savepoint, rolled back alone when the entry does not fit
/// even with every other entry gone; then the last-use times of hits.
fn write_batch(
    connection: &mut Connection,
    writes: &[(Key, (Vec<u8>, i64))],
    touched: &HashMap<Key, i64>,
    max: Option<u64>,
) -> rusqlite::Result<()> {
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    const INSERT: &str =
        "INSERT OR REPLACE INTO entries (key, value, size, used) VALUES (?1, ?2, ?3, ?4)";
    for (key, (value, used)) in writes {
        let size = (value.len() + key.len()) as i64;
        let row = params![&key[..], value, size, used];
        let Some(max) = max else {
            tx.prepare_cached(INSERT)?.execute(row)?;
            continue;
        };
        tx.execute_batch("SAVEPOINT one")?;
        tx.prepare_cached(INSERT)?.execute(row)?;
        if evict(&tx, key, max)? {
            tx.execute_batch("RELEASE one")?;
        } else {
            tx.execute_batch("ROLLBACK TO one; RELEASE one")?;
        }
    }
    {
        let mut touch = tx.prepare_cached("UPDATE entries SET used = ?2 WHERE key = ?1")?;
        for (key, used) in touched {
            touch.execute(params![&key[..], used])?;
        }
    }
    tx.commit()
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Every store opened in this process, for the timer and [`flush_all`].
static STORES: Mutex<Vec<Weak<DiskStore>>> = Mutex::new(Vec::new());

/// Lists `store` for the timer (started with the first store).
fn enlist(store: &Arc<DiskStore>) {
    let mut stores = STORES.lock();
    stores.retain(|s| s.strong_count() > 0);
    let pid = std::process::id();
    let start = TIMER.swap(pid, std::sync::atomic::Ordering::SeqCst) != pid;
    stores.push(Arc::downgrade(store));
    drop(stores);
    if start {
        // A timer that runs no module code: a small stack is enough.
        let spawned = crate::threads::spawn("module-registry-cache", 256 << 10, || loop {
            std::thread::sleep(FLUSH_AGE / 2);
            for store in live_stores() {
                store.flush_if_old();
            }
        });
        if spawned.is_err() {
            // No timer: batches are still written when full, on reading
            // the stats, on drop and at exit.
            TIMER.store(0, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// The process whose timer thread runs (a forked child has none: it starts
/// its own with its first store).
static TIMER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn live_stores() -> Vec<Arc<DiskStore>> {
    // Bounded: in a forked child the list's lock may be held for good.
    match STORES.try_lock_for(Duration::from_secs(1)) {
        Some(stores) => stores.iter().filter_map(Weak::upgrade).collect(),
        None => Vec::new(),
    }
}

/// Writes every disk cache's pending batch in this process now (for an
/// exit hook: stores kept alive to the end are never dropped).
pub fn flush_all() {
    for store in live_stores() {
        store.flush();
    }
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
    let mut oldest = connection
        .prepare_cached("SELECT key FROM entries WHERE key != ?1 ORDER BY used LIMIT 8")?;
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
