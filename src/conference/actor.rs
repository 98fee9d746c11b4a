//! The conference actor: the single owner of seats, presence, mutes, floor, programme,
//! layout and lock. Every decision about who may speak is made here and published to the
//! media router as a forwarding policy, so a muted site's audio is dropped by the server,
//! not merely hidden by a page.

use super::handle::{Action, Command, ConferenceHandle, Reason, Receiving, Refused, Seat, SiteView};
use super::notice::{self, HelpRequest, Notices, Sender};
use super::published::{CurrentItem, Farewell, Order, PageView, Published, Recording, SeatSnapshot, Snapshot};
use super::view::{self, Candidate, Redundancy, Shape};
use super::vote::Votes;
use super::JoinRefused;
use crate::config::Settings;
use crate::domain::{AgendaItem, AgendaKind, Layout, SiteRole};
use crate::floor::{Floor, FloorEvent, RequestId, RequestStep};
use crate::media::router::{Received, Router};
use crate::media::speaker::SpeakerDetector;
use crate::media::Selection;
use crate::recording::{RecState, Recorder, RecordingStatus};
use crate::signal::outbox::{NotQueued, Outbox};
use crate::signal::protocol::Outgoing;
use crate::signal::render::{self, Sites};
use crate::store::journal::Entry;
use crate::store::{now_ms, Store};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

struct Holder {
    session: Uuid,
    outbox: Outbox,
}

/// A site's mute flags. `hard` is the chair's; the site cannot clear it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Mute {
    audio: bool,
    video: bool,
    hard: bool,
}

#[derive(Default)]
struct SeatState {
    holder: Option<Holder>,
    /// Unix ms of the current join, or of the last leave.
    since_ms: Option<i64>,
    mute: Mute,
    /// The mute a site had when it was given the floor, restored when the floor ends.
    mute_before_floor: Option<Mute>,
    /// The site lost its connection; its seat, floor and queue place are kept until then
    /// (Unix ms).
    held_until: Option<i64>,
    /// Proof a reconnecting page presents to resume (given out in `joined`).
    resume_token: Option<String>,
    /// The page of thumbnails this site's page shows, and what its output slots carry.
    page: usize,
    selection: Selection,
    /// The page count this site's page was last told.
    pages: usize,
    /// Until when (Unix ms) this site's downlink is treated as too weak for large layers.
    constrained_until: i64,
    /// The bridge's estimate of this site's downlink (bit/s), while its connection lasts, and
    /// its loss-based half (only loss may pause a camera).
    downlink_bps: Option<f64>,
    downlink_loss_bps: f64,
    /// The site's downlink loses packets at random (not to its own queue): the audio it
    /// receives keeps its redundancy however tight the line ([`view::Redundancy`]).
    downlink_lossy: bool,
    /// When (Unix ms) the layers this site receives were last raised to fit the estimate.
    raised_ms: i64,
    /// Sites whose camera this site's line cannot take now.
    paused: Vec<usize>,
    /// What limited the layers this site receives.
    limited_by: Option<&'static str>,
    /// While the conference is locked: this site may (re)join (it was present when the
    /// chair locked, or joined or was let in since).
    admitted: bool,
    /// The last time (Unix ms) this site asked to join the locked conference and was not
    /// admitted: the chair sees it waiting.
    knocked_ms: Option<i64>,
    /// How many people attend at this bridge point, as it entered (bounds its vote counts).
    headcount: Option<u32>,
    /// Its open request for a technician's help.
    help: Option<HelpRequest>,
}

/// What survives a restart: written to the store after every change.
#[derive(serde::Serialize, serde::Deserialize)]
struct Persisted {
    floor: Floor,
    /// By site id, so a config that reorders sites still restores the right ones.
    mutes: Vec<(String, Mute, Option<Mute>)>,
    layout: Layout,
    locked: bool,
    /// Sites present or held when saved: after a restart they are expected back.
    #[serde(default)]
    expected: Vec<String>,
    /// Sites admitted to the locked conference.
    #[serde(default)]
    admitted: Vec<String>,
    /// Recording was running: after a restart it continues (in a new folder, the next segment).
    #[serde(default)]
    recording: bool,
    #[serde(default)]
    votes: Votes,
    #[serde(default)]
    notices: Notices,
    /// Headcounts entered, by site id.
    #[serde(default)]
    headcounts: Vec<(String, u32)>,
}

struct Actor {
    settings: Arc<Settings>,
    store: Store,
    router: Router,
    seats: Vec<SeatState>,
    floor: Floor,
    layout: Layout,
    locked: bool,
    speaker: SpeakerDetector,
    ticks: u64,
    /// What each site's camera layers cost a receiver, measured once a second from the
    /// router's byte counts (the last counts and when they were read).
    media_costs: view::MediaCosts,
    received_bytes: Option<(Vec<Received>, i64)>,
    /// The site whose shared content everyone sees, if any.
    sharing: Option<usize>,
    /// The recorded conference running now: (id, started at).
    meeting: Option<(i64, i64)>,
    /// Recording of the meeting's media: the actor decides, the recorder writes.
    recorder: Recorder,
    /// The recorder's last reported status (what pages are shown).
    recording: RecordingStatus,
    view: tokio::sync::watch::Sender<Arc<Vec<SiteView>>>,
    votes: Votes,
    notices: Notices,
    /// The latest state to persist; a writer task saves it, coalescing bursts.
    persist: tokio::sync::watch::Sender<Option<String>>,
}

/// A page that reports this much video loss gets low simulcast layers only…
const CONSTRAINED_LOSS_PERCENT: f64 = 8.0;
/// …for this long after its last such report (its reports come every 3 s). Only a site whose
/// downlink is not estimated: an estimate answers loss itself (its loss-based half), and knows
/// when the line recovers, where this rule would hold the layers down 20 s after a cap lifts.
const CONSTRAINED_FOR_MS: i64 = 20_000;

/// The layers a site receives are raised to fit its downlink estimate at most this often.
const RAISE_EVERY_MS: i64 = 3_000;
/// Layers are raised to fit within this share of a site's downlink estimate, and lowered to
/// fit within [`LOWER_SHARE`] of it ([`Actor::fit_downlink`]).
const RAISE_SHARE: f64 = 0.70;
const LOWER_SHARE: f64 = 0.85;

/// A site that asked to join the locked conference shows as waiting this long after its last
/// try (its page tries again every few seconds).
const KNOCK_SHOWN_MS: i64 = 15_000;

/// How often audio levels are read for the active speaker.
const SPEAKER_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the actor; it stops when `cancel` fires or every handle is dropped.
pub fn spawn(settings: Arc<Settings>, store: Store, router: Router, recorder: Recorder, cancel: CancellationToken) -> ConferenceHandle {
    let (persist, mut persisted) = tokio::sync::watch::channel(None::<String>);
    {
        let store = store.clone();
        tokio::spawn(async move {
            while persisted.changed().await.is_ok() {
                let Some(json) = persisted.borrow_and_update().clone() else { continue };
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.save_conference_state(&json)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!("saving the conference state failed: {e}"),
                    Err(e) => warn!("saving the conference state failed: {e}"),
                }
            }
        });
    }
    let (tx, mut rx) = mpsc::channel(256);
    let seats = settings.sites.iter().map(|_| SeatState::default()).collect();
    let chair = settings.sites.iter().position(|s| s.role == SiteRole::Chair).expect("validated config has a chair");
    let floor = Floor::new(settings.sites.len(), chair, settings.max_floor_holders);
    let mut actor = Actor {
        settings,
        store,
        router,
        seats,
        floor,
        layout: Layout::Stage,
        locked: false,
        speaker: SpeakerDetector::default(),
        ticks: 0,
        media_costs: view::MediaCosts::default(),
        received_bytes: None,
        sharing: None,
        meeting: None,
        recording: RecordingStatus::default(),
        recorder,
        view: tokio::sync::watch::channel(Arc::new(Vec::new())).0,
        votes: Votes::default(),
        notices: Notices::default(),
        persist,
    };
    let view = actor.view.subscribe();
    let restored = actor.restore();
    if restored.is_none() {
        let programme = actor.settings.agenda.clone();
        if !programme.is_empty() {
            if let Err(e) = actor.floor.set_agenda(chair, programme, now_ms()) {
                warn!("the configured programme was not accepted: {e}");
            }
        }
    }
    actor.resume_meeting(restored == Some(true));
    actor.apply_media_policy();
    actor.publish_view();
    let mut recording = actor.recorder.status();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SPEAKER_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => actor.on_tick(now_ms()),
                Ok(()) = recording.changed() => {
                    let status = recording.borrow_and_update().clone();
                    actor.on_recording_status(status);
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => actor.handle(cmd),
                    None => break,
                },
            }
        }
    });
    ConferenceHandle { tx, view }
}

impl Actor {
    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join { site, session, resume, outbox, reply } => {
                let _ = reply.send(self.join(site, session, resume, outbox));
            }
            Command::Leave { site, session, lost } => self.leave(site, session, lost),
            Command::Shutdown { reply } => {
                self.send_all(Published::Restarting);
                // Saved as it was before the files are closed: a recording running now
                // continues after the restart.
                let json = self.persisted_json();
                // Close the recorded files properly (bounded): the process is about to exit.
                if self.recording.state == RecState::Recording {
                    blocking(|| self.recorder.stop_and_wait(std::time::Duration::from_secs(3)));
                    self.log_now(self.floor.chair(), "recording_stopped", "server shutdown");
                }
                // Flush now, on this task: the process is about to exit.
                if let Err(e) = blocking(|| self.store.save_conference_state(&json)) {
                    warn!("saving the conference state at shutdown failed: {e}");
                }
                if !blocking(|| self.store.flush_events(std::time::Duration::from_secs(2))) {
                    warn!("the event log was not fully written before the shutdown");
                }
                let _ = reply.send(());
            }
            Command::Act { site, session, action, reply } => {
                // A page flip concerns that page only: no state broadcast to everyone.
                let own_view = matches!(action, Action::ViewPage { .. });
                let result = self.act(site, session, action);
                match (&result, own_view) {
                    (Ok(()), true) => self.update_views(&self.router.levels()),
                    (Ok(()), false) => {
                        self.apply_media_policy();
                        self.broadcast_state();
                    }
                    _ => {}
                }
                let _ = reply.send(result);
            }
            Command::Presence { reply } => {
                let _ = reply.send(self.seat_snapshots());
            }
            Command::TechNotice { to, text, reply } => {
                let sent = self.send_notice(self.floor.chair(), Sender::Technician, to, &text);
                if sent.is_ok() {
                    self.broadcast_state();
                }
                let _ = reply.send(sent);
            }
            Command::HelpDone { site, reply } => {
                let had = self.seats[site].help.take().is_some();
                if had {
                    self.log(site, "help_done", "by a technician");
                    self.broadcast_state();
                }
                let _ = reply.send(had);
            }
            Command::LinkQuality { site, loss_percent } => {
                let now = now_ms();
                if loss_percent >= CONSTRAINED_LOSS_PERCENT {
                    let newly = self.seats[site].constrained_until < now;
                    self.seats[site].constrained_until = now + CONSTRAINED_FOR_MS;
                    // Already constrained: its views have the small layers; only the time moves.
                    if newly && self.seats[site].downlink_bps.is_none() {
                        info!(site = %self.id(site), "{} loses {loss_percent:.1} % of its video: small layers for it", self.name(site));
                        self.update_views(&self.router.levels());
                    }
                }
            }
            Command::LinkEstimate { site, bps, loss_bps, lossy } => {
                if self.seats[site].holder.is_some() {
                    self.seats[site].downlink_loss_bps = loss_bps;
                    if lossy != self.seats[site].downlink_lossy {
                        let what = if lossy {
                            "loses packets at random: its audio keeps its redundancy"
                        } else {
                            "loses nothing at random: its audio's redundancy gives way to pictures when the line is tight"
                        };
                        info!(site = %self.id(site), "{}'s line {what}", self.name(site));
                    }
                    self.seats[site].downlink_lossy = lossy;
                    let before = self.seats[site].downlink_bps.replace(bps);
                    if before.is_none() {
                        info!(site = %self.id(site), kbps = (bps / 1000.0) as u64, "{}'s downlink is estimated: the layers it receives fit it", self.name(site));
                    }
                    self.update_views(&self.router.levels());
                    self.publish_view();
                }
            }
            Command::Evict { site, message } => {
                let seat = &mut self.seats[site];
                if let Some(h) = &seat.holder {
                    h.outbox.close_with(render::farewell(&Farewell::Revoked(message)));
                    let session = h.session;
                    self.leave(site, session, false);
                } else if seat.held_until.take().is_some() {
                    seat.since_ms = Some(now_ms());
                    self.log(site, "seat_released", "the site's key was re-issued");
                    self.give_up_floor(site, now_ms());
                    self.apply_media_policy();
                    self.broadcast_state();
                }
            }
            Command::Order { site, order, reply } => {
                let seat = &mut self.seats[site];
                let close = order == Order::Drop;
                let sent = seat.holder.as_ref().is_some_and(|h| {
                    if close {
                        h.outbox.close_with(render::order(order));
                        true
                    } else {
                        h.outbox.send(render::order(order)).is_ok()
                    }
                });
                if sent && close {
                    // The session closes itself on `dropped` and the page rejoins: hold the seat.
                    let session = seat.holder.as_ref().map(|h| h.session);
                    if let Some(session) = session {
                        self.leave(site, session, true);
                    }
                }
                let _ = reply.send(sent);
            }
        }
    }

    /// Reads the audio levels and announces the active speaker: at once when it changes,
    /// otherwise every other tick so level meters move.
    fn on_tick(&mut self, now: i64) {
        self.ticks += 1;
        self.release_expired_seats(now);
        if self.seats.iter().any(|s| s.knocked_ms.is_some_and(|k| now - k > KNOCK_SHOWN_MS)) {
            // A page that stopped asking is no longer waiting.
            for seat in &mut self.seats {
                seat.knocked_ms = seat.knocked_ms.filter(|k| now - *k <= KNOCK_SHOWN_MS);
            }
            self.broadcast_state();
        }
        if self.seats.iter().all(|s| s.holder.is_none()) {
            return;
        }
        if self.ticks.is_multiple_of(4) {
            self.measure_costs(now);
        }
        let levels = self.router.levels();
        // Who is heard in a large meeting follows the loudness.
        self.update_views(&levels);
        let eligible: Vec<bool> = self.seats.iter().map(|s| s.holder.is_some() && !(s.mute.audio || s.mute.hard)).collect();
        let before = self.speaker.current();
        let active = self.speaker.update(now, &levels, &eligible);
        if active != before || self.ticks.is_multiple_of(2) {
            let levels = levels.iter().enumerate().filter(|(i, _)| eligible[*i]).map(|(i, l)| (i, *l)).collect();
            self.send_all(Published::Speaking { active, levels });
        }
    }

    /// The recorder reported: a failure is logged and shown to every page.
    fn on_recording_status(&mut self, status: RecordingStatus) {
        let changed = status.state != self.recording.state || status.error != self.recording.error;
        if status.state == RecState::Failed && self.recording.state != RecState::Failed {
            let error = status.error.clone().unwrap_or_default();
            warn!("recording failed: {error}");
            self.log(self.floor.chair(), "recording_failed", &error);
        }
        self.recording = status;
        if changed {
            self.broadcast_state();
        }
    }

    fn name(&self, site: usize) -> &str {
        &self.settings.sites[site].name
    }

    fn id(&self, site: usize) -> &str {
        &self.settings.sites[site].id
    }

    fn join(&mut self, site: usize, session: Uuid, resume: Option<String>, outbox: Outbox) -> Result<Seat, JoinRefused> {
        let is_chair = self.settings.sites[site].role == SiteRole::Chair;
        let held = self.seats[site].held_until.is_some();
        if self.locked && !is_chair && self.seats[site].holder.is_none() && !held && !self.seats[site].admitted {
            let first = self.seats[site].knocked_ms.is_none();
            self.seats[site].knocked_ms = Some(now_ms());
            if first {
                info!(site = %self.id(site), "join refused: the conference is locked; {} waits for the chair to let it in", self.name(site));
                self.log(site, "waiting_locked", "");
                self.broadcast_state();
            }
            return Err(JoinRefused::Locked);
        }
        self.seats[site].held_until = None;
        self.seats[site].knocked_ms = None;
        // Whoever joins a locked conference has been let in; it may come back.
        self.seats[site].admitted = true;
        // The page that lost the connection proves it with its token; another device with
        // the site's key also gets the held seat (it is the same bridge point), but the log
        // tells the two apart.
        let resumed = held && resume.is_some() && resume == self.seats[site].resume_token;
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.seats[site].resume_token = Some(token.clone());
        let previous = self.seats[site].holder.replace(Holder { session, outbox });
        // A new session starts with an empty view, so its page is told its slots.
        self.seats[site].selection = Selection::default();
        self.seats[site].pages = 0;
        let replaced_previous = if let Some(old) = previous {
            info!(site = %self.id(site), %session, "{} joined again from a new session; the old session is replaced", self.name(site));
            old.outbox.close_with(render::farewell(&Farewell::Replaced));
            true
        } else {
            if held {
                info!(site = %self.id(site), %session, "{} reconnected; its seat, floor and queue place were kept", self.name(site));
            } else {
                info!(site = %self.id(site), %session, "{} joined", self.name(site));
                self.seats[site].since_ms = Some(now_ms());
            }
            self.floor.set_present(site, true, now_ms());
            false
        };
        let event = if replaced_previous {
            "rejoin"
        } else if resumed {
            "reconnect"
        } else if held {
            "join_held_seat"
        } else {
            "join"
        };
        self.log(site, event, &session.to_string());
        self.broadcast_state();
        Ok(Seat { replaced_previous, resumed: held, resume: token })
    }

    /// A session ended. `lost`: the connection went away without `leave`, so the seat, floor
    /// and queue place are held for the grace period; otherwise the site left for good.
    fn leave(&mut self, site: usize, session: Uuid, lost: bool) {
        let now = now_ms();
        let seat = &mut self.seats[site];
        if seat.holder.as_ref().is_none_or(|h| h.session != session) {
            return;
        }
        seat.holder = None;
        seat.downlink_bps = None;
        seat.downlink_lossy = false;
        self.floor.set_present(site, false, now);
        if self.sharing == Some(site) {
            self.sharing = None;
        }
        if lost && self.settings.seat_grace_ms > 0 {
            seat.held_until = Some(now + self.settings.seat_grace_ms);
            info!(site = %self.id(site), %session, "{} lost its connection; seat held for {} s", self.name(site), self.settings.seat_grace_ms / 1000);
            self.log(site, "connection_lost", &session.to_string());
        } else {
            seat.since_ms = Some(now);
            info!(site = %self.id(site), %session, "{} left", self.name(site));
            self.log(site, "leave", &session.to_string());
            self.give_up_floor(site, now);
        }
        self.apply_media_policy();
        self.broadcast_state();
    }

    /// A site that is gone for good: its floor goes back to the chair, its request is dropped.
    fn give_up_floor(&mut self, site: usize, now: i64) {
        let chair = self.floor.chair();
        let mut events = self.floor.revoke(chair, site, now).unwrap_or_default();
        events.extend(self.floor.cancel(site, now).unwrap_or_default());
        self.apply_floor_events(&events);
    }

    /// Seats whose grace ran out are released: the floor returns to the chair.
    fn release_expired_seats(&mut self, now: i64) {
        let expired: Vec<usize> = self.seats.iter().enumerate().filter(|(_, s)| s.held_until.is_some_and(|t| t <= now)).map(|(i, _)| i).collect();
        for site in &expired {
            let seat = &mut self.seats[*site];
            seat.held_until = None;
            seat.since_ms = Some(now);
            warn!(site = %self.id(*site), "{} did not come back within the grace period; its seat is released", self.name(*site));
            self.log(*site, "seat_released", "grace period over; floor returned to the chair");
            self.give_up_floor(*site, now);
        }
        if !expired.is_empty() {
            self.apply_media_policy();
            self.broadcast_state();
        }
    }

    /// Loads the state saved before a restart. Sites that were present get their seats held,
    /// so they come back to their floor and queue places. `None` if nothing was restored, or
    /// whether a recording was running.
    fn restore(&mut self) -> Option<bool> {
        let json = match blocking(|| self.store.load_conference_state()) {
            Ok(Some(json)) => json,
            Ok(None) => return None,
            Err(e) => {
                warn!("reading the saved conference state failed: {e}");
                return None;
            }
        };
        let saved: Persisted = match serde_json::from_str(&json) {
            Ok(p) => p,
            Err(e) => {
                warn!("the saved conference state is unreadable ({e}); starting fresh");
                return None;
            }
        };
        let n = self.settings.sites.len();
        if saved.floor.site_count() != n || saved.floor.chair() != self.floor.chair() {
            warn!("the saved conference state is for another site list; starting fresh");
            return None;
        }
        let now = now_ms();
        let mut floor = saved.floor;
        for site in 0..n {
            floor.set_present(site, false, now);
        }
        for id in &saved.expected {
            if let Some(i) = self.settings.site_index(id) {
                self.seats[i].held_until = Some(now + self.settings.seat_grace_ms.max(30_000));
            }
        }
        self.floor = floor;
        for (id, mute, before) in saved.mutes {
            if let Some(i) = self.settings.site_index(&id) {
                self.seats[i].mute = mute;
                self.seats[i].mute_before_floor = before;
            }
        }
        self.layout = saved.layout;
        self.locked = saved.locked;
        self.votes = saved.votes;
        self.notices = saved.notices;
        for (id, headcount) in saved.headcounts {
            if let Some(i) = self.settings.site_index(&id) {
                self.seats[i].headcount = Some(headcount);
            }
        }
        for id in &saved.admitted {
            if let Some(i) = self.settings.site_index(id) {
                self.seats[i].admitted = true;
            }
        }
        info!(held = self.seats.iter().filter(|s| s.held_until.is_some()).count(), "restored the conference state saved before the restart");
        Some(saved.recording)
    }

    /// Carries on with the conference that was running when the bridge stopped (an orderly
    /// restart, a crash or a power cut): its record in the store, and its recording, which
    /// continues in a new folder (the next segment; the interrupted one keeps what reached
    /// the disk, at most a second short).
    fn resume_meeting(&mut self, was_recording: bool) {
        let chair = self.floor.chair();
        match blocking(|| self.store.running_conference()) {
            Ok(Some(c)) => {
                info!(id = c.id, "the conference started before the restart carries on");
                self.meeting = Some((c.id, c.started_ms));
                self.log(chair, "bridge_restarted", "the conference carries on");
            }
            Ok(None) => {}
            Err(e) => warn!("reading the running conference failed: {e}; the chair can start it again"),
        }
        if !was_recording {
            return;
        }
        match self.recorder.start(&self.settings.title, self.meeting.map(|(id, _)| id)) {
            Ok(id) => {
                info!(recording = %id, "the recording continues after the restart");
                self.recording = self.recorder.status().borrow().clone();
                self.log(chair, "recording_started", &id);
            }
            Err(e) => {
                warn!("the recording could not continue after the restart: {e}");
                self.log(chair, "recording_failed", &format!("not continued after a restart: {e}"));
            }
        }
    }

    fn persisted_json(&self) -> String {
        let saved = Persisted {
            floor: self.floor.clone(),
            mutes: self.seats.iter().enumerate().map(|(i, s)| (self.id(i).to_string(), s.mute, s.mute_before_floor)).collect(),
            layout: self.layout,
            locked: self.locked,
            expected: self
                .seats
                .iter()
                .enumerate()
                .filter(|(_, s)| s.holder.is_some() || s.held_until.is_some())
                .map(|(i, _)| self.id(i).to_string())
                .collect(),
            admitted: self.seats.iter().enumerate().filter(|(_, s)| s.admitted).map(|(i, _)| self.id(i).to_string()).collect(),
            recording: self.recording.state == RecState::Recording,
            votes: self.votes.clone(),
            notices: self.notices.clone(),
            headcounts: self.seats.iter().enumerate().filter_map(|(i, s)| Some((self.id(i).to_string(), s.headcount?))).collect(),
        };
        serde_json::to_string(&saved).unwrap_or_default()
    }

    fn site_index(&self, id: &str) -> Result<usize, Refused> {
        self.settings.site_index(id).ok_or_else(|| Refused::new(Reason::SiteUnknown, format!("no site with id {:?}", id.chars().take(64).collect::<String>())))
    }

    fn act(&mut self, site: usize, session: Uuid, action: Action) -> Result<(), Refused> {
        if self.seats[site].holder.as_ref().is_none_or(|h| h.session != session) {
            return Err(Refused::new(Reason::NotJoined, "this session no longer holds the site's seat"));
        }
        let is_chair = self.settings.sites[site].role == SiteRole::Chair;
        let chair_only = matches!(
            action,
            Action::GrantFloor { .. }
                | Action::DenyFloor { .. }
                | Action::GiveFloor { .. }
                | Action::RevokeFloor { .. }
                | Action::MuteSite { .. }
                | Action::MuteAll { .. }
                | Action::SetLayout { .. }
                | Action::SetAgenda { .. }
                | Action::NextItem
                | Action::Lock { .. }
                | Action::Admit { .. }
                | Action::StartConference
                | Action::EndConference
                | Action::StartRecording
                | Action::StopRecording
                | Action::OpenVote { .. }
                | Action::CloseVote
                | Action::SendNotice { .. }
        );
        if chair_only && !is_chair {
            warn!(site = %self.id(site), ?action, "refused: chair command from a site");
            return Err(Refused::new(Reason::NotChair, "only the chair (HQ) may do this"));
        }
        let now = now_ms();
        let events = match action {
            Action::Mute { audio, video } => {
                let mute = &mut self.seats[site].mute;
                if audio == Some(false) && mute.hard {
                    return Err(Refused::new(Reason::HardMuted, "the chair has muted this site; ask for the floor to speak"));
                }
                mute.audio = audio.unwrap_or(mute.audio);
                mute.video = video.unwrap_or(mute.video);
                let detail = format!("audio_muted={} video_muted={}", mute.audio, mute.video);
                self.log(site, "mute", &detail);
                vec![]
            }
            Action::RequestFloor { topic } => self.floor.request(site, topic, now).map_err(Refused::of)?,
            Action::CancelFloor => self.floor.cancel(site, now).map_err(Refused::of)?,
            Action::ReleaseFloor => self.floor.release(site, now).map_err(Refused::of)?,
            Action::GrantFloor { request } => self.floor.grant(site, RequestId(request), now).map_err(Refused::of)?,
            Action::DenyFloor { request } => self.floor.deny(site, RequestId(request), now).map_err(Refused::of)?,
            Action::GiveFloor { site: target } => {
                let target = self.site_index(&target)?;
                self.floor.give(site, target, now).map_err(Refused::of)?
            }
            Action::RevokeFloor { site: target } => {
                let target = self.site_index(&target)?;
                self.floor.revoke(site, target, now).map_err(Refused::of)?
            }
            Action::MuteSite { site: target, muted } => {
                let target = self.site_index(&target)?;
                if self.settings.sites[target].role == SiteRole::Chair {
                    return Err(Refused::new(Reason::InvalidTarget, "the chair's own site cannot be hard-muted"));
                }
                self.seats[target].mute.hard = muted;
                self.log(target, if muted { "hard_mute" } else { "hard_mute_released" }, "by the chair");
                vec![]
            }
            Action::MuteAll { muted } => {
                for (i, s) in self.settings.sites.iter().enumerate() {
                    if s.role != SiteRole::Chair {
                        self.seats[i].mute.hard = muted;
                    }
                }
                self.log(site, if muted { "mute_all" } else { "unmute_all" }, "by the chair");
                vec![]
            }
            Action::SetLayout { layout } => {
                self.layout = layout;
                self.log(site, "layout", &format!("{layout:?}"));
                vec![]
            }
            Action::SetAgenda { items } => {
                let items = items.into_iter().map(|i| self.agenda_item(i)).collect::<Result<Vec<_>, _>>()?;
                let events = self.floor.set_agenda(site, items, now).map_err(Refused::of)?;
                self.log_programme(site);
                events
            }
            Action::NextItem => self.floor.next_item(site, now).map_err(Refused::of)?,
            Action::Lock { locked } => {
                self.locked = locked;
                // Locking admits the sites of this meeting: present, or held for reconnection.
                // A ward whose PC was off longer than the seat hold comes back in directly.
                for seat in &mut self.seats {
                    seat.admitted = locked && (seat.holder.is_some() || seat.held_until.is_some());
                    seat.knocked_ms = None;
                }
                self.log(site, if locked { "locked" } else { "unlocked" }, "by the chair");
                vec![]
            }
            Action::Admit { site: target } => {
                let target = self.site_index(&target)?;
                self.seats[target].admitted = true;
                self.seats[target].knocked_ms = None;
                self.log(target, "admitted", "by the chair");
                vec![]
            }
            Action::ShareStart => {
                if !is_chair && !self.floor.holders().iter().any(|h| h.site == site) {
                    return Err(Refused::new(Reason::NotHolder, "only the chair or the site holding the floor may share"));
                }
                self.sharing = Some(site);
                self.log(site, "share_start", "");
                vec![]
            }
            Action::StartConference => {
                // Rare and quick: done on this task (see `blocking`) so every later event belongs to it.
                match blocking(|| self.store.start_conference(&self.settings.title)) {
                    Ok(c) => {
                        info!(id = c.id, "conference started");
                        self.meeting = Some((c.id, c.started_ms));
                        for (i, s) in self.seats.iter().enumerate() {
                            if s.holder.is_some() {
                                self.log(i, "join", "present at the start");
                            }
                        }
                        self.log(site, "conference_started", &c.id.to_string());
                        self.log_programme(site);
                    }
                    Err(e) => return Err(Refused::new(Reason::Failed, format!("cannot record the conference: {e}"))),
                }
                vec![]
            }
            Action::EndConference => {
                for (i, s) in self.seats.iter().enumerate() {
                    if s.holder.is_some() {
                        self.log_now(i, "leave", "present at the end");
                    }
                }
                if self.recording.state == RecState::Recording {
                    self.recorder.stop();
                    self.log_now(site, "recording_stopped", "the conference ended");
                }
                self.log_now(site, "conference_ended", "");
                if let Err(e) = blocking(|| self.store.end_conference()) {
                    warn!("ending the conference record failed: {e}");
                }
                info!("conference ended");
                self.meeting = None;
                vec![]
            }
            Action::ViewPage { page } => {
                self.seats[site].page = page;
                vec![]
            }
            Action::StartRecording => {
                let conference = self.meeting.map(|(id, _)| id);
                match self.recorder.start(&self.settings.title, conference) {
                    Ok(id) => {
                        // The recorder's own report follows; show the indicator at once.
                        self.recording = self.recorder.status().borrow().clone();
                        self.log(site, "recording_started", &id);
                    }
                    Err(e) => {
                        warn!("recording not started: {e}");
                        return Err(Refused::of(e));
                    }
                }
                vec![]
            }
            Action::StopRecording => {
                if self.recording.state == RecState::Recording {
                    self.log(site, "recording_stopped", "by the chair");
                }
                self.recorder.stop();
                self.recording = self.recorder.status().borrow().clone();
                vec![]
            }
            Action::Attendance { attendees, headcount } => {
                if self.meeting.is_none() {
                    return Err(Refused::new(Reason::NoConference, "the chair has not started the conference yet"));
                }
                if let Some(h) = headcount {
                    self.seats[site].headcount = Some(h.clamp(0, u32::MAX as i64) as u32);
                }
                let (store, id) = (self.store.clone(), self.id(site).to_string());
                tokio::task::spawn_blocking(move || store.set_attendance(&id, &attendees, headcount));
                vec![]
            }
            Action::OpenVote { question, options } => {
                let vote = self.votes.open(&question, options, now).map_err(Refused::of)?;
                let params = serde_json::json!({"vote": vote.id, "options": vote.options}).to_string();
                let detail = vote.question.clone();
                info!(vote = vote.id, "vote opened: {detail}");
                self.log_with(site, "vote_opened", &detail, Some(params));
                vec![]
            }
            Action::VoteCounts { vote, counts } => {
                let line = counts.iter().map(u32::to_string).collect::<Vec<_>>().join("/");
                let params = serde_json::json!({"vote": vote, "counts": counts}).to_string();
                self.votes.tally(vote, site, counts, self.seats[site].headcount).map_err(Refused::of)?;
                self.log_with(site, "vote_counts", &line, Some(params));
                vec![]
            }
            Action::CloseVote => {
                let vote = self.votes.close(now).map_err(Refused::of)?;
                let tallies: serde_json::Map<String, serde_json::Value> =
                    vote.tallies.iter().map(|(s, c)| (self.settings.sites[*s].id.clone(), serde_json::json!(c))).collect();
                let params =
                    serde_json::json!({"vote": vote.id, "question": vote.question, "options": vote.options, "tallies": tallies, "totals": vote.totals()});
                let detail = vote.options.iter().zip(vote.totals()).map(|(o, t)| format!("{o}: {t}")).collect::<Vec<_>>().join("; ");
                info!(vote = vote.id, "vote closed: {detail}");
                self.log_with(site, "vote_closed", &detail, Some(params.to_string()));
                vec![]
            }
            Action::SendNotice { site: to, text } => {
                let to = to.map(|id| self.site_index(&id)).transpose()?;
                self.send_notice(site, Sender::Chair, to, &text)?;
                vec![]
            }
            Action::AckNotice { notice } => {
                if self.notices.ack(notice, site).map_err(Refused::of)? {
                    self.log(site, "notice_acked", &notice.to_string());
                }
                vec![]
            }
            Action::AskHelp { text } => {
                let text = if text.trim().is_empty() { String::new() } else { notice::text_of(&text).map_err(Refused::of)? };
                warn!(site = %self.id(site), "{} asks the technicians for help: {text}", self.name(site));
                self.log(site, "help_requested", &text);
                self.seats[site].help = Some(HelpRequest { since_ms: now, text });
                vec![]
            }
            Action::ShareStop => {
                if self.sharing == Some(site) || (is_chair && self.sharing.is_some()) {
                    self.sharing = None;
                    self.log(site, "share_stop", "");
                }
                vec![]
            }
        };
        self.apply_floor_events(&events);
        Ok(())
    }

    fn agenda_item(&self, spec: AgendaItem<String>) -> Result<AgendaItem, Refused> {
        let site = match &spec.site {
            Some(id) => Some(
                self.settings
                    .site_index(id)
                    .ok_or_else(|| Refused::new(Reason::InvalidAgenda, format!("programme item {:?} names unknown site {id:?}", spec.title)))?,
            ),
            None => None,
        };
        Ok(AgendaItem { title: spec.title, kind: spec.kind, site, planned_minutes: spec.planned_minutes })
    }

    /// The side effects of floor changes: giving the floor unmutes the site, ending it
    /// restores the mute it had; everyone is told; the event log records it.
    fn apply_floor_events(&mut self, events: &[FloorEvent]) {
        for ev in events {
            let Some((id, site, step)) = ev.request_step() else {
                self.log_programme_event(ev);
                continue;
            };
            let seat = &mut self.seats[site];
            match ev {
                FloorEvent::Granted { .. } => {
                    seat.mute_before_floor.get_or_insert(seat.mute);
                    seat.mute.audio = false;
                    seat.mute.hard = false;
                }
                FloorEvent::Revoked { .. } | FloorEvent::Released { .. } => {
                    if let Some(before) = seat.mute_before_floor.take() {
                        seat.mute.audio = before.audio;
                        seat.mute.hard = before.hard;
                    }
                    // A ward's share ends with its floor.
                    if self.sharing == Some(site) {
                        self.sharing = None;
                    }
                }
                _ => {}
            }
            let step_name = step.name();
            info!(site = %self.id(site), request = id.0, "floor {step_name}");
            let topic = self.floor.request_by_id(id).and_then(|r| r.topic.clone()).filter(|_| step == RequestStep::Requested);
            let params = topic.map(|t| serde_json::json!({"topic": t}).to_string());
            self.log_with(site, &format!("floor_{step_name}"), &id.0.to_string(), params);
            self.send_all(Published::Floor(*ev));
        }
    }

    /// The event log's record of the programme's own floor events (not a request's steps).
    fn log_programme_event(&self, ev: &FloorEvent) {
        match *ev {
            FloorEvent::ItemStarted { index } => {
                // index, planned minutes and title: the minutes report needs all three.
                let item = self.floor.agenda().get(index);
                let (title, planned) = item.map(|i| (i.title.clone(), i.planned_minutes)).unwrap_or_default();
                let params = item.map(|i| serde_json::json!({"kind": i.kind, "site": i.site.map(|s| self.id(s))}).to_string());
                self.log_with(self.floor.chair(), "agenda_item_started", &format!("{index}\t{planned}\t{title}"), params);
            }
            FloorEvent::SpeakerAbsent { index, site } => {
                info!(site = %self.id(site), "programme item {} is {}'s speech, but it is not connected: nobody is given the floor", index + 1, self.name(site));
                self.log(site, "agenda_speaker_absent", &index.to_string());
            }
            FloorEvent::ItemEnded { index } => self.log(self.floor.chair(), "agenda_item_ended", &index.to_string()),
            FloorEvent::PresenceChanged { .. } => {}
            FloorEvent::Requested { .. }
            | FloorEvent::Cancelled { .. }
            | FloorEvent::Granted { .. }
            | FloorEvent::Denied { .. }
            | FloorEvent::Revoked { .. }
            | FloorEvent::Released { .. } => {}
        }
    }

    /// Publishes who is forwarded: a site's audio flows unless it or the chair muted it;
    /// its video flows unless it turned its camera off; content flows only from the site
    /// that is sharing.
    fn apply_media_policy(&self) {
        let policy = self.seats.iter().enumerate().map(|(i, s)| [s.mute.audio || s.mute.hard, s.mute.video, self.sharing != Some(i)]).collect();
        self.router.set_policy(policy);
    }

    /// Site ids and names, for what `signal` renders.
    fn sites(&self) -> Sites<'_> {
        Sites(&self.settings.sites)
    }

    /// Every seat as the pages and the REST API see it.
    fn seat_snapshots(&self) -> Vec<SeatSnapshot> {
        self.seats
            .iter()
            .map(|seat| SeatSnapshot {
                present: seat.holder.is_some(),
                since_ms: seat.since_ms,
                audio_muted: seat.mute.audio,
                video_muted: seat.mute.video,
                hard_muted: seat.mute.hard,
                reconnecting: seat.holder.is_none() && seat.held_until.is_some(),
                held_until_ms: seat.held_until.filter(|_| seat.holder.is_none()),
                waiting: self.locked && seat.knocked_ms.is_some(),
                help: seat.help.clone(),
            })
            .collect()
    }

    /// Records the planned programme, so the minutes list every item, reached or not.
    fn log_programme(&self, site: usize) {
        let params = serde_json::json!({"items": render::programme(self.floor.agenda(), &self.sites())}).to_string();
        self.log_with(site, "programme", &format!("{} items", self.floor.agenda().len()), Some(params));
    }

    /// The whole conference, as every page shows it.
    fn snapshot(&self) -> Snapshot {
        let now = now_ms();
        let current = self.floor.current_item(now).map(|c| CurrentItem {
            index: c.index,
            started_ms: c.started_ms,
            planned_ms: c.planned_ms,
            speaker_absent: c.item.kind == AgendaKind::Speech
                && c.item.site.is_some_and(|s| s != self.floor.chair() && !self.floor.is_present(s) && !self.floor.holders().iter().any(|h| h.site == s)),
        });
        Snapshot {
            now_ms: now,
            seats: self.seat_snapshots(),
            holders: self.floor.holders(),
            queue: self.floor.queue(now),
            layout: self.layout,
            locked: self.locked,
            sharing: self.sharing,
            meeting: self.meeting,
            recording: match self.recording.state {
                RecState::Idle => None,
                state => Some(Recording {
                    failed: state != RecState::Recording,
                    started_ms: self.recording.started_ms.unwrap_or(0),
                    error: self.recording.error.clone(),
                }),
            },
            agenda: self.floor.agenda().to_vec(),
            current,
            vote: self.votes.current().cloned(),
            notices: self.notices.latest().cloned().collect(),
        }
    }

    /// Pushes the state to every session. A full outbox loses this copy only: the next
    /// change sends the whole state again.
    fn broadcast_state(&mut self) {
        self.send_all(Published::State(Box::new(self.snapshot())));
        self.publish_view();
        let levels = self.router.levels();
        self.update_views(&levels);
        self.persist.send_replace(Some(self.persisted_json()));
    }

    /// Recomputes what every present site receives; tells each page whose slots changed, and
    /// the router if anything did.
    fn update_views(&mut self, levels: &[f32]) {
        let holders = self.floor.holders();
        let candidates: Vec<Candidate> = self
            .seats
            .iter()
            .enumerate()
            .map(|(i, s)| Candidate {
                present: s.holder.is_some(),
                video: !s.mute.video,
                audio: !(s.mute.audio || s.mute.hard),
                level: levels.get(i).copied().unwrap_or(0.0),
                holds_floor: holders.iter().any(|h| h.site == i),
            })
            .collect();
        let shape = Shape { audio_slots: self.settings.audio_slots, video_slots: self.settings.video_slots, grid: self.layout == Layout::Grid };
        let chair = self.floor.chair();
        let mut changed = false;
        for r in 0..self.seats.len() {
            let mut paused_changed = false;
            let (new, pages) = if self.seats[r].holder.is_some() {
                let pages = view::pages(&candidates, r, chair, shape);
                let mut sel = view::select(&candidates, r, chair, self.sharing, self.seats[r].page, shape, &self.seats[r].selection);
                let wanted = view::cost(&sel, &self.media_costs);
                let mut limited_by = None;
                if self.seats[r].constrained_until > now_ms() && self.seats[r].downlink_bps.is_none() {
                    view::constrain(&mut sel);
                    limited_by = Some("loss");
                }
                let paused = match self.seats[r].downlink_bps {
                    Some(bps) => self.fit_downlink(r, &mut sel, bps),
                    None => Vec::new(),
                };
                if view::cost(&sel, &self.media_costs) < wanted && limited_by.is_none() {
                    limited_by = Some("estimate");
                }
                // Held back by its estimate: the site's peer probes the line for what the
                // tiles want (the estimate that would give it at once).
                self.router.set_wanted_downlink(r, (limited_by == Some("estimate")).then_some(wanted as f64 / RAISE_SHARE));
                if limited_by != self.seats[r].limited_by {
                    let kbps = self.seats[r].downlink_bps.map_or(0, |b| (b / 1000.0) as u64);
                    match limited_by {
                        Some(why) => info!(site = %self.id(r), why, kbps, "{} receives smaller layers than its tiles want", self.name(r)),
                        None => info!(site = %self.id(r), kbps, "{} receives the layers its tiles want", self.name(r)),
                    }
                }
                self.seats[r].limited_by = limited_by;
                if paused != self.seats[r].paused {
                    let names: Vec<&str> = paused.iter().map(|&p| self.name(p)).collect();
                    let kbps = self.seats[r].downlink_bps.map_or(0, |b| (b / 1000.0) as u64);
                    info!(site = %self.id(r), kbps, paused = ?names, "{}'s line pauses {} camera(s)", self.name(r), names.len());
                    self.seats[r].paused = paused;
                    paused_changed = true;
                }
                let before = &self.seats[r].selection;
                if sel.video_temporal != before.video_temporal || sel.audio_plain != before.audio_plain {
                    debug!(site = %self.id(r), layers = ?sel.video_layers, temporal = ?sel.video_temporal, audio_plain = sel.audio_plain, "{}'s line is fitted: its layers, frames and audio", self.name(r));
                }
                (sel, pages)
            } else {
                self.router.set_wanted_downlink(r, None);
                (Selection::default(), 0)
            };
            if new == self.seats[r].selection && pages == self.seats[r].pages && !paused_changed {
                continue;
            }
            changed |= new != self.seats[r].selection;
            self.seats[r].selection = new;
            self.seats[r].pages = pages;
            if self.seats[r].holder.is_some() {
                self.seats[r].page = self.seats[r].page.min(pages - 1);
            }
            if let Some(h) = &self.seats[r].holder {
                let page = self.seats[r].page;
                let sel = &self.seats[r].selection;
                let view =
                    PageView { video: sel.video.clone(), audio: sel.audio.clone(), content: sel.content, page, pages, paused: self.seats[r].paused.clone() };
                h.outbox.set_view(render::view(&view, &self.sites()));
            }
        }
        if changed {
            self.router.set_selections(self.seats.iter().map(|s| s.selection.clone()).collect());
        }
    }

    /// What each site's audio and camera layers cost since the last reading, into
    /// [`Self::media_costs`].
    fn measure_costs(&mut self, now: i64) {
        let bytes = self.router.received_bytes();
        if let Some((before, at)) = self.received_bytes.as_ref().filter(|(_, at)| now > *at) {
            let bps = |b: u64, a: u64| (b.saturating_sub(a) as f64 * 8.0 * 1000.0 / (now - at) as f64) as u64;
            let rates: Vec<Received> = bytes
                .iter()
                .zip(before)
                .map(|(b, a)| Received {
                    audio: bps(b.audio, a.audio),
                    audio_redundant: bps(b.audio_redundant, a.audio_redundant),
                    video: std::array::from_fn(|l| bps(b.video[l], a.video[l])),
                    temporal: std::array::from_fn(|l| std::array::from_fn(|t| bps(b.temporal[l][t], a.temporal[l][t]))),
                })
                .collect();
            self.media_costs.update(&rates);
        }
        self.received_bytes = Some((bytes, now));
    }

    /// Fits what `r` receives into its downlink estimate. What the tiles want within 70 % of
    /// it is given at once; otherwise the layers are fitted into 85 % of it when that means
    /// less than now (at once), or into 70 % when it means more, no more than once per
    /// [`RAISE_EVERY_MS`]: a layer raised too eagerly congests the line it was meant to fill.
    fn fit_downlink(&mut self, r: usize, sel: &mut Selection, bps: f64) -> Vec<usize> {
        let now = now_ms();
        let costs = &self.media_costs;
        let current = view::cost(&self.seats[r].selection, costs);
        let down = (bps * LOWER_SHARE) as u64;
        let up = (bps * RAISE_SHARE) as u64;
        if view::cost(sel, costs) <= up {
            // Room to spare: every tile gets what it wants, at once (the chair gave the floor).
            return Vec::new();
        }
        let mut budget = if down < current {
            down
        } else if now - self.seats[r].raised_ms < RAISE_EVERY_MS {
            current
        } else {
            up.max(current)
        };
        // Delay alone lowers layers and frames, never pauses a camera: a receiving computer
        // too busy to take packets in time shows delay as a weak line does, but only a line
        // that cannot carry the least of every camera loses packets.
        let redundancy = if self.seats[r].downlink_lossy { Redundancy::Kept } else { Redundancy::Spared };
        let low = view::cost_at_least(sel, redundancy, costs);
        if self.seats[r].downlink_loss_bps * 0.85 >= low as f64 {
            budget = budget.max(low);
        }
        let paused = view::fit(sel, budget, redundancy, costs);
        if view::cost(sel, costs) > current {
            self.seats[r].raised_ms = now;
        }
        paused
    }

    fn publish_view(&self) {
        let holders = self.floor.holders();
        let view = self
            .seats
            .iter()
            .enumerate()
            .map(|(i, s)| SiteView {
                present: s.holder.is_some(),
                audio_expected: !(s.mute.audio || s.mute.hard),
                video_expected: !s.mute.video,
                holds_floor: holders.iter().any(|h| h.site == i),
                held_until_ms: s.held_until,
                receiving: Receiving {
                    cameras: s
                        .selection
                        .video
                        .iter()
                        .enumerate()
                        .filter_map(|(slot, site)| {
                            let kind = crate::media::Kind::Video;
                            Some(((*site)?, Some((s.selection.layer(kind, slot), s.selection.temporal(kind, slot)))))
                        })
                        .chain(s.paused.iter().map(|&p| (p, None)))
                        .collect(),
                    limited_by: s.limited_by,
                    audio_plain: s.selection.audio_plain,
                },
            })
            .collect();
        self.view.send_replace(Arc::new(view));
    }

    /// The same message to every page, serialised once.
    /// Sends `msg` to every present page, serialised once. The state and the speaking levels
    /// replace what a page has not read yet (it always gets the newest); anything else queues,
    /// and a page too far behind loses it (logged, unless its session has already ended).
    fn send_all(&self, p: Published) {
        let out = Outgoing::shared(&render::message(&p, &self.sites()));
        for (i, seat) in self.seats.iter().enumerate() {
            let Some(h) = &seat.holder else { continue };
            match &p {
                Published::State(_) => h.outbox.set_state(out.clone()),
                Published::Speaking { .. } => h.outbox.set_speaking(out.clone()),
                _ => {
                    if h.outbox.send(out.clone()) == Err(NotQueued::Full) {
                        warn!(site = %self.settings.sites[i].id, "signalling outbox full; a message was skipped (the page still gets the next state)");
                    }
                }
            }
        }
    }

    /// An event that must be written before what follows it (the end of a conference).
    /// Records an event now; the same as [`Actor::log`] (kept for the places that say the event
    /// must be written before what follows: it is, as the writer keeps the order).
    fn log_now(&self, site: usize, kind: &str, detail: &str) {
        self.log(site, kind, detail);
    }

    /// Event log writes go to a blocking thread: the actor never waits on the disk.
    /// Records an event of `site` in the event log, stamped with the time and the conference
    /// it happened in (written in the actor's order by the store's one writer).
    fn log(&self, site: usize, kind: &str, detail: &str) {
        self.log_with(site, kind, detail, None);
    }

    /// As [`Actor::log`], with the event's numbers as JSON `params`.
    fn log_with(&self, site: usize, kind: &str, detail: &str, params: Option<String>) {
        let entry = Entry::now(Some(&self.settings.sites[site].id), kind, detail).with_params(params).of_conference(self.meeting.map(|(id, _)| id));
        self.store.record(entry);
    }

    /// A written notice from the chair or a technician (`by`: the site it is logged under).
    fn send_notice(&mut self, by: usize, from: Sender, to: Option<usize>, text: &str) -> Result<u64, Refused> {
        let notice = self.notices.send(from, to, text, now_ms()).map_err(Refused::of)?;
        let (id, text) = (notice.id, notice.text.clone());
        let to_id = to.map(|i| self.id(i).to_string());
        info!(notice = id, to = to_id.as_deref().unwrap_or("all"), ?from, "notice sent: {text}");
        let params = serde_json::json!({"notice": id, "to": to_id, "from": from}).to_string();
        self.log_with(by, "notice_sent", &text, Some(params));
        Ok(id)
    }
}

/// Runs a short blocking store call from the actor's task. On the multi-threaded runtime the
/// worker hands its other tasks to the rest of the pool first (`block_in_place`), so pages
/// and media are not held up behind the disk; the actor itself waits, which keeps the order
/// of what it decides (events after `start_conference` belong to that conference).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
