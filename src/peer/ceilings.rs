//! Each site's line ceilings, live: what `[[sites]] downlink_kbps` / `uplink_kbps` say at start,
//! changed by a technician (`POST /api/tech/line`) without a restart or a reconnect. This table
//! is their one owner; the lean peer reads its site's on every report tick (once a second: the
//! downlink ceiling bounds its estimate, the uplink one its REMB to the browser), the health
//! view on every request. A change lasts until the bridge restarts (the config holds the
//! lasting value).

use crate::config::LineLimits;
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) struct Ceilings {
    /// Per site: (downlink, uplink) kbit/s, 0 for none.
    sites: Vec<(AtomicU32, AtomicU32)>,
}

impl Ceilings {
    pub(crate) fn new(lines: impl IntoIterator<Item = LineLimits>) -> Self {
        let atomic = |k: Option<u32>| AtomicU32::new(k.unwrap_or(0));
        Ceilings { sites: lines.into_iter().map(|l| (atomic(l.down_kbps), atomic(l.up_kbps))).collect() }
    }

    /// A site's ceilings now (none for an index out of range).
    pub(crate) fn get(&self, site: usize) -> LineLimits {
        let read = |a: &AtomicU32| Some(a.load(Ordering::Relaxed)).filter(|&k| k > 0);
        self.sites.get(site).map_or(LineLimits::default(), |(down, up)| LineLimits { down_kbps: read(down), up_kbps: read(up) })
    }

    /// New ceilings for a site (checked by the caller: [`LineLimits::checked`]).
    pub(crate) fn set(&self, site: usize, line: LineLimits) {
        if let Some((down, up)) = self.sites.get(site) {
            down.store(line.down_kbps.unwrap_or(0), Ordering::Relaxed);
            up.store(line.up_kbps.unwrap_or(0), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sites_ceilings_start_as_configured_and_change_alone() {
        let weak = LineLimits { down_kbps: Some(1000), up_kbps: Some(500) };
        let c = Ceilings::new([LineLimits::default(), weak]);
        assert_eq!((c.get(0), c.get(1)), (LineLimits::default(), weak));
        c.set(0, LineLimits { down_kbps: Some(600), up_kbps: None });
        c.set(1, LineLimits::default());
        assert_eq!((c.get(0), c.get(1)), (LineLimits { down_kbps: Some(600), up_kbps: None }, LineLimits::default()), "lifted: as the line takes");
        assert_eq!(c.get(7), LineLimits::default(), "no such site");
        c.set(7, weak); // nothing to change, and no panic
    }
}
