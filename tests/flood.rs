//! A client sending as fast as it can does not raise the other sites' media loss: it is told
//! `rate_limited`, then closed as `flooding`, while the media between the others flows at
//! the same rate as before (measured and printed: `cargo test --test flood -- --nocapture`).

mod common;

use common::sim::Sim;
use common::ws::Client;
use common::{wait_until, TestBridge};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Audio packets per second the listener receives from `from` over `window`.
async fn audio_rate(listener: &Sim, from: &str, window: Duration) -> f64 {
    let (n0, t0) = (listener.received(from, "audio"), Instant::now());
    tokio::time::sleep(window).await;
    (listener.received(from, "audio") - n0) as f64 / t0.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_closed_and_the_others_media_is_not_hurt() {
    let bridge = TestBridge::start_default();
    let (cert, port) = (bridge.cert_pem(), bridge.port);
    let _hq = Sim::join(&cert, port, "hq", bridge.key("hq")).await;
    let _ward = Sim::join(&cert, port, "hang-gai", bridge.key("hang-gai")).await;
    let listener = Sim::join(&cert, port, "cua-nam", bridge.key("cua-nam")).await;
    wait_until(Duration::from_secs(30), "media at the listener", || async {
        (listener.received("hq", "audio") > 50 && listener.received("hang-gai", "audio") > 50).then_some(())
    })
    .await;
    let window = Duration::from_secs(4);
    let baseline = (audio_rate(&listener, "hang-gai", window).await + audio_rate(&listener, "hq", window).await) / 2.0;

    // A joined ward floods with mute toggles (each accepted one would go to the conference and
    // be broadcast to everyone), as fast as the socket takes them, for at most 8 s.
    let mut flooder = Client::connect(&cert, port).await;
    assert_eq!(flooder.join("trang-tien", bridge.key("trang-tien")).await["type"], "joined");
    let (mut tx, mut rx) = flooder.into_socket().split();
    let sender = tokio::spawn(async move {
        let (start, mut sent) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(8) && sent < 2_000_000 {
            let msg = json!({"type": "mute", "audio": sent % 2 == 0}).to_string();
            if tx.send(Message::Text(msg.into())).await.is_err() {
                break;
            }
            sent += 1;
        }
        (sent, start.elapsed())
    });
    let reader = tokio::spawn(async move {
        let (mut limited, mut close) = (0u32, None);
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(15), rx.next()).await {
            match m {
                Message::Text(t) if t.contains("\"rate_limited\"") => limited += 1,
                Message::Close(frame) => {
                    close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    break;
                }
                _ => {}
            }
        }
        (limited, close)
    });
    let during = (audio_rate(&listener, "hang-gai", window).await + audio_rate(&listener, "hq", window).await) / 2.0;
    let (limited, close) = reader.await.unwrap();
    let (sent, took) = sender.await.unwrap();
    let loss = (1.0 - during / baseline).max(0.0) * 100.0;
    println!(
        "flood: {sent} messages in {:.1} s ({:.0}/s); {limited} rate_limited replies; closed with {close:?}; \
         other sites' audio {baseline:.1} packets/s before, {during:.1} during ({loss:.1} % lower)",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64()
    );
    assert!(limited >= 1, "the flooder is told it is over the rate");
    assert_eq!(close, Some((1008, "flooding".to_string())), "and closed with a reason");
    assert!(during >= baseline * 0.97, "the others' media rate fell from {baseline:.1} to {during:.1} packets/s");
    // The flooder's mutes did not run away with the conference: it got the burst through at most.
    let state = bridge.get_json("/api/health").await;
    assert!(state["sites"].as_array().unwrap().iter().any(|s| s["id"] == "cua-nam" && s["present"] == true));
}
