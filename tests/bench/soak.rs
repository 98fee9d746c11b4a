//! `soak`: a meeting of the default config (HQ and five wards) held for an hour on the real
//! release binary, watching the bridge process for leaks. Six simulated sites (webrtc-rs, real
//! signalling, real DTLS-SRTP over loopback) send Opus-rate audio and VP8-sized video all along;
//! the chair acts every few seconds (mute and release a ward, give and take the floor, grant a
//! request, layout, mute all, programme, lock, start and end the recorded conference); every
//! minute one ward leaves (or loses its connection) and joins again, the wards in turn.
//!
//!   cargo bench --bench soak -- --minutes 60 --sample-seconds 30
//!
//! Options: `--minutes M` (default 60), `--sample-seconds S` (default 30), `--warm-up-minutes W`
//! (default 5: growth is measured from the first sample at or after W), `--reconnect-seconds R`
//! (default 60: how often a ward leaves and rejoins). `SOAK_WRAPPER="heaptrack -o /tmp/soak"`
//! runs the bridge under that command (a profiler), stopped with SIGTERM at the end so it can
//! write its data (`GLIBC_TUNABLES=…` in the environment reaches the bridge too).
//!
//! Every S seconds one CSV line (`sample,…`) goes to stdout: the bridge's RSS and PSS, open file
//! descriptors, threads, live tokio tasks (`diemcau_tasks_alive` from `/metrics`), CPU, and the
//! lowest media rate any site received in that window; a JSON summary follows at the end. Every
//! wait is bounded. Figures and what they showed: docs/performance.md, "Soak".
//! The run fails (exit 1) when a goal is missed: RSS growth after warm-up over 5 %, file
//! descriptors or tasks higher at the end than at warm-up by more than one reconnect's worth,
//! a site that stopped receiving media, a reconnect that did not come back, or a refused
//! chair action.

#[path = "../common/mod.rs"]
mod common;

use common::sim::Sim;
use common::{proc_usage, TestBridge};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SITES: [&str; 6] = ["hq", "cua-nam", "hang-bai", "hang-gai", "trang-tien", "hang-dao"];
/// Video packets per second each site sends (audio is always 50).
const VIDEO_PPS: u32 = 33;
const CHAIR_EVERY: Duration = Duration::from_secs(4);
/// A rejoined ward must receive HQ's media again within this.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The goal: RSS at the end at most this much above RSS at the end of warm-up.
const RSS_GROWTH_LIMIT_PERCENT: f64 = 5.0;
/// File descriptors and tasks are "flat" when the last samples stay within this of the warm-up
/// sample (a reconnect in flight holds a socket pair and a few tasks for a moment).
const FD_SLACK: i64 = 8;
const TASK_SLACK: i64 = 40;

struct Args {
    minutes: f64,
    sample_seconds: u64,
    warm_up_minutes: f64,
    reconnect_every: Duration,
}

fn args() -> Args {
    let mut a = Args { minutes: 60.0, sample_seconds: 30, warm_up_minutes: 5.0, reconnect_every: Duration::from_secs(60) };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = || argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--minutes" => a.minutes = value().parse().expect("--minutes M"),
            "--sample-seconds" => a.sample_seconds = value().parse().expect("--sample-seconds S"),
            "--warm-up-minutes" => a.warm_up_minutes = value().parse().expect("--warm-up-minutes W"),
            "--reconnect-seconds" => a.reconnect_every = Duration::from_secs(value().parse().expect("--reconnect-seconds R")),
            _ => {
                i += 1;
                continue; // cargo bench passes --bench
            }
        }
        i += 2;
    }
    assert!(a.minutes > 0.0 && a.minutes <= 24.0 * 60.0, "--minutes between 0 and 1440");
    assert!((1..=3600).contains(&a.sample_seconds), "--sample-seconds between 1 and 3600");
    assert!(a.reconnect_every >= Duration::from_secs(5), "--reconnect-seconds at least 5");
    a
}

/// One look at the bridge process.
#[derive(Clone, Debug, Default)]
struct Sample {
    t_s: f64,
    rss_kib: u64,
    /// The RSS split: anonymous memory (the heap and the arenas: where a leak would show) and
    /// file pages (the binary's code and data as they are touched, shared with any other
    /// process running the same binary).
    rss_anon_kib: u64,
    rss_file_kib: u64,
    pss_kib: u64,
    fds: i64,
    threads: i64,
    tasks: i64,
    cpu_s: f64,
    /// Packets/s forwarded by the bridge over the window.
    out_pps: f64,
    /// The lowest packets/s received by a site over the window (sites that rejoined during
    /// the window are left out: they were away for part of it).
    min_site_rx_pps: f64,
    actions: u64,
    reconnects: u64,
    failures: u64,
}

impl Sample {
    const HEADER: &'static str =
        "sample,t_s,rss_kib,pss_kib,fds,threads,tasks,cpu_s,out_pps,min_site_rx_pps,actions,reconnects,failures,rss_anon_kib,rss_file_kib";

    fn csv(&self) -> String {
        format!(
            "sample,{:.0},{},{},{},{},{},{:.1},{:.0},{:.0},{},{},{},{},{}",
            self.t_s,
            self.rss_kib,
            self.pss_kib,
            self.fds,
            self.threads,
            self.tasks,
            self.cpu_s,
            self.out_pps,
            self.min_site_rx_pps,
            self.actions,
            self.reconnects,
            self.failures,
            self.rss_anon_kib,
            self.rss_file_kib
        )
    }
}

fn kib_field(text: &str, name: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

fn count_dir(path: String) -> i64 {
    std::fs::read_dir(path).map(|d| d.count() as i64).unwrap_or(-1)
}

/// A value of an unlabelled metric in `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Everything the run shares between the driver and the sampler.
struct Shared {
    /// The live simulated site per index of `SITES` (a rejoin puts a new one in).
    sims: Mutex<Vec<Arc<Sim>>>,
    actions: Mutex<u64>,
    reconnects: Mutex<u64>,
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn fail(&self, t0: Instant, what: String) {
        let line = format!("{:.0}s {what}", t0.elapsed().as_secs_f64());
        eprintln!("soak: failure: {line}");
        self.failures.lock().unwrap().push(line);
    }

    fn sim(&self, i: usize) -> Arc<Sim> {
        self.sims.lock().unwrap()[i].clone()
    }
}

/// Packets `sim` has received from every other site, audio and video.
fn received_total(sim: &Sim) -> u64 {
    SITES.iter().filter(|s| **s != sim.site).map(|s| sim.received(s, "audio") + sim.received(s, "video")).sum()
}

async fn metrics_text(bridge: &TestBridge) -> Option<String> {
    let (cert, port) = (bridge.cert_pem(), bridge.port);
    // The helper unwraps its connect; a panic in its own task is a failed scrape, not a crash.
    let task = tokio::spawn(async move { common::ws::https_request(&cert, port, "GET", "/metrics", &[], "").await });
    match tokio::time::timeout(Duration::from_secs(15), task).await {
        Ok(Ok((200, text))) => Some(text),
        _ => None,
    }
}

/// The bridge's own process: `pid`, or under a wrapper the descendant named `diemcau`.
fn bridge_process(pid: u32) -> u32 {
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        if std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "diemcau") {
            return p;
        }
        let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        queue.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
    }
    pid
}

async fn sampler(bridge: Arc<TestBridge>, shared: Arc<Shared>, every: Duration, t0: Instant, end: Instant) -> Vec<Sample> {
    let pid = bridge_process(bridge.pid());
    let mut samples: Vec<Sample> = Vec::new();
    let mut last: Vec<(Arc<Sim>, u64)> = Vec::new();
    let mut last_forwarded = 0.0;
    let mut next = t0;
    println!("{}", Sample::HEADER);
    loop {
        let now = Instant::now();
        let finished = now >= end;
        if !finished {
            tokio::time::sleep_until(next.max(now).into()).await;
        }
        let t_s = t0.elapsed().as_secs_f64();
        let dt = samples.last().map(|s| t_s - s.t_s).unwrap_or(0.0);
        if finished && samples.last().is_some_and(|_| dt < 1.0) {
            return samples; // the last regular sample is the end; a window of ms would say nothing
        }
        let (cpu_s, rss_kib) = proc_usage(pid);
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let text = metrics_text(&bridge).await;
        if text.is_none() {
            shared.fail(t0, "GET /metrics failed".into());
        }
        let tasks = text.as_deref().and_then(|t| metric(t, "diemcau_tasks_alive")).map(|v| v as i64).unwrap_or(-1);
        let forwarded = text.as_deref().and_then(|t| metric(t, "diemcau_media_forwarded_packets_total")).unwrap_or(last_forwarded);
        // Media: what each site received since the last sample, from the same Sim.
        let sims = shared.sims.lock().unwrap().clone();
        let now_counts: Vec<(Arc<Sim>, u64)> = sims.iter().map(|s| (s.clone(), received_total(s))).collect();
        let mut min_rx = f64::INFINITY;
        if dt > 0.0 {
            for (i, (sim, n)) in now_counts.iter().enumerate() {
                let Some((before, m)) = last.get(i) else { continue };
                if !Arc::ptr_eq(sim, before) {
                    continue; // rejoined during the window
                }
                let rate = (n - m) as f64 / dt;
                if rate == 0.0 {
                    shared.fail(t0, format!("{} received no media for {dt:.0} s", sim.site));
                }
                min_rx = min_rx.min(rate);
            }
        }
        last = now_counts;
        let s = Sample {
            t_s,
            rss_kib,
            rss_anon_kib: kib_field(&status, "RssAnon:"),
            rss_file_kib: kib_field(&status, "RssFile:"),
            pss_kib: kib_field(&rollup, "Pss:"),
            fds: count_dir(format!("/proc/{pid}/fd")),
            threads: count_dir(format!("/proc/{pid}/task")),
            tasks,
            cpu_s,
            out_pps: if dt > 0.0 { (forwarded - last_forwarded) / dt } else { 0.0 },
            min_site_rx_pps: if min_rx.is_finite() { min_rx } else { 0.0 },
            actions: *shared.actions.lock().unwrap(),
            reconnects: *shared.reconnects.lock().unwrap(),
            failures: shared.failures.lock().unwrap().len() as u64,
        };
        last_forwarded = forwarded;
        println!("{}", s.csv());
        samples.push(s);
        if finished {
            return samples;
        }
        next += every;
    }
}

/// The id of the first pending floor request of `site` in the latest state HQ received.
fn pending_request(chair: &Sim, site: &str) -> Option<u64> {
    let messages = chair.messages.lock().unwrap();
    let state = messages.iter().rev().find(|m| m["type"] == "state")?;
    state["floor"]["queue"].as_array()?.iter().find(|q| q["site"] == site)?["request"].as_u64()
}

/// How many kinds of chair action there are; each ward gets one round of them in turn.
const KINDS: u64 = 14;

/// The ward chair action number `k` is about.
fn acting_ward(k: u64) -> usize {
    1 + ((k / KINDS) % 5) as usize
}

/// Chair action number `k`: the kinds in turn, each on the next ward.
async fn chair_action(shared: &Shared, k: u64) -> &'static str {
    let ward_index = acting_ward(k);
    let ward_id = SITES[ward_index];
    let (chair, ward) = (shared.sim(0), shared.sim(ward_index));
    match k % KINDS {
        0 => {
            chair.send(json!({"type": "mute_site", "site": ward_id, "muted": true}));
            "mute_site"
        }
        1 => {
            chair.send(json!({"type": "mute_site", "site": ward_id, "muted": false}));
            "unmute_site"
        }
        2 => {
            chair.send(json!({"type": "give_floor", "site": ward_id}));
            "give_floor"
        }
        3 => {
            chair.send(json!({"type": "revoke_floor", "site": ward_id}));
            "revoke_floor"
        }
        4 => {
            chair.send(json!({"type": "set_layout", "layout": "grid"}));
            "layout_grid"
        }
        5 => {
            chair.send(json!({"type": "set_layout", "layout": "stage"}));
            "layout_stage"
        }
        6 => {
            ward.send(json!({"type": "request_floor", "topic": "Ý kiến"}));
            "request_floor"
        }
        7 => {
            // HQ learns the request's id from its state (up to 5 s).
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(request) = pending_request(&chair, ward_id) {
                    chair.send(json!({"type": "grant_floor", "request": request}));
                    return "grant_floor";
                }
                if Instant::now() >= deadline {
                    return "grant_floor:no_request_seen";
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        8 => {
            ward.send(json!({"type": "release_floor"}));
            "release_floor"
        }
        9 => {
            chair.send(json!({"type": "mute_all", "muted": true}));
            "mute_all"
        }
        10 => {
            chair.send(json!({"type": "mute_all", "muted": false}));
            "unmute_all"
        }
        11 => {
            // A fresh programme, then the next item twice: the programme never runs out.
            let items = json!([
                {"title": "Báo cáo", "kind": "report", "planned_minutes": 10},
                {"title": "Phát biểu", "kind": "speech", "site": ward_id, "planned_minutes": 5},
                {"title": "Chỉ đạo", "kind": "directive", "planned_minutes": 5},
            ]);
            chair.send(json!({"type": "set_agenda", "items": items}));
            chair.send(json!({"type": "next_item"}));
            chair.send(json!({"type": "next_item"}));
            "agenda_next"
        }
        12 => {
            // Locked and opened in one step, so a rejoin never meets a locked conference.
            chair.send(json!({"type": "lock", "locked": true}));
            chair.send(json!({"type": "lock", "locked": false}));
            "lock_unlock"
        }
        _ => {
            // The recorded conference (its minutes in the store) started and ended.
            chair.send(json!({"type": "start_conference"}));
            chair.send(json!({"type": "end_conference"}));
            "conference_start_end"
        }
    }
}

/// Ward `i` leaves (`leave` message) or loses its connection (sockets dropped), then joins
/// again; Ok once it receives HQ's media again.
async fn reconnect(bridge: &TestBridge, shared: &Shared, i: usize, clean: bool) -> Result<(), String> {
    let site = SITES[i];
    let old = shared.sim(i);
    if clean {
        old.send(json!({"type": "leave"}));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    old.stop();
    drop(old);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cert, port, key) = (bridge.cert_pem(), bridge.port, bridge.key(site).to_string());
    // `Sim::join` panics on a refused join; in its own task that is a failed rejoin.
    let join = tokio::spawn(async move { Sim::join_at_rate(&cert, port, site, &key, VIDEO_PPS).await });
    let sim = match tokio::time::timeout(Duration::from_secs(20), join).await {
        Ok(Ok(sim)) => Arc::new(sim),
        Ok(Err(e)) => return Err(format!("{site} rejoin failed: {e}")),
        Err(_) => return Err(format!("{site} rejoin: no joined within 20 s")),
    };
    shared.sims.lock().unwrap()[i] = sim.clone();
    let deadline = Instant::now() + REJOIN_TIMEOUT;
    while sim.received("hq", "audio") + sim.received("hq", "video") == 0 {
        if Instant::now() >= deadline {
            return Err(format!("{site} rejoined but received no media from hq within {REJOIN_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Error replies (`code`s) received by any site since the last call, counted.
fn new_errors(shared: &Shared, seen: &mut std::collections::HashMap<String, usize>) -> Vec<String> {
    let mut codes = Vec::new();
    for sim in shared.sims.lock().unwrap().iter() {
        let key = format!("{:p}", Arc::as_ptr(sim));
        let messages = sim.messages.lock().unwrap();
        let from = seen.get(&key).copied().unwrap_or(0);
        for m in &messages[from.min(messages.len())..] {
            if m["type"] == "error" {
                codes.push(format!("{}: {} ({})", sim.site, m["code"].as_str().unwrap_or("?"), m["request"].as_str().unwrap_or("?")));
            }
        }
        seen.insert(key, messages.len());
    }
    codes
}

fn main() {
    let a = args();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run(a));
}

async fn run(a: Args) {
    let started_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let wrapper = std::env::var("SOAK_WRAPPER").unwrap_or_default();
    let wrapper: Vec<&str> = wrapper.split_whitespace().collect();
    let bridge = Arc::new(if wrapper.is_empty() {
        TestBridge::start_with(config, common::scratch_dir("soak"))
    } else {
        TestBridge::start_wrapped(&wrapper, config, common::scratch_dir("soak"))
    });
    eprintln!("soak: bridge pid {} on port {}, log {}", bridge_process(bridge.pid()), bridge.port, bridge.log.display());
    let mut sims = Vec::new();
    for site in SITES {
        let cert = bridge.cert_pem();
        let join = Sim::join_at_rate(&cert, bridge.port, site, bridge.key(site), VIDEO_PPS);
        sims.push(Arc::new(tokio::time::timeout(Duration::from_secs(30), join).await.unwrap_or_else(|_| panic!("{site} did not join within 30 s"))));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sims.iter().all(|s| SITES.iter().filter(|o| **o != s.site).all(|o| s.received(o, "audio") + s.received(o, "video") > 0)) {
        assert!(Instant::now() < deadline, "media did not flow between all six sites within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("soak: six sites joined and receiving; running {} min", a.minutes);
    let shared = Arc::new(Shared { sims: Mutex::new(sims), actions: Mutex::new(0), reconnects: Mutex::new(0), failures: Mutex::new(Vec::new()) });
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(a.minutes * 60.0);
    let sampling = tokio::spawn(sampler(bridge.clone(), shared.clone(), Duration::from_secs(a.sample_seconds), t0, end));

    let (mut k, mut minute) = (0u64, 0u64);
    let mut action_kinds: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let mut error_codes: std::collections::BTreeMap<String, u64> = Default::default();
    let mut seen = std::collections::HashMap::new();
    let (mut next_action, mut next_reconnect) = (t0 + CHAIR_EVERY, t0 + a.reconnect_every);
    loop {
        let next = next_action.min(next_reconnect);
        if next >= end {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= next_reconnect {
            // Not the ward the chair is acting on: its leave would withdraw a floor request
            // the chair is about to grant (refused, as the tool's own doing).
            let mut ward = 1 + (minute % 5) as usize;
            if ward == acting_ward(k) {
                ward = ward % 5 + 1;
            }
            let clean = minute % 2 == 0;
            match tokio::time::timeout(Duration::from_secs(60), reconnect(&bridge, &shared, ward, clean)).await {
                Ok(Ok(())) => *shared.reconnects.lock().unwrap() += 1,
                Ok(Err(e)) => shared.fail(t0, e),
                Err(_) => shared.fail(t0, format!("{} reconnect took over 60 s", SITES[ward])),
            }
            minute += 1;
            next_reconnect += a.reconnect_every;
        } else {
            let kind = chair_action(&shared, k).await;
            if kind.contains(':') {
                shared.fail(t0, kind.to_string());
            }
            *action_kinds.entry(kind).or_default() += 1;
            *shared.actions.lock().unwrap() += 1;
            k += 1;
            // After a reconnect held the loop up, the actions missed are not sent in a burst:
            // a ward's `release_floor` could then overtake the chair's `grant_floor` on the
            // other socket (refused `not_holder`, as the first hour's run showed).
            next_action = (next_action + CHAIR_EVERY).max(Instant::now() + CHAIR_EVERY / 2);
        }
        for code in new_errors(&shared, &mut seen) {
            shared.fail(t0, format!("refused: {code}"));
            *error_codes.entry(code.split(": ").nth(1).unwrap_or("?").to_string()).or_default() += 1;
        }
    }
    let samples = match tokio::time::timeout(Duration::from_secs(60), sampling).await {
        Ok(Ok(s)) => s,
        _ => panic!("the sampler did not finish within 60 s of the end"),
    };
    for code in new_errors(&shared, &mut seen) {
        *error_codes.entry(code.split(": ").nth(1).unwrap_or("?").to_string()).or_default() += 1;
    }

    // Summary: after warm-up, against the first sample at or after it.
    let warm_s = a.warm_up_minutes * 60.0;
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t_s + 0.5 >= warm_s).collect();
    let (Some(warm), Some(last)) = (after.first().copied(), samples.last()) else { panic!("no samples") };
    let growth = |a: u64, b: u64| if a > 0 { (b as f64 - a as f64) / a as f64 * 100.0 } else { f64::NAN };
    let range = |f: fn(&Sample) -> i64| (after.iter().map(|s| f(s)).min().unwrap_or(-1), after.iter().map(|s| f(s)).max().unwrap_or(-1));
    // Least-squares slope of RSS over time after warm-up, KiB per hour.
    let slope = {
        let n = after.len() as f64;
        let (mx, my) = (after.iter().map(|s| s.t_s).sum::<f64>() / n, after.iter().map(|s| s.rss_kib as f64).sum::<f64>() / n);
        let (sxy, sxx) = after.iter().fold((0.0, 0.0), |(xy, xx), s| (xy + (s.t_s - mx) * (s.rss_kib as f64 - my), xx + (s.t_s - mx).powi(2)));
        if sxx > 0.0 {
            sxy / sxx * 3600.0
        } else {
            0.0
        }
    };
    let rss_growth = growth(warm.rss_kib, last.rss_kib);
    let (fds, tasks, threads) = (range(|s| s.fds), range(|s| s.tasks), range(|s| s.threads));
    let min_rx = after.iter().skip(1).map(|s| s.min_site_rx_pps).fold(f64::INFINITY, f64::min);
    let failures = shared.failures.lock().unwrap().clone();
    let panics = bridge.log_text().lines().filter(|l| l.contains("panicked")).count();
    let rss_ok = rss_growth <= RSS_GROWTH_LIMIT_PERCENT;
    let fds_ok = last.fds - warm.fds <= FD_SLACK;
    let tasks_ok = warm.tasks >= 0 && last.tasks - warm.tasks <= TASK_SLACK;
    let summary = json!({
        "started_unix_s": started_at,
        "minutes": t0.elapsed().as_secs_f64() / 60.0,
        "sample_seconds": a.sample_seconds,
        "warm_up_minutes": a.warm_up_minutes,
        "samples": samples.len(),
        "rss_kib": {"warm_up_end": warm.rss_kib, "end": last.rss_kib, "max_after_warm_up": after.iter().map(|s| s.rss_kib).max(), "first": samples[0].rss_kib},
        "rss_growth_percent": rss_growth,
        "rss_slope_kib_per_hour_after_warm_up": slope,
        "rss_anon_kib": {"warm_up_end": warm.rss_anon_kib, "end": last.rss_anon_kib},
        "rss_anon_growth_percent": growth(warm.rss_anon_kib, last.rss_anon_kib),
        "rss_file_kib": {"warm_up_end": warm.rss_file_kib, "end": last.rss_file_kib},
        "pss_kib": {"warm_up_end": warm.pss_kib, "end": last.pss_kib},
        "pss_growth_percent": growth(warm.pss_kib, last.pss_kib),
        "fds": {"warm_up_end": warm.fds, "end": last.fds, "min": fds.0, "max": fds.1},
        "tasks": {"warm_up_end": warm.tasks, "end": last.tasks, "min": tasks.0, "max": tasks.1},
        "threads": {"min": threads.0, "max": threads.1},
        "bridge_cpu_percent_of_one_core": (last.cpu_s - samples[0].cpu_s) / last.t_s.max(1.0) * 100.0,
        "bridge_out_pps_mean": after.iter().skip(1).map(|s| s.out_pps).sum::<f64>() / (after.len().saturating_sub(1).max(1)) as f64,
        "min_site_rx_pps_after_warm_up": if min_rx.is_finite() { Value::from(min_rx) } else { Value::Null },
        "chair_actions": *shared.actions.lock().unwrap(),
        "chair_action_kinds": action_kinds,
        "reconnects_ok": *shared.reconnects.lock().unwrap(),
        "reconnects_tried": minute,
        "refusals": error_codes,
        "failures": failures.len(),
        "first_failures": failures.iter().take(20).collect::<Vec<_>>(),
        "bridge_panics_in_log": panics,
        "bridge_log": bridge.log.display().to_string(),
        "verdict": {"rss_growth_within_5_percent": rss_ok, "fds_flat": fds_ok, "tasks_flat": tasks_ok, "no_failures": failures.is_empty() && panics == 0},
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
    let ok = rss_ok && fds_ok && tasks_ok && failures.is_empty() && panics == 0;
    // Sites first (their sockets close), then the bridge.
    shared.sims.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_millis(300)).await;
    if !wrapper.is_empty() {
        // An orderly stop of the bridge itself, then time for the wrapper to write its data.
        let pid = bridge_process(bridge.pid());
        let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        let running = |p: u32| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| !r.starts_with('Z')));
        while running(bridge.pid()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    drop(bridge);
    if !ok {
        std::process::exit(1);
    }
}
