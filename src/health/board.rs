//! The statistics board: the latest measured numbers per site, written by the media path,
//! read by the health monitor and `/metrics`.
//!
//! Each received track's reader owns an [`InboundMeter`] (no locking per packet) and
//! publishes a snapshot to the board about once a second; the sink tasks add to atomic
//! outbound counters. Nothing here decides anything: alarms live in the monitor.

use super::stats::{FrameRate, RateMeter, StreamStats};
use crate::media::{Kind, KINDS};
use serde::Serialize;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What one received stream looked like over the last second.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct InboundSnapshot {
    pub(crate) live: bool,
    pub(crate) packets_total: u64,
    pub(crate) packets_per_second: f64,
    pub(crate) bitrate_bps: f64,
    /// Packets missing when newer ones arrived (before retransmission), last interval.
    pub(crate) loss_percent: f64,
    /// Still missing at the end of the interval (after retransmission or reordering).
    pub(crate) residual_loss_percent: f64,
    pub(crate) lost_total: u64,
    pub(crate) recovered_total: u64,
    pub(crate) jitter_ms: f64,
    pub(crate) frames_per_second: f64,
    pub(crate) width: u16,
    pub(crate) height: u16,
    /// Audio: the share of the last interval's packets that carried redundancy (RFC 2198).
    pub(crate) redundant_percent: f64,
    /// When the last packet arrived (kept per packet by the board, see [`StatsBoard::touch`]).
    #[serde(skip)]
    pub(crate) last_packet: Option<Instant>,
}

/// The path a site's media takes to the bridge: the shared UDP port, or an ICE-TCP
/// connection (learnt by the media ports from what the site last sent media on). Not to be
/// confused with `peer::lean::transport::Transport`, the ICE-lite and DTLS-SRTP state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Udp = 0,
    Tcp = 1,
}

/// Per-stream meter kept by the reader task; cheap per packet.
pub(crate) struct InboundMeter {
    kind: Kind,
    codec: crate::media::Codec,
    stats: StreamStats,
    rate: RateMeter,
    frames: FrameRate,
    epoch: Instant,
    last_publish: Instant,
    recovered_at_last: u64,
    size: (u16, u16),
    last_packet: Option<Instant>,
    /// Packets since the last snapshot, and how many of them carried redundant audio.
    interval_packets: u64,
    interval_redundant: u64,
}

impl InboundMeter {
    pub(crate) fn new(kind: Kind, codec: crate::media::Codec) -> Self {
        let now = Instant::now();
        Self {
            kind,
            codec,
            stats: StreamStats::new(codec.clock_rate()),
            rate: RateMeter::new(2000.0),
            frames: FrameRate::new(2000.0),
            epoch: now,
            last_publish: now,
            recovered_at_last: 0,
            size: (0, 0),
            last_packet: None,
            interval_packets: 0,
            interval_redundant: 0,
        }
    }

    /// The next packet measured carries redundant audio.
    pub(crate) fn note_redundant(&mut self) {
        self.interval_redundant += 1;
    }

    /// Records one packet; returns a snapshot when one is due (about once a second).
    pub(crate) fn on_packet(&mut self, packet: &crate::media::RtpPacket, now: Instant) -> Option<InboundSnapshot> {
        let t = now.duration_since(self.epoch).as_secs_f64() * 1000.0;
        let h = &packet.header;
        // Without RTX, a retransmission is a late packet with an old sequence number; count
        // every gap-filling late packet as recovered.
        let late = self.stats.extended_highest_seq().is_some_and(|hi| (hi as u16).wrapping_sub(h.sequence_number) as i16 > 0);
        self.stats.on_packet(h.sequence_number, h.timestamp, t, packet.payload.len(), late);
        self.rate.record(t, packet.payload.len() + 12);
        self.interval_packets += 1;
        if self.kind != Kind::Audio {
            if h.marker {
                self.frames.on_frame_end(t);
            }
            if self.codec == crate::media::Codec::Vp8 {
                if let Some(size) = crate::media::vp8::keyframe_size(&packet.payload) {
                    self.size = size;
                }
            }
        }
        self.last_packet = Some(now);
        if now.duration_since(self.last_publish).as_millis() < 1000 {
            return None;
        }
        self.last_publish = now;
        Some(self.snapshot(t))
    }

    fn snapshot(&mut self, t: f64) -> InboundSnapshot {
        let interval = self.stats.interval();
        let recovered = self.stats.recovered() - self.recovered_at_last;
        self.recovered_at_last = self.stats.recovered();
        let raw_lost = interval.lost + recovered;
        let loss = if interval.expected == 0 { 0.0 } else { (raw_lost as f64 * 100.0 / interval.expected as f64).min(100.0) };
        let redundant_percent =
            if self.interval_packets == 0 { 0.0 } else { (self.interval_redundant as f64 * 100.0 / self.interval_packets as f64).min(100.0) };
        (self.interval_packets, self.interval_redundant) = (0, 0);
        InboundSnapshot {
            live: true,
            packets_total: self.stats.received(),
            packets_per_second: self.rate.packets_per_second(t),
            bitrate_bps: self.rate.bits_per_second(t),
            loss_percent: loss,
            residual_loss_percent: interval.loss_percent,
            lost_total: self.stats.lost(),
            recovered_total: self.stats.recovered(),
            jitter_ms: self.stats.jitter_ms(),
            frames_per_second: if self.kind == Kind::Audio { 0.0 } else { self.frames.frames_per_second(t) },
            width: self.size.0,
            height: self.size.1,
            redundant_percent,
            last_packet: self.last_packet,
        }
    }
}

#[derive(Default)]
struct SiteSlot {
    inbound: [Mutex<InboundSnapshot>; KINDS],
    /// Per kind: when the last packet arrived (µs since the board's epoch, 0 = never);
    /// updated per packet, since snapshots are only published once a second.
    last_packet_us: [AtomicU64; KINDS],
    out_packets: AtomicU64,
    out_bytes: AtomicU64,
    /// ICE round-trip time measured by the server, ms (f32 bits; 0 = unknown).
    rtt_ms: AtomicU32,
    candidate: Mutex<String>,
    /// How media travels: 0 not known yet, 1 UDP, 2 ICE over TCP.
    transport: AtomicU8,
    /// Why the bridge could not accept some of what the site sends (its last offer).
    media_refused: Mutex<Option<String>>,
    /// What the site's budgets refused it, by [`Budget`] (monotonic).
    refused: [AtomicU64; Budget::ALL.len()],
    /// The bridge's estimate of the site's downlink, bit/s (0 = none: no transport-cc), and
    /// how long its packets wait in the line's queue, µs.
    downlink_bps: AtomicU64,
    queue_us: AtomicU64,
}

/// A per-site budget of what one site can make the bridge do or keep (`peer/budget.rs`, both
/// engines). What a budget refuses is counted here; the monitor raises the
/// site's `over_budget` alarm while the counts grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Budget {
    Nacks,
    Ssrcs,
    Renegotiations,
    Sections,
    Candidates,
}

impl Budget {
    pub(crate) const ALL: [Budget; 5] = [Budget::Nacks, Budget::Ssrcs, Budget::Renegotiations, Budget::Sections, Budget::Candidates];

    /// Stable code for logs, `/api/tech` and the technicians' page.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Budget::Nacks => "nacks",
            Budget::Ssrcs => "ssrcs",
            Budget::Renegotiations => "renegotiations",
            Budget::Sections => "sections",
            Budget::Candidates => "candidates",
        }
    }
}

/// The board: one slot per configured site.
pub struct StatsBoard {
    sites: Box<[SiteSlot]>,
    epoch: Instant,
    /// What the shared media ports refused strangers (checks with wrong credentials over
    /// their address's budget, oversized or idle ICE-TCP connections), as last published.
    strangers_refused: AtomicU64,
}

impl StatsBoard {
    pub fn new(site_count: usize) -> Self {
        Self { sites: (0..site_count).map(|_| SiteSlot::default()).collect(), epoch: Instant::now(), strangers_refused: AtomicU64::new(0) }
    }

    /// A packet from `site` arrived now (the reader calls this per packet).
    pub(crate) fn touch(&self, site: usize, kind: Kind, now: Instant) {
        if let Some(s) = self.sites.get(site) {
            let us = now.saturating_duration_since(self.epoch).as_micros() as u64;
            s.last_packet_us[kind.index()].store(us.max(1), Ordering::Relaxed);
        }
    }

    pub(crate) fn publish_inbound(&self, site: usize, kind: Kind, snapshot: InboundSnapshot) {
        if let Some(s) = self.sites.get(site) {
            *s.inbound[kind.index()].lock().expect("board mutex poisoned") = snapshot;
        }
    }

    /// The stream ended (site left, track closed).
    pub(crate) fn end_inbound(&self, site: usize, kind: Kind) {
        if let Some(s) = self.sites.get(site) {
            s.inbound[kind.index()].lock().expect("board mutex poisoned").live = false;
        }
    }

    pub(crate) fn inbound(&self, site: usize, kind: Kind) -> InboundSnapshot {
        let Some(s) = self.sites.get(site) else { return InboundSnapshot::default() };
        let mut snap = s.inbound[kind.index()].lock().expect("board mutex poisoned").clone();
        let us = s.last_packet_us[kind.index()].load(Ordering::Relaxed);
        if us > 0 {
            snap.last_packet = Some(self.epoch + std::time::Duration::from_micros(us));
        }
        snap
    }

    pub(crate) fn add_outbound(&self, site: usize, bytes: usize) {
        if let Some(s) = self.sites.get(site) {
            s.out_packets.fetch_add(1, Ordering::Relaxed);
            s.out_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// (packets, bytes) sent to `site` so far.
    pub(crate) fn outbound(&self, site: usize) -> (u64, u64) {
        self.sites.get(site).map(|s| (s.out_packets.load(Ordering::Relaxed), s.out_bytes.load(Ordering::Relaxed))).unwrap_or_default()
    }

    /// The server's view of a site's path: ICE RTT, the remote candidate type (empty when
    /// webrtc-rs has no entry for it, as for peer-reflexive remotes) and the transport.
    pub(crate) fn set_connection(&self, site: usize, rtt_ms: Option<f64>, candidate: &str, transport: Option<Path>) {
        if let Some(s) = self.sites.get(site) {
            s.rtt_ms.store(rtt_ms.map(|r| r as f32).unwrap_or(0.0).to_bits(), Ordering::Relaxed);
            *s.candidate.lock().expect("board mutex poisoned") = candidate.to_string();
            s.transport.store(transport.map_or(0, |t| t as u8 + 1), Ordering::Relaxed);
        }
    }

    /// The bridge's estimate of how much the site's downlink takes (`None`: no estimate, the
    /// site's browser does not report arrivals), and the queueing delay it measured.
    pub(crate) fn set_downlink(&self, site: usize, bps: Option<f64>, queue: Option<std::time::Duration>) {
        if let Some(s) = self.sites.get(site) {
            s.downlink_bps.store(bps.map_or(0, |b| b.max(1.0) as u64), Ordering::Relaxed);
            s.queue_us.store(queue.map_or(0, |q| q.as_micros() as u64), Ordering::Relaxed);
        }
    }

    /// The downlink estimate (bit/s) and the queueing delay (ms), if any.
    pub(crate) fn downlink(&self, site: usize) -> (Option<f64>, Option<f64>) {
        let Some(s) = self.sites.get(site) else { return (None, None) };
        let bps = s.downlink_bps.load(Ordering::Relaxed);
        let queue = s.queue_us.load(Ordering::Relaxed);
        ((bps > 0).then_some(bps as f64), (bps > 0).then_some(queue as f64 / 1000.0))
    }

    /// What of the site's media its last offer made the bridge refuse, and why (`None`: all
    /// of it was accepted). The health page names it as the cause of missing video.
    pub(crate) fn set_media_refused(&self, site: usize, why: Option<String>) {
        if let Some(s) = self.sites.get(site) {
            *s.media_refused.lock().expect("board mutex poisoned") = why;
        }
    }

    pub(crate) fn media_refused(&self, site: usize) -> Option<String> {
        self.sites.get(site)?.media_refused.lock().expect("board mutex poisoned").clone()
    }

    /// `n` more of what `site` asked for were refused by `budget`.
    pub(crate) fn refuse(&self, site: usize, budget: Budget, n: u64) {
        if let Some(s) = self.sites.get(site) {
            s.refused[budget as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// What `site`'s budgets refused so far, by budget.
    pub(crate) fn refused(&self, site: usize) -> [(Budget, u64); Budget::ALL.len()] {
        let count = |b: Budget| self.sites.get(site).map_or(0, |s| s.refused[b as usize].load(Ordering::Relaxed));
        Budget::ALL.map(|b| (b, count(b)))
    }

    /// The shared ports' refusals of strangers so far (monotonic; publishers may race).
    pub(crate) fn note_strangers_refused(&self, total: u64) {
        self.strangers_refused.fetch_max(total, Ordering::Relaxed);
    }

    pub(crate) fn strangers_refused(&self) -> u64 {
        self.strangers_refused.load(Ordering::Relaxed)
    }

    pub(crate) fn transport(&self, site: usize) -> Option<Path> {
        match self.sites.get(site)?.transport.load(Ordering::Relaxed) {
            1 => Some(Path::Udp),
            2 => Some(Path::Tcp),
            _ => None,
        }
    }

    /// Server-measured ICE RTT (ms) and the selected remote candidate type.
    pub(crate) fn connection(&self, site: usize) -> (Option<f64>, String) {
        self.sites
            .get(site)
            .map(|s| {
                let rtt = f32::from_bits(s.rtt_ms.load(Ordering::Relaxed));
                ((rtt > 0.0).then_some(rtt as f64), s.candidate.lock().expect("board mutex poisoned").clone())
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_publishes_about_once_a_second_with_loss() {
        let mut m = InboundMeter::new(Kind::Audio, crate::media::Codec::Opus);
        let t0 = Instant::now();
        let mut snap = None;
        for i in 0..60u16 {
            if i % 10 == 9 {
                continue; // 10 % lost
            }
            let mut p = crate::media::RtpPacket::default();
            p.header.sequence_number = i;
            p.header.timestamp = i as u32 * 960;
            p.payload = bytes::Bytes::from_static(&[0; 60]);
            if let Some(s) = m.on_packet(&p, t0 + std::time::Duration::from_millis(20 * i as u64)) {
                snap = Some(s);
            }
        }
        let s = snap.expect("a snapshot after one second");
        assert!((s.loss_percent - 10.0).abs() < 3.0, "{}", s.loss_percent);
        assert!(s.live && s.packets_total > 40);
    }
}
