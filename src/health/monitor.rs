//! The health monitor: one task that owns alarm state, the 5-minute history of every site and
//! the pages' own reports, and answers the technician page, `/api/health` and `/metrics`.
//!
//! Twice a second it reads the statistics board (written by the media path), the audio
//! levels, the conference's view of each site (present, held for reconnection, muted, floor)
//! and the latest page reports, feeds the pure [`AlarmEngine`], records changes in the event
//! log, and keeps a ring of samples for the sparklines. It decides which numbers are current:
//! a stream silent for [`STALE_AFTER_MS`] shows no rates, a site silent for
//! [`STALLED_AFTER_MS`] is `stalled`, a site whose connection dropped is `held`. It never
//! touches media or sockets.

use super::alarms::{ActiveAlarm, AlarmChange, AlarmEngine, Reason, RefusalChange, RefusalWatch, SiteSnapshot, Thresholds, VideoCause};
use super::board::{Budget, InboundSnapshot, Path, StatsBoard};
use crate::conference::SiteView;
use crate::config::Settings;
use crate::domain::SiteRole;
use crate::media::router::Router;
use crate::media::Kind;
use crate::recording::composer::CompositionFailure;
use crate::recording::{RecState, RecordingStatus};
use crate::signal::protocol::ClientReport;
use crate::store::journal::Entry;
use crate::store::{now_ms, Store, WriteFault};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Samples kept per site: five minutes at one per second.
const HISTORY: usize = 300;
/// A page report older than this is ignored.
const REPORT_FRESH: Duration = Duration::from_secs(12);
/// The `site` of alarms about the bridge itself rather than one site (not a valid site id).
pub(crate) const BRIDGE: &str = "@bridge";
/// A stream with no packet for this long has no current rates (its 2 s window is empty):
/// the page shows none rather than the last ones.
pub(crate) const STALE_AFTER_MS: f64 = 2000.0;
/// A site with no packet of any kind for this long is shown as `stalled` (audio alone
/// sends 50 packets a second; a muted microphone still sends).
pub(crate) const STALLED_AFTER_MS: f64 = 1500.0;

/// One point of a sparkline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sample {
    pub(crate) t_ms: i64,
    pub(crate) loss_percent: f64,
    pub(crate) rtt_ms: Option<f64>,
    pub(crate) bitrate_in_bps: f64,
    pub(crate) level: f64,
}

/// A site's row on the technician page.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SiteHealth {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Connected now (a held seat is not).
    pub(crate) present: bool,
    /// `absent`; `alarm` (any alarm active); `held` (its connection dropped, its seat is
    /// kept); `stalled` (connected, nothing arrives); `ok`.
    pub(crate) status: &'static str,
    /// `connected`, `held` (connection lost, seat kept until `held_until_ms`) or `absent`.
    pub(crate) connection: &'static str,
    /// Unix ms when a held seat is given up; `held_left_ms` of it remain.
    pub(crate) held_until_ms: Option<i64>,
    pub(crate) held_left_ms: Option<i64>,
    /// `flowing`, `stalled` (nothing for [`STALLED_AFTER_MS`]) or `none` (nothing since
    /// joining, or not connected). Only `flowing` numbers are current.
    pub(crate) media: &'static str,
    pub(crate) audio_in: InboundSnapshot,
    pub(crate) video_in: InboundSnapshot,
    pub(crate) bitrate_out_bps: f64,
    pub(crate) packets_out_total: u64,
    pub(crate) rtt_ms: Option<f64>,
    /// The bridge's estimate of what the site's downlink takes, bit/s (from its browser's
    /// transport-cc feedback; `None` before any or on the webrtc engine), and how long the
    /// bridge's packets wait in the line's queue, ms.
    pub(crate) downlink_bps: Option<f64>,
    pub(crate) queue_ms: Option<f64>,
    /// The cameras it receives, at which layer (`low`, `medium`, `high`, or `paused`: its
    /// line cannot take even the least of it) and how many of its frames, and what limited
    /// them (`estimate`, `loss`, or nothing: every camera at the layer its tile wants).
    pub(crate) receiving: Vec<ReceivedCamera>,
    pub(crate) limited_by: Option<&'static str>,
    /// The audio it receives goes without its redundancy (RFC 2198): its line is too tight
    /// for everything and loses nothing at random, so the room goes to the pictures.
    pub(crate) audio_plain: bool,
    /// The site's line ceilings, kbit/s: as configured (`[[sites]] downlink_kbps`,
    /// `uplink_kbps`) or as a technician set them since (`POST /api/tech/line`).
    pub(crate) line: crate::config::LineLimits,
    /// How the site is connected, as the server's ICE sees it (host, srflx, prflx, relay).
    pub(crate) candidate: String,
    /// The media path in one word: `udp` (direct), `tcp` (ICE over TCP: UDP blocked) or
    /// `relay` (through TURN); empty until known.
    pub(crate) path: &'static str,
    pub(crate) audio_level: f64,
    pub(crate) last_packet_age_ms: Option<f64>,
    /// The page's own report, when fresh.
    pub(crate) client: Option<ClientReport>,
    pub(crate) alarms: Vec<AlarmView>,
    pub(crate) history: Vec<Sample>,
}

/// One camera a site receives, for the technicians' page.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReceivedCamera {
    pub(crate) site: String,
    pub(crate) layer: &'static str,
    /// How many of the layer's frames: `all`, `half` or `quarter` (a line that cannot take
    /// the low layer whole gets fewer frames before the camera is paused).
    pub(crate) frames: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlarmView {
    pub(crate) site: String,
    pub(crate) alarm: &'static str,
    pub(crate) since_ms: i64,
    /// Why, in English (logs, older pages).
    pub(crate) detail: String,
    /// Why, as a code and its numbers: the technicians' page words it.
    pub(crate) reason: Reason,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct HealthView {
    /// `ok` or `degraded` (any alarm active).
    pub(crate) status: &'static str,
    pub(crate) sites: Vec<SiteHealth>,
    pub(crate) alarms: Vec<AlarmView>,
}

/// One check of the readiness report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) pass: bool,
    /// What was found, in English.
    pub(crate) detail: String,
    /// What was found, as a code and its numbers: the technicians' page words it.
    pub(crate) reason: Finding,
}

/// What one readiness check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub(crate) enum Finding {
    NotJoined,
    /// The connection dropped; the seat is kept `seconds_left` more.
    Held {
        seconds_left: i64,
    },
    Joined,
    AudioPackets {
        pps: f64,
    },
    NoReport,
    ReceivesAudio,
    ReceivesNoAudio,
    Level {
        level: f64,
    },
    Frames {
        fps: f64,
    },
    Rtt {
        ms: f64,
        limit: f64,
    },
    RttUnknown,
    Loss {
        percent: f64,
        limit: f64,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::NotJoined => f.write_str("the site has not joined"),
            Finding::Held { seconds_left } => write!(f, "connection lost; seat held {seconds_left} s more"),
            Finding::Joined => Ok(()),
            Finding::AudioPackets { pps } => write!(f, "{pps:.0} audio packets/s"),
            Finding::NoReport => f.write_str("no report from the site's page yet"),
            Finding::ReceivesAudio => f.write_str("the page receives audio"),
            Finding::ReceivesNoAudio => f.write_str("the page receives no audio"),
            Finding::Level { level } => write!(f, "level {level:.2}"),
            Finding::Frames { fps } => write!(f, "{fps:.1} frames/s"),
            Finding::Rtt { ms, limit } => write!(f, "{ms:.0} ms (limit {limit:.0})"),
            Finding::RttUnknown => f.write_str("not measured yet"),
            Finding::Loss { percent, limit } => write!(f, "{percent:.1} % (limit {limit:.0} %)"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SiteReadiness {
    pub(crate) site: String,
    pub(crate) name: String,
    pub(crate) pass: bool,
    pub(crate) checks: Vec<Check>,
}

enum Command {
    Report { site: usize, report: ClientReport },
    View { history: bool, reply: oneshot::Sender<HealthView> },
    Readiness { reply: oneshot::Sender<Vec<SiteReadiness>> },
}

#[derive(Clone)]
pub(crate) struct HealthHandle {
    tx: mpsc::Sender<Command>,
}

impl HealthHandle {
    /// A page's report; dropped if the monitor is busy (the next one comes in seconds).
    pub(crate) fn client_report(&self, site: usize, report: ClientReport) {
        let _ = self.tx.try_send(Command::Report { site, report });
    }

    pub(crate) async fn view(&self, history: bool) -> Option<HealthView> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::View { history, reply }).await.ok()?;
        rx.await.ok()
    }

    pub(crate) async fn readiness(&self) -> Vec<SiteReadiness> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Readiness { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

struct SiteState {
    history: VecDeque<Sample>,
    report: Option<(Instant, ClientReport)>,
    last_out: (u64, Instant),
    bitrate_out_bps: f64,
    /// When the site took its seat; kept while the seat is held, so media from before a
    /// drop still counts as the last media (a fresh join starts the clock again).
    joined_at: Option<Instant>,
    /// Its audio (or HQ's, heard by it) became expected since the last evaluation: however
    /// short the mute was, the pages' audio reports get their grace again.
    audio_restarted: bool,
    /// Whether its audio was expected at the last view seen.
    audio_was_expected: bool,
    /// Its `over_budget` alarm, and what its budgets had refused at the last tick.
    budgets: RefusalWatch,
    refused: [(Budget, u64); Budget::ALL.len()],
    /// The budget that refused last, and its count, for the alarm's reason.
    over_budget: Option<(Budget, u64)>,
}

struct Monitor {
    settings: Arc<Settings>,
    board: Arc<StatsBoard>,
    router: Router,
    view: watch::Receiver<Arc<Vec<SiteView>>>,
    store: Store,
    engine: AlarmEngine,
    thresholds: Thresholds,
    sites: Vec<SiteState>,
    epoch: Instant,
    ticks: u64,
    recording: watch::Receiver<RecordingStatus>,
    /// The bridge-wide `recording_failed` alarm: since when (Unix ms) and why.
    recording_alarm: Option<(i64, String)>,
    storage: watch::Receiver<Option<WriteFault>>,
    /// The bridge-wide `storage_failed` alarm: since when (Unix ms) and why.
    storage_alarm: Option<(i64, WriteFault)>,
    composition: watch::Receiver<Option<CompositionFailure>>,
    /// The bridge-wide `composition_failed` alarm: the failure it was raised for.
    composition_alarm: Option<CompositionFailure>,
    lines: Arc<crate::peer::ceilings::Ceilings>,
    /// The bridge-wide `stranger_traffic` alarm.
    strangers: RefusalWatch,
}

pub(crate) struct MonitorParts {
    pub(crate) settings: Arc<Settings>,
    pub(crate) board: Arc<StatsBoard>,
    pub(crate) router: Router,
    pub(crate) view: watch::Receiver<Arc<Vec<SiteView>>>,
    pub(crate) store: Store,
    pub(crate) thresholds: Thresholds,
    pub(crate) recording: watch::Receiver<RecordingStatus>,
    /// The composer's last failure (cleared by its next success).
    pub(crate) composition: watch::Receiver<Option<CompositionFailure>>,
    /// Each site's line ceilings, live.
    pub(crate) lines: Arc<crate::peer::ceilings::Ceilings>,
}

pub(crate) fn spawn(parts: MonitorParts, cancel: CancellationToken) -> HealthHandle {
    let (tx, mut rx) = mpsc::channel(256);
    let now = Instant::now();
    let n = parts.settings.sites.len();
    let mut m = Monitor {
        engine: AlarmEngine::new(n, parts.thresholds),
        thresholds: parts.thresholds,
        sites: (0..n)
            .map(|_| SiteState {
                history: VecDeque::new(),
                report: None,
                last_out: (0, now),
                bitrate_out_bps: 0.0,
                joined_at: None,
                audio_restarted: false,
                audio_was_expected: false,
                budgets: RefusalWatch::default(),
                refused: Budget::ALL.map(|b| (b, 0)),
                over_budget: None,
            })
            .collect(),
        settings: parts.settings,
        board: parts.board,
        router: parts.router,
        view: parts.view,
        storage: parts.store.write_faults(),
        store: parts.store,
        epoch: now,
        ticks: 0,
        recording: parts.recording,
        recording_alarm: None,
        storage_alarm: None,
        composition: parts.composition,
        composition_alarm: None,
        lines: parts.lines,
        strangers: RefusalWatch::default(),
    };
    let mut view_changes = m.view.clone();
    tokio::spawn(async move {
        // Evaluated twice a second so an alarm is raised well within 5 s of its cause; the
        // history keeps one sample a second.
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => m.on_tick(Instant::now()),
                Ok(()) = view_changes.changed() => m.on_view_change(),
                cmd = rx.recv() => match cmd {
                    Some(Command::Report { site, report }) => {
                        if let Some(s) = m.sites.get_mut(site) {
                            s.report = Some((Instant::now(), report));
                        }
                    }
                    Some(Command::View { history, reply }) => { let _ = reply.send(m.health_view(history, Instant::now())); }
                    Some(Command::Readiness { reply }) => { let _ = reply.send(m.readiness(Instant::now())); }
                    None => break,
                },
            }
        }
    });
    HealthHandle { tx }
}

/// Loss over audio and video together, weighted by their packet rates (a per-second loss
/// figure from 50 audio packets alone is too noisy to alarm on).
fn combined_loss(a: &InboundSnapshot, v: &InboundSnapshot) -> f64 {
    let total = a.packets_per_second + v.packets_per_second;
    if total <= 0.0 {
        return 0.0;
    }
    (a.loss_percent * a.packets_per_second + v.loss_percent * v.packets_per_second) / total
}

fn age_ms(at: Option<Instant>, now: Instant) -> Option<f64> {
    at.map(|t| now.saturating_duration_since(t).as_secs_f64() * 1000.0)
}

/// The snapshot as it stands now: a stream silent for [`STALE_AFTER_MS`] has no current
/// rates (the reader publishes only when packets arrive, so its last figures would stay).
fn current(mut s: InboundSnapshot, now: Instant) -> InboundSnapshot {
    if age_ms(s.last_packet, now).is_none_or(|ms| ms >= STALE_AFTER_MS) {
        s.packets_per_second = 0.0;
        s.bitrate_bps = 0.0;
        s.loss_percent = 0.0;
        s.residual_loss_percent = 0.0;
        s.jitter_ms = 0.0;
        s.frames_per_second = 0.0;
    }
    s
}

impl Monitor {
    fn chair(&self) -> usize {
        self.settings.sites.iter().position(|s| s.role == SiteRole::Chair).unwrap_or(0)
    }

    /// Notes every change of who is expected to send audio as it happens, not only at the
    /// next evaluation: a mute and unmute within half a second still restart the grace.
    fn on_view_change(&mut self) {
        let view = self.view.borrow_and_update().clone();
        let chair = self.chair();
        let chair_unmuted = view.get(chair).is_some_and(|v| v.audio_expected) && !self.sites[chair].audio_was_expected;
        for (i, v) in view.iter().enumerate() {
            let Some(s) = self.sites.get_mut(i) else { continue };
            if (v.audio_expected && !s.audio_was_expected) || chair_unmuted {
                s.audio_restarted = true;
            }
        }
        for (i, v) in view.iter().enumerate() {
            if let Some(s) = self.sites.get_mut(i) {
                s.audio_was_expected = v.audio_expected;
            }
        }
    }

    fn site_view(&self, site: usize) -> SiteView {
        self.view.borrow().get(site).cloned().unwrap_or_default()
    }

    /// Until when (Unix ms) the site's seat is held after its connection dropped.
    fn held_until(&self, site: usize) -> Option<i64> {
        let view = self.site_view(site);
        if view.present {
            None
        } else {
            view.held_until_ms
        }
    }

    /// Connected now, or its seat held for it.
    fn seated(&self, site: usize) -> bool {
        self.site_view(site).present || self.held_until(site).is_some()
    }

    fn fresh_report(&self, site: usize, now: Instant) -> Option<&ClientReport> {
        self.sites[site].report.as_ref().filter(|(at, _)| now.duration_since(*at) < REPORT_FRESH).map(|(_, r)| r)
    }

    /// Whether `receiver`'s page reports `sender`'s audio arriving.
    fn page_hears(&self, receiver: usize, sender: usize, now: Instant) -> Option<bool> {
        let report = self.fresh_report(receiver, now)?;
        Some(report.received.get(&self.settings.sites[sender].id).is_some_and(|r| r.audio_pps > 0.0))
    }

    fn rtt(&self, site: usize, now: Instant) -> Option<f64> {
        self.fresh_report(site, now).and_then(|r| r.rtt_ms).or(self.board.connection(site).0)
    }

    /// Why a site's video may be missing, as far as the bridge knows.
    fn video_cause(&self, site: usize, audio: &InboundSnapshot, video: &InboundSnapshot, now: Instant) -> Option<VideoCause> {
        if let Some(detail) = self.board.media_refused(site) {
            return Some(VideoCause::Refused { detail });
        }
        let audio_flows = audio.live && age_ms(audio.last_packet, now).is_some_and(|ms| ms < 2000.0);
        if !audio_flows {
            return None;
        }
        if video.packets_total == 0 || age_ms(video.last_packet, now).is_none_or(|ms| ms >= 2000.0) {
            Some(VideoCause::NoVideoPackets)
        } else {
            Some(VideoCause::NoPictures)
        }
    }

    fn snapshot(&self, site: usize, now: Instant, levels: &[f32]) -> SiteSnapshot {
        let view = self.site_view(site);
        let restarted = self.sites[site].audio_restarted;
        let (a, v) = (self.board.inbound(site, Kind::Audio), self.board.inbound(site, Kind::Video));
        let recent = |s: &InboundSnapshot| s.live && age_ms(s.last_packet, now).is_some_and(|ms| ms < 2000.0);
        let last = [a.last_packet, v.last_packet].into_iter().flatten().max();
        // Media from before this join does not count: a rejoin starts the clock again.
        let since_join = match (last, self.sites[site].joined_at) {
            (Some(l), Some(j)) if l < j => None,
            (l, _) => l,
        };
        let chair = self.chair();
        let chair_view = self.site_view(chair);
        let hq_sends = chair_view.present && chair_view.audio_expected && site != chair;
        let held = self.held_until(site).is_some();
        SiteSnapshot {
            present: view.present || held,
            held,
            ms_since_last_media: age_ms(since_join, now),
            audio_in_pps: if recent(&a) { a.packets_per_second } else { 0.0 },
            video_in_fps: if recent(&v) { v.frames_per_second } else { 0.0 },
            video_expected: view.video_expected,
            video_cause: self.video_cause(site, &a, &v, now),
            receives_hq_audio: if hq_sends && !restarted { self.page_hears(site, chair, now) } else { None },
            hq_receives_site_audio: if site != chair && view.audio_expected && !restarted { self.page_hears(chair, site, now) } else { None },

            audio_expected: view.audio_expected,
            holds_floor: view.holds_floor,
            audio_level: levels.get(site).map(|l| *l as f64),
            loss_percent: if recent(&a) || recent(&v) { combined_loss(&a, &v) } else { 0.0 },
            rtt_ms: self.rtt(site, now),
        }
    }

    fn on_tick(&mut self, now: Instant) {
        let levels = self.router.levels();
        for site in 0..self.sites.len() {
            let seated = self.seated(site);
            let s = &mut self.sites[site];
            match (seated, s.joined_at) {
                (true, None) => s.joined_at = Some(now),
                (false, Some(_)) => s.joined_at = None,
                _ => {}
            }
            let (_, out_bytes) = self.board.outbound(site);
            let (prev_bytes, prev_at) = s.last_out;
            let dt = now.duration_since(prev_at).as_secs_f64();
            if dt > 0.0 {
                s.bitrate_out_bps = out_bytes.saturating_sub(prev_bytes) as f64 * 8.0 / dt;
            }
            s.last_out = (out_bytes, now);
        }
        let snapshots: Vec<SiteSnapshot> = (0..self.sites.len()).map(|i| self.snapshot(i, now, &levels)).collect();
        for s in &mut self.sites {
            s.audio_restarted = false;
        }
        let t = now.duration_since(self.epoch).as_secs_f64() * 1000.0;
        for change in self.engine.evaluate(t, &snapshots) {
            self.record(change);
        }
        self.check_recording();
        self.check_storage();
        self.check_composition();
        self.check_refusals(t);
        self.ticks += 1;
        if self.ticks % 2 == 1 {
            return;
        }
        let wall = now_ms();
        for (site, snap) in snapshots.iter().enumerate() {
            let (a, v) = (current(self.board.inbound(site, Kind::Audio), now), current(self.board.inbound(site, Kind::Video), now));
            let s = &mut self.sites[site];
            if s.history.len() == HISTORY {
                s.history.pop_front();
            }
            s.history.push_back(Sample {
                t_ms: wall,
                loss_percent: snap.loss_percent,
                rtt_ms: snap.rtt_ms,
                bitrate_in_bps: if snap.present { a.bitrate_bps + v.bitrate_bps } else { 0.0 },
                level: if a.packets_per_second > 0.0 { snap.audio_level.unwrap_or(0.0) } else { 0.0 },
            });
        }
    }

    /// Logs a change (English, for journalctl) and writes it to the event log: the English
    /// detail (the minutes show it) and the reason's code and numbers (the page words them).
    fn record(&self, change: AlarmChange) {
        let (site, kind, detail, params) = match &change {
            AlarmChange::Raised { site, kind, reason, .. } => {
                warn!(site = %self.settings.sites[*site].id, alarm = kind.code(), "{}: alarm raised: {reason}", self.settings.sites[*site].name);
                (*site, format!("alarm_raised:{}", kind.code()), reason.to_string(), serde_json::to_string(reason).ok())
            }
            AlarmChange::Cleared { site, kind, duration_ms } => {
                info!(site = %self.settings.sites[*site].id, alarm = kind.code(), "{}: alarm cleared after {:.0} s", self.settings.sites[*site].name, duration_ms / 1000.0);
                (*site, format!("alarm_cleared:{}", kind.code()), format!("{:.0} s", duration_ms / 1000.0), None)
            }
        };
        self.store.record(Entry::now(Some(&self.settings.sites[site].id), &kind, &detail).with_params(params));
    }

    /// A failed recording is an alarm of the bridge itself, raised at once (it is not a
    /// flapping measurement) and cleared when the chair stops or restarts recording.
    fn check_recording(&mut self) {
        let status = self.recording.borrow().clone();
        let failed = (status.state == RecState::Failed).then(|| status.error.unwrap_or_default());
        let (kind, detail, params) = match (&self.recording_alarm, failed) {
            (None, Some(error)) => {
                warn!(alarm = "recording_failed", "bridge: alarm raised: {error}");
                self.recording_alarm = Some((now_ms(), error.clone()));
                let reason = serde_json::to_string(&Reason::RecordingFailed { error: error.clone() }).ok();
                ("alarm_raised:recording_failed", error, reason)
            }
            (Some((since, _)), None) => {
                let secs = (now_ms() - since) / 1000;
                info!(alarm = "recording_failed", "bridge: alarm cleared after {secs} s");
                self.recording_alarm = None;
                ("alarm_cleared:recording_failed", format!("{secs} s"), None)
            }
            _ => return,
        };
        self.store.record(Entry::now(None, kind, &detail).with_params(params));
    }

    /// A recording that could not be composed into one file is an alarm of the bridge itself,
    /// raised at once and cleared when a later composition succeeds (the archive's "compose
    /// again", once the cause is fixed). The per-site files are untouched either way.
    fn check_composition(&mut self) {
        let failure = self.composition.borrow().clone();
        match (&self.composition_alarm, failure) {
            (None, Some(f)) => {
                warn!(alarm = "composition_failed", recording = %f.recording, "bridge: alarm raised: {}", f.error);
                let reason = Reason::CompositionFailed { recording: f.recording.clone(), error: f.error.clone() };
                self.store.record(Entry::now(None, "alarm_raised:composition_failed", &reason.to_string()).with_params(serde_json::to_string(&reason).ok()));
                self.composition_alarm = Some(f);
            }
            (Some(old), None) => {
                let secs = (now_ms() - old.at_ms) / 1000;
                info!(alarm = "composition_failed", "bridge: alarm cleared after {secs} s");
                self.composition_alarm = None;
                self.store.record(Entry::now(None, "alarm_cleared:composition_failed", &format!("{secs} s")));
            }
            (Some(old), Some(f)) if *old != f => self.composition_alarm = Some(f),
            _ => {}
        }
    }

    /// A store that cannot write is an alarm of the bridge itself, raised at once and cleared
    /// by the first write that succeeds again (someone freed space or fixed the folder).
    fn check_storage(&mut self) {
        let fault = self.storage.borrow().clone();
        match (&self.storage_alarm, fault) {
            (None, Some(fault)) => {
                warn!(alarm = "storage_failed", "bridge: alarm raised: {fault}");
                self.storage_alarm = Some((now_ms(), fault));
            }
            (Some((since, _)), None) => {
                let secs = (now_ms() - since) / 1000;
                info!(alarm = "storage_failed", "bridge: alarm cleared after {secs} s");
                // Both written now that writing works (the raise could not be), each at its time.
                if let Some((since, fault)) = self.storage_alarm.take() {
                    let reason = Reason::StorageFailed { path: fault.path.clone(), problem: fault.problem, error: fault.error.clone() };
                    let mut raised = Entry::now(None, "alarm_raised:storage_failed", &fault.to_string()).with_params(serde_json::to_string(&reason).ok());
                    raised.at_ms = since;
                    self.store.record(raised);
                }
                self.store.record(Entry::now(None, "alarm_cleared:storage_failed", &format!("{secs} s")));
            }
            (Some((since, old)), Some(fault)) if *old != fault => self.storage_alarm = Some((*since, fault)),
            _ => {}
        }
    }

    /// What the sites' budgets and the shared ports refused: a site's `over_budget` alarm and
    /// the bridge's `stranger_traffic` alarm are raised at once when their counts grow and
    /// cleared after a quiet [`super::alarms::REFUSALS_CLEAR_MS`]; logged and recorded once
    /// each way, never per refusal.
    fn check_refusals(&mut self, t: f64) {
        for site in 0..self.sites.len() {
            let counts = self.board.refused(site);
            let s = &mut self.sites[site];
            if let Some(&(budget, n)) = counts.iter().zip(s.refused.iter()).filter(|(now, before)| now.1 > before.1).map(|(now, _)| now).next_back() {
                s.over_budget = Some((budget, n));
            }
            s.refused = counts;
            let total = counts.iter().map(|(_, n)| n).sum();
            let Some(change) = s.budgets.observe(t, total) else { continue };
            let (budget, refused) = s.over_budget.map_or(("?", 0), |(b, n)| (b.code(), n));
            let reason = Reason::OverBudget { budget, refused };
            let (id, name) = (&self.settings.sites[site].id, &self.settings.sites[site].name);
            let (kind, detail, params) = match change {
                RefusalChange::Raised => {
                    warn!(site = %id, alarm = "over_budget", "{name}: alarm raised: {reason}");
                    ("alarm_raised:over_budget", reason.to_string(), serde_json::to_string(&reason).ok())
                }
                RefusalChange::Cleared { duration_ms } => {
                    info!(site = %id, alarm = "over_budget", "{name}: alarm cleared after {:.0} s", duration_ms / 1000.0);
                    ("alarm_cleared:over_budget", format!("{:.0} s", duration_ms / 1000.0), None)
                }
            };
            self.store.record(Entry::now(Some(id), kind, &detail).with_params(params));
        }
        let refused = self.board.strangers_refused();
        let Some(change) = self.strangers.observe(t, refused) else { return };
        let reason = Reason::StrangerTraffic { refused };
        let (kind, detail, params) = match change {
            RefusalChange::Raised => {
                warn!(alarm = "stranger_traffic", "bridge: alarm raised: {reason}");
                ("alarm_raised:stranger_traffic", reason.to_string(), serde_json::to_string(&reason).ok())
            }
            RefusalChange::Cleared { duration_ms } => {
                info!(alarm = "stranger_traffic", "bridge: alarm cleared after {:.0} s", duration_ms / 1000.0);
                ("alarm_cleared:stranger_traffic", format!("{:.0} s", duration_ms / 1000.0), None)
            }
        };
        self.store.record(Entry::now(None, kind, &detail).with_params(params));
    }

    /// Unix ms of a moment on the monitor's clock (`t` ms since its epoch).
    fn wall_ms(&self, t: f64, now: Instant) -> i64 {
        now_ms() - (now.duration_since(self.epoch).as_secs_f64() * 1000.0 - t) as i64
    }

    fn alarm_view(&self, a: &ActiveAlarm, now: Instant) -> AlarmView {
        let since = now_ms() - (now.duration_since(self.epoch).as_secs_f64() * 1000.0 - a.since_ms) as i64;
        AlarmView {
            site: self.settings.sites[a.site].id.clone(),
            alarm: a.kind.code(),
            since_ms: since,
            detail: a.reason.to_string(),
            reason: a.reason.clone(),
        }
    }

    fn health_view(&self, with_history: bool, now: Instant) -> HealthView {
        let levels = self.router.levels();
        let mut alarms: Vec<AlarmView> = self.engine.active().iter().map(|a| self.alarm_view(a, now)).collect();
        if let Some((since_ms, error)) = &self.recording_alarm {
            let reason = Reason::RecordingFailed { error: error.clone() };
            alarms.push(AlarmView { site: BRIDGE.into(), alarm: "recording_failed", since_ms: *since_ms, detail: error.clone(), reason });
        }
        if let Some(f) = &self.composition_alarm {
            let reason = Reason::CompositionFailed { recording: f.recording.clone(), error: f.error.clone() };
            alarms.push(AlarmView { site: BRIDGE.into(), alarm: "composition_failed", since_ms: f.at_ms, detail: reason.to_string(), reason });
        }
        if let Some((since_ms, fault)) = &self.storage_alarm {
            let reason = Reason::StorageFailed { path: fault.path.clone(), problem: fault.problem, error: fault.error.clone() };
            alarms.push(AlarmView { site: BRIDGE.into(), alarm: "storage_failed", since_ms: *since_ms, detail: fault.to_string(), reason });
        }
        for (i, s) in self.sites.iter().enumerate() {
            let Some(since) = s.budgets.raised_since() else { continue };
            let (budget, refused) = s.over_budget.map_or(("?", 0), |(b, n)| (b.code(), n));
            let reason = Reason::OverBudget { budget, refused };
            alarms.push(AlarmView {
                site: self.settings.sites[i].id.clone(),
                alarm: "over_budget",
                since_ms: self.wall_ms(since, now),
                detail: reason.to_string(),
                reason,
            });
        }
        if let Some(since) = self.strangers.raised_since() {
            let reason = Reason::StrangerTraffic { refused: self.board.strangers_refused() };
            alarms.push(AlarmView { site: BRIDGE.into(), alarm: "stranger_traffic", since_ms: self.wall_ms(since, now), detail: reason.to_string(), reason });
        }
        let wall = now_ms();
        let sites = self
            .settings
            .sites
            .iter()
            .enumerate()
            .map(|(i, site)| {
                let view = self.site_view(i);
                let present = view.present;
                let (downlink_bps, queue_ms) = self.board.downlink(i);
                let held_until_ms = self.held_until(i);
                let (a, v) = (current(self.board.inbound(i, Kind::Audio), now), current(self.board.inbound(i, Kind::Video), now));
                let site_alarms: Vec<AlarmView> = alarms.iter().filter(|x| x.site == site.id).cloned().collect();
                let last = [a.last_packet, v.last_packet].into_iter().flatten().max();
                // Only media since this seat was taken counts (a rejoin starts afresh).
                let since_seat = match (last, self.sites[i].joined_at) {
                    (Some(l), Some(j)) if l < j => None,
                    (l, _) => l,
                };
                let media = match age_ms(since_seat, now) {
                    _ if !present => "none",
                    None => "none",
                    Some(ms) if ms >= STALLED_AFTER_MS => "stalled",
                    Some(_) => "flowing",
                };
                let connection = match (present, held_until_ms) {
                    (true, _) => "connected",
                    (false, Some(_)) => "held",
                    (false, None) => "absent",
                };
                let candidate = Some(self.board.connection(i).1)
                    .filter(|c| !c.is_empty())
                    .or_else(|| self.fresh_report(i, now).and_then(|r| r.candidate.clone()))
                    .unwrap_or_default();
                SiteHealth {
                    id: site.id.clone(),
                    name: site.name.clone(),
                    present,
                    status: match (connection, site_alarms.is_empty(), media) {
                        ("absent", _, _) => "absent",
                        (_, false, _) => "alarm",
                        ("held", true, _) => "held",
                        (_, true, "flowing") => "ok",
                        _ => "stalled",
                    },
                    connection,
                    held_until_ms,
                    held_left_ms: held_until_ms.map(|t| (t - wall).max(0)),
                    media,
                    audio_in: a,
                    video_in: v,
                    bitrate_out_bps: self.sites[i].bitrate_out_bps,
                    packets_out_total: self.board.outbound(i).0,
                    rtt_ms: self.rtt(i, now),
                    receiving: view
                        .receiving
                        .cameras
                        .iter()
                        .map(|&(from, layer)| ReceivedCamera {
                            site: self.settings.sites[from].id.clone(),
                            layer: match layer {
                                None => "paused",
                                Some((crate::media::LOW, _)) => "low",
                                Some((crate::media::MEDIUM, _)) => "medium",
                                Some(_) => "high",
                            },
                            frames: match layer.map(|(_, t)| t) {
                                Some(0) => "quarter",
                                Some(1) => "half",
                                _ => "all",
                            },
                        })
                        .collect(),
                    limited_by: view.receiving.limited_by,
                    audio_plain: view.receiving.audio_plain,
                    line: self.lines.get(i),
                    downlink_bps: downlink_bps.filter(|_| present),
                    queue_ms: queue_ms.filter(|_| present),
                    candidate: candidate.clone(),
                    path: match (candidate.as_str(), self.board.transport(i)) {
                        ("relay", _) => "relay",
                        (_, Some(Path::Tcp)) => "tcp",
                        (_, Some(Path::Udp)) => "udp",
                        _ => "",
                    },
                    audio_level: levels.get(i).copied().unwrap_or(0.0) as f64,
                    last_packet_age_ms: age_ms(last, now),
                    client: self.fresh_report(i, now).cloned(),
                    alarms: site_alarms,
                    history: if with_history { self.sites[i].history.iter().cloned().collect() } else { Vec::new() },
                }
            })
            .collect();
        HealthView { status: if alarms.is_empty() { "ok" } else { "degraded" }, sites, alarms }
    }

    /// "Kiểm tra trước hội nghị": for each site, media both ways, microphone, camera, RTT
    /// and loss, from the last seconds of measurements.
    fn readiness(&self, now: Instant) -> Vec<SiteReadiness> {
        let levels = self.router.levels();
        let chair = self.chair();
        let th = &self.thresholds;
        self.settings
            .sites
            .iter()
            .enumerate()
            .map(|(i, site)| {
                let snap = self.snapshot(i, now, &levels);
                let mut checks = Vec::new();
                let mut check = |name: &'static str, pass: bool, reason: Finding| checks.push(Check { name, pass, detail: reason.to_string(), reason });
                if let Some(until) = self.held_until(i) {
                    check("connected", false, Finding::Held { seconds_left: ((until - now_ms()).max(0) + 999) / 1000 });
                } else if !snap.present {
                    check("connected", false, Finding::NotJoined);
                } else {
                    check("connected", true, Finding::Joined);
                    let media_in = snap.audio_in_pps > 0.0 && snap.ms_since_last_media.is_some_and(|ms| ms < 2000.0);
                    check("media_from_site", media_in, Finding::AudioPackets { pps: snap.audio_in_pps.round() });
                    let hears = if i == chair {
                        self.fresh_report(i, now).map(|r| r.received.values().any(|x| x.audio_pps > 0.0))
                    } else {
                        self.page_hears(i, chair, now)
                    };
                    let finding = match hears {
                        None => Finding::NoReport,
                        Some(true) => Finding::ReceivesAudio,
                        Some(false) => Finding::ReceivesNoAudio,
                    };
                    check("media_to_site", hears == Some(true), finding);
                    let level = snap.audio_level.unwrap_or(0.0);
                    check("microphone", level > th.silence_level, Finding::Level { level: (level * 100.0).round() / 100.0 });
                    check("camera", snap.video_in_fps > 0.0, Finding::Frames { fps: (snap.video_in_fps * 10.0).round() / 10.0 });
                    match snap.rtt_ms {
                        Some(rtt) => check("rtt", rtt <= th.rtt_ms, Finding::Rtt { ms: rtt.round(), limit: th.rtt_ms }),
                        None => check("rtt", false, Finding::RttUnknown),
                    }
                    check(
                        "loss",
                        snap.loss_percent <= th.loss_percent,
                        Finding::Loss { percent: (snap.loss_percent * 10.0).round() / 10.0, limit: th.loss_percent },
                    );
                }
                let pass = checks.iter().all(|c| c.pass);
                SiteReadiness { site: site.id.clone(), name: site.name.clone(), pass, checks }
            })
            .collect()
    }
}
