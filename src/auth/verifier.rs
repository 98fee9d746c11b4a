//! Argon2 checks off the media path.
//!
//! A key or password check costs ~30 ms of CPU and 7 MiB by design. When every site of a
//! meeting signs in at once (the start of a large meeting, every page reloading), one blocking
//! thread per sign-in would take every core, the ones forwarding media too: 100 sign-ins at
//! once during a 50-site meeting took the packets' p99 latency over 200 ms and lost some
//! (`cargo bench --bench load -- --sites 50 --mode stage --measured 10 --storm 100`). So checks
//! run on a fixed number of lanes (half the cores, at least one), each its own thread, and
//! queue behind each other; past [`QUEUE`] waiting checks a sign-in is refused as `busy` and
//! the page tries again. (Lowering the lanes' priority as well was tried: with nice 10 on a
//! loaded 2-core machine a hundred sign-ins took over 10 s.)

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use tracing::warn;

/// Checks allowed to wait for a lane; more than a city's meeting signing in at once.
pub const QUEUE: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

/// The check could not be queued: too many are waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

pub struct Verifier {
    jobs: SyncSender<Job>,
}

impl Verifier {
    /// Lanes for this machine: half its cores, at least one.
    pub fn for_this_machine() -> Verifier {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Verifier::new((cores / 2).max(1), QUEUE)
    }

    pub fn new(lanes: usize, queue: usize) -> Verifier {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for lane in 0..lanes.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("diemcau-verify-{lane}")).spawn(move || run_lane(&rx));
            if let Err(e) = spawned {
                warn!("cannot start a credential-check thread: {e}");
            }
        }
        Verifier { jobs }
    }

    /// Runs `check` on a lane and waits (asynchronously) for its answer.
    pub async fn run<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
        });
        // Full (too many waiting) or disconnected (no lane left): either way, not now.
        self.jobs.try_send(job).map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
    }
}

fn run_lane(rx: &Mutex<Receiver<Job>>) {
    loop {
        // Hold the lock only to take a job, not while running it.
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        match job {
            // A check that panics answers nobody (its caller sees `Busy`) but keeps the lane.
            Ok(job) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    warn!("a credential check panicked");
                }
            }
            Err(_) => return, // the Verifier is gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn checks_run_on_the_verifiers_own_lanes_and_answer() {
        let v = Verifier::new(2, 4);
        for _ in 0..4 {
            let name = v.run(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
            assert!(matches!(name.as_deref(), Some("diemcau-verify-0" | "diemcau-verify-1")), "{name:?}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_as_busy_and_the_queued_checks_still_finish() {
        let v = Arc::new(Verifier::new(1, 2));
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        // One check occupies the lane until released...
        let first = {
            let v = v.clone();
            tokio::spawn(async move {
                v.run(move || {
                    let _ = started_tx.send(());
                    let _ = hold.recv_timeout(Duration::from_secs(10));
                    0
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started.recv_timeout(Duration::from_secs(10))).await.unwrap().expect("the lane took the first check");
        // ...two more fill the queue (this test's runtime has one thread: they are queued
        // by the time the sleep below ends).
        let queued: Vec<_> = (1..3)
            .map(|i| {
                let v = v.clone();
                tokio::spawn(async move { v.run(move || i).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(v.run(|| 99).await, Err(Busy), "a fourth check finds the lane busy and the queue full");
        release.send(()).unwrap();
        let mut answers = vec![first.await.unwrap().unwrap()];
        for q in queued {
            answers.push(q.await.unwrap().unwrap());
        }
        assert_eq!(answers, vec![0, 1, 2]);
        assert_eq!(v.run(|| 7).await, Ok(7), "room again once the queue drained");
    }

    #[tokio::test]
    async fn a_check_that_panics_does_not_take_its_lane_down() {
        let v = Verifier::new(1, 4);
        assert_eq!(v.run(|| -> u8 { panic!("a broken check") }).await, Err(Busy));
        assert_eq!(v.run(|| 5).await, Ok(5));
    }
}
