//! What a full line delivers now, on the receiver's clock.
//!
//! While the line's queue is long, packets leave it back to back: the rate they arrive at over
//! the last few hundred milliseconds is the line's rate. The estimate's delivered rate is a
//! one-second mean stamped when feedback arrives, so just after a cap it still holds the second
//! before: backing off from it took four steps and a second on a 1 Mbit/s line (`cap1m`,
//! 2026-12-06), while the 200 ms queue overflowed.

use rtc::interceptor::PacketReport;
use std::collections::VecDeque;
use std::time::Duration;

/// The arrivals the rate is taken over (on the receiver's clock).
const WINDOW: Duration = Duration::from_millis(300);
/// Fewer arrivals, or a shorter span, say nothing.
const ENOUGH_PACKETS: usize = 10;
const ENOUGH_SPAN: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub(crate) struct LineRate {
    /// Arrived packets: when (receiver's clock) and their size on the wire.
    arrivals: VecDeque<(Duration, usize)>,
    bytes: usize,
}

impl LineRate {
    pub(crate) fn on_reports(&mut self, reports: &[PacketReport]) {
        for r in reports {
            let Some(at) = r.arrival.filter(|_| r.arrived) else { continue };
            // Reordered: its place in the window no longer matters.
            if self.arrivals.back().is_some_and(|(last, _)| at < *last) {
                continue;
            }
            self.arrivals.push_back((at, r.size));
            self.bytes += r.size;
        }
        let Some(&(newest, _)) = self.arrivals.back() else { return };
        while let Some(&(_, size)) = self.arrivals.front().filter(|(at, _)| newest - *at > WINDOW) {
            self.arrivals.pop_front();
            self.bytes -= size;
        }
    }

    /// Bit/s the packets arrived at over the window: the first packet's size is not counted, as
    /// its transmission ended at its arrival.
    pub(crate) fn bps(&self) -> Option<f64> {
        let (&(first, first_size), &(last, _)) = (self.arrivals.front()?, self.arrivals.back()?);
        let span = last - first;
        if self.arrivals.len() < ENOUGH_PACKETS || span < ENOUGH_SPAN {
            return None;
        }
        Some((self.bytes - first_size) as f64 * 8.0 / span.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A packet that arrived `arrival_ms` into the receiver's clock.
    fn arrived(arrival_ms: f64, size: usize) -> PacketReport {
        crate::peer::lean::estimate::report(Instant::now(), Some(arrival_ms), size)
    }

    #[test]
    fn packets_back_to_back_read_the_line_s_rate() {
        let mut r = LineRate::default();
        // 1 Mbit/s: a 1 250-byte packet every 10 ms, reported in batches of ten.
        for batch in 0..5 {
            let reports: Vec<_> = (0..10).map(|i| arrived(f64::from(batch * 10 + i) * 10.0, 1250)).collect();
            r.on_reports(&reports);
        }
        let bps = r.bps().unwrap();
        assert!((bps - 1_000_000.0).abs() < 1.0, "{bps}");
    }

    #[test]
    fn too_few_arrivals_say_nothing_and_losses_are_not_arrivals() {
        let mut r = LineRate::default();
        r.on_reports(&[arrived(0.0, 1250), arrived(10.0, 1250)]);
        assert_eq!(r.bps(), None);
        let lost = PacketReport { arrived: false, arrival: None, ..arrived(0.0, 1250) };
        r.on_reports(&vec![lost; 20]);
        assert_eq!(r.bps(), None);
    }
}
