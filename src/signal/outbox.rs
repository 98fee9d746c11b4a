//! A page's outbox: what the conference sends one session, on its way to the socket.
//!
//! Most messages (floor events, notices) queue in order in a bounded queue; a full queue
//! loses that message, counted and logged. The newest `state`, `view` and speaking levels are
//! different: each replaces the one not yet sent, so a page that fell behind gets the latest
//! truth and never keeps tiles labelled with the wrong sites. The message that closes a
//! session (its seat taken, its key revoked, a technician's reset) has a slot of its own and
//! is delivered before anything else: a session cannot miss its end.

use super::protocol::{Outgoing, ServerMessage};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Ordinary messages queued per page.
pub(crate) const DEPTH: usize = 64;

#[derive(Default)]
struct Latest {
    state: Option<Outgoing>,
    view: Option<Outgoing>,
    speaking: Option<Outgoing>,
    close: Option<ServerMessage>,
}

struct Shared {
    latest: Mutex<Latest>,
    wake: Notify,
}

/// The conference's end of one session's outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

/// Why an ordinary message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotQueued {
    /// The page is behind: this message is lost (the next `state` still arrives).
    Full,
    /// The session has ended.
    Closed,
}

impl Outbox {
    /// A new outbox and the session's end of it.
    pub fn new() -> (Outbox, Inbox) {
        let (queue, rx) = mpsc::channel(DEPTH);
        let shared = Arc::new(Shared { latest: Mutex::new(Latest::default()), wake: Notify::new() });
        (Outbox { queue, shared: shared.clone() }, Inbox { queue: rx, shared })
    }

    /// Queues an ordinary message.
    pub(crate) fn send(&self, msg: impl Into<Outgoing>) -> Result<(), NotQueued> {
        self.queue.try_send(msg.into()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NotQueued::Full,
            mpsc::error::TrySendError::Closed(_) => NotQueued::Closed,
        })
    }

    /// The whole conference state, replacing one not yet sent.
    pub(crate) fn set_state(&self, msg: Outgoing) {
        self.latest(|l| l.state = Some(msg));
    }

    /// Which site each output slot carries, replacing a view not yet sent.
    pub(crate) fn set_view(&self, msg: impl Into<Outgoing>) {
        let msg = msg.into();
        self.latest(|l| l.view = Some(msg));
    }

    /// The speaking levels, replacing ones not yet sent.
    pub(crate) fn set_speaking(&self, msg: Outgoing) {
        self.latest(|l| l.speaking = Some(msg));
    }

    /// Ends the session with `msg` (`replaced`, `revoked`, `dropped`): delivered first, whatever
    /// the queue holds.
    pub(crate) fn close_with(&self, msg: ServerMessage) {
        self.latest(|l| l.close = Some(msg));
    }

    #[cfg(test)]
    /// The session has ended (its socket is gone).
    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    fn latest(&self, f: impl FnOnce(&mut Latest)) {
        f(&mut self.shared.latest.lock().expect("outbox mutex poisoned"));
        self.shared.wake.notify_one();
    }
}

/// What the session takes out of its outbox next.
#[allow(clippy::large_enum_variant)] // holds a ServerMessage either way; moved, never stored in bulk
#[derive(Debug)]
pub enum Delivery {
    Send(Outgoing),
    /// Send this, then close the socket.
    Close(ServerMessage),
}

#[allow(clippy::large_enum_variant)] // a Delivery on its way out of `next`
enum Ready {
    Some(Delivery),
    Empty,
    Ended,
}

/// The session's end of its outbox.
pub struct Inbox {
    queue: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
}

impl Inbox {
    /// The next thing to deliver: a closing message first, then queued messages in order, then
    /// the newest state, view and speaking levels. `None` once the conference has dropped
    /// every sender and nothing is left.
    pub(crate) async fn recv(&mut self) -> Option<Delivery> {
        loop {
            match self.next() {
                Ready::Some(d) => return Some(d),
                Ready::Ended => return None,
                Ready::Empty => {}
            }
            tokio::select! {
                m = self.queue.recv() => match m {
                    Some(m) => return Some(Delivery::Send(m)),
                    None => continue,
                },
                _ = self.shared.wake.notified() => {}
            }
        }
    }

    /// What is ready now, without waiting.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        match self.next() {
            Ready::Some(d) => Some(d),
            _ => None,
        }
    }

    fn next(&mut self) -> Ready {
        if let Some(c) = self.take(|l| l.close.take()) {
            return Ready::Some(Delivery::Close(c));
        }
        let ended = match self.queue.try_recv() {
            Ok(m) => return Ready::Some(Delivery::Send(m)),
            Err(mpsc::error::TryRecvError::Empty) => false,
            Err(mpsc::error::TryRecvError::Disconnected) => true,
        };
        match self.take(|l| l.state.take().or_else(|| l.view.take()).or_else(|| l.speaking.take())) {
            Some(m) => Ready::Some(Delivery::Send(m)),
            None if ended => Ready::Ended,
            None => Ready::Empty,
        }
    }

    fn take<T>(&self, f: impl FnOnce(&mut Latest) -> Option<T>) -> Option<T> {
        f(&mut self.shared.latest.lock().expect("outbox mutex poisoned"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::protocol::ErrorCode;

    fn text(t: &str) -> Outgoing {
        Outgoing::Text(t.into())
    }

    fn sent(d: Option<Delivery>) -> String {
        match d {
            Some(Delivery::Send(Outgoing::Text(t))) => t.to_string(),
            Some(Delivery::Send(Outgoing::Message(m))) => format!("{m:?}"),
            Some(Delivery::Close(m)) => format!("close {m:?}"),
            None => "none".into(),
        }
    }

    #[tokio::test]
    async fn a_page_that_falls_behind_gets_the_newest_state_and_view_not_none() {
        let (out, mut inbox) = Outbox::new();
        // A burst of changes while the page reads nothing: the queue fills and overflows…
        for i in 0..DEPTH + 10 {
            let queued = out.send(text(&format!("floor {i}")));
            assert_eq!(queued.is_ok(), i < DEPTH, "message {i}");
            out.set_state(text(&format!("state {i}")));
            out.set_view(text(&format!("view {i}")));
        }
        // …yet after the queued messages come the last state and the last view.
        let mut all = Vec::new();
        for _ in 0..DEPTH + 2 {
            all.push(sent(inbox.recv().await));
        }
        assert_eq!(all[0], "floor 0");
        assert_eq!(all[DEPTH - 1], format!("floor {}", DEPTH - 1));
        assert_eq!(all[DEPTH..], [format!("state {}", DEPTH + 9), format!("view {}", DEPTH + 9)]);
    }

    #[tokio::test]
    async fn the_end_of_a_session_comes_first_and_is_never_lost() {
        let (out, mut inbox) = Outbox::new();
        for i in 0..DEPTH {
            out.send(text(&format!("floor {i}"))).unwrap();
        }
        out.close_with(ServerMessage::Replaced { message: "x".into() });
        assert!(sent(inbox.recv().await).starts_with("close Replaced"));
        let err = ServerMessage::error(ErrorCode::Internal, "e", None);
        assert_eq!(out.send(err), Err(NotQueued::Full), "the queue is still full; the close was not");
    }

    #[tokio::test]
    async fn a_waiting_session_wakes_for_the_latest_state() {
        let (out, mut inbox) = Outbox::new();
        let reader = tokio::spawn(async move { sent(inbox.recv().await) });
        tokio::task::yield_now().await;
        out.set_state(text("state 1"));
        assert_eq!(reader.await.unwrap(), "state 1");
        let (out, inbox) = Outbox::new();
        drop(inbox);
        assert!(out.is_closed());
        assert_eq!(out.send(text("late")), Err(NotQueued::Closed));
    }
}
