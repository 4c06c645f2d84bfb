//! The durable record of the timeline: one SQLite file (WAL), a schema version (older files are migrated when opened),
//! and one row per action keyed by its id (talk, kind, instant) with its priority and fire time. An action is recorded
//! `sending` before it is sent, then `sent` (event id; `updated_at` is the send time; `started_at` when the send began,
//! `requested_at` when the request carrying it went out), `skipped` (reason) or `failed` (terminal: not retried by a
//! later run); a restart reads the rows back so it neither repeats nor loses an action. `synchronous = NORMAL`: a killed process loses nothing; a power cut may lose
//! the last rows, and then the resend is harmless (messages carry the action's transaction id, state events are the
//! same content). The blocking SQLite calls run on tokio's blocking pool, never on the runtime's workers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::actions::{Action, Priority};

const SCHEMA_VERSION: i64 = 2;

/// The tables as schema version 1 made them; [`MIGRATIONS`] take them to [`SCHEMA_VERSION`].
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    talk TEXT NOT NULL,
    kind TEXT NOT NULL,
    instant TEXT NOT NULL,
    room TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'skipped', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    event_id TEXT,
    detail TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_talk ON actions (talk);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION - 1, "one migration per version after the first");

/// `MIGRATIONS[n]` takes schema version `n + 1` to `n + 2`.
const MIGRATIONS: [&str; 1] = [
    // 2: each action's priority and fire time, and when its send began and its request went out (RFC 3339, the
    // runner's clock), so the lateness of a send splits into the runner's part and the homeserver's. Rows of
    // version 1 have none of them.
    "ALTER TABLE actions ADD COLUMN priority TEXT;
     ALTER TABLE actions ADD COLUMN fire_at TEXT;
     ALTER TABLE actions ADD COLUMN started_at TEXT;
     ALTER TABLE actions ADD COLUMN requested_at TEXT;",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("timeline store {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("cannot create the folder of the timeline store {path}: {source}")]
    Folder { path: PathBuf, source: std::io::Error },
    #[error(
        "timeline store {path} has schema version {found}, this Stagehand knows {SCHEMA_VERSION}: use a newer Stagehand or another file"
    )]
    Version { path: PathBuf, found: i64 },
    #[error("timeline store {path}: a store call was interrupted ({why})")]
    Interrupted { path: PathBuf, why: String },
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordState {
    /// Recorded before the send; found so after a restart, it is sent again with the same transaction id.
    Sending,
    Sent,
    Skipped,
    Failed,
}

impl RecordState {
    fn as_str(self) -> &'static str {
        match self {
            RecordState::Sending => "sending",
            RecordState::Sent => "sent",
            RecordState::Skipped => "skipped",
            RecordState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RecordState {
        match s {
            "sent" => RecordState::Sent,
            "skipped" => RecordState::Skipped,
            "failed" => RecordState::Failed,
            _ => RecordState::Sending,
        }
    }
}

/// One row of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub talk: String,
    pub kind: String,
    pub instant: String,
    pub room: String,
    pub txn_id: String,
    pub state: RecordState,
    pub attempts: u32,
    pub event_id: Option<String>,
    /// Why it was skipped or failed.
    pub detail: Option<String>,
    /// When the row last changed (the runner's clock, RFC 3339).
    pub updated_at: String,
    /// `critical` or `routine` (none in rows of schema version 1).
    pub priority: Option<String>,
    /// When the runner was to send it (RFC 3339).
    pub fire_at: Option<String>,
    /// When its send began (a send slot was free), for a sent or failed action.
    pub started_at: Option<String>,
    /// When the request that carries it went out, for a sent action that wrote something.
    pub requested_at: Option<String>,
}

/// When a send began and when the request that carries the action went out, both on the runner's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendTimes {
    pub started: Option<DateTime<Utc>>,
    pub requested: Option<DateTime<Utc>>,
}

/// The columns that identify an action's row.
struct Key {
    id: String,
    talk: String,
    kind: &'static str,
    instant: String,
    room: String,
    txn: String,
    priority: &'static str,
    fire_at: String,
}

impl Key {
    fn of(a: &Action) -> Key {
        Key {
            id: a.id.clone(),
            talk: a.talk.clone(),
            kind: a.kind.slug(),
            instant: rfc3339(a.instant),
            room: a.room().to_string(),
            txn: a.txn_id(),
            priority: match a.priority {
                Priority::Critical => "critical",
                Priority::Routine => "routine",
            },
            fire_at: rfc3339(a.fire_at),
        }
    }
}

/// The store: cheap to clone, safe to share.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

/// Creates the tables (a new file) and brings them to [`SCHEMA_VERSION`], in one transaction that holds the file's
/// write lock, so two processes opening an old file migrate it once. Returns the version found when it is newer than
/// this Stagehand's (left as it is), else [`SCHEMA_VERSION`].
fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA)?;
    let found: Option<i64> = tx.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0)).optional()?.flatten();
    let mut version = match found {
        Some(v) => v,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (1)", [])?;
            1
        }
    };
    if version > SCHEMA_VERSION {
        return Ok(version);
    }
    while version < SCHEMA_VERSION {
        let step = usize::try_from(version - 1).ok().and_then(|i| MIGRATIONS.get(i)).copied().unwrap_or_default();
        tx.execute_batch(step)?;
        version += 1;
    }
    tx.execute("UPDATE schema_version SET version = ?1", [version])?;
    tx.commit()?;
    Ok(version)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating it and its folder if needed) the store file. Blocking: call it before the runtime's busy work,
    /// or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder { path: dir.to_path_buf(), source })?;
        }
        let sql = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
        match migrate(&mut conn).map_err(sql)? {
            SCHEMA_VERSION => Ok(Store { path: path.to_path_buf(), conn: Arc::new(Mutex::new(conn)) }),
            found => Err(StoreError::Version { path: path.to_path_buf(), found }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection, on the blocking pool. Other parts of the day's state (Q&A, the intake's position)
    /// keep their tables in the same file through this.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        let joined = tokio::task::spawn_blocking(move || this.call_blocking(f)).await;
        joined.map_err(|e| StoreError::Interrupted { path: self.path.clone(), why: e.to_string() })?
    }

    pub(crate) fn call_blocking<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        // A panic while holding the lock leaves the connection itself intact: SQLite rolls back what was open.
        let conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&conn).map_err(|source| StoreError::Sqlite { path: self.path.clone(), source })
    }

    /// Every row, by action id.
    pub async fn load(&self) -> Result<HashMap<String, Record>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, talk, kind, instant, room, txn_id, state, attempts, event_id, detail, updated_at,
                        priority, fire_at, started_at, requested_at FROM actions",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Record {
                    id: r.get(0)?,
                    talk: r.get(1)?,
                    kind: r.get(2)?,
                    instant: r.get(3)?,
                    room: r.get(4)?,
                    txn_id: r.get(5)?,
                    state: RecordState::parse(&r.get::<_, String>(6)?),
                    attempts: r.get(7)?,
                    event_id: r.get(8)?,
                    detail: r.get(9)?,
                    updated_at: r.get(10)?,
                    priority: r.get(11)?,
                    fire_at: r.get(12)?,
                    started_at: r.get(13)?,
                    requested_at: r.get(14)?,
                })
            })?;
            rows.map(|r| r.map(|rec| (rec.id.clone(), rec))).collect()
        })
        .await
    }

    /// A small named value (the intake's sync position, the last pushed transaction), if set.
    pub async fn value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.call(move |c| c.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional()).await
    }

    /// Sets a named value.
    pub async fn set_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.call(move |c| c.execute("INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2", [key, value]))
            .await
            .map(drop)
    }

    /// Records an attempt before the send: the row becomes `sending` and its attempt count goes up.
    pub async fn begin(&self, action: &Action, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.begin_all(std::slice::from_ref(action), at).await
    }

    /// [`Store::begin`] for the actions due together, in one transaction.
    pub async fn begin_all(&self, actions: &[Action], at: DateTime<Utc>) -> Result<(), StoreError> {
        let rows: Vec<Key> = actions.iter().map(Key::of).collect();
        let at = rfc3339(at);
        self.call(move |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO actions (id, talk, kind, instant, room, txn_id, state, attempts, updated_at, priority, fire_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'sending', 1, ?7, ?8, ?9)
                     ON CONFLICT (id) DO UPDATE SET state = 'sending', attempts = attempts + 1, updated_at = ?7,
                        priority = ?8, fire_at = ?9",
                )?;
                for k in &rows {
                    stmt.execute(params![k.id, k.talk, k.kind, k.instant, k.room, k.txn, at, k.priority, k.fire_at])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// Records how an action ended: `Sent` with its event id, `Skipped` or `Failed` with the reason; for an action
    /// that was sent (or tried), when its send began and its request went out (else `SendTimes::default()`).
    pub async fn finish(
        &self,
        action: &Action,
        state: RecordState,
        event_id: Option<String>,
        detail: Option<String>,
        at: DateTime<Utc>,
        times: SendTimes,
    ) -> Result<(), StoreError> {
        let (k, at) = (Key::of(action), rfc3339(at));
        let (started, requested) = (times.started.map(rfc3339), times.requested.map(rfc3339));
        self.call(move |c| {
            c.execute(
                "INSERT INTO actions (id, talk, kind, instant, room, txn_id, state, attempts, event_id, detail, updated_at,
                                      priority, fire_at, started_at, requested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (id) DO UPDATE SET state = ?7, event_id = ?8, detail = ?9, updated_at = ?10,
                    priority = ?11, fire_at = ?12, started_at = ?13, requested_at = ?14",
                params![
                    k.id, k.talk, k.kind, k.instant, k.room, k.txn, state.as_str(), event_id, detail, at, k.priority, k.fire_at,
                    started, requested
                ],
            )
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::fixtures;
    use crate::timeline::{TimelineOptions, timeline};

    /// A folder, a store file's path in it (not created) and the small conference's actions.
    fn setup(file: &str) -> (tempfile::TempDir, PathBuf, Vec<Action>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        let (conf, plan) = fixtures::small();
        (dir, path, timeline(&conf, &plan, &TimelineOptions::default()))
    }

    #[tokio::test]
    async fn rows_survive_reopening_and_a_resend_counts_its_attempt() {
        let (_dir, path, actions) = setup("state/stagehand.sqlite");
        let (a, b) = (&actions[0], &actions[1]);
        let t = a.instant;
        {
            let store = Store::open(&path).unwrap();
            store.begin(a, t).await.unwrap();
            store.finish(a, RecordState::Sent, Some("$e1".into()), None, t, SendTimes::default()).await.unwrap();
            store.begin(b, t).await.unwrap();
        }
        let store = Store::open(&path).unwrap();
        let rows = store.load().await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[&a.id].state, rows[&a.id].event_id.as_deref()), (RecordState::Sent, Some("$e1")));
        assert_eq!((rows[&b.id].state, rows[&b.id].attempts), (RecordState::Sending, 1));
        assert_eq!(rows[&b.id].txn_id, b.txn_id());
        store.begin(b, t).await.unwrap();
        assert_eq!(store.load().await.unwrap()[&b.id].attempts, 2);
        let mode: String = store.call(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0))).await.unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn named_values_are_kept_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.value("since").await.unwrap(), None);
        store.set_value("since", "s1").await.unwrap();
        store.set_value("since", "s2").await.unwrap();
        drop(store);
        assert_eq!(Store::open(&path).unwrap().value("since").await.unwrap().as_deref(), Some("s2"));
    }

    #[tokio::test]
    async fn a_version_1_file_is_migrated_once_keeping_its_rows_and_then_records_send_times() {
        let (_dir, path, actions) = setup("s.sqlite");
        let (a, b) = (&actions[0], &actions[1]);
        {
            // A file as Stagehand with schema version 1 left it: one action sent.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute("INSERT INTO schema_version (version) VALUES (1)", []).unwrap();
            c.execute(
                "INSERT INTO actions (id, talk, kind, instant, room, txn_id, state, attempts, event_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'sent', 1, '$old', '2022-02-05T09:00:00.000Z')",
                params![a.id, a.talk, a.kind.slug(), rfc3339(a.instant), a.room(), a.txn_id()],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let rows = store.load().await.unwrap();
        let old = &rows[&a.id];
        assert_eq!((old.state, old.event_id.as_deref(), old.fire_at.as_deref(), old.started_at.as_deref()), (RecordState::Sent, Some("$old"), None, None));
        let started = b.fire_at + chrono::Duration::milliseconds(40);
        let times = SendTimes { started: Some(started), requested: Some(started + chrono::Duration::milliseconds(15)) };
        store.begin(b, b.fire_at).await.unwrap();
        store.finish(b, RecordState::Sent, Some("$new".into()), None, started, times).await.unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let versions: Vec<i64> = store
            .call(|c| {
                let mut stmt = c.prepare("SELECT version FROM schema_version")?;
                stmt.query_map([], |r| r.get(0))?.collect()
            })
            .await
            .unwrap();
        assert_eq!(versions, [SCHEMA_VERSION], "migrated once, reopened as it is");
        let new = &store.load().await.unwrap()[&b.id];
        assert_eq!(new.priority.as_deref(), Some(if b.priority == Priority::Critical { "critical" } else { "routine" }));
        assert_eq!(new.fire_at, Some(rfc3339(b.fire_at)));
        assert_eq!((new.started_at.clone(), new.requested_at.clone()), (times.started.map(rfc3339), times.requested.map(rfc3339)));
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = Store::open(&path).unwrap();
        store.call(|c| c.execute("UPDATE schema_version SET version = 99", [])).await.unwrap();
        drop(store);
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Version { found: 99, .. }), "{err}");
    }
}
