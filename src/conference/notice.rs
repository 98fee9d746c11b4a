//! Short written notices from the chair or a technician to one site or all ("Điểm cầu Hàng
//! Gai đề nghị bật micro"), shown on the site's page until someone there acknowledges it;
//! and a site's request for a technician's help, shown on /tech until a technician marks it
//! handled. Pure state, owned by the conference actor; times are passed in.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

pub(crate) const MAX_TEXT_CHARS: usize = 300;
/// Notices kept (and sent in the state): the latest ones.
pub(crate) const KEPT: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Sender {
    Chair,
    Technician,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Notice {
    pub(crate) id: u64,
    pub(crate) from: Sender,
    /// The site it is for; `None`: every site.
    pub(crate) to: Option<usize>,
    pub(crate) text: String,
    pub(crate) sent_ms: i64,
    /// Sites that acknowledged it, in order.
    pub(crate) acked: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoticeError {
    #[error("a notice has 1 to {MAX_TEXT_CHARS} characters")]
    BadText,
    #[error("no such notice (it may be too old)")]
    Unknown,
    #[error("that notice is not for this site")]
    NotForSite,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Notices {
    list: VecDeque<Notice>,
    last_id: u64,
}

/// Checks a free text a person typed: trimmed, not empty, not too long.
pub(crate) fn text_of(text: &str) -> Result<String, NoticeError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(NoticeError::BadText);
    }
    Ok(text.to_string())
}

impl Notices {
    pub(crate) fn send(&mut self, from: Sender, to: Option<usize>, text: &str, now_ms: i64) -> Result<&Notice, NoticeError> {
        let text = text_of(text)?;
        self.last_id += 1;
        if self.list.len() == KEPT {
            self.list.pop_front();
        }
        self.list.push_back(Notice { id: self.last_id, from, to, text, sent_ms: now_ms, acked: Vec::new() });
        Ok(self.list.back().expect("just pushed"))
    }

    /// `site` read notice `id`. True if this is news (not acknowledged by the site before).
    pub(crate) fn ack(&mut self, id: u64, site: usize) -> Result<bool, NoticeError> {
        let n = self.list.iter_mut().find(|n| n.id == id).ok_or(NoticeError::Unknown)?;
        if n.to.is_some_and(|to| to != site) {
            return Err(NoticeError::NotForSite);
        }
        if n.acked.contains(&site) {
            return Ok(false);
        }
        n.acked.push(site);
        Ok(true)
    }

    pub(crate) fn latest(&self) -> impl Iterator<Item = &Notice> {
        self.list.iter()
    }
}

/// A site's open request for a technician's help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HelpRequest {
    pub(crate) since_ms: i64,
    pub(crate) text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_to_one_site_is_acknowledged_by_that_site_only() {
        let mut n = Notices::default();
        let id = n.send(Sender::Chair, Some(2), "  Điểm cầu Hàng Gai đề nghị bật micro ", 10).unwrap().id;
        assert_eq!(n.latest().next().unwrap().text, "Điểm cầu Hàng Gai đề nghị bật micro");
        assert_eq!(n.ack(id, 3), Err(NoticeError::NotForSite));
        assert_eq!(n.ack(id, 2), Ok(true));
        assert_eq!(n.ack(id, 2), Ok(false), "twice is not news");
        assert_eq!(n.ack(id + 7, 2), Err(NoticeError::Unknown));
        let all = n.send(Sender::Technician, None, "Kiểm tra âm thanh lúc 8 giờ", 20).unwrap().id;
        assert_eq!((n.ack(all, 1), n.ack(all, 4)), (Ok(true), Ok(true)));
        assert_eq!(n.latest().last().unwrap().acked, [1, 4]);
    }

    #[test]
    fn empty_or_long_texts_are_refused_and_only_the_latest_notices_are_kept() {
        let mut n = Notices::default();
        assert_eq!(n.send(Sender::Chair, None, "   ", 1).err(), Some(NoticeError::BadText));
        assert_eq!(n.send(Sender::Chair, None, &"x".repeat(MAX_TEXT_CHARS + 1), 1).err(), Some(NoticeError::BadText));
        for i in 0..(KEPT as i64 + 5) {
            n.send(Sender::Chair, None, "tin", i).unwrap();
        }
        assert_eq!(n.latest().count(), KEPT);
        assert_eq!(n.latest().next().unwrap().id, 6, "the oldest are dropped");
    }
}
