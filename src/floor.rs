//! Floor control for a chaired multi-site meeting, modelled on BFCP (RFC 8855).
//! This module owns the speak queue, who holds the floor, the presence each
//! site has reported, and the meeting programme with its timing log. It is a
//! sans-IO state machine: every input carries its own `now_ms`, every accepted
//! input is answered with the [`FloorEvent`]s it caused, and a refused input
//! leaves the state exactly as it was. It must never read a clock, perform I/O,
//! block, spawn threads or draw random numbers; the layers around it do that,
//! which is what keeps every transition reproducible in a plain unit test.

use std::fmt;

use crate::domain::{AgendaItem, AgendaKind, SiteIndex};

/// Topics are shown on a one-line banner at every site; 200 characters is what
/// fits, and Vietnamese diacritics make byte counts meaningless for that.
pub(crate) const MAX_TOPIC_CHARS: usize = 200;

const MS_PER_MINUTE: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct RequestId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum RequestState {
    Pending,
    Granted,
    Denied,
    Revoked,
    Released,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FloorRequest {
    pub(crate) id: RequestId,
    pub(crate) site: SiteIndex,
    pub(crate) topic: Option<String>,
    pub(crate) state: RequestState,
    pub(crate) created_ms: i64,
    /// When the request left `Pending` (granted, denied or cancelled).
    pub(crate) decided_ms: Option<i64>,
    /// When a granted floor ended (revoked or released); kept apart from
    /// `decided_ms` so the minutes can still compute how long a site spoke.
    pub(crate) ended_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Holder {
    pub(crate) site: SiteIndex,
    pub(crate) request: RequestId,
    pub(crate) since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueEntry {
    /// 1-based, because it is read out to people ("you are number 2").
    pub(crate) position: usize,
    pub(crate) id: RequestId,
    pub(crate) site: SiteIndex,
    pub(crate) topic: Option<String>,
    pub(crate) waiting_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CurrentItem {
    pub(crate) index: usize,
    pub(crate) item: AgendaItem,
    pub(crate) started_ms: i64,
    pub(crate) elapsed_ms: i64,
    pub(crate) planned_ms: i64,
    pub(crate) overtime: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ItemRun {
    pub(crate) index: usize,
    pub(crate) started_ms: i64,
    pub(crate) ended_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloorEvent {
    Requested {
        id: RequestId,
        site: SiteIndex,
    },
    Cancelled {
        id: RequestId,
        site: SiteIndex,
    },
    Granted {
        id: RequestId,
        site: SiteIndex,
    },
    Denied {
        id: RequestId,
        site: SiteIndex,
    },
    Revoked {
        id: RequestId,
        site: SiteIndex,
    },
    Released {
        id: RequestId,
        site: SiteIndex,
    },
    ItemStarted {
        index: usize,
    },
    /// A speech item started while its site is not connected: nobody was given the floor
    /// (the programme goes on; the chair may give it when the site comes, or move on).
    SpeakerAbsent {
        index: usize,
        site: SiteIndex,
    },
    ItemEnded {
        index: usize,
    },
    PresenceChanged {
        site: SiteIndex,
        present: bool,
    },
}

/// A step of a floor request. Its serde name (`requested`, `granted`, …) is the protocol's
/// `floor` event and the event log's `floor_<step>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStep {
    Requested,
    Cancelled,
    Granted,
    Denied,
    Revoked,
    Released,
}

impl RequestStep {
    /// The step's name, as its serde form gives it.
    pub(crate) fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

impl FloorEvent {
    /// A floor request's step: the request, its site and the step; `None` for the
    /// programme's own events.
    pub(crate) fn request_step(&self) -> Option<(RequestId, SiteIndex, RequestStep)> {
        Some(match *self {
            FloorEvent::Requested { id, site } => (id, site, RequestStep::Requested),
            FloorEvent::Cancelled { id, site } => (id, site, RequestStep::Cancelled),
            FloorEvent::Granted { id, site } => (id, site, RequestStep::Granted),
            FloorEvent::Denied { id, site } => (id, site, RequestStep::Denied),
            FloorEvent::Revoked { id, site } => (id, site, RequestStep::Revoked),
            FloorEvent::Released { id, site } => (id, site, RequestStep::Released),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FloorError {
    NotChair,
    ChairNeedsNoRequest,
    AlreadyQueued,
    AlreadyHolds,
    TopicTooLong,
    UnknownSite,
    NoPendingRequest,
    UnknownRequest,
    NotPending,
    SiteAbsent,
    NotHolder,
    InvalidAgenda(String),
    AgendaFinished,
}

impl fmt::Display for FloorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            FloorError::NotChair => "only the chair may do this",
            FloorError::ChairNeedsNoRequest => "the chair may always speak and needs no floor",
            FloorError::AlreadyQueued => "this site already has a pending request",
            FloorError::AlreadyHolds => "this site already holds the floor",
            FloorError::TopicTooLong => "the topic is longer than 200 characters",
            FloorError::UnknownSite => "no such site",
            FloorError::NoPendingRequest => "this site has no pending request",
            FloorError::UnknownRequest => "no such request",
            FloorError::NotPending => "the request is no longer pending",
            FloorError::SiteAbsent => "the site is not connected",
            FloorError::NotHolder => "this site does not hold the floor",
            FloorError::InvalidAgenda(why) => return write!(f, "invalid agenda: {why}"),
            FloorError::AgendaFinished => "there is no next agenda item",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for FloorError {}

type Outcome = Result<Vec<FloorEvent>, FloorError>;

/// Finished requests kept (for `history`); older ones are dropped.
pub(crate) const RECENT_FINISHED: usize = 32;

/// Every check in an operation runs before its first mutation, which is what
/// makes "on error nothing changes" hold without any rollback code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Floor {
    chair: SiteIndex,
    max_holders: usize,
    present: Vec<bool>,
    /// Live requests (pending, or granted and still holding) and the last [`RECENT_FINISHED`]
    /// finished ones, oldest first. Bounded: a ward asking and withdrawing all meeting long
    /// cannot grow it (the minutes come from the event log, not from here).
    requests: Vec<FloorRequest>,
    /// The id of the last request made (ids only grow).
    #[serde(default)]
    last_id: u64,
    /// In grant order, so revocations are reported oldest speaker first.
    holders: Vec<Holder>,
    agenda: Vec<AgendaItem>,
    /// `runs[i].index == i`: items only ever run in order, one after another.
    runs: Vec<ItemRun>,
}

impl Floor {
    /// Sites start absent; the conference layer reports joins via `set_present`.
    ///
    /// # Panics
    /// If `chair >= site_count` or `max_holders == 0`: both are configuration
    /// bugs that no meeting could run with.
    pub(crate) fn new(site_count: usize, chair: SiteIndex, max_holders: usize) -> Self {
        assert!(chair < site_count, "chair {chair} is not one of {site_count} sites");
        assert!(max_holders >= 1, "a meeting needs room for at least one holder");
        Floor {
            chair,
            max_holders,
            present: vec![false; site_count],
            requests: Vec::new(),
            last_id: 0,
            holders: Vec::new(),
            agenda: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub(crate) fn chair(&self) -> SiteIndex {
        self.chair
    }

    pub(crate) fn site_count(&self) -> usize {
        self.present.len()
    }

    #[cfg(test)]
    pub(crate) fn max_holders(&self) -> usize {
        self.max_holders
    }

    pub(crate) fn is_present(&self, site: SiteIndex) -> bool {
        self.present.get(site).copied().unwrap_or(false)
    }

    /// Leaving deliberately keeps the site's request and floor: a dropped link
    /// usually comes back, and a later layer decides when to give up on it.
    /// Unknown sites are ignored because presence comes from the transport,
    /// not from a participant who could be told about a mistake.
    pub(crate) fn set_present(&mut self, site: SiteIndex, present: bool, _now_ms: i64) -> Vec<FloorEvent> {
        match self.present.get_mut(site) {
            Some(p) if *p != present => {
                *p = present;
                vec![FloorEvent::PresenceChanged { site, present }]
            }
            _ => Vec::new(),
        }
    }

    pub(crate) fn request(&mut self, actor: SiteIndex, topic: Option<String>, now_ms: i64) -> Outcome {
        self.check_site(actor)?;
        if actor == self.chair {
            return Err(FloorError::ChairNeedsNoRequest);
        }
        if self.holds(actor) {
            return Err(FloorError::AlreadyHolds);
        }
        if self.pending_of(actor).is_some() {
            return Err(FloorError::AlreadyQueued);
        }
        let topic = topic.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        if topic.as_ref().is_some_and(|t| t.chars().count() > MAX_TOPIC_CHARS) {
            return Err(FloorError::TopicTooLong);
        }
        let i = self.push_request(actor, topic, now_ms);
        Ok(vec![FloorEvent::Requested { id: self.requests[i].id, site: actor }])
    }

    pub(crate) fn cancel(&mut self, actor: SiteIndex, now_ms: i64) -> Outcome {
        self.check_site(actor)?;
        let i = self.pending_of(actor).ok_or(FloorError::NoPendingRequest)?;
        Ok(vec![self.decide(i, RequestState::Cancelled, now_ms)])
    }

    /// Granting on a full floor replaces the holders, as giving does: both are the chair
    /// handing the floor to a site, and the same click must not mean two things.
    pub(crate) fn grant(&mut self, actor: SiteIndex, id: RequestId, now_ms: i64) -> Outcome {
        self.check_chair(actor)?;
        let i = self.pending_index(id)?;
        if !self.present[self.requests[i].site] {
            return Err(FloorError::SiteAbsent);
        }
        let mut events = Vec::new();
        if self.holders.len() >= self.max_holders {
            events.extend(self.revoke_all_except(None, now_ms));
        }
        events.push(self.decide(i, RequestState::Granted, now_ms));
        Ok(events)
    }

    pub(crate) fn deny(&mut self, actor: SiteIndex, id: RequestId, now_ms: i64) -> Outcome {
        self.check_chair(actor)?;
        let i = self.pending_index(id)?;
        Ok(vec![self.decide(i, RequestState::Denied, now_ms)])
    }

    /// Giving replaces rather than failing on a full floor: the chair pointing
    /// at a site is an order, and making them revoke first would be a second
    /// step during which nobody may speak.
    pub(crate) fn give(&mut self, actor: SiteIndex, site: SiteIndex, now_ms: i64) -> Outcome {
        self.check_chair(actor)?;
        self.check_site(site)?;
        if site == self.chair {
            return Err(FloorError::ChairNeedsNoRequest);
        }
        if self.holds(site) {
            return Err(FloorError::AlreadyHolds);
        }
        if !self.present[site] {
            return Err(FloorError::SiteAbsent);
        }
        let mut events = Vec::new();
        if self.holders.len() >= self.max_holders {
            events.extend(self.revoke_all_except(None, now_ms));
        }
        events.push(self.hand_floor_to(site, now_ms));
        Ok(events)
    }

    pub(crate) fn revoke(&mut self, actor: SiteIndex, site: SiteIndex, now_ms: i64) -> Outcome {
        self.check_chair(actor)?;
        self.check_site(site)?;
        let k = self.holder_slot(site).ok_or(FloorError::NotHolder)?;
        Ok(vec![self.end_holding(k, RequestState::Revoked, now_ms)])
    }

    pub(crate) fn release(&mut self, actor: SiteIndex, now_ms: i64) -> Outcome {
        self.check_site(actor)?;
        let k = self.holder_slot(actor).ok_or(FloorError::NotHolder)?;
        Ok(vec![self.end_holding(k, RequestState::Released, now_ms)])
    }

    #[cfg(test)]
    /// The audio-forwarding rule: the chair is never muted by floor control.
    pub(crate) fn may_speak(&self, site: SiteIndex) -> bool {
        site == self.chair || self.holds(site)
    }

    pub(crate) fn holders(&self) -> Vec<Holder> {
        self.holders.clone()
    }

    #[cfg(test)]
    pub(crate) fn speaking_ms(&self, site: SiteIndex, now_ms: i64) -> Option<i64> {
        let k = self.holder_slot(site)?;
        Some(now_ms.saturating_sub(self.holders[k].since_ms).max(0))
    }

    pub(crate) fn queue(&self, now_ms: i64) -> Vec<QueueEntry> {
        self.requests
            .iter()
            .filter(|r| r.state == RequestState::Pending)
            .enumerate()
            .map(|(n, r)| QueueEntry {
                position: n + 1,
                id: r.id,
                site: r.site,
                topic: r.topic.clone(),
                waiting_ms: now_ms.saturating_sub(r.created_ms).max(0),
            })
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn position_of(&self, site: SiteIndex) -> Option<usize> {
        self.requests.iter().filter(|r| r.state == RequestState::Pending).position(|r| r.site == site).map(|n| n + 1)
    }

    /// Not called `request` because that name is the asking operation.
    pub(crate) fn request_by_id(&self, id: RequestId) -> Option<&FloorRequest> {
        self.index_of(id).map(|i| &self.requests[i])
    }

    #[cfg(test)]
    pub(crate) fn history(&self) -> &[FloorRequest] {
        &self.requests
    }

    /// Replacing the programme ends a running item (so its run is closed) and
    /// restarts the log, because `ItemRun::index` points into this agenda.
    pub(crate) fn set_agenda(&mut self, actor: SiteIndex, items: Vec<AgendaItem>, now_ms: i64) -> Outcome {
        self.check_chair(actor)?;
        for (n, item) in items.iter().enumerate() {
            self.validate_item(item).map_err(|why| FloorError::InvalidAgenda(format!("item {}: {why}", n + 1)))?;
        }
        let events = self.end_running_item(now_ms).into_iter().collect();
        self.agenda = items;
        self.runs.clear();
        Ok(events)
    }

    pub(crate) fn agenda(&self) -> &[AgendaItem] {
        &self.agenda
    }

    /// On the last item this only ends it, so the programme can be closed and
    /// its end time recorded; only a call after that reports `AgendaFinished`.
    pub(crate) fn next_item(&mut self, actor: SiteIndex, now_ms: i64) -> Outcome {
        self.check_chair(actor)?;
        let next = self.runs.len();
        let Some(item) = self.agenda.get(next) else {
            return match self.end_running_item(now_ms) {
                Some(ended) => Ok(vec![ended]),
                None => Err(FloorError::AgendaFinished),
            };
        };
        // A speech assigned to the chair needs no floor, so it runs like a report.
        let speaker = match (item.kind, item.site) {
            (AgendaKind::Speech, Some(s)) if s != self.chair => Some(s),
            _ => None,
        };
        let mut events: Vec<FloorEvent> = self.end_running_item(now_ms).into_iter().collect();
        events.extend(self.revoke_all_except(speaker, now_ms));
        self.runs.push(ItemRun { index: next, started_ms: now_ms, ended_ms: None });
        events.push(FloorEvent::ItemStarted { index: next });
        match speaker {
            // An absent speaker does not stop the programme: its item runs without a floor.
            Some(s) if !self.present[s] => events.push(FloorEvent::SpeakerAbsent { index: next, site: s }),
            Some(s) if !self.holds(s) => events.push(self.hand_floor_to(s, now_ms)),
            _ => {}
        }
        Ok(events)
    }

    pub(crate) fn current_item(&self, now_ms: i64) -> Option<CurrentItem> {
        let run = self.running()?;
        let item = self.agenda[run.index].clone();
        let elapsed_ms = now_ms.saturating_sub(run.started_ms).max(0);
        let planned_ms = i64::from(item.planned_minutes) * MS_PER_MINUTE;
        Some(CurrentItem { index: run.index, item, started_ms: run.started_ms, elapsed_ms, planned_ms, overtime: elapsed_ms > planned_ms })
    }

    #[cfg(test)]
    pub(crate) fn agenda_log(&self) -> Vec<ItemRun> {
        self.runs.clone()
    }

    fn check_chair(&self, actor: SiteIndex) -> Result<(), FloorError> {
        if actor == self.chair {
            Ok(())
        } else {
            Err(FloorError::NotChair)
        }
    }

    fn check_site(&self, site: SiteIndex) -> Result<(), FloorError> {
        if site < self.present.len() {
            Ok(())
        } else {
            Err(FloorError::UnknownSite)
        }
    }

    fn validate_item(&self, item: &AgendaItem) -> Result<(), String> {
        if item.title.trim().is_empty() {
            return Err("empty title".into());
        }
        if item.planned_minutes == 0 {
            return Err("planned minutes must be at least 1".into());
        }
        if let Some(s) = item.site.filter(|&s| s >= self.present.len()) {
            return Err(format!("unknown site {s}"));
        }
        match (item.kind, item.site) {
            (AgendaKind::Speech, None) => Err("a speech needs a site".into()),
            (AgendaKind::Report | AgendaKind::Directive, Some(s)) if s != self.chair => Err("reports and directives are given by the chair".into()),
            _ => Ok(()),
        }
    }

    fn holds(&self, site: SiteIndex) -> bool {
        self.holder_slot(site).is_some()
    }

    fn holder_slot(&self, site: SiteIndex) -> Option<usize> {
        self.holders.iter().position(|h| h.site == site)
    }

    fn pending_of(&self, site: SiteIndex) -> Option<usize> {
        self.requests.iter().position(|r| r.site == site && r.state == RequestState::Pending)
    }

    fn index_of(&self, id: RequestId) -> Option<usize> {
        self.requests.binary_search_by_key(&id.0, |r| r.id.0).ok()
    }

    /// Drops finished requests beyond the most recent [`RECENT_FINISHED`].
    fn prune(&mut self) {
        let holders = &self.holders;
        let live = |r: &FloorRequest| r.state == RequestState::Pending || holders.iter().any(|h| h.request == r.id);
        let finished = self.requests.iter().filter(|r| !live(r)).count();
        let mut extra = finished.saturating_sub(RECENT_FINISHED);
        if extra > 0 {
            self.requests.retain(|r| {
                if extra > 0 && !live(r) {
                    extra -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    fn pending_index(&self, id: RequestId) -> Result<usize, FloorError> {
        let i = self.index_of(id).ok_or(FloorError::UnknownRequest)?;
        if self.requests[i].state != RequestState::Pending {
            return Err(FloorError::NotPending);
        }
        Ok(i)
    }

    fn push_request(&mut self, site: SiteIndex, topic: Option<String>, now_ms: i64) -> usize {
        // A state saved before ids were counted apart: continue after the last one kept.
        self.last_id = self.last_id.max(self.requests.last().map_or(0, |r| r.id.0)) + 1;
        let id = RequestId(self.last_id);
        self.requests.push(FloorRequest { id, site, topic, state: RequestState::Pending, created_ms: now_ms, decided_ms: None, ended_ms: None });
        self.requests.len() - 1
    }

    /// Moves request `i` out of `Pending`; granting also starts its timer.
    fn decide(&mut self, i: usize, state: RequestState, now_ms: i64) -> FloorEvent {
        let event = self.decide_unpruned(i, state, now_ms);
        self.prune();
        event
    }

    fn decide_unpruned(&mut self, i: usize, state: RequestState, now_ms: i64) -> FloorEvent {
        let r = &mut self.requests[i];
        r.state = state;
        r.decided_ms = Some(now_ms);
        let (id, site) = (r.id, r.site);
        match state {
            RequestState::Granted => {
                self.holders.push(Holder { site, request: id, since_ms: now_ms });
                FloorEvent::Granted { id, site }
            }
            RequestState::Denied => FloorEvent::Denied { id, site },
            _ => FloorEvent::Cancelled { id, site },
        }
    }

    /// Reuses the site's pending request so its topic and waiting time survive;
    /// otherwise the grant is recorded as a request created at the same moment.
    fn hand_floor_to(&mut self, site: SiteIndex, now_ms: i64) -> FloorEvent {
        let i = match self.pending_of(site) {
            Some(i) => i,
            None => self.push_request(site, None, now_ms),
        };
        self.decide(i, RequestState::Granted, now_ms)
    }

    fn end_holding(&mut self, slot: usize, state: RequestState, now_ms: i64) -> FloorEvent {
        let h = self.holders.remove(slot);
        let i = self.index_of(h.request).expect("a holder always has a recorded request");
        self.requests[i].state = state;
        self.requests[i].ended_ms = Some(now_ms);
        let (id, site) = (h.request, h.site);
        self.prune();
        if state == RequestState::Released {
            FloorEvent::Released { id, site }
        } else {
            FloorEvent::Revoked { id, site }
        }
    }

    fn revoke_all_except(&mut self, keep: Option<SiteIndex>, now_ms: i64) -> Vec<FloorEvent> {
        let mut events = Vec::new();
        let mut k = 0;
        while k < self.holders.len() {
            if Some(self.holders[k].site) == keep {
                k += 1;
            } else {
                events.push(self.end_holding(k, RequestState::Revoked, now_ms));
            }
        }
        events
    }

    fn running(&self) -> Option<&ItemRun> {
        self.runs.last().filter(|r| r.ended_ms.is_none())
    }

    fn end_running_item(&mut self, now_ms: i64) -> Option<FloorEvent> {
        let run = self.runs.last_mut().filter(|r| r.ended_ms.is_none())?;
        run.ended_ms = Some(now_ms);
        Some(FloorEvent::ItemEnded { index: run.index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FloorEvent as E;

    const CHAIR: SiteIndex = 0;
    const A: SiteIndex = 1;
    const B: SiteIndex = 2;
    const C: SiteIndex = 3;
    const NOWHERE: SiteIndex = 9;
    const T0: i64 = 1_700_000_000_000;

    /// Chair plus three ward sites, all connected.
    fn meeting(max_holders: usize) -> Floor {
        let mut f = Floor::new(4, CHAIR, max_holders);
        for s in 0..4 {
            f.set_present(s, true, T0);
        }
        f
    }

    fn id(n: u64) -> RequestId {
        RequestId(n)
    }

    /// The whole machine is compared, so holders, queue, history, presence and
    /// the agenda log are all covered by "nothing changed".
    fn refused(f: &mut Floor, expected: FloorError, op: impl FnOnce(&mut Floor) -> Outcome) {
        let before = f.clone();
        assert_eq!(op(f), Err(expected));
        assert_eq!(*f, before, "a refused operation changed the state");
    }

    fn item(kind: AgendaKind, site: Option<SiteIndex>, minutes: u32) -> AgendaItem {
        AgendaItem { title: format!("{kind:?}"), kind, site, planned_minutes: minutes }
    }

    fn state_of(f: &Floor, n: u64) -> RequestState {
        f.request_by_id(id(n)).unwrap().state
    }

    #[test]
    fn a_ward_asking_and_withdrawing_all_meeting_long_keeps_the_history_bounded() {
        let mut f = meeting(1);
        f.give(CHAIR, B, T0).unwrap();
        for n in 0..1000 {
            f.request(A, Some(format!("lần {n}")), T0 + n).unwrap();
            f.cancel(A, T0 + n).unwrap();
        }
        assert_eq!(f.history().len(), RECENT_FINISHED + 1, "the last finished requests and the live floor");
        assert!(f.may_speak(B), "the holder's request is kept however old");
        assert_eq!(f.request(A, None, T0 + 2000), Ok(vec![E::Requested { id: id(1002), site: A }]), "ids only grow");
        assert_eq!(f.queue(T0 + 2000).len(), 1);
    }

    #[test]
    fn a_new_meeting_has_everyone_absent_and_only_the_chair_may_speak() {
        let f = Floor::new(3, CHAIR, 1);
        assert!((0..3).all(|s| !f.is_present(s)));
        assert!(f.holders().is_empty() && f.queue(T0).is_empty() && f.history().is_empty());
        assert!(f.may_speak(CHAIR) && !f.may_speak(A));
        assert_eq!((f.chair(), f.site_count(), f.max_holders()), (CHAIR, 3, 1));
        assert_eq!(f.current_item(T0), None);
    }

    #[test]
    #[should_panic]
    fn a_chair_outside_the_site_list_is_a_configuration_bug() {
        Floor::new(2, 2, 1);
    }

    #[test]
    fn presence_is_reported_only_when_it_changes() {
        let mut f = Floor::new(2, CHAIR, 1);
        assert_eq!(f.set_present(A, true, T0), vec![E::PresenceChanged { site: A, present: true }]);
        assert_eq!(f.set_present(A, true, T0), vec![]);
        assert_eq!(f.set_present(A, false, T0), vec![E::PresenceChanged { site: A, present: false }]);
        assert_eq!(f.set_present(NOWHERE, true, T0), vec![]);
        assert!(!f.is_present(NOWHERE));
    }

    #[test]
    fn a_request_joins_the_queue_with_ids_counting_from_one() {
        let mut f = meeting(1);
        let asked = f.request(A, Some("Đường ngập".into()), T0);
        assert_eq!(asked, Ok(vec![E::Requested { id: id(1), site: A }]));
        assert_eq!(f.request(B, None, T0), Ok(vec![E::Requested { id: id(2), site: B }]));
        let r = f.request_by_id(id(1)).unwrap();
        assert_eq!((r.site, r.state, r.created_ms, r.decided_ms), (A, RequestState::Pending, T0, None));
        assert_eq!(r.topic.as_deref(), Some("Đường ngập"));
        assert_eq!(f.request_by_id(id(0)), None);
        assert_eq!(f.request_by_id(id(3)), None);
    }

    #[test]
    fn blank_topics_become_none_and_topics_are_trimmed() {
        let mut f = meeting(1);
        f.request(A, Some("   \t ".into()), T0).unwrap();
        f.request(B, Some(String::new()), T0).unwrap();
        f.request(C, Some("  Ý kiến  ".into()), T0).unwrap();
        let topics: Vec<_> = f.queue(T0).into_iter().map(|q| q.topic).collect();
        assert_eq!(topics, vec![None, None, Some("Ý kiến".to_string())]);
    }

    #[test]
    fn topic_length_counts_characters_not_bytes() {
        let mut f = meeting(1);
        let exact = "ữ".repeat(MAX_TOPIC_CHARS);
        assert!(exact.len() > MAX_TOPIC_CHARS);
        f.request(A, Some(exact), T0).unwrap();
        refused(&mut f, FloorError::TopicTooLong, |f| f.request(B, Some("ữ".repeat(201)), T0));
    }

    #[test]
    fn the_chair_needs_no_request() {
        let mut f = meeting(1);
        refused(&mut f, FloorError::ChairNeedsNoRequest, |f| f.request(CHAIR, None, T0));
    }

    #[test]
    fn a_second_request_while_queued_is_refused() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        refused(&mut f, FloorError::AlreadyQueued, |f| f.request(A, Some("lại".into()), T0 + 1));
    }

    #[test]
    fn a_request_from_a_holder_is_refused() {
        let mut f = meeting(1);
        f.give(CHAIR, A, T0).unwrap();
        refused(&mut f, FloorError::AlreadyHolds, |f| f.request(A, None, T0));
    }

    #[test]
    fn out_of_range_sites_are_refused() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        refused(&mut f, FloorError::UnknownSite, |f| f.request(NOWHERE, None, T0));
        refused(&mut f, FloorError::UnknownSite, |f| f.cancel(NOWHERE, T0));
        refused(&mut f, FloorError::UnknownSite, |f| f.release(NOWHERE, T0));
        refused(&mut f, FloorError::UnknownSite, |f| f.give(CHAIR, NOWHERE, T0));
        refused(&mut f, FloorError::UnknownSite, |f| f.revoke(CHAIR, NOWHERE, T0));
    }

    #[test]
    fn cancel_withdraws_a_pending_request() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        assert_eq!(f.cancel(A, T0 + 5), Ok(vec![E::Cancelled { id: id(1), site: A }]));
        let r = f.request_by_id(id(1)).unwrap();
        assert_eq!((r.state, r.decided_ms), (RequestState::Cancelled, Some(T0 + 5)));
        assert!(f.queue(T0).is_empty());
        f.request(A, None, T0 + 6).unwrap();
        assert_eq!(f.position_of(A), Some(1));
    }

    #[test]
    fn cancel_without_a_pending_request_is_refused() {
        let mut f = meeting(1);
        refused(&mut f, FloorError::NoPendingRequest, |f| f.cancel(A, T0));
        f.request(A, None, T0).unwrap();
        f.grant(CHAIR, id(1), T0).unwrap();
        refused(&mut f, FloorError::NoPendingRequest, |f| f.cancel(A, T0));
    }

    #[test]
    fn queue_positions_and_waiting_times_follow_request_order() {
        let mut f = meeting(1);
        f.request(B, None, T0).unwrap();
        f.request(A, Some("Kinh tế".into()), T0 + 1_000).unwrap();
        f.request(C, None, T0 + 3_000).unwrap();
        let q = f.queue(T0 + 10_000);
        let summary: Vec<_> = q.iter().map(|e| (e.position, e.id, e.site, e.waiting_ms)).collect();
        assert_eq!(summary, vec![(1, id(1), B, 10_000), (2, id(2), A, 9_000), (3, id(3), C, 7_000)]);
        assert_eq!([f.position_of(B), f.position_of(A), f.position_of(C)], [Some(1), Some(2), Some(3)]);
        assert_eq!(f.position_of(CHAIR), None);
    }

    #[test]
    fn cancelled_request_leaves_the_queue_and_positions_close_up() {
        let mut f = meeting(1);
        for s in [A, B, C] {
            f.request(s, None, T0).unwrap();
        }
        f.cancel(B, T0 + 1).unwrap();
        assert_eq!(f.position_of(B), None);
        assert_eq!((f.position_of(A), f.position_of(C)), (Some(1), Some(2)));
        assert_eq!(f.queue(T0).iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn grant_makes_the_site_a_holder_with_a_speaking_timer() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        assert_eq!(f.grant(CHAIR, id(1), T0 + 2_000), Ok(vec![E::Granted { id: id(1), site: A }]));
        assert_eq!(f.holders(), vec![Holder { site: A, request: id(1), since_ms: T0 + 2_000 }]);
        assert_eq!(f.speaking_ms(A, T0 + 32_000), Some(30_000));
        assert_eq!(f.speaking_ms(B, T0 + 32_000), None);
        assert!(f.queue(T0).is_empty());
        assert_eq!(f.request_by_id(id(1)).unwrap().decided_ms, Some(T0 + 2_000));
    }

    #[test]
    fn may_speak_is_the_chair_or_a_holder_and_the_chair_never_takes_the_floor() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        f.request(B, None, T0).unwrap();
        f.grant(CHAIR, id(1), T0).unwrap();
        assert!(f.may_speak(CHAIR) && f.may_speak(A) && !f.may_speak(B));
        assert!(f.holders().iter().all(|h| h.site != CHAIR));
    }

    #[test]
    fn double_grant_is_refused_and_changes_nothing() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        f.grant(CHAIR, id(1), T0).unwrap();
        refused(&mut f, FloorError::NotPending, |f| f.grant(CHAIR, id(1), T0 + 1));
    }

    #[test]
    fn grant_of_an_unknown_request_is_refused() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        refused(&mut f, FloorError::UnknownRequest, |f| f.grant(CHAIR, id(0), T0));
        refused(&mut f, FloorError::UnknownRequest, |f| f.grant(CHAIR, id(2), T0));
        refused(&mut f, FloorError::UnknownRequest, |f| f.grant(CHAIR, id(u64::MAX), T0));
    }

    #[test]
    fn grant_to_an_absent_site_is_refused() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        f.set_present(A, false, T0);
        refused(&mut f, FloorError::SiteAbsent, |f| f.grant(CHAIR, id(1), T0));
    }

    #[test]
    fn granting_while_another_speaks_hands_the_floor_over_as_giving_does() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        f.request(B, None, T0).unwrap();
        f.grant(CHAIR, id(1), T0).unwrap();
        assert_eq!(f.grant(CHAIR, id(2), T0 + 1), Ok(vec![E::Revoked { id: id(1), site: A }, E::Granted { id: id(2), site: B }]));
        assert!(f.may_speak(B) && !f.may_speak(A));
        f.request(C, None, T0 + 2).unwrap();
        let mut given = meeting(1);
        given.request(A, None, T0).unwrap();
        given.request(B, None, T0).unwrap();
        given.grant(CHAIR, id(1), T0).unwrap();
        assert_eq!(given.give(CHAIR, B, T0 + 1), Ok(vec![E::Revoked { id: id(1), site: A }, E::Granted { id: id(2), site: B }]), "the same events either way");
    }

    #[test]
    fn deny_closes_a_pending_request_and_the_site_may_ask_again() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        assert_eq!(f.deny(CHAIR, id(1), T0 + 7), Ok(vec![E::Denied { id: id(1), site: A }]));
        let r = f.request_by_id(id(1)).unwrap();
        assert_eq!((r.state, r.decided_ms), (RequestState::Denied, Some(T0 + 7)));
        assert_eq!(f.position_of(A), None);
        assert!(f.request(A, None, T0 + 8).is_ok());
    }

    #[test]
    fn deny_of_an_unknown_or_decided_request_is_refused() {
        let mut f = meeting(1);
        refused(&mut f, FloorError::UnknownRequest, |f| f.deny(CHAIR, id(1), T0));
        f.request(A, None, T0).unwrap();
        f.deny(CHAIR, id(1), T0).unwrap();
        refused(&mut f, FloorError::NotPending, |f| f.deny(CHAIR, id(1), T0));
        refused(&mut f, FloorError::NotPending, |f| f.grant(CHAIR, id(1), T0));
    }

    #[test]
    fn give_without_a_request_records_one_directly_granted() {
        let mut f = meeting(1);
        assert_eq!(f.give(CHAIR, B, T0), Ok(vec![E::Granted { id: id(1), site: B }]));
        let r = f.request_by_id(id(1)).unwrap();
        assert_eq!((r.state, r.topic.is_none()), (RequestState::Granted, true));
        assert_eq!((r.created_ms, r.decided_ms), (T0, Some(T0)));
        assert!(f.may_speak(B));
    }

    #[test]
    fn give_grants_the_sites_pending_request() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        f.request(B, Some("Thủy lợi".into()), T0).unwrap();
        assert_eq!(f.give(CHAIR, B, T0 + 1), Ok(vec![E::Granted { id: id(2), site: B }]));
        assert_eq!(f.history().len(), 2);
        assert_eq!(f.position_of(A), Some(1));
        assert_eq!(f.position_of(B), None);
    }

    #[test]
    fn give_replaces_the_current_holder_atomically() {
        let mut f = meeting(1);
        f.give(CHAIR, A, T0).unwrap();
        assert_eq!(f.give(CHAIR, B, T0 + 60_000), Ok(vec![E::Revoked { id: id(1), site: A }, E::Granted { id: id(2), site: B }]));
        assert_eq!(f.holders().iter().map(|h| h.site).collect::<Vec<_>>(), vec![B]);
        let r = f.request_by_id(id(1)).unwrap();
        assert_eq!((r.state, r.decided_ms, r.ended_ms), (RequestState::Revoked, Some(T0), Some(T0 + 60_000)));
    }

    #[test]
    fn give_refusals_change_nothing() {
        let mut f = meeting(1);
        f.give(CHAIR, A, T0).unwrap();
        refused(&mut f, FloorError::AlreadyHolds, |f| f.give(CHAIR, A, T0));
        refused(&mut f, FloorError::ChairNeedsNoRequest, |f| f.give(CHAIR, CHAIR, T0));
        f.set_present(B, false, T0);
        refused(&mut f, FloorError::SiteAbsent, |f| f.give(CHAIR, B, T0));
    }

    #[test]
    fn revoke_takes_the_floor_back() {
        let mut f = meeting(1);
        f.give(CHAIR, A, T0).unwrap();
        assert_eq!(f.revoke(CHAIR, A, T0 + 9), Ok(vec![E::Revoked { id: id(1), site: A }]));
        assert!(f.holders().is_empty() && !f.may_speak(A));
        assert_eq!(f.speaking_ms(A, T0 + 10), None);
        assert_eq!(f.request_by_id(id(1)).unwrap().ended_ms, Some(T0 + 9));
    }

    #[test]
    fn revoke_of_a_non_holder_is_refused() {
        let mut f = meeting(1);
        f.request(B, None, T0).unwrap();
        f.give(CHAIR, A, T0).unwrap();
        refused(&mut f, FloorError::NotHolder, |f| f.revoke(CHAIR, B, T0));
        refused(&mut f, FloorError::NotHolder, |f| f.revoke(CHAIR, CHAIR, T0));
    }

    #[test]
    fn release_hands_the_floor_back() {
        let mut f = meeting(1);
        f.give(CHAIR, A, T0).unwrap();
        assert_eq!(f.release(A, T0 + 3), Ok(vec![E::Released { id: id(1), site: A }]));
        assert_eq!(state_of(&f, 1), RequestState::Released);
        assert!(f.holders().is_empty());
        assert!(f.request(A, None, T0 + 4).is_ok());
    }

    #[test]
    fn release_by_a_non_holder_is_refused() {
        let mut f = meeting(1);
        f.request(B, None, T0).unwrap();
        f.give(CHAIR, A, T0).unwrap();
        refused(&mut f, FloorError::NotHolder, |f| f.release(B, T0));
        refused(&mut f, FloorError::NotHolder, |f| f.release(CHAIR, T0));
        f.release(A, T0).unwrap();
        refused(&mut f, FloorError::NotHolder, |f| f.release(A, T0));
    }

    #[test]
    fn site_cannot_use_chair_operations() {
        let mut f = meeting(1);
        f.request(A, None, T0).unwrap();
        f.give(CHAIR, B, T0).unwrap();
        let agenda = vec![item(AgendaKind::Report, None, 5)];
        for actor in [A, B, NOWHERE] {
            refused(&mut f, FloorError::NotChair, |f| f.grant(actor, id(1), T0));
            refused(&mut f, FloorError::NotChair, |f| f.deny(actor, id(1), T0));
            refused(&mut f, FloorError::NotChair, |f| f.give(actor, C, T0));
            refused(&mut f, FloorError::NotChair, |f| f.revoke(actor, B, T0));
            refused(&mut f, FloorError::NotChair, |f| f.set_agenda(actor, agenda.clone(), T0));
            refused(&mut f, FloorError::NotChair, |f| f.next_item(actor, T0));
        }
    }

    #[test]
    fn leaving_keeps_the_floor_and_the_queue_position() {
        let mut f = meeting(1);
        f.give(CHAIR, A, T0).unwrap();
        f.request(B, None, T0).unwrap();
        f.request(C, None, T0).unwrap();
        let before = (f.holders(), f.queue(T0 + 1), f.history().to_vec());
        assert_eq!(f.set_present(A, false, T0 + 1), vec![E::PresenceChanged { site: A, present: false }]);
        f.set_present(B, false, T0 + 1);
        assert_eq!((f.holders(), f.queue(T0 + 1), f.history().to_vec()), before);
        assert!(f.may_speak(A));
        assert_eq!(f.position_of(B), Some(1));
        assert_eq!(f.release(A, T0 + 2), Ok(vec![E::Released { id: id(1), site: A }]));
        assert_eq!(f.cancel(B, T0 + 2), Ok(vec![E::Cancelled { id: id(2), site: B }]));
    }

    #[test]
    fn max_holders_two_allows_two_speakers() {
        let mut f = meeting(2);
        for s in [A, B, C] {
            f.request(s, None, T0).unwrap();
        }
        f.grant(CHAIR, id(1), T0).unwrap();
        f.grant(CHAIR, id(2), T0 + 1).unwrap();
        assert!(f.may_speak(A) && f.may_speak(B));
        assert_eq!(
            f.grant(CHAIR, id(3), T0 + 2),
            Ok(vec![E::Revoked { id: id(1), site: A }, E::Revoked { id: id(2), site: B }, E::Granted { id: id(3), site: C }]),
            "granting on a full floor replaces the holders, as giving does"
        );
        f.request(A, None, T0 + 2).unwrap();
        f.request(B, None, T0 + 2).unwrap();
        f.grant(CHAIR, id(5), T0 + 2).unwrap();
        assert_eq!(f.give(CHAIR, A, T0 + 2), Ok(vec![E::Revoked { id: id(3), site: C }, E::Revoked { id: id(5), site: B }, E::Granted { id: id(4), site: A }]));
    }

    #[test]
    fn give_with_room_left_keeps_the_other_holder() {
        let mut f = meeting(2);
        f.give(CHAIR, A, T0).unwrap();
        assert_eq!(f.give(CHAIR, B, T0), Ok(vec![E::Granted { id: id(2), site: B }]));
        assert_eq!(f.holders().len(), 2);
    }

    #[test]
    fn history_keeps_every_request_in_creation_order_with_final_states() {
        let mut f = meeting(1);
        for s in [A, B, C] {
            f.request(s, None, T0).unwrap();
        }
        f.grant(CHAIR, id(1), T0).unwrap();
        f.deny(CHAIR, id(2), T0).unwrap();
        f.cancel(C, T0).unwrap();
        f.release(A, T0).unwrap();
        f.give(CHAIR, B, T0).unwrap();
        f.revoke(CHAIR, B, T0).unwrap();
        let states: Vec<_> = f.history().iter().map(|r| (r.id, r.site, r.state)).collect();
        use RequestState::*;
        assert_eq!(states, vec![(id(1), A, Released), (id(2), B, Denied), (id(3), C, Cancelled), (id(4), B, Revoked)]);
    }

    #[test]
    fn invalid_agendas_are_refused() {
        let mut f = meeting(1);
        f.set_agenda(CHAIR, vec![item(AgendaKind::Report, None, 5)], T0).unwrap();
        f.next_item(CHAIR, T0).unwrap();
        let mut untitled = item(AgendaKind::Report, None, 5);
        untitled.title = "  ".into();
        let bad = [
            item(AgendaKind::Speech, None, 5),
            item(AgendaKind::Speech, Some(NOWHERE), 5),
            item(AgendaKind::Report, Some(NOWHERE), 5),
            item(AgendaKind::Directive, Some(A), 5),
            item(AgendaKind::Speech, Some(A), 0),
            untitled,
        ];
        for b in bad {
            let items = vec![item(AgendaKind::Report, None, 5), b];
            let before = f.clone();
            let err = f.set_agenda(CHAIR, items, T0 + 1).unwrap_err();
            assert!(matches!(&err, FloorError::InvalidAgenda(why) if why.starts_with("item 2:")), "{err}");
            assert_eq!(f, before);
        }
    }

    #[test]
    fn next_item_for_a_speech_gives_the_floor_to_its_site() {
        let mut f = meeting(1);
        let agenda = vec![item(AgendaKind::Report, Some(CHAIR), 10), item(AgendaKind::Speech, Some(B), 5)];
        assert_eq!(f.set_agenda(CHAIR, agenda, T0), Ok(vec![]));
        assert_eq!(f.next_item(CHAIR, T0), Ok(vec![E::ItemStarted { index: 0 }]));
        f.give(CHAIR, A, T0 + 1).unwrap();
        assert_eq!(
            f.next_item(CHAIR, T0 + 600_000),
            Ok(vec![E::ItemEnded { index: 0 }, E::Revoked { id: id(1), site: A }, E::ItemStarted { index: 1 }, E::Granted { id: id(2), site: B },])
        );
        assert_eq!(f.holders(), vec![Holder { site: B, request: id(2), since_ms: T0 + 600_000 }]);
        assert_eq!(f.current_item(T0 + 600_000).map(|c| c.index), Some(1));
    }

    #[test]
    fn next_item_uses_the_speakers_pending_request() {
        let mut f = meeting(1);
        f.set_agenda(CHAIR, vec![item(AgendaKind::Speech, Some(B), 5)], T0).unwrap();
        f.request(B, Some("Báo cáo phường".into()), T0).unwrap();
        assert_eq!(f.next_item(CHAIR, T0 + 1), Ok(vec![E::ItemStarted { index: 0 }, E::Granted { id: id(1), site: B }]));
        assert_eq!(f.history().len(), 1);
    }

    #[test]
    fn next_item_keeps_a_speaker_who_already_holds_and_revokes_the_others() {
        let mut f = meeting(2);
        f.give(CHAIR, A, T0).unwrap();
        f.give(CHAIR, B, T0).unwrap();
        f.set_agenda(CHAIR, vec![item(AgendaKind::Speech, Some(B), 5)], T0).unwrap();
        assert_eq!(f.next_item(CHAIR, T0 + 1), Ok(vec![E::Revoked { id: id(1), site: A }, E::ItemStarted { index: 0 }]));
        assert_eq!(f.holders(), vec![Holder { site: B, request: id(2), since_ms: T0 }]);
    }

    #[test]
    fn next_item_for_a_report_or_directive_revokes_all_holders() {
        let mut f = meeting(2);
        let agenda = vec![item(AgendaKind::Directive, None, 5), item(AgendaKind::Speech, Some(CHAIR), 5)];
        f.set_agenda(CHAIR, agenda, T0).unwrap();
        f.give(CHAIR, A, T0).unwrap();
        f.give(CHAIR, C, T0).unwrap();
        assert_eq!(f.next_item(CHAIR, T0 + 1), Ok(vec![E::Revoked { id: id(1), site: A }, E::Revoked { id: id(2), site: C }, E::ItemStarted { index: 0 },]));
        f.give(CHAIR, A, T0 + 2).unwrap();
        let events = f.next_item(CHAIR, T0 + 3).unwrap();
        assert_eq!(events[1], E::Revoked { id: id(3), site: A });
        assert!(f.holders().is_empty() && f.may_speak(CHAIR));
    }

    #[test]
    fn a_speech_by_an_absent_site_starts_without_a_floor_and_the_programme_goes_on() {
        let mut f = meeting(1);
        let agenda = vec![item(AgendaKind::Report, None, 5), item(AgendaKind::Speech, Some(C), 5), item(AgendaKind::Directive, None, 5)];
        f.set_agenda(CHAIR, agenda, T0).unwrap();
        f.next_item(CHAIR, T0).unwrap();
        f.give(CHAIR, A, T0).unwrap();
        f.set_present(C, false, T0);
        assert_eq!(
            f.next_item(CHAIR, T0 + 1),
            Ok(vec![E::ItemEnded { index: 0 }, E::Revoked { id: id(1), site: A }, E::ItemStarted { index: 1 }, E::SpeakerAbsent { index: 1, site: C }])
        );
        assert!(f.holders().is_empty(), "nobody holds the floor for the absent speaker");
        // The chair's directive is reachable.
        assert_eq!(f.next_item(CHAIR, T0 + 2), Ok(vec![E::ItemEnded { index: 1 }, E::ItemStarted { index: 2 }]));
    }

    #[test]
    fn the_last_next_item_ends_the_programme_and_then_it_is_finished() {
        let mut f = meeting(1);
        refused(&mut f, FloorError::AgendaFinished, |f| f.next_item(CHAIR, T0));
        f.set_agenda(CHAIR, vec![item(AgendaKind::Report, None, 5)], T0).unwrap();
        f.next_item(CHAIR, T0).unwrap();
        f.give(CHAIR, A, T0 + 1).unwrap();
        assert_eq!(f.next_item(CHAIR, T0 + 2), Ok(vec![E::ItemEnded { index: 0 }]));
        assert_eq!(f.current_item(T0 + 2), None);
        assert!(f.may_speak(A));
        refused(&mut f, FloorError::AgendaFinished, |f| f.next_item(CHAIR, T0 + 3));
    }

    #[test]
    fn overtime_is_flagged_after_the_planned_minutes() {
        let mut f = meeting(1);
        f.set_agenda(CHAIR, vec![item(AgendaKind::Speech, Some(A), 3)], T0).unwrap();
        f.next_item(CHAIR, T0).unwrap();
        let at = |ms| f.current_item(T0 + ms).unwrap();
        let on_time = at(180_000);
        assert_eq!((on_time.elapsed_ms, on_time.planned_ms, on_time.overtime), (180_000, 180_000, false));
        assert_eq!(on_time.item, item(AgendaKind::Speech, Some(A), 3));
        assert_eq!(on_time.started_ms, T0);
        assert!(at(180_001).overtime);
    }

    #[test]
    fn agenda_log_records_start_and_end_times() {
        let mut f = meeting(1);
        let agenda = vec![item(AgendaKind::Report, None, 1), item(AgendaKind::Speech, Some(A), 1)];
        f.set_agenda(CHAIR, agenda, T0).unwrap();
        f.next_item(CHAIR, T0).unwrap();
        f.next_item(CHAIR, T0 + 100).unwrap();
        f.next_item(CHAIR, T0 + 250).unwrap();
        assert_eq!(
            f.agenda_log(),
            vec![ItemRun { index: 0, started_ms: T0, ended_ms: Some(T0 + 100) }, ItemRun { index: 1, started_ms: T0 + 100, ended_ms: Some(T0 + 250) },]
        );
    }

    #[test]
    fn replacing_the_agenda_ends_the_running_item_and_restarts_the_programme() {
        let mut f = meeting(1);
        f.set_agenda(CHAIR, vec![item(AgendaKind::Speech, Some(A), 5)], T0).unwrap();
        f.next_item(CHAIR, T0).unwrap();
        let replacement = vec![item(AgendaKind::Directive, Some(CHAIR), 2)];
        assert_eq!(f.set_agenda(CHAIR, replacement.clone(), T0 + 5), Ok(vec![E::ItemEnded { index: 0 }]));
        assert_eq!(f.agenda(), &replacement[..]);
        assert!(f.agenda_log().is_empty() && f.current_item(T0 + 5).is_none());
        assert!(f.may_speak(A), "replacing the programme does not touch the floor");
        let events = f.next_item(CHAIR, T0 + 6);
        assert_eq!(events, Ok(vec![E::Revoked { id: id(1), site: A }, E::ItemStarted { index: 0 }]));
    }

    #[test]
    fn every_refusal_says_what_was_wrong() {
        use FloorError::*;
        let all = [
            NotChair,
            ChairNeedsNoRequest,
            AlreadyQueued,
            AlreadyHolds,
            TopicTooLong,
            UnknownSite,
            NoPendingRequest,
            UnknownRequest,
            NotPending,
            SiteAbsent,
            NotHolder,
            InvalidAgenda("item 1: empty title".into()),
            AgendaFinished,
        ];
        // Their wire codes are `signal::protocol`'s one list (`From<&FloorError> for ErrorCode`).
        for err in all {
            assert!(!err.to_string().is_empty());
        }
        assert_eq!(InvalidAgenda("x".into()).to_string(), "invalid agenda: x");
    }
}
