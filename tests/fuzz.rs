//! Property tests over the signalling parser and the conference's command handling, run for
//! a bounded number of cases in every test run (`DIEMCAU_FUZZ_CASES` runs more). Inputs that
//! ever broke a property are kept in `tests/fuzz.proptest-regressions` and replayed first.
//!
//! - Any text at all, and JSON shaped like the protocol's messages with arbitrary fields and
//!   values, is either parsed into a message that serialises back to itself or refused with a
//!   code and a message; the parser never panics.
//! - Any sequence of conference actions from any sites leaves the conference consistent: a
//!   ward's chair command is always refused with `not_chair`, the floor never has more holders
//!   than allowed, nobody both holds the floor and waits for it, queue positions count 1, 2, …

use diemcau::conference::{self, Action};
use diemcau::media::router::Router;
use diemcau::recording::Recorder;
use diemcau::signal::outbox::{Delivery, Outbox};
use diemcau::signal::protocol::{parse_client, AgendaItemSpec, AgendaKind, ClientMessage, ErrorCode, Layout, Outgoing, ServerMessage};
use diemcau::store::Store;
use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;

fn cases() -> u32 {
    std::env::var("DIEMCAU_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from("hang-gai")),
        Just(Value::from("hq")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects with a real or made-up `type` and fields the real messages use, with any values.
fn message_like() -> impl Strategy<Value = Value> {
    let types: Vec<&'static str> = ClientMessage::TYPES.to_vec();
    let field = prop::sample::select(vec![
        "site",
        "ticket",
        "resume",
        "sdp",
        "candidate",
        "audio",
        "video",
        "topic",
        "request",
        "muted",
        "layout",
        "items",
        "locked",
        "track",
        "report",
        "attendees",
        "headcount",
        "key",
        "role",
    ]);
    (prop_oneof![prop::sample::select(types).prop_map(String::from), "[a-z_]{0,16}"], prop::collection::btree_map(field, json_value(), 0..5)).prop_map(
        |(t, fields)| {
            let mut m: serde_json::Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            m.insert("type".into(), Value::from(t));
            Value::Object(m)
        },
    )
}

fn check_parse(text: &str) -> Result<(), TestCaseError> {
    match parse_client(text) {
        Ok(m) => {
            let again = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(parse_client(&again).ok(), Some(m), "accepted messages serialise back to themselves");
        }
        Err(r) => prop_assert!(!r.message.is_empty(), "a refusal says why"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))), ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_parsed_or_refused_with_a_code(text in ".{0,300}") {
        check_parse(&text)?;
    }

    #[test]
    fn protocol_shaped_json_is_parsed_or_refused_with_a_code(v in message_like()) {
        check_parse(&v.to_string())?;
    }
}

/// Conference actions with arbitrary (often wrong) arguments.
fn action() -> impl Strategy<Value = Action> {
    let site = prop::sample::select(vec!["hq", "cua-nam", "hang-gai", "hang-bai", "nowhere"]).prop_map(String::from);
    prop_oneof![
        (any::<Option<bool>>(), any::<Option<bool>>()).prop_map(|(audio, video)| Action::Mute { audio, video }),
        proptest::option::of(".{0,250}").prop_map(|topic| Action::RequestFloor { topic }),
        Just(Action::CancelFloor),
        Just(Action::ReleaseFloor),
        (0u64..8).prop_map(|request| Action::GrantFloor { request }),
        (0u64..8).prop_map(|request| Action::DenyFloor { request }),
        site.clone().prop_map(|site| Action::GiveFloor { site }),
        site.clone().prop_map(|site| Action::RevokeFloor { site }),
        (site.clone(), any::<bool>()).prop_map(|(site, muted)| Action::MuteSite { site, muted }),
        any::<bool>().prop_map(|muted| Action::MuteAll { muted }),
        prop_oneof![Just(Layout::Stage), Just(Layout::Grid)].prop_map(|layout| Action::SetLayout { layout }),
        prop::collection::vec(
            (".{0,20}", prop_oneof![Just(AgendaKind::Report), Just(AgendaKind::Speech), Just(AgendaKind::Directive)], proptest::option::of(site), 0u32..30),
            0..4
        )
        .prop_map(|items| {
            // As a page sends it: the wire's items become the conference's.
            let items = items.into_iter().map(|(title, kind, site, planned_minutes)| AgendaItemSpec { title, kind, site, planned_minutes }).collect();
            Action::try_from(ClientMessage::SetAgenda { items }).expect("a conference action")
        }),
        Just(Action::NextItem),
        any::<bool>().prop_map(|locked| Action::Lock { locked }),
        Just(Action::ShareStart),
        Just(Action::ShareStop),
    ]
}

fn chair_only(a: &Action) -> bool {
    matches!(
        a,
        Action::GrantFloor { .. }
            | Action::DenyFloor { .. }
            | Action::GiveFloor { .. }
            | Action::RevokeFloor { .. }
            | Action::MuteSite { .. }
            | Action::MuteAll { .. }
            | Action::SetLayout { .. }
            | Action::SetAgenda { .. }
            | Action::NextItem
            | Action::Lock { .. }
    )
}

/// The consistency every state must have.
fn check_state(state: &ServerMessage) -> Result<(), TestCaseError> {
    let ServerMessage::State { sites, floor, .. } = state else { return Ok(()) };
    prop_assert!(floor.holders.len() <= 1, "one floor holder at most: {:?}", floor.holders);
    for h in &floor.holders {
        prop_assert!(!floor.queue.iter().any(|q| q.site == h.site), "{} holds and waits", h.site);
        let s = sites.iter().find(|s| s.id == h.site).unwrap();
        prop_assert!(s.role == diemcau::domain::SiteRole::Site, "only a ward holds the floor");
        prop_assert!(s.present, "the floor holder is present");
    }
    for (i, q) in floor.queue.iter().enumerate() {
        prop_assert_eq!(q.position, i + 1);
    }
    Ok(())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// Runs `steps` against a fresh conference where HQ and three wards are present.
async fn run_steps(steps: Vec<(usize, Action)>) -> Result<(), TestCaseError> {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let settings = Arc::new(diemcau::config::Settings::load(&config).unwrap());
    let dir = std::env::temp_dir().join(format!("dc-fuzz-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir).unwrap();
    let router = Router::new(settings.sites.len());
    let ids: Arc<[String]> = settings.sites.iter().map(|s| s.id.clone()).collect();
    let recorder = Recorder::spawn(dir.join("recordings"), 0, router.clone(), ids);
    let cancel = tokio_util::sync::CancellationToken::new();
    let conf = conference::spawn(settings.clone(), store, router, recorder, cancel.clone());
    let mut seats = Vec::new();
    for site in 0..4 {
        let (tx, rx) = Outbox::new();
        let session = uuid::Uuid::new_v4();
        conf.join(site, session, None, tx).await.unwrap();
        seats.push((session, rx));
    }
    let mut last = None;
    let result = async {
        for (site, action) in steps {
            let chair_cmd = chair_only(&action);
            let r = conf.act(site, seats[site].0, action).await;
            if site != 0 && chair_cmd {
                prop_assert_eq!(r.map_err(|e| ErrorCode::from(&e)), Err(ErrorCode::NotChair), "a ward's chair command");
            }
            while let Some(out) = seats[0].1.try_recv() {
                // What goes to every page arrives as its JSON text: read it as a page would.
                let m = match out {
                    Delivery::Send(Outgoing::Message(m)) | Delivery::Close(m) => m,
                    Delivery::Send(Outgoing::Text(t)) => serde_json::from_str(&t).map_err(|e| TestCaseError::fail(format!("unreadable message {e}: {t}")))?,
                };
                if matches!(m, ServerMessage::State { .. }) {
                    last = Some(m);
                }
            }
            if let Some(s) = &last {
                check_state(s)?;
            }
        }
        Ok(())
    }
    .await;
    cancel.cancel();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: (cases() / 4).max(1), failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))), ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_conference_consistent(
        steps in prop::collection::vec((prop::sample::select(vec![0usize, 1, 2, 3]), action()), 1..40)
    ) {
        runtime().block_on(run_steps(steps))?;
    }
}
