//! The one writer of the event log. Every part of the bridge that records something (the
//! conference actor, the health monitor, the technicians' API, the sessions) hands it an
//! [`Entry`] stamped with the time it happened; one thread writes them in the order they were
//! handed over, in batches, off the async runtime. The conference actor stamps its entries
//! with the conference they belong to, so an event recorded just before `end_conference` is
//! never written under no conference (or the next one); others take the conference running
//! when they are written.

use super::now_ms;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// Entries waiting to be written; beyond this (the disk stalled for long) new ones are
/// dropped and counted rather than blocking anyone.
pub(crate) const QUEUE: usize = 8192;

/// Which conference an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Belongs {
    /// As stamped by the conference actor: this one, or none.
    To(Option<i64>),
    /// The one running when the entry is written.
    Current,
}

/// One event to record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) at_ms: i64,
    pub(crate) site_id: Option<String>,
    pub(crate) kind: String,
    pub(crate) detail: String,
    pub(crate) params: Option<String>,
    pub(crate) conference: Belongs,
}

impl Entry {
    /// An event happening now, belonging to the conference running when it is written.
    pub(crate) fn now(site_id: Option<&str>, kind: &str, detail: &str) -> Entry {
        Entry {
            at_ms: now_ms(),
            site_id: site_id.map(str::to_owned),
            kind: kind.to_owned(),
            detail: detail.to_owned(),
            params: None,
            conference: Belongs::Current,
        }
    }

    pub(crate) fn with_params(mut self, params: Option<String>) -> Entry {
        self.params = params;
        self
    }

    pub(crate) fn of_conference(mut self, conference: Option<i64>) -> Entry {
        self.conference = Belongs::To(conference);
        self
    }
}

enum Message {
    Entry(Entry),
    /// Answer once everything handed over before this is written.
    Flush(SyncSender<()>),
}

/// The writer's handle; cheap to clone.
#[derive(Clone)]
pub(crate) struct Journal {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Journal {
    /// Starts the writer thread; `write` stores one batch in order. The thread ends when the
    /// last handle is dropped.
    pub(crate) fn spawn(write: impl Fn(&[Entry]) -> Result<(), String> + Send + 'static) -> Journal {
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let spawned = std::thread::Builder::new().name("diemcau-journal".into()).spawn(move || write_loop(&write, &rx));
        if let Err(e) = spawned {
            warn!("cannot start the event log writer: {e}");
        }
        Journal { tx, dropped }
    }

    /// Hands an entry to the writer; never blocks.
    pub(crate) fn record(&self, entry: Entry) {
        match self.tx.try_send(Message::Entry(entry)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                    warn!(dropped = self.dropped.load(Ordering::Relaxed), "the event log writer is behind; events are being dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits (at most `timeout`) until everything recorded so far is written: before the
    /// process exits, and in tests.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = sync_channel(1);
        if self.tx.send(Message::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(timeout).is_ok()
    }
}

fn write_loop(write: &impl Fn(&[Entry]) -> Result<(), String>, rx: &Receiver<Message>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    loop {
        let first = match rx.recv() {
            Ok(m) => m,
            Err(_) => return,
        };
        let mut next = Some(first);
        // Take what is waiting (bounded), then write it in one transaction.
        while let Some(m) = next.take() {
            match m {
                Message::Entry(e) => batch.push(e),
                Message::Flush(done) => flushes.push(done),
            }
            if batch.len() >= 256 {
                break;
            }
            next = match rx.recv_timeout(Duration::ZERO) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => None,
            };
        }
        if !batch.is_empty() {
            if let Err(e) = write(&batch) {
                warn!(events = batch.len(), "writing the event log failed: {e}");
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::Store;

    fn store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("dc-journal-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        (Store::open(&dir).unwrap(), dir)
    }

    #[test]
    fn events_are_written_in_the_order_handed_over_with_the_time_they_happened() {
        let (store, dir) = store();
        for i in 0..500 {
            store.record(Entry { at_ms: 1_000 + i, ..Entry::now(Some("hq"), "tick", &i.to_string()) });
        }
        assert!(store.flush_events(Duration::from_secs(10)));
        let events = store.recent_events(1000).unwrap();
        let ticks: Vec<(i64, String)> = events.iter().filter(|e| e.kind == "tick").map(|e| (e.at_ms, e.detail.clone())).collect();
        assert_eq!(ticks.len(), 500);
        assert!(ticks.iter().enumerate().all(|(i, (at, d))| *at == 1_000 + i as i64 && *d == i.to_string()), "in order, with their own times");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_event_stamped_with_its_conference_keeps_it_after_the_conference_ended() {
        let (store, dir) = store();
        let c = store.start_conference("Hội nghị").unwrap();
        // Recorded while the conference ran, written after it ended.
        let late = Entry::now(Some("hang-gai"), "leave", "present at the end").of_conference(Some(c.id));
        store.end_conference().unwrap();
        store.record(late);
        store.record(Entry::now(None, "readiness_check", "after"));
        assert!(store.flush_events(Duration::from_secs(10)));
        let of_conference = store.conference_events(c.id).unwrap();
        assert!(of_conference.iter().any(|e| e.kind == "leave"), "{of_conference:?}");
        assert!(!of_conference.iter().any(|e| e.kind == "readiness_check"), "an unstamped event after the end belongs to none");
        let _ = std::fs::remove_dir_all(dir);
    }
}
