//! The conference's publications ([`crate::conference::published`]) written as the wire's
//! messages: sites named by their ids, times as the protocol gives them, the words a page
//! shows when its session ends. The conference calls these and serialises each result once for
//! every page; it never builds a [`ServerMessage`] itself.

use super::protocol::{
    AgendaItemSpec, AgendaView, CurrentItemView, FloorHolderView, FloorView, HelpView, MeetingView, NoticeView, QueueEntryView, RecordingView, ServerMessage,
    SiteLevel, SitePresence, TallyView, VoteView,
};
use crate::conference::published::{Farewell, Order, PageView, Published, SeatSnapshot, Snapshot};
use crate::config::Site;
use crate::domain::AgendaItem;

/// Site ids and names by index, as the configuration lists them.
pub(crate) struct Sites<'a>(pub(crate) &'a [Site]);

impl Sites<'_> {
    fn id(&self, site: usize) -> String {
        self.0.get(site).map_or_else(String::new, |s| s.id.clone())
    }
}

/// The message every present page gets for `p`.
pub(crate) fn message(p: &Published, sites: &Sites) -> ServerMessage {
    match p {
        Published::State(s) => state(s, sites),
        Published::Speaking { active, levels } => ServerMessage::Speaking {
            active: active.map(|i| sites.id(i)),
            levels: levels.iter().map(|&(i, level)| SiteLevel { site: sites.id(i), level: (level * 100.0).round() / 100.0 }).collect(),
        },
        Published::Floor(event) => {
            let (request, site, event) = event.request_step().expect("only a floor request's steps are published");
            ServerMessage::Floor { event, request: request.0, site: sites.id(site) }
        }
        Published::Restarting => ServerMessage::Restarting {
            message: "Máy chủ đang khởi động lại; trang sẽ tự kết nối lại. / The server is restarting; this page reconnects by itself.".into(),
        },
    }
}

/// One page's slots.
pub(crate) fn view(v: &PageView, sites: &Sites) -> ServerMessage {
    let id = |s: &Option<usize>| s.map(|i| sites.id(i));
    ServerMessage::View {
        video: v.video.iter().map(id).collect(),
        audio: v.audio.iter().map(id).collect(),
        content: id(&v.content),
        page: v.page,
        pages: v.pages,
        paused: v.paused.iter().map(|&i| sites.id(i)).collect(),
    }
}

/// The last message of a page's session.
pub(crate) fn farewell(f: &Farewell) -> ServerMessage {
    match f {
        Farewell::Revoked(message) => ServerMessage::Revoked { message: message.clone() },
        Farewell::Replaced => ServerMessage::Replaced {
            message: "Điểm cầu này vừa được kết nối từ một phiên khác. / This site joined from another session.".into(),
        },
        Farewell::Dropped => {
            ServerMessage::Dropped { message: "Kỹ thuật viên đã ngắt phiên này để kết nối lại. / A technician reset this session.".into() }
        }
    }
}

/// A technician's order as the page is told it.
pub(crate) fn order(o: Order) -> ServerMessage {
    match o {
        Order::RestartIce => ServerMessage::RestartIce {},
        Order::Drop => farewell(&Farewell::Dropped),
    }
}

/// Every site's presence, as `state` and the REST API list it.
pub(crate) fn presence(seats: &[SeatSnapshot], sites: &Sites) -> Vec<SitePresence> {
    sites
        .0
        .iter()
        .zip(seats)
        .map(|(s, seat)| SitePresence {
            id: s.id.clone(),
            name: s.name.clone(),
            role: s.role,
            present: seat.present,
            since_ms: seat.since_ms,
            audio_muted: seat.audio_muted,
            video_muted: seat.video_muted,
            hard_muted: seat.hard_muted,
            reconnecting: seat.reconnecting,
            held_until_ms: seat.held_until_ms,
            waiting: seat.waiting,
            help: seat.help.as_ref().map(|h| HelpView { since_ms: h.since_ms, text: h.text.clone() }),
        })
        .collect()
}

/// The programme as sent and shown.
pub(crate) fn programme(agenda: &[AgendaItem], sites: &Sites) -> Vec<AgendaItemSpec> {
    agenda
        .iter()
        .map(|i| AgendaItemSpec { title: i.title.clone(), kind: i.kind, site: i.site.map(|s| sites.id(s)), planned_minutes: i.planned_minutes })
        .collect()
}

fn state(s: &Snapshot, sites: &Sites) -> ServerMessage {
    let floor = FloorView {
        holders: s.holders.iter().map(|h| FloorHolderView { site: sites.id(h.site), request: h.request.0, since_ms: h.since_ms }).collect(),
        queue: s
            .queue
            .iter()
            .map(|q| QueueEntryView {
                position: q.position,
                request: q.id.0,
                site: sites.id(q.site),
                topic: q.topic.clone(),
                since_ms: s.now_ms - q.waiting_ms,
            })
            .collect(),
    };
    let current = s.current.map(|c| CurrentItemView { index: c.index, started_ms: c.started_ms, planned_ms: c.planned_ms, speaker_absent: c.speaker_absent });
    ServerMessage::State {
        sites: presence(&s.seats, sites),
        floor,
        layout: s.layout,
        locked: s.locked,
        sharing: s.sharing.map(|i| sites.id(i)),
        meeting: s.meeting.map(|(id, started_ms)| MeetingView { id, started_ms }),
        recording: s.recording.as_ref().map(|r| RecordingView {
            state: if r.failed { "failed" } else { "recording" }.into(),
            started_ms: r.started_ms,
            error: r.error.clone(),
        }),
        agenda: AgendaView { items: programme(&s.agenda, sites), current },
        vote: s.vote.as_ref().map(|v| VoteView {
            id: v.id,
            question: v.question.clone(),
            options: v.options.clone(),
            open: v.is_open(),
            opened_ms: v.opened_ms,
            closed_ms: v.closed_ms,
            tallies: v.tallies.iter().map(|(s, counts)| TallyView { site: sites.id(*s), counts: counts.clone() }).collect(),
            totals: v.totals(),
        }),
        notices: s
            .notices
            .iter()
            .map(|n| NoticeView {
                id: n.id,
                from: n.from,
                to: n.to.map(|i| sites.id(i)),
                text: n.text.clone(),
                sent_ms: n.sent_ms,
                acked: n.acked.iter().map(|i| sites.id(*i)).collect(),
            })
            .collect(),
        server_now_ms: s.now_ms,
    }
}
