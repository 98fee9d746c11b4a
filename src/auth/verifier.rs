//! Argon2 checks off the media path.
//!
//! A key or password check costs ~30 ms of CPU and 7 MiB by design. When every site of a
//! meeting signs in at once (the start of a large meeting, every page reloading), one blocking
//! thread per sign-in would take every core, the ones forwarding media too: 100 sign-ins at
//! once during a 50-site meeting took the packets' p99 latency over 200 ms and lost some
//! (`cargo bench --bench load -- --sites 50 --mode stage --measured 10 --storm 100`). So checks
//! run on a fixed number of lanes (half the cores, at least one), each its own thread, and
//! queue behind each other; past [`QUEUE`] waiting checks (or [`QUEUE_PER_ADDRESS`] from one
//! address) a sign-in is refused as `busy` and the page tries again. Waiting checks are served
//! round robin by address, and an address whose check failed lately waits behind every other:
//! a storm of wrong keys cannot delay the site that knows its key. (Lowering the lanes' priority as well was tried: with nice 10 on a
//! loaded 2-core machine a hundred sign-ins took over 10 s.)

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tracing::warn;

/// Checks allowed to wait for a lane; more than a city's meeting signing in at once.
pub(crate) const QUEUE: usize = 256;
/// Checks one address may have waiting (a room PC signs in once; an office behind one NAT a
/// few times).
pub(crate) const QUEUE_PER_ADDRESS: usize = 16;
/// An address whose check failed is served after every other for this long: a storm of wrong
/// keys from a hundred addresses then waits behind the one site that knows its key.
pub(crate) const SUSPECT_FOR: Duration = Duration::from_secs(600);

type Job = Box<dyn FnOnce() + Send>;

/// The check could not be queued: too many are waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

/// Waiting checks, by address, served round robin: trusted addresses first, then those whose
/// checks failed lately.
#[derive(Default)]
struct Waiting {
    by_address: HashMap<IpAddr, VecDeque<Job>>,
    /// Addresses with waiting checks, in turn order, apart by trust.
    trusted: VecDeque<IpAddr>,
    suspect: VecDeque<IpAddr>,
    /// When each address last failed a check.
    failed: HashMap<IpAddr, Instant>,
    total: usize,
    closed: bool,
}

impl Waiting {
    fn is_suspect(&self, ip: IpAddr, now: Instant) -> bool {
        self.failed.get(&ip).is_some_and(|at| now.duration_since(*at) < SUSPECT_FOR)
    }

    fn push(&mut self, ip: IpAddr, job: Job, now: Instant) -> Result<(), Job> {
        let queue = self.by_address.entry(ip).or_default();
        if self.total >= QUEUE || queue.len() >= QUEUE_PER_ADDRESS {
            return Err(job);
        }
        let first = queue.is_empty();
        queue.push_back(job);
        self.total += 1;
        if first {
            if self.is_suspect(ip, now) { &mut self.suspect } else { &mut self.trusted }.push_back(ip);
        }
        Ok(())
    }

    fn pop(&mut self, now: Instant) -> Option<Job> {
        // An address that failed since it queued goes behind the trusted ones now.
        while let Some(&ip) = self.trusted.front() {
            if !self.is_suspect(ip, now) {
                break;
            }
            self.trusted.pop_front();
            self.suspect.push_back(ip);
        }
        let (ip, from_trusted) = match self.trusted.pop_front() {
            Some(ip) => (ip, true),
            None => (self.suspect.pop_front()?, false),
        };
        let queue = self.by_address.get_mut(&ip)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            self.by_address.remove(&ip);
        } else if from_trusted {
            self.trusted.push_back(ip);
        } else {
            self.suspect.push_back(ip);
        }
        self.total -= usize::from(job.is_some());
        job
    }
}

struct Shared {
    waiting: Mutex<Waiting>,
    ready: Condvar,
}

pub(crate) struct Verifier {
    shared: Arc<Shared>,
}

impl Drop for Verifier {
    fn drop(&mut self) {
        if let Ok(mut w) = self.shared.waiting.lock() {
            w.closed = true;
        }
        self.shared.ready.notify_all();
    }
}

impl Verifier {
    /// Lanes for this machine: half its cores, at least one.
    pub(crate) fn for_this_machine() -> Verifier {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Verifier::new((cores / 2).max(1))
    }

    pub(crate) fn new(lanes: usize) -> Verifier {
        let shared = Arc::new(Shared { waiting: Mutex::default(), ready: Condvar::new() });
        for lane in 0..lanes.max(1) {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new().name(format!("diemcau-verify-{lane}")).spawn(move || run_lane(&shared));
            if let Err(e) = spawned {
                warn!("cannot start a credential-check thread: {e}");
            }
        }
        Verifier { shared }
    }

    /// Runs `check` for a sign-in from `ip` on a lane and waits (asynchronously) for its
    /// answer; `Busy` when too many checks wait (in all, or from that address).
    pub(crate) async fn run<T: Send + 'static>(&self, ip: IpAddr, check: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
        });
        {
            let mut w = self.shared.waiting.lock().map_err(|_| Busy)?;
            w.push(ip, job, Instant::now()).map_err(|_| Busy)?;
        }
        self.shared.ready.notify_one();
        rx.await.map_err(|_| Busy)
    }

    /// A check from `ip` failed (a wrong key or password): its next ones wait behind everyone
    /// else's for a while.
    pub(crate) fn failed(&self, ip: IpAddr) {
        if let Ok(mut w) = self.shared.waiting.lock() {
            let now = Instant::now();
            w.failed.retain(|_, at| now.duration_since(*at) < SUSPECT_FOR);
            w.failed.insert(ip, now);
        }
    }
}

fn run_lane(shared: &Shared) {
    loop {
        // Hold the lock only to take a job, not while running it.
        let job = {
            let Ok(mut w) = shared.waiting.lock() else { return };
            loop {
                if let Some(job) = w.pop(Instant::now()) {
                    break job;
                }
                if w.closed {
                    return;
                }
                w = match shared.ready.wait(w) {
                    Ok(w) => w,
                    Err(_) => return,
                };
            }
        };
        // A check that panics answers nobody (its caller sees `Busy`) but keeps the lane.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            warn!("a credential check panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn checks_run_on_the_verifiers_own_lanes_and_answer() {
        let v = Verifier::new(2);
        for _ in 0..4 {
            let name = v.run(HERE, || std::thread::current().name().map(str::to_owned)).await.unwrap();
            assert!(matches!(name.as_deref(), Some("diemcau-verify-0" | "diemcau-verify-1")), "{name:?}");
        }
    }

    /// Occupies the one lane of `v` until the returned sender is used (or dropped).
    async fn hold_the_lane(v: &Arc<Verifier>) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<i32, Busy>>) {
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = {
            let v = v.clone();
            tokio::spawn(async move {
                v.run(HERE, move || {
                    let _ = started_tx.send(());
                    let _ = hold.recv_timeout(Duration::from_secs(10));
                    0
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started.recv_timeout(Duration::from_secs(10))).await.unwrap().expect("the lane took the first check");
        (release, first)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_from_one_address_refuses_as_busy_and_the_queued_checks_still_finish() {
        let v = Arc::new(Verifier::new(1));
        let (release, first) = hold_the_lane(&v).await;
        let queued: Vec<_> = (1..=QUEUE_PER_ADDRESS as i32)
            .map(|i| {
                let v = v.clone();
                tokio::spawn(async move { v.run(HERE, move || i).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(v.run(HERE, || 99).await, Err(Busy), "one more from the same address finds its queue full");
        release.send(()).unwrap();
        let mut answers = vec![first.await.unwrap().unwrap()];
        for q in queued {
            answers.push(q.await.unwrap().unwrap());
        }
        assert_eq!(answers, (0..=QUEUE_PER_ADDRESS as i32).collect::<Vec<_>>());
        assert_eq!(v.run(HERE, || 7).await, Ok(7), "room again once the queue drained");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_storm_of_failing_addresses_waits_behind_the_site_that_knows_its_key() {
        let v = Arc::new(Verifier::new(1));
        let storm: Vec<IpAddr> = (1..=50u8).map(|i| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i))).collect();
        for ip in &storm {
            v.failed(*ip);
        }
        let (release, first) = hold_the_lane(&v).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for ip in &storm {
            let (v, order, ip) = (v.clone(), order.clone(), *ip);
            waiting.push(tokio::spawn(async move { v.run(ip, move || order.lock().unwrap().push(ip)).await }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let site: IpAddr = "203.0.113.7".parse().unwrap();
        let (v2, order2) = (v.clone(), order.clone());
        let legit = tokio::spawn(async move { v2.run(site, move || order2.lock().unwrap().push(site)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        legit.await.unwrap().unwrap();
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        assert_eq!(order.lock().unwrap().first(), Some(&site), "the site's check ran before the 50 that queued before it");
    }

    #[tokio::test]
    async fn a_check_that_panics_does_not_take_its_lane_down() {
        let v = Verifier::new(1);
        assert_eq!(v.run(HERE, || -> u8 { panic!("a broken check") }).await, Err(Busy));
        assert_eq!(v.run(HERE, || 5).await, Ok(5));
    }
}
