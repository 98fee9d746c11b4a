//! Recording the meeting: every site's forwarded audio, camera and shared content, each in
//! its own file (Ogg/Opus, IVF/VP8) with its timing, plus an `index.json` that maps files to
//! sites and wall-clock time ranges so the meeting can be replayed or mixed later.
//!
//! The [`Recorder`] is owned by the conference actor, which decides when recording starts
//! and stops. Packets reach it from the router's packet path through a bounded queue that is
//! only offered to (`try_send`): a slow disk loses recorded packets (counted), never live
//! ones. Files are written on a thread of the recorder's own, so no tokio worker ever waits
//! on the disk. A write error or a disk running low fails the recording (status `failed`,
//! a technicians' alarm) and leaves the live meeting untouched.
//!
//! When a recording stops, [`composer`] makes one watchable file of it (the meeting as HQ saw
//! it, planned by the pure [`compose`]) with Debian's ffmpeg; the per-site files stay.

pub(crate) mod compose;
pub(crate) mod composer;
pub(crate) mod ivf;
pub(crate) mod ogg;
pub(crate) mod track;

use crate::media::router::{Router, SinkPacket};
use crate::media::{Codec, Kind};
use crate::store::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{error, info};
use track::{Assembler, Output, StreamCounts, StreamKind};

/// Packets queued between the packet path and the recorder's thread (≈ 1.5 s of a
/// six-site meeting).
pub(crate) const QUEUE_PACKETS: usize = 8192;
/// A stream silent this long (muted, camera off, reconnecting) continues in a new file.
pub(crate) const SEGMENT_GAP: Duration = Duration::from_secs(10);
/// How often free disk space is checked while recording.
const DISK_CHECK: Duration = Duration::from_secs(2);
/// How often every file is handed to the disk (IVF headers patched) and the index rewritten,
/// so a crash or `kill -9` loses at most this much of the recording.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecState {
    #[default]
    Idle,
    Recording,
    /// Stopped by an error; the chair's stop acknowledges it.
    Failed,
}

/// What the conference, the pages and the technicians see of the recording.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct RecordingStatus {
    pub(crate) state: RecState,
    /// The recording's folder name under the recordings directory.
    pub(crate) id: Option<String>,
    pub(crate) started_ms: Option<i64>,
    /// Bytes of media written so far.
    pub(crate) bytes: u64,
    pub(crate) files: usize,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RecordError {
    #[error("a recording is already running")]
    AlreadyRecording,
    #[error("not enough free disk space for recording: {free_mb} MB free, at least {min_mb} MB needed")]
    NoSpace { free_mb: u64, min_mb: u64 },
    #[error("cannot create the recording folder {path}: {reason}")]
    Folder { path: String, reason: String },
}

/// One file of a recording, as listed in `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrackEntry {
    pub(crate) file: String,
    pub(crate) site: String,
    /// `audio`, `video` or `content`.
    pub(crate) kind: String,
    /// `opus` or `vp8`.
    pub(crate) codec: String,
    pub(crate) clock_rate: u32,
    /// Wall-clock time (Unix ms) of the file's first and last packet.
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    /// RTP timestamp of the first packet: the file's timestamps count from it.
    pub(crate) first_rtp_timestamp: u32,
    pub(crate) ssrc: u32,
    pub(crate) packets: u64,
    pub(crate) lost_packets: u64,
    /// Opus packets or VP8 frames in the file.
    pub(crate) units: u64,
    pub(crate) frames_dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) width: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) height: Option<u16>,
    pub(crate) bytes: u64,
}

/// `index.json` of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Index {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) conference_id: Option<i64>,
    pub(crate) started_ms: i64,
    pub(crate) stopped_ms: Option<i64>,
    /// True once the recording was stopped and every file closed properly.
    pub(crate) complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Packets the recorder could not keep up with (the live meeting was not affected).
    pub(crate) dropped_packets: u64,
    pub(crate) tracks: Vec<TrackEntry>,
}

enum Control {
    Start { dir: PathBuf, index: Index, packets: std_mpsc::Receiver<SinkPacket>, started: Instant },
}

/// The conference actor's handle on recording; owns the recorder's thread.
pub struct Recorder {
    root: PathBuf,
    min_free_bytes: u64,
    router: Router,
    control: std_mpsc::Sender<Control>,
    status: Arc<watch::Sender<RecordingStatus>>,
}

impl Recorder {
    /// Starts the recorder's thread; recordings go to folders under `root`.
    pub fn spawn(root: PathBuf, min_free_bytes: u64, router: Router, site_ids: Arc<[String]>) -> Recorder {
        let (control, control_rx) = std_mpsc::channel();
        let status = Arc::new(watch::channel(RecordingStatus::default()).0);
        let worker = Worker { router: router.clone(), site_ids, status: status.clone(), min_free_bytes };
        let (interrupted_root, before_ms) = (root.clone(), now_ms());
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                close_interrupted(&interrupted_root, before_ms);
                worker.run(control_rx)
            })
            .expect("spawn the recorder thread");
        Recorder { root, min_free_bytes, router, control, status }
    }

    pub(crate) fn status(&self) -> watch::Receiver<RecordingStatus> {
        self.status.subscribe()
    }

    /// Starts recording every forwarded stream; returns the recording's id.
    pub(crate) fn start(&self, title: &str, conference_id: Option<i64>) -> Result<String, RecordError> {
        if self.status.borrow().state == RecState::Recording {
            return Err(RecordError::AlreadyRecording);
        }
        let folder_err = |path: &Path, e: std::io::Error| RecordError::Folder { path: path.display().to_string(), reason: e.to_string() };
        std::fs::create_dir_all(&self.root).map_err(|e| folder_err(&self.root, e))?;
        let free = free_bytes(&self.root).map_err(|e| folder_err(&self.root, e))?;
        if free < self.min_free_bytes {
            return Err(RecordError::NoSpace { free_mb: free >> 20, min_mb: self.min_free_bytes >> 20 });
        }
        let started_ms = now_ms();
        let mut id = hanoi_time(started_ms);
        let mut n = 1;
        while self.root.join(&id).exists() {
            n += 1;
            id = format!("{}-{n}", hanoi_time(started_ms));
        }
        let dir = self.root.join(&id);
        std::fs::create_dir(&dir).map_err(|e| folder_err(&dir, e))?;
        let index = Index {
            id: id.clone(),
            title: title.to_string(),
            conference_id,
            started_ms,
            stopped_ms: None,
            complete: false,
            error: None,
            dropped_packets: 0,
            tracks: Vec::new(),
        };
        write_index(&dir, &index).map_err(|e| folder_err(&dir, e))?;
        let (tx, packets) = std_mpsc::sync_channel(QUEUE_PACKETS);
        self.status.send_replace(RecordingStatus { state: RecState::Recording, id: Some(id.clone()), started_ms: Some(started_ms), ..Default::default() });
        if self.control.send(Control::Start { dir, index, packets, started: Instant::now() }).is_err() {
            let error = "the recorder has stopped".to_string();
            self.status.send_replace(RecordingStatus { state: RecState::Failed, error: Some(error), ..Default::default() });
            return Ok(id);
        }
        self.router.set_recorder(Some(tx));
        // Video files must begin with a keyframe: ask every publisher for one now.
        self.router.request_all_keyframes();
        info!(recording = %id, "recording started");
        Ok(id)
    }

    /// Stops recording (the thread closes the files and completes the index), or
    /// acknowledges a failed recording.
    pub(crate) fn stop(&self) {
        self.router.set_recorder(None);
        self.status.send_if_modified(|s| {
            if s.state == RecState::Failed {
                *s = RecordingStatus::default();
                true
            } else {
                false
            }
        });
    }

    /// Stops and waits (bounded) until the files are closed: for an orderly shutdown.
    pub(crate) fn stop_and_wait(&self, timeout: Duration) {
        self.stop();
        let deadline = Instant::now() + timeout;
        while self.status.borrow().state == RecState::Recording && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Free space for unprivileged writers on the file system holding `path`.
pub(crate) fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// `YYYY-MM-DD_HH-MM-SS` in Hà Nội time (UTC+7), for folder names people can read.
pub(crate) fn hanoi_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000) + 7 * 3600;
    let (days, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}_{:02}-{:02}-{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn write_index(dir: &Path, index: &Index) -> std::io::Result<()> {
    let tmp = dir.join("index.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(index).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, dir.join("index.json"))
}

/// Closes the index of every recording under `root` started before `before_ms` that a crash
/// or power cut left open (never stopped): stopped at its last written media, marked as
/// interrupted, byte counts taken from the files (which hold everything up to the last
/// checkpoint, [`CHECKPOINT_EVERY`]). Returns how many were closed.
pub(crate) fn close_interrupted(root: &Path, before_ms: i64) -> usize {
    let mut closed = 0;
    for mut index in list(root).into_iter().filter(|i| i.stopped_ms.is_none() && i.started_ms < before_ms) {
        let dir = root.join(&index.id);
        for t in &mut index.tracks {
            t.bytes = std::fs::metadata(dir.join(&t.file)).map(|m| m.len()).unwrap_or(0);
        }
        index.stopped_ms = Some(index.tracks.iter().map(|t| t.end_ms).max().unwrap_or(index.started_ms));
        index.error.get_or_insert_with(|| "interrupted: the bridge stopped before the recording was closed; the files end at its last second".into());
        match write_index(&dir, &index) {
            Ok(()) => {
                info!(recording = %index.id, files = index.tracks.len(), "closed a recording interrupted by a crash or power cut");
                closed += 1;
            }
            Err(e) => error!(recording = %index.id, "cannot close the interrupted recording in {}: {e}", dir.display()),
        }
    }
    closed
}

/// Every recording under `root`, newest first (folders without a readable index skipped).
pub(crate) fn list(root: &Path) -> Vec<Index> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut list: Vec<Index> = entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("index.json")).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
    list
}

enum FileWriter {
    Opus(ogg::OggOpusWriter<BufWriter<File>>),
    /// VP8 or H.264 frames.
    Video(ivf::IvfWriter<BufWriter<File>>),
}

struct StreamFile {
    entry: usize,
    assembler: Assembler,
    writer: FileWriter,
    last_arrival: Instant,
}

struct Session {
    dir: PathBuf,
    index: Index,
    started: Instant,
    streams: HashMap<(usize, Kind), StreamFile>,
    segments: HashMap<(usize, Kind), u32>,
    bytes: u64,
    out: Vec<Output>,
}

struct Worker {
    router: Router,
    site_ids: Arc<[String]>,
    status: Arc<watch::Sender<RecordingStatus>>,
    min_free_bytes: u64,
}

impl Worker {
    fn run(self, control: std_mpsc::Receiver<Control>) {
        while let Ok(Control::Start { dir, index, packets, started }) = control.recv() {
            let id = index.id.clone();
            let mut session = Session { dir, index, started, streams: HashMap::new(), segments: HashMap::new(), bytes: 0, out: Vec::new() };
            match self.record(&mut session, &packets) {
                Ok(()) => {
                    info!(recording = %id, files = session.index.tracks.len(), bytes = session.bytes, "recording stopped; files closed");
                    self.set_status(&id, RecordingStatus::default());
                }
                Err(e) => {
                    let message = format!("{e}");
                    error!(recording = %id, "recording failed: {message}; the meeting goes on without it");
                    // Stop the packet path from offering packets to a recording that is over.
                    drop(packets);
                    self.router.set_recorder(None);
                    session.index.error = Some(message.clone());
                    let _ = session.close_all(Instant::now());
                    session.index.stopped_ms = Some(now_ms());
                    let _ = write_index(&session.dir, &session.index);
                    self.set_status(
                        &id,
                        RecordingStatus {
                            state: RecState::Failed,
                            id: Some(id.clone()),
                            started_ms: Some(session.index.started_ms),
                            bytes: session.bytes,
                            files: session.index.tracks.len(),
                            error: Some(message),
                        },
                    );
                }
            }
        }
    }

    /// Updates the status if it still describes recording `id` (a newer start wins).
    fn set_status(&self, id: &str, status: RecordingStatus) {
        self.status.send_if_modified(|s| {
            if s.id.as_deref() == Some(id) {
                *s = status;
                true
            } else {
                false
            }
        });
    }

    /// Records until the router drops the queue's sender (stop), or an error.
    fn record(&self, s: &mut Session, packets: &std_mpsc::Receiver<SinkPacket>) -> Result<(), RecordFailure> {
        let (mut last_disk_check, mut last_checkpoint, mut last_flush) = (Instant::now(), Instant::now(), Instant::now());
        loop {
            match packets.recv_timeout(Duration::from_millis(100)) {
                Ok(p) => s.on_packet(p, Instant::now(), &self.site_ids, &self.router)?,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now.duration_since(last_flush) >= Duration::from_millis(100) {
                last_flush = now;
                s.flush(now, &self.router)?;
                self.publish(s);
            }
            if now.duration_since(last_disk_check) >= DISK_CHECK {
                last_disk_check = now;
                let free = free_bytes(&s.dir).map_err(RecordFailure::Io)?;
                if free < self.min_free_bytes {
                    return Err(RecordFailure::DiskLow { free_mb: free >> 20, min_mb: self.min_free_bytes >> 20 });
                }
            }
            if now.duration_since(last_checkpoint) >= CHECKPOINT_EVERY {
                last_checkpoint = now;
                s.index.dropped_packets = self.router.counters().recorder_dropped;
                s.checkpoint()?;
            }
        }
        let now = Instant::now();
        s.close_all(now)?;
        s.index.stopped_ms = Some(now_ms());
        s.index.complete = true;
        s.index.dropped_packets = self.router.counters().recorder_dropped;
        write_index(&s.dir, &s.index).map_err(RecordFailure::Io)?;
        Ok(())
    }

    fn publish(&self, s: &Session) {
        let (bytes, files) = (s.bytes, s.index.tracks.len());
        self.status.send_if_modified(|st| {
            if st.id.as_deref() == Some(s.index.id.as_str()) && (st.bytes != bytes || st.files != files) {
                st.bytes = bytes;
                st.files = files;
                true
            } else {
                false
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum RecordFailure {
    #[error("writing the recording failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the disk is almost full ({free_mb} MB free, {min_mb} MB must stay free); recording stopped")]
    DiskLow { free_mb: u64, min_mb: u64 },
}

impl Session {
    fn wall_ms(&self, at: Instant) -> i64 {
        self.index.started_ms + at.saturating_duration_since(self.started).as_millis() as i64
    }

    fn on_packet(&mut self, mut p: SinkPacket, now: Instant, site_ids: &[String], router: &Router) -> Result<(), RecordFailure> {
        // Redundant audio is written as the Opus it carries.
        if p.packet.header.payload_type == Codec::Red.internal_pt() {
            match crate::media::red::into_primary(p.packet) {
                Some(opus) => p.packet = opus,
                None => return Ok(()),
            }
        }
        let key = (p.source, p.kind);
        let ssrc = p.packet.header.ssrc;
        let new_segment = match self.streams.get(&key) {
            None => true,
            Some(f) => self.index.tracks[f.entry].ssrc != ssrc || now.duration_since(f.last_arrival) > SEGMENT_GAP,
        };
        if new_segment {
            if let Some(old) = self.streams.remove(&key) {
                self.close(old, now)?;
            }
            let file = self.open(key, &p, now, site_ids)?;
            self.streams.insert(key, file);
            write_index(&self.dir, &self.index)?;
        }
        let wall = self.wall_ms(now);
        let f = self.streams.get_mut(&key).expect("opened above");
        f.last_arrival = now;
        self.index.tracks[f.entry].end_ms = wall;
        f.assembler.push(p.packet, now, &mut self.out);
        if drain(f, &mut self.out, &mut self.index.tracks, &mut self.bytes)? {
            router.request_keyframe(key.0, key.1);
        }
        Ok(())
    }

    fn flush(&mut self, now: Instant, router: &Router) -> Result<(), RecordFailure> {
        for (&key, f) in self.streams.iter_mut() {
            f.assembler.flush(now, &mut self.out);
            if drain(f, &mut self.out, &mut self.index.tracks, &mut self.bytes)? {
                router.request_keyframe(key.0, key.1);
            }
        }
        Ok(())
    }

    /// Hands every file's data to the disk, then rewrites the index to match: what the index
    /// lists is in the files, whatever happens to the process next.
    fn checkpoint(&mut self) -> Result<(), RecordFailure> {
        for f in self.streams.values_mut() {
            match &mut f.writer {
                FileWriter::Opus(w) => w.flush()?,
                FileWriter::Video(w) => w.checkpoint()?,
            }
            let t = &mut self.index.tracks[f.entry];
            t.bytes = std::fs::metadata(self.dir.join(&t.file)).map(|m| m.len()).unwrap_or(t.bytes);
        }
        write_index(&self.dir, &self.index)?;
        Ok(())
    }

    fn open(&mut self, key: (usize, Kind), p: &SinkPacket, now: Instant, site_ids: &[String]) -> Result<StreamFile, RecordFailure> {
        let (site, kind) = key;
        let n = self.segments.entry(key).and_modify(|n| *n += 1).or_insert(1);
        let site_id = site_ids.get(site).cloned().unwrap_or_else(|| format!("site-{site}"));
        // Packets carry the bridge's payload type for their codec (media::codec).
        let stream = match Codec::of_internal_pt(p.packet.header.payload_type) {
            Some(Codec::Opus) => StreamKind::Opus,
            Some(Codec::H264) => StreamKind::H264,
            _ if kind == Kind::Audio => StreamKind::Opus,
            _ => StreamKind::Vp8,
        };
        let (codec, ext, clock_rate) = match stream {
            StreamKind::Opus => ("opus", "ogg", ogg::OPUS_CLOCK),
            StreamKind::Vp8 => ("vp8", "ivf", ivf::VIDEO_CLOCK),
            StreamKind::H264 => ("h264", "ivf", ivf::VIDEO_CLOCK),
        };
        let name = format!("{site_id}-{}-{n:02}.{ext}", kind.as_str());
        let file = BufWriter::with_capacity(64 * 1024, File::create(self.dir.join(&name))?);
        let writer = match stream {
            StreamKind::Opus => FileWriter::Opus(ogg::OggOpusWriter::new(file, p.packet.header.ssrc, 2)?),
            StreamKind::Vp8 => FileWriter::Video(ivf::IvfWriter::new(file)?),
            StreamKind::H264 => FileWriter::Video(ivf::IvfWriter::with_fourcc(file, b"H264")?),
        };
        let wall = self.wall_ms(now);
        self.index.tracks.push(TrackEntry {
            file: name,
            site: site_id,
            kind: kind.as_str().into(),
            codec: codec.into(),
            clock_rate,
            start_ms: wall,
            end_ms: wall,
            first_rtp_timestamp: p.packet.header.timestamp,
            ssrc: p.packet.header.ssrc,
            packets: 0,
            lost_packets: 0,
            units: 0,
            frames_dropped: 0,
            width: None,
            height: None,
            bytes: 0,
        });
        let assembler = Assembler::new(stream);
        Ok(StreamFile { entry: self.index.tracks.len() - 1, assembler, writer, last_arrival: now })
    }

    fn close(&mut self, mut f: StreamFile, now: Instant) -> Result<(), RecordFailure> {
        f.assembler.finish(now, &mut self.out);
        let entry = f.entry;
        // A keyframe request makes no sense for a file being closed.
        drain(&mut f, &mut self.out, &mut self.index.tracks, &mut self.bytes)?;
        let t = &mut self.index.tracks[entry];
        match f.writer {
            FileWriter::Opus(w) => {
                w.finish()?.into_inner().map_err(|e| e.into_error())?.sync_data()?;
            }
            FileWriter::Video(w) => {
                if let Some((wd, ht)) = w.size() {
                    (t.width, t.height) = (Some(wd), Some(ht));
                }
                w.finish()?.into_inner().map_err(|e| e.into_error())?.sync_data()?;
            }
        }
        t.bytes = std::fs::metadata(self.dir.join(&t.file)).map(|m| m.len()).unwrap_or(0);
        Ok(())
    }

    fn close_all(&mut self, now: Instant) -> Result<(), RecordFailure> {
        let mut first_error = None;
        for (_, f) in std::mem::take(&mut self.streams) {
            // Every file is tried; the first error is the one reported.
            if let Err(e) = self.close(f, now) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Writes what the assembler produced to the stream's file; true if it asked for a keyframe.
fn drain(f: &mut StreamFile, out: &mut Vec<Output>, tracks: &mut [TrackEntry], bytes: &mut u64) -> Result<bool, RecordFailure> {
    let t = &mut tracks[f.entry];
    let mut keyframe = false;
    for o in out.drain(..) {
        match (o, &mut f.writer) {
            (Output::Audio { payload, pts }, FileWriter::Opus(w)) => {
                w.write_packet(&payload, pts)?;
                *bytes += payload.len() as u64 + 28;
                t.units += 1;
            }
            (Output::Frame { data, pts, size }, FileWriter::Video(w)) => {
                if w.frames() == 0 {
                    tracing::debug!(file = %t.file, "first keyframe written");
                }
                if let Some(size) = size {
                    w.set_size(size);
                }
                w.write_frame(&data, pts)?;
                *bytes += data.len() as u64 + 12;
                t.units += 1;
            }
            (Output::NeedKeyframe, _) => {
                tracing::debug!(file = %t.file, "waiting for a keyframe");
                keyframe = true;
            }
            _ => {}
        }
    }
    let c: StreamCounts = f.assembler.counts();
    (t.packets, t.lost_packets, t.frames_dropped) = (c.packets, c.lost, c.frames_dropped);
    Ok(keyframe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_hanoi_local_time() {
        // 2026-12-01 03:30:05 UTC = 10:30:05 in Hà Nội.
        assert_eq!(hanoi_time(1_796_095_805_000), "2026-12-01_10-30-05");
        assert_eq!(hanoi_time(0), "1970-01-01_07-00-00");
        // Leap day.
        assert_eq!(hanoi_time(1_709_164_800_000), "2024-02-29_07-00-00");
    }

    #[test]
    fn free_space_is_read_from_the_file_system() {
        assert!(free_bytes(Path::new("/tmp")).unwrap() > 0);
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
    }
}
