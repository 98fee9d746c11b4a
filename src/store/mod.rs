//! The embedded SQLite store: one file under `--data`, opened once, migrated at start.
//!
//! It holds what must survive a restart: the hashes of site keys and an append-only event
//! log (joins, leaves). Calls are short and synchronous behind a `std::sync::Mutex`; the
//! media path never touches the store. Events are recorded without blocking: one writer thread
//! ([`journal`]) writes them in the order they happened.

pub(crate) mod fault;
pub(crate) mod journal;

pub(crate) use fault::WriteFault;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tracing::{info, warn};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: site keys (hash only) and the event log.
    "CREATE TABLE site_keys (
        site_id    TEXT PRIMARY KEY,
        key_hash   TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms   INTEGER NOT NULL,
        site_id TEXT,
        kind    TEXT NOT NULL,
        detail  TEXT NOT NULL DEFAULT ''
    );",
    // 2: the running conference's state (mutes, floor, queue, programme, layout, lock), one
    // row, rewritten on every change so a restart carries on where it stopped.
    "CREATE TABLE conference_state (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        state    TEXT NOT NULL,
        saved_ms INTEGER NOT NULL
    );",
    // 3: conferences over time; events belong to the conference running when they happened;
    // who attended at each bridge point, as the ward entered it.
    "CREATE TABLE conferences (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        title      TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms   INTEGER
    );
    ALTER TABLE events ADD COLUMN conference_id INTEGER REFERENCES conferences(id);
    CREATE TABLE attendance (
        conference_id INTEGER NOT NULL REFERENCES conferences(id),
        site_id       TEXT NOT NULL,
        attendees     TEXT NOT NULL DEFAULT '',
        headcount     INTEGER,
        updated_ms    INTEGER NOT NULL,
        PRIMARY KEY (conference_id, site_id)
    );",
    // 4: people who log in (technicians, the secretariat) with Argon2 password hashes, and
    // the REST sessions they and the sites hold (SHA-256 of the token only).
    "CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('technician', 'chair')),
        password_hash TEXT NOT NULL,
        created_ms    INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        role       TEXT NOT NULL,
        subject    TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );",
    // 5: what an event says as a stable code and numbers (JSON), beside its English detail:
    // an alarm's reason, which the technicians' page words in Vietnamese or English.
    "ALTER TABLE events ADD COLUMN params TEXT;",
    // v6: the secretariat's records-only accounts (SQLite cannot change a CHECK in place).
    "CREATE TABLE users_v6 (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('technician', 'chair', 'secretariat')),
        password_hash TEXT NOT NULL,
        created_ms    INTEGER NOT NULL
    );
    INSERT INTO users_v6 SELECT name, role, password_hash, created_ms FROM users;
    DROP TABLE users;
    ALTER TABLE users_v6 RENAME TO users;",
];

/// A person who logs in, as stored (the password only as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRecord {
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) password_hash: String,
    pub(crate) created_ms: i64,
}

/// A REST session as stored: the token's SHA-256 (hex), whose it is, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRecord {
    pub(crate) token_hash: String,
    pub(crate) role: String,
    pub(crate) subject: String,
    pub(crate) created_ms: i64,
    pub(crate) expires_ms: i64,
}

/// A conference as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ConferenceRecord {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) started_ms: i64,
    pub(crate) ended_ms: Option<i64>,
}

/// What a ward entered about who attends at its bridge point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct AttendanceEntry {
    pub(crate) site_id: String,
    pub(crate) attendees: String,
    pub(crate) headcount: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot use the database file {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("cannot write to the data folder {path}: {}", io_reason(source))]
    Io { path: String, source: std::io::Error },
}

fn io_reason(e: &std::io::Error) -> String {
    match fault::io_problem(e) {
        fault::Problem::DiskFull => format!("the disk is full ({e})"),
        fault::Problem::ReadOnly => format!("it is read-only or not writable ({e})"),
        fault::Problem::Other => e.to_string(),
    }
}

/// A clonable handle to the database.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// The event log's one writer (its own thread, fed in order, never blocking the caller).
    journal: journal::Journal,
    /// The database file, for errors a technician reads.
    path: Arc<str>,
    /// The last write that failed, until one succeeds again (the `storage_failed` alarm).
    fault: Arc<watch::Sender<Option<WriteFault>>>,
}

/// One row of the event log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Event {
    pub(crate) at_ms: i64,
    pub(crate) site_id: Option<String>,
    pub(crate) kind: String,
    /// In English, for people reading the store, the logs or the minutes.
    pub(crate) detail: String,
    /// The same as a code and numbers (JSON), where the writer gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) params: Option<String>,
}

impl Store {
    /// Opens (creating if needed) `<dir>/diemcau.sqlite3` and applies pending migrations.
    /// A folder the bridge cannot write to (full disk, read-only) is refused here with an
    /// error that names it and says why, rather than failing a meeting later.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        check_writable(dir)?;
        let path = dir.join("diemcau.sqlite3");
        let shown = path.display().to_string();
        let open = || -> Result<Connection, StoreError> {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(conn)
        };
        let conn = open().map_err(|e| StoreError::Open { path: shown.clone(), reason: WriteFault::of(&shown, &e).problem_text() })?;
        let conn = Arc::new(Mutex::new(conn));
        let fault = Arc::new(watch::channel(None).0);
        let writer = conn.clone();
        let (journal_path, journal_fault) = (Arc::<str>::from(shown.as_str()), fault.clone());
        let journal = journal::Journal::spawn(move |batch| {
            let written = Store::write_events(&writer, batch);
            note_write(&journal_path, &journal_fault, &written);
            written.map_err(|e| e.to_string())
        });
        let store = Store { conn, journal, path: Arc::from(shown.as_str()), fault };
        store.migrate().map_err(|e| StoreError::Open { path: shown.clone(), reason: WriteFault::of(&shown, &e).problem_text() })?;
        Ok(store)
    }

    /// The last write that failed (`None` once writes succeed again), as it changes.
    pub(crate) fn write_faults(&self) -> watch::Receiver<Option<WriteFault>> {
        self.fault.subscribe()
    }

    /// Notes the outcome of a write for the `storage_failed` alarm, and passes it on.
    /// Runs one write on the connection; a failure the disk caused (full, read-only) raises
    /// the storage alarm, and the next write that succeeds clears it.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let written = f(&self.conn.lock().expect("store mutex poisoned"));
        note_write(&self.path, &self.fault, &written);
        written
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().expect("store mutex poisoned");
        let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub(crate) fn key_hash(&self, site_id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        Ok(conn.query_row("SELECT key_hash FROM site_keys WHERE site_id = ?1", params![site_id], |r| r.get(0)).optional()?)
    }

    pub(crate) fn set_key_hash(&self, site_id: &str, hash: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO site_keys (site_id, key_hash, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(site_id) DO UPDATE SET key_hash = excluded.key_hash, created_at = excluded.created_at",
                params![site_id, hash, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Every site's key hash (including the technicians' legacy entry), by id.
    pub(crate) fn key_hashes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let mut stmt = conn.prepare("SELECT site_id, key_hash FROM site_keys ORDER BY site_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When each site's key was set (Unix ms), by id.
    pub(crate) fn key_times(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let mut stmt = conn.prepare("SELECT site_id, created_at FROM site_keys ORDER BY site_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let mut stmt = conn.prepare("SELECT name, role, password_hash, created_ms FROM users ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok(UserRecord { name: r.get(0)?, role: r.get(1)?, password_hash: r.get(2)?, created_ms: r.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        Ok(conn
            .query_row("SELECT name, role, password_hash, created_ms FROM users WHERE name = ?1", params![name], |r| {
                Ok(UserRecord { name: r.get(0)?, role: r.get(1)?, password_hash: r.get(2)?, created_ms: r.get(3)? })
            })
            .optional()?)
    }

    /// Adds a user or replaces its role and password.
    pub(crate) fn set_user(&self, name: &str, role: &str, password_hash: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, created_ms = excluded.created_ms",
                params![name, role, password_hash, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Removes a user; false if there was none.
    pub(crate) fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|conn| Ok(conn.execute("DELETE FROM users WHERE name = ?1", params![name])? > 0))
    }

    pub(crate) fn save_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO sessions (token_hash, role, subject, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.token_hash, s.role, s.subject, s.created_ms, s.expires_ms],
            )?;
            Ok(())
        })
    }

    /// Sessions not yet past their absolute expiry; older rows are deleted.
    pub(crate) fn live_sessions(&self, now_ms: i64) -> Result<Vec<SessionRecord>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        conn.execute("DELETE FROM sessions WHERE expires_ms <= ?1", params![now_ms])?;
        let mut stmt = conn.prepare("SELECT token_hash, role, subject, created_ms, expires_ms FROM sessions")?;
        let rows = stmt.query_map([], |r| {
            Ok(SessionRecord { token_hash: r.get(0)?, role: r.get(1)?, subject: r.get(2)?, created_ms: r.get(3)?, expires_ms: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", params![token_hash])?;
            Ok(())
        })
    }

    /// Ends every session of one site or user.
    pub(crate) fn delete_sessions_of(&self, subject: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute("DELETE FROM sessions WHERE subject = ?1", params![subject])?;
            Ok(())
        })
    }

    pub(crate) fn save_conference_state(&self, json: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO conference_state (id, state, saved_ms) VALUES (1, ?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, saved_ms = excluded.saved_ms",
                params![json, now_ms()],
            )?;
            Ok(())
        })
    }

    pub(crate) fn load_conference_state(&self) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        Ok(conn.query_row("SELECT state FROM conference_state WHERE id = 1", [], |r| r.get(0)).optional()?)
    }

    /// Appends to the event log, under the conference running now (if any).
    pub(crate) fn log_event(&self, site_id: Option<&str>, kind: &str, detail: &str) -> Result<(), StoreError> {
        self.log_event_with(site_id, kind, detail, None)
    }

    /// As [`Store::log_event`], with what the event says as a code and numbers (`params`,
    /// JSON) beside the English `detail`.
    pub(crate) fn log_event_with(&self, site_id: Option<&str>, kind: &str, detail: &str, params: Option<&str>) -> Result<(), StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        conn.execute(
            "INSERT INTO events (at_ms, site_id, kind, detail, params, conference_id) VALUES (?1, ?2, ?3, ?4, ?5,
             (SELECT id FROM conferences WHERE ended_ms IS NULL ORDER BY id DESC LIMIT 1))",
            params![now_ms(), site_id, kind, detail, params],
        )?;
        Ok(())
    }

    /// Records an event: handed to the event log's writer, which writes it in order.
    pub(crate) fn record(&self, entry: journal::Entry) {
        self.journal.record(entry);
    }

    /// Waits (bounded) until every event recorded so far is written.
    pub(crate) fn flush_events(&self, timeout: std::time::Duration) -> bool {
        self.journal.flush(timeout)
    }

    /// Writes a batch of events in one transaction, in order (the [`journal`]'s writer).
    fn write_events(conn: &Mutex<Connection>, entries: &[journal::Entry]) -> Result<(), StoreError> {
        let mut conn = conn.lock().expect("store mutex poisoned");
        let tx = conn.transaction()?;
        for e in entries {
            match e.conference {
                journal::Belongs::To(conference) => tx.execute(
                    "INSERT INTO events (at_ms, site_id, kind, detail, params, conference_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![e.at_ms, e.site_id, e.kind, e.detail, e.params, conference],
                )?,
                journal::Belongs::Current => tx.execute(
                    "INSERT INTO events (at_ms, site_id, kind, detail, params, conference_id) VALUES (?1, ?2, ?3, ?4, ?5,
                     (SELECT id FROM conferences WHERE ended_ms IS NULL ORDER BY id DESC LIMIT 1))",
                    params![e.at_ms, e.site_id, e.kind, e.detail, e.params],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts a conference (ending one still running) and returns it.
    pub(crate) fn start_conference(&self, title: &str) -> Result<ConferenceRecord, StoreError> {
        self.write(|conn| {
            let now = now_ms();
            conn.execute("UPDATE conferences SET ended_ms = ?1 WHERE ended_ms IS NULL", params![now])?;
            conn.execute("INSERT INTO conferences (title, started_ms) VALUES (?1, ?2)", params![title, now])?;
            Ok(ConferenceRecord { id: conn.last_insert_rowid(), title: title.to_string(), started_ms: now, ended_ms: None })
        })
    }

    /// The conference started and not yet ended, if any: after a restart (orderly or not)
    /// the bridge carries on with it.
    pub(crate) fn running_conference(&self) -> Result<Option<ConferenceRecord>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let running = conn
            .query_row("SELECT id, title, started_ms FROM conferences WHERE ended_ms IS NULL ORDER BY id DESC LIMIT 1", [], |r| {
                Ok(ConferenceRecord { id: r.get(0)?, title: r.get(1)?, started_ms: r.get(2)?, ended_ms: None })
            })
            .optional()?;
        Ok(running)
    }

    pub(crate) fn end_conference(&self) -> Result<Option<i64>, StoreError> {
        self.write(|conn| {
            let running: Option<i64> =
                conn.query_row("SELECT id FROM conferences WHERE ended_ms IS NULL ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).optional()?;
            conn.execute("UPDATE conferences SET ended_ms = ?1 WHERE ended_ms IS NULL", params![now_ms()])?;
            Ok(running)
        })
    }

    pub(crate) fn conferences(&self) -> Result<Vec<ConferenceRecord>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let mut stmt = conn.prepare("SELECT id, title, started_ms, ended_ms FROM conferences ORDER BY id DESC")?;
        let rows = stmt.query_map([], |r| Ok(ConferenceRecord { id: r.get(0)?, title: r.get(1)?, started_ms: r.get(2)?, ended_ms: r.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn conference(&self, id: i64) -> Result<Option<ConferenceRecord>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        Ok(conn
            .query_row("SELECT id, title, started_ms, ended_ms FROM conferences WHERE id = ?1", params![id], |r| {
                Ok(ConferenceRecord { id: r.get(0)?, title: r.get(1)?, started_ms: r.get(2)?, ended_ms: r.get(3)? })
            })
            .optional()?)
    }

    /// Every event of one conference, oldest first.
    pub(crate) fn conference_events(&self, id: i64) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let mut stmt = conn.prepare("SELECT at_ms, site_id, kind, detail, params FROM events WHERE conference_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![id], event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records who attends at a site in the running conference; false if none is running.
    pub(crate) fn set_attendance(&self, site_id: &str, attendees: &str, headcount: Option<i64>) -> Result<bool, StoreError> {
        self.write(|conn| {
            let changed = conn.execute(
                "INSERT INTO attendance (conference_id, site_id, attendees, headcount, updated_ms)
                 SELECT id, ?1, ?2, ?3, ?4 FROM conferences WHERE ended_ms IS NULL ORDER BY id DESC LIMIT 1
                 ON CONFLICT(conference_id, site_id) DO UPDATE SET attendees = excluded.attendees,
                     headcount = excluded.headcount, updated_ms = excluded.updated_ms",
                params![site_id, attendees, headcount, now_ms()],
            )?;
            Ok(changed > 0)
        })
    }

    pub(crate) fn attendance(&self, conference_id: i64) -> Result<Vec<AttendanceEntry>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let mut stmt = conn.prepare("SELECT site_id, attendees, headcount FROM attendance WHERE conference_id = ?1 ORDER BY site_id")?;
        let rows = stmt.query_map(params![conference_id], |r| Ok(AttendanceEntry { site_id: r.get(0)?, attendees: r.get(1)?, headcount: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The most recent events, oldest first.
    pub(crate) fn recent_events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn.lock().expect("store mutex poisoned");
        let mut stmt = conn.prepare("SELECT at_ms, site_id, kind, detail, params FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id")?;
        let rows = stmt.query_map(params![limit as i64], event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event { at_ms: r.get(0)?, site_id: r.get(1)?, kind: r.get(2)?, detail: r.get(3)?, params: r.get(4)? })
}

/// Writes, syncs and removes a small file in `dir`: a full disk or a read-only folder shows
/// here, at start, with the folder's name.
fn check_writable(dir: &Path) -> Result<(), StoreError> {
    use std::io::Write;
    let io = |source| StoreError::Io { path: dir.display().to_string(), source };
    let probe = dir.join(".write-check");
    let written = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    written.map_err(io)
}

/// Keeps the store's fault up to date after a write: set (and logged once) when a write
/// fails, cleared (and logged) when one succeeds again.
fn note_write<T>(path: &str, fault: &watch::Sender<Option<WriteFault>>, written: &Result<T, StoreError>) {
    match written {
        Ok(_) => {
            fault.send_if_modified(|f| {
                let was = f.take();
                if let Some(was) = &was {
                    info!("the store writes again ({} before)", was);
                }
                was.is_some()
            });
        }
        Err(e) => {
            let Some(now) = WriteFault::of_storage(path, e) else { return };
            fault.send_if_modified(|f| {
                if f.as_ref() == Some(&now) {
                    return false;
                }
                warn!("{now}; the meeting goes on, but what happens is not being recorded");
                *f = Some(now);
                true
            });
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("diemcau-store-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn key_hashes_and_events_survive_reopening_the_file() {
        let dir = temp_dir("reopen");
        {
            let store = Store::open(&dir).unwrap();
            store.set_key_hash("hang-gai", "hash-1").unwrap();
            store.set_key_hash("hang-gai", "hash-2").unwrap();
            store.log_event(Some("hang-gai"), "join", "Cụm Hàng Gai").unwrap();
        }
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.load_conference_state().unwrap(), None);
        store.save_conference_state("{\"locked\":true}").unwrap();
        store.save_conference_state("{\"locked\":false}").unwrap();
        assert_eq!(store.load_conference_state().unwrap().as_deref(), Some("{\"locked\":false}"));
        assert_eq!(store.key_hash("hang-gai").unwrap().as_deref(), Some("hash-2"));
        assert_eq!(store.key_hash("hq").unwrap(), None);
        store.log_event_with(Some("hang-gai"), "alarm_raised:high_rtt", "rtt 530 ms > 300 ms", Some(r#"{"code":"high_rtt"}"#)).unwrap();
        let events = store.recent_events(10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].detail.as_str(), events[0].params.as_deref()), ("Cụm Hàng Gai", None));
        assert_eq!(events[1].params.as_deref(), Some(r#"{"code":"high_rtt"}"#));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
