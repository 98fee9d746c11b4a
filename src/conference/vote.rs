//! Votes ("biểu quyết"): the chair opens one with a question and its options; each bridge
//! point counts the hands in its room and enters the counts, which it may correct until the
//! chair closes the vote; the chair sees every site's counts and the totals live. Pure state,
//! owned by the conference actor; times are passed in.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The options when the chair gives none.
pub(crate) const DEFAULT_OPTIONS: [&str; 3] = ["Tán thành", "Không tán thành", "Ý kiến khác"];
pub(crate) const MAX_QUESTION_CHARS: usize = 300;
pub(crate) const MAX_OPTION_CHARS: usize = 80;
pub(crate) const MAX_OPTIONS: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Vote {
    pub(crate) id: u64,
    pub(crate) question: String,
    pub(crate) options: Vec<String>,
    pub(crate) opened_ms: i64,
    pub(crate) closed_ms: Option<i64>,
    /// Per site index: its counts, one per option, as last entered.
    pub(crate) tallies: BTreeMap<usize, Vec<u32>>,
}

impl Vote {
    pub(crate) fn is_open(&self) -> bool {
        self.closed_ms.is_none()
    }

    /// Every site's counts added up, per option.
    pub(crate) fn totals(&self) -> Vec<u64> {
        let mut totals = vec![0u64; self.options.len()];
        for counts in self.tallies.values() {
            for (t, c) in totals.iter_mut().zip(counts) {
                *t += *c as u64;
            }
        }
        totals
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VoteError {
    #[error("no vote is open")]
    NotOpen,
    #[error("a vote is already open; close it first")]
    AlreadyOpen,
    #[error("the question must have 1 to {MAX_QUESTION_CHARS} characters")]
    BadQuestion,
    #[error("a vote has 2 to {MAX_OPTIONS} options of 1 to {MAX_OPTION_CHARS} characters, all different")]
    BadOptions,
    #[error("that vote is not the one open")]
    WrongVote,
    #[error("one count per option is needed ({expected})")]
    WrongCount { expected: usize },
    #[error("{sum} votes entered but {headcount} people attend at this bridge point")]
    OverHeadcount { sum: u64, headcount: u64 },
    #[error("enter how many people attend at this bridge point first")]
    HeadcountNeeded,
}

/// The current (or last) vote, and the id the next one gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Votes {
    current: Option<Vote>,
    last_id: u64,
}

impl Votes {
    /// The open vote, or the last one closed (its result stays shown until the next opens).
    pub(crate) fn current(&self) -> Option<&Vote> {
        self.current.as_ref()
    }

    pub(crate) fn open(&mut self, question: &str, options: Option<Vec<String>>, now_ms: i64) -> Result<&Vote, VoteError> {
        if self.current.as_ref().is_some_and(Vote::is_open) {
            return Err(VoteError::AlreadyOpen);
        }
        let question = question.trim();
        if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
            return Err(VoteError::BadQuestion);
        }
        let options: Vec<String> = match options {
            None => DEFAULT_OPTIONS.iter().map(|o| o.to_string()).collect(),
            Some(list) => list.iter().map(|o| o.trim().to_string()).collect(),
        };
        let distinct = options.iter().enumerate().all(|(i, o)| !options[..i].contains(o));
        let sized = options.iter().all(|o| !o.is_empty() && o.chars().count() <= MAX_OPTION_CHARS);
        if !(2..=MAX_OPTIONS).contains(&options.len()) || !distinct || !sized {
            return Err(VoteError::BadOptions);
        }
        self.last_id += 1;
        let vote = Vote { id: self.last_id, question: question.to_string(), options, opened_ms: now_ms, closed_ms: None, tallies: BTreeMap::new() };
        Ok(self.current.insert(vote))
    }

    /// `site` enters (or corrects) its room's counts for vote `id`. They may not add up to
    /// more than the people attending there.
    pub(crate) fn tally(&mut self, id: u64, site: usize, counts: Vec<u32>, headcount: Option<u32>) -> Result<(), VoteError> {
        let vote = self.current.as_mut().filter(|v| v.is_open()).ok_or(VoteError::NotOpen)?;
        if vote.id != id {
            return Err(VoteError::WrongVote);
        }
        if counts.len() != vote.options.len() {
            return Err(VoteError::WrongCount { expected: vote.options.len() });
        }
        let headcount = headcount.ok_or(VoteError::HeadcountNeeded)? as u64;
        let sum: u64 = counts.iter().map(|c| *c as u64).sum();
        if sum > headcount {
            return Err(VoteError::OverHeadcount { sum, headcount });
        }
        vote.tallies.insert(site, counts);
        Ok(())
    }

    pub(crate) fn close(&mut self, now_ms: i64) -> Result<&Vote, VoteError> {
        let vote = self.current.as_mut().filter(|v| v.is_open()).ok_or(VoteError::NotOpen)?;
        vote.closed_ms = Some(now_ms);
        Ok(vote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vote_opens_with_the_usual_options_and_adds_up_each_rooms_counts() {
        let mut v = Votes::default();
        let id = v.open("Thông qua nghị quyết?", None, 1_000).unwrap().id;
        assert_eq!(v.current().unwrap().options, ["Tán thành", "Không tán thành", "Ý kiến khác"]);
        v.tally(id, 1, vec![10, 1, 0], Some(12)).unwrap();
        v.tally(id, 2, vec![7, 0, 2], Some(9)).unwrap();
        // A room corrects its counts: the last entry counts.
        v.tally(id, 1, vec![11, 1, 0], Some(12)).unwrap();
        assert_eq!(v.current().unwrap().totals(), [18, 1, 2]);
        let closed = v.close(5_000).unwrap();
        assert_eq!((closed.closed_ms, closed.totals()), (Some(5_000), vec![18, 1, 2]));
        assert_eq!(v.tally(id, 3, vec![1, 0, 0], Some(5)), Err(VoteError::NotOpen), "closed: no more counts");
        assert_eq!(v.current().unwrap().tallies.len(), 2, "the result stays until the next vote");
    }

    #[test]
    fn out_of_order_and_wrong_counts_are_refused_and_change_nothing() {
        let mut v = Votes::default();
        assert_eq!(v.tally(1, 1, vec![1, 0, 0], Some(5)), Err(VoteError::NotOpen));
        assert_eq!(v.close(1).err(), Some(VoteError::NotOpen));
        assert_eq!(v.open("  ", None, 1).err(), Some(VoteError::BadQuestion));
        assert_eq!(v.open("Q", Some(vec!["Có".into()]), 1).err(), Some(VoteError::BadOptions));
        assert_eq!(v.open("Q", Some(vec!["Có".into(), "Có".into()]), 1).err(), Some(VoteError::BadOptions));
        let id = v.open("Q", Some(vec!["Có".into(), "Không".into()]), 1).unwrap().id;
        assert_eq!(v.open("Q2", None, 2).err(), Some(VoteError::AlreadyOpen));
        assert_eq!(v.tally(id + 1, 1, vec![1, 0], Some(5)), Err(VoteError::WrongVote));
        assert_eq!(v.tally(id, 1, vec![1, 0, 0], Some(5)), Err(VoteError::WrongCount { expected: 2 }));
        assert_eq!(v.tally(id, 1, vec![4, 2], Some(5)), Err(VoteError::OverHeadcount { sum: 6, headcount: 5 }));
        assert_eq!(v.tally(id, 1, vec![1, 0], None), Err(VoteError::HeadcountNeeded));
        assert!(v.current().unwrap().tallies.is_empty(), "nothing was counted");
        v.close(3).unwrap();
        let next = v.open("Q3", None, 4).unwrap().id;
        assert_eq!(next, id + 1, "a new vote after the close, with the next id");
    }
}
