//! Composing a recording into one watchable file after the meeting: a task of its own runs
//! Debian's `ffmpeg` on the plan of [`super::compose`], one recording at a time, at low CPU
//! priority and with few threads so a meeting running meanwhile keeps its cores.
//!
//! It owns the queue of recordings to compose, the progress of the one running (read by the
//! archive API) and the last failure (a `watch` the health monitor turns into the
//! `composition_failed` alarm). It starts on its own when a recording stops, and on demand
//! from the archive for an older one. It reads the per-site files and never writes, moves or
//! deletes them: its only outputs are `<id>.mp4` (written as `<id>.mp4.part`, renamed when
//! complete) and `composed.json` beside them, both 0600.

use super::compose::{self, Limits};
use super::{Index, RecState, RecordingStatus};
use crate::config::Settings;
use crate::store::journal::Entry;
use crate::store::{now_ms, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The result of a composition, kept beside the recording's files.
pub(crate) const RESULT_FILE: &str = "composed.json";
/// Recordings waiting to be composed.
const QUEUE: usize = 64;
/// CPU priority of ffmpeg (`nice`): below the bridge, which forwards the live meeting.
const NICENESS: i32 = 10;
/// ffmpeg gets this long plus [`TIMEOUT_PER_SECOND`] per second of meeting (this machine
/// composes a minute in well under a minute; docs/performance.md).
const TIMEOUT_BASE: Duration = Duration::from_secs(300);
const TIMEOUT_PER_SECOND: f64 = 4.0;

/// The composed file of recording `id`, in its folder.
pub(crate) fn file_name(id: &str) -> String {
    format!("{id}.mp4")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ComposeState {
    Queued,
    Running,
    Done,
    Failed,
}

/// Where a recording's composition stands, as the archive shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Composition {
    pub(crate) state: ComposeState,
    /// Of the meeting's time written so far (100 once done).
    pub(crate) percent: u8,
    /// The composed file's name in the recording's folder, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// How long ffmpeg took (done or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) seconds: Option<f64>,
    /// When it was queued, started or finished (Unix ms).
    pub(crate) at_ms: i64,
}

impl Composition {
    fn new(state: ComposeState) -> Self {
        Composition { state, percent: 0, file: None, error: None, seconds: None, at_ms: now_ms() }
    }
}

/// The last composition that failed (cleared by the next one that succeeds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompositionFailure {
    pub(crate) recording: String,
    pub(crate) error: String,
    pub(crate) at_ms: i64,
}

/// How compositions run (from `[recording]` in the config).
#[derive(Debug, Clone)]
pub(crate) struct ComposerConfig {
    /// The ffmpeg program; `None` when composing is switched off.
    pub(crate) ffmpeg: Option<PathBuf>,
    /// Encoder threads.
    pub(crate) threads: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum ComposeRefusal {
    #[error("composing recordings is switched off ([recording] compose = false)")]
    Disabled,
    #[error("no such recording")]
    Unknown,
    #[error("the recording is still running")]
    Recording,
    #[error("this recording is already being composed")]
    Busy,
    #[error("too many recordings are waiting to be composed")]
    QueueFull,
}

/// A cheap clonable handle on the composer task.
#[derive(Clone)]
pub(crate) struct Composer {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    enabled: bool,
    /// Queued and running compositions (short lock; never held across an await).
    live: Mutex<HashMap<String, Composition>>,
    tx: mpsc::Sender<String>,
    failure: watch::Sender<Option<CompositionFailure>>,
}

impl Composer {
    /// Starts the composer task; it stops with `cancel` (killing a running ffmpeg).
    pub(crate) fn spawn(root: PathBuf, config: ComposerConfig, settings: Arc<Settings>, store: Store, cancel: CancellationToken) -> Composer {
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        let inner = Arc::new(Inner { root, enabled: config.ffmpeg.is_some(), live: Mutex::new(HashMap::new()), tx, failure: watch::channel(None).0 });
        let composer = Composer { inner };
        let worker = Worker { composer: composer.clone(), config, settings, store };
        tokio::spawn(async move {
            loop {
                let id = tokio::select! {
                    _ = cancel.cancelled() => break,
                    id = rx.recv() => match id { Some(id) => id, None => break },
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    () = worker.compose(&id) => {}
                }
            }
        });
        composer
    }

    /// Composes every recording that stops from now on (when the recorder has closed its
    /// files: the status leaves `recording`), until `cancel`.
    pub(crate) fn follow(&self, mut status: watch::Receiver<RecordingStatus>, cancel: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut running: Option<String> = None;
            loop {
                let s = status.borrow_and_update().clone();
                let now = if s.state == RecState::Recording { s.id } else { None };
                // A stop and the next start may reach us as one change: the old one is over.
                if let Some(id) = running.take().filter(|id| Some(id) != now.as_ref() && me.inner.enabled) {
                    match me.request(&id) {
                        Ok(()) => info!(recording = %id, "recording stopped; composing one file of it"),
                        Err(e) => warn!(recording = %id, "not composing the recording: {e}"),
                    }
                }
                running = now;
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    changed = status.changed() => if changed.is_err() { break },
                }
            }
        });
    }

    /// Queues recording `id` for composition (again, if it was composed before).
    pub(crate) fn request(&self, id: &str) -> Result<(), ComposeRefusal> {
        if !self.inner.enabled {
            return Err(ComposeRefusal::Disabled);
        }
        let index = read_index(&self.inner.root, id).ok_or(ComposeRefusal::Unknown)?;
        if index.stopped_ms.is_none() {
            return Err(ComposeRefusal::Recording);
        }
        let mut live = self.inner.live.lock().expect("composer mutex poisoned");
        if live.contains_key(id) {
            return Err(ComposeRefusal::Busy);
        }
        self.inner.tx.try_send(id.to_string()).map_err(|_| ComposeRefusal::QueueFull)?;
        live.insert(id.to_string(), Composition::new(ComposeState::Queued));
        Ok(())
    }

    /// Where recording `id`'s composition stands: queued or running, else its last result.
    pub(crate) fn status(&self, id: &str) -> Option<Composition> {
        if let Some(c) = self.inner.live.lock().expect("composer mutex poisoned").get(id) {
            return Some(c.clone());
        }
        let bytes = std::fs::read(self.inner.root.join(id).join(RESULT_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The last failure, for the health monitor's alarm.
    pub(crate) fn failures(&self) -> watch::Receiver<Option<CompositionFailure>> {
        self.inner.failure.subscribe()
    }

    fn set_live(&self, id: &str, c: Option<Composition>) {
        let mut live = self.inner.live.lock().expect("composer mutex poisoned");
        match c {
            Some(c) => live.insert(id.to_string(), c),
            None => live.remove(id),
        };
    }
}

/// A recording's index, if `id` names one (a plain folder name, nothing else).
fn read_index(root: &Path, id: &str) -> Option<Index> {
    if id.is_empty() || id.starts_with('.') || id.contains(['/', '\\']) {
        return None;
    }
    serde_json::from_slice(&std::fs::read(root.join(id).join("index.json")).ok()?).ok()
}

struct Worker {
    composer: Composer,
    config: ComposerConfig,
    settings: Arc<Settings>,
    store: Store,
}

impl Worker {
    async fn compose(&self, id: &str) {
        let started = Instant::now();
        let root = self.composer.inner.root.clone();
        let index = read_index(&root, id);
        let conference = index.as_ref().and_then(|i| i.conference_id);
        let result = match index {
            Some(index) => self.run(&root.join(id), &index).await,
            None => Err("the recording's index cannot be read".to_string()),
        };
        let seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        let mut c = Composition::new(ComposeState::Done);
        c.seconds = Some(seconds);
        let dir = root.join(id);
        match result {
            Ok(file) => {
                info!(recording = %id, file = %file, seconds, "composed the recording into one file");
                (c.percent, c.file) = (100, Some(file));
                self.store.record(Entry::now(None, "composition_done", id).of_conference(conference));
                self.composer.inner.failure.send_replace(None);
            }
            Err(error) => {
                warn!(recording = %id, "composing the recording failed: {error}; its per-site files are kept as they are");
                (c.state, c.error) = (ComposeState::Failed, Some(error.clone()));
                let detail = format!("{id}: {error}");
                let params = serde_json::json!({"recording": id, "error": error}).to_string();
                self.store.record(Entry::now(None, "composition_failed", &detail).with_params(Some(params)).of_conference(conference));
                self.composer.inner.failure.send_replace(Some(CompositionFailure { recording: id.to_string(), error, at_ms: now_ms() }));
            }
        }
        if let Err(e) = write_private(&dir.join(RESULT_FILE), &serde_json::to_vec_pretty(&c).unwrap_or_default()) {
            warn!(recording = %id, "cannot write {RESULT_FILE}: {e}");
        }
        self.composer.set_live(id, None);
    }

    /// Runs ffmpeg on recording `index` in `dir`; the composed file's name, or why not.
    async fn run(&self, dir: &Path, index: &Index) -> Result<String, String> {
        let id = index.id.clone();
        let Some(ffmpeg) = self.config.ffmpeg.clone() else { return Err("composing is switched off".into()) };
        let stopped_ms = index.stopped_ms.ok_or("the recording has not stopped")?;
        if stopped_ms - index.started_ms < 500 || !index.tracks.iter().any(|t| t.kind != "content" && t.bytes > 0) {
            return Err("the recording holds no media to compose".into());
        }
        self.composer.set_live(&id, Some(Composition::new(ComposeState::Running)));
        let store = self.store.clone();
        let conference = index.conference_id;
        let events = tokio::task::spawn_blocking(move || match conference {
            Some(c) => store.conference_events(c),
            None => store.recent_events(50_000),
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read the event log: {e}"))?;
        let sites: Vec<(String, String)> = self.settings.sites.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
        let chair = self.settings.sites.iter().find(|s| s.role == crate::domain::SiteRole::Chair).map(|s| s.id.clone()).unwrap_or_default();
        let spans = compose::timeline(&events, index.started_ms, stopped_ms, &chair, self.settings.max_floor_holders);
        let font = compose::find_font();
        if font.is_none() {
            warn!(recording = %id, "no font with Vietnamese letters found ({}); the composed file's tiles carry no names", compose::FONTS.join(", "));
        }
        let plan = compose::plan(index, dir, &sites, &spans, font.as_deref());
        let graph = dir.join(".compose-graph.txt");
        let name = file_name(&id);
        let (out, part) = (dir.join(&name), dir.join(format!("{name}.part")));
        write_private(&graph, plan.graph.as_bytes()).map_err(|e| format!("cannot write {}: {e}", graph.display()))?;
        let result = self.ffmpeg(&ffmpeg, &plan, &graph, &part, &id).await;
        let _ = std::fs::remove_file(&graph);
        match result {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o600));
                std::fs::rename(&part, &out).map_err(|e| format!("cannot rename {}: {e}", part.display()))?;
                Ok(name)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                Err(e)
            }
        }
    }

    async fn ffmpeg(&self, program: &Path, plan: &compose::Plan, graph: &Path, out: &Path, id: &str) -> Result<(), String> {
        let args = compose::args(plan, graph, out, Limits { threads: self.config.threads });
        tracing::debug!(recording = %id, "running {} {args:?} with the filter graph:\n{}", program.display(), plan.graph);
        let mut command = tokio::process::Command::new(program);
        command.args(&args).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).kill_on_drop(true);
        // SAFETY: between fork and exec the child only makes system calls on itself: it lowers
        // its priority, and asks to be killed if the bridge dies (a crash must not leave an
        // encoder running).
        unsafe {
            command.pre_exec(|| {
                libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("ffmpeg's output is not readable".into());
        };
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let total_us = (plan.duration_s * 1e6).max(1.0);
        let progress = async {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(us) = compose::progress_us(&line) {
                    let percent = ((us as f64 / total_us) * 100.0).clamp(0.0, 99.0) as u8;
                    let mut c = Composition::new(ComposeState::Running);
                    c.percent = percent;
                    self.composer.set_live(id, Some(c));
                }
            }
            child.wait().await
        };
        let limit = TIMEOUT_BASE + Duration::from_secs_f64(plan.duration_s * TIMEOUT_PER_SECOND);
        let outcome = tokio::time::timeout(limit, progress).await;
        let status = match outcome {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(format!("ffmpeg: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!("ffmpeg did not finish within {} s; stopped", limit.as_secs()));
            }
        };
        let errors = errors.await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let tail: String = errors.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" / ");
        Err(format!("ffmpeg failed ({status}): {}", if tail.is_empty() { "no message" } else { &tail }))
    }
}

/// Writes `bytes` to a new file readable by the bridge's user only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_folder_names_are_recordings() {
        let root = std::env::temp_dir();
        for id in ["", "..", "../etc", "a/b", ".hidden"] {
            assert!(read_index(&root, id).is_none(), "{id}");
        }
    }

    #[test]
    fn a_composition_reads_back_as_written() {
        let mut c = Composition::new(ComposeState::Done);
        (c.percent, c.file, c.seconds) = (100, Some(file_name("2026-12-05_08-00-00")), Some(12.5));
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains(r#""state":"done""#) && text.contains(r#""file":"2026-12-05_08-00-00.mp4""#), "{text}");
        assert_eq!(serde_json::from_str::<Composition>(&text).unwrap(), c);
    }
}
