//! The meeting's own words, written once: what a site is in the meeting, what a programme item
//! is, how the pages arrange the tiles. Config, floor, conference, auth and signal all speak
//! them; none of those has its own copy.
//!
//! This module sits at the bottom: it depends on no other module of the bridge, does no I/O
//! and holds no state. Each enum's serde form is the one docs/protocol.md and the config file
//! use (`"chair"`, `"speech"`, `"grid"`), so the wire can carry it as it is; its string list is
//! that derive, and [`parse`] reads through it rather than keeping a second table.

use serde::{Deserialize, Serialize};

/// A configured site's position in the site list: what the floor, the views and the router
/// count by. Ids (`"hang-gai"`) are for people, the config file and the wire.
pub(crate) type SiteIndex = usize;

/// What a site may do in the meeting; decided by config, enforced by the conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteRole {
    /// HQ: chairs the meeting, may always speak.
    Chair,
    /// A ward's bridge point: asks for the floor.
    Site,
}

/// The kind of a programme item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgendaKind {
    /// Given by the chair.
    Report,
    /// Given by a site, which holds the floor while it runs.
    Speech,
    /// The chair's conclusions.
    Directive,
}

/// One programme item, its site by index; as the chair or the config gives it, before the
/// site is looked up, by its id (`AgendaItem<String>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaItem<S = SiteIndex> {
    pub(crate) title: String,
    // Saved states from before this type existed spell the kind `"Report"`.
    #[serde(deserialize_with = "kind_any_case")]
    pub(crate) kind: AgendaKind,
    pub(crate) site: Option<S>,
    pub(crate) planned_minutes: u32,
}

/// How every site's page arranges the tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// HQ and the floor holder large, the others small.
    #[default]
    Stage,
    /// Every site the same size.
    Grid,
}

/// Reads one of these enums from its serde name (`"chair"`, `"speech"`), as config text gives
/// it; `None` for any other text.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name)).ok()
}

fn kind_any_case<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AgendaKind, D::Error> {
    let name = String::deserialize(d)?;
    parse(&name.to_ascii_lowercase()).ok_or_else(|| serde::de::Error::custom(format!("unknown programme item kind {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_protocol_s() {
        assert_eq!(serde_json::to_string(&SiteRole::Chair).unwrap(), r#""chair""#);
        assert_eq!(serde_json::to_string(&AgendaKind::Directive).unwrap(), r#""directive""#);
        assert_eq!(serde_json::to_string(&Layout::Grid).unwrap(), r#""grid""#);
        assert_eq!(parse::<SiteRole>("site"), Some(SiteRole::Site));
        assert_eq!(parse::<AgendaKind>("speech"), Some(AgendaKind::Speech));
        assert_eq!(parse::<AgendaKind>("Speech"), None, "config text is exact");
        assert_eq!(parse::<SiteRole>("technician"), None);
    }

    #[test]
    fn an_item_saved_before_the_domain_model_still_reads() {
        let old = r#"{"title":"Báo cáo","kind":"Report","site":null,"planned_minutes":10}"#;
        let item: AgendaItem = serde_json::from_str(old).unwrap();
        assert_eq!(item.kind, AgendaKind::Report);
        let again: AgendaItem = serde_json::from_str(&serde_json::to_string(&item).unwrap()).unwrap();
        assert_eq!(again, item);
    }
}
