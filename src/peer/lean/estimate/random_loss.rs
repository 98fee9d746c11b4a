//! Whether a line loses packets at random, as opposed to losing them to its own queue.
//!
//! A queue that overflows loses the packets sent beyond what the line carries: fewer packets
//! is the cure, and anything sent to repair them in advance (redundant audio) only feeds the
//! queue. A line that drops packets with its queue short (radio, a faulty cable, an overloaded
//! router further on) loses them whatever is sent: there redundancy is what keeps audio whole.
//! So only the losses reported while the queue is short count, over a window long enough that
//! a line with a few per cent of loss reads as lossy throughout, and one that stopped losing
//! stays lossy a while (redundancy comes back at once, and goes only after the window).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Losses are counted over this long.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);
/// A line losing this share of its packets, or more, with its queue short, is lossy: about the
/// share at which plain Opus conceals audibly (1 % of 20 ms frames is a gap every 2 s).
pub(crate) const LOSSY_SHARE: f64 = 0.01;
/// A lossy line is lossy until it loses less than this share: one near the threshold does not
/// flip its verdict (and its audio) back and forth (seen twice within a second at 1 %).
pub(crate) const CLEAR_SHARE: f64 = 0.005;
/// Fewer packets than this in the window say nothing either way (a site that receives almost
/// nothing); the line keeps its last verdict.
const ENOUGH_PACKETS: u32 = 200;
const SLICE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct RandomLoss {
    /// Per slice of [`SLICE`]: when it began, packets lost and reported.
    slices: VecDeque<(Instant, u32, u32)>,
    lossy: bool,
}

impl RandomLoss {
    /// Packets reported on at `now`: `lost` of `total`, while the line's queue was `short` (a
    /// long queue's losses are its own, and not counted).
    pub(crate) fn on_reports(&mut self, now: Instant, lost: usize, total: usize, short: bool) {
        while self.slices.front().is_some_and(|(at, _, _)| now.duration_since(*at) >= WINDOW) {
            self.slices.pop_front();
        }
        if short && total > 0 {
            match self.slices.back_mut() {
                Some((at, l, t)) if now.duration_since(*at) < SLICE => {
                    *l += lost as u32;
                    *t += total as u32;
                }
                _ => self.slices.push_back((now, lost as u32, total as u32)),
            }
        }
        let (lost, total) = self.slices.iter().fold((0, 0), |(l, t), s| (l + s.1, t + s.2));
        if total >= ENOUGH_PACKETS {
            let share = f64::from(lost) / f64::from(total);
            self.lossy = share >= if self.lossy { CLEAR_SHARE } else { LOSSY_SHARE };
        }
    }

    /// The line lost at least [`LOSSY_SHARE`] of its packets with its queue short, over the
    /// last [`WINDOW`] (and, once lossy, at least [`CLEAR_SHARE`]).
    pub(crate) fn lossy(&self) -> bool {
        self.lossy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `seconds` of a line sending 300 packets a second, in reports every 100 ms, of which
    /// every `one_in`th is lost (0: none).
    fn feed(r: &mut RandomLoss, from: Instant, seconds: u64, one_in: usize, short: bool) -> Instant {
        let mut now = from;
        let mut sent = 0;
        for _ in 0..seconds * 10 {
            now += Duration::from_millis(100);
            let lost = (0..30).filter(|i| one_in > 0 && (sent + i) % one_in == 0).count();
            sent += 30;
            r.on_reports(now, lost, 30, short);
        }
        now
    }

    #[test]
    fn a_line_losing_five_per_cent_with_its_queue_short_is_lossy() {
        let mut r = RandomLoss::default();
        feed(&mut r, Instant::now(), 3, 20, true);
        assert!(r.lossy());
    }

    #[test]
    fn an_overflowing_queue_is_not_a_lossy_line() {
        let mut r = RandomLoss::default();
        let t = feed(&mut r, Instant::now(), 5, 0, true);
        let t = feed(&mut r, t, 2, 4, false);
        assert!(!r.lossy(), "a quarter lost to the queue");
        feed(&mut r, t, 5, 0, true);
        assert!(!r.lossy());
    }

    #[test]
    fn a_line_that_stops_losing_is_lossy_until_the_window_has_passed() {
        let mut r = RandomLoss::default();
        let t = feed(&mut r, Instant::now(), 5, 20, true);
        let t = feed(&mut r, t, 5, 0, true);
        assert!(r.lossy(), "half the window still at 5 %: 2.5 %");
        feed(&mut r, t, 6, 0, true);
        assert!(!r.lossy());
    }

    #[test]
    fn a_lossy_line_near_the_threshold_stays_lossy() {
        let mut r = RandomLoss::default();
        let t = feed(&mut r, Instant::now(), 12, 50, true);
        assert!(r.lossy(), "2 %");
        let t = feed(&mut r, t, 12, 150, true);
        assert!(r.lossy(), "0.7 %: under the threshold, over the clearing share");
        let mut fresh = RandomLoss::default();
        feed(&mut fresh, t, 12, 150, true);
        assert!(!fresh.lossy(), "0.7 % alone is not lossy");
    }

    #[test]
    fn a_trickle_of_packets_keeps_the_last_verdict() {
        let mut r = RandomLoss::default();
        let t = feed(&mut r, Instant::now(), 3, 20, true);
        r.on_reports(t + WINDOW * 2, 0, 5, true);
        assert!(r.lossy());
    }

    #[test]
    fn a_tenth_of_a_per_cent_is_a_line_s_nature() {
        let mut r = RandomLoss::default();
        feed(&mut r, Instant::now(), 12, 1000, true);
        assert!(!r.lossy());
    }
}
