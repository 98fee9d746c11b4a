//! What the code claims of its own layout (docs/architecture.md), checked on the source:
//! the conference takes and publishes in its own terms and never reads or writes the wire's
//! messages or codes; one site's lean media session does no I/O of its own and reads no clock.

use std::path::Path;

/// Every `.rs` file under `dir`, with its text, tests left out (`tests.rs`).
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    assert!(!found.is_empty(), "no sources under {dir}");
    found
}

/// The lines of `files` that contain any of `words`.
fn offending(files: &[(String, String)], words: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, text) in files {
        for (n, line) in text.lines().enumerate() {
            if !line.trim_start().starts_with("//") && words.iter().any(|w| line.contains(w)) {
                lines.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    lines
}

#[test]
fn the_conference_never_writes_a_wire_message_itself() {
    // `signal::render` writes what the conference publishes (`conference::published`);
    // `signal::protocol` turns a page's message into an `Action` and a `Reason` into its code.
    let wire = ["ServerMessage", "ClientMessage", "ErrorCode", "AgendaItemSpec", "SitePresence", "FloorEventKind", "StateView"];
    let found = offending(&sources("src/conference"), &wire);
    assert!(found.is_empty(), "the conference builds wire messages:\n{}", found.join("\n"));
}

#[test]
fn the_lean_session_does_no_io_and_reads_no_clock() {
    // Time comes in with every input; sockets, tasks and timers are the driver's.
    let io = ["Instant::now", "SystemTime::now", "tokio::spawn", "tokio::time", "tokio::net", "std::net::UdpSocket", "TcpStream", ".await", "async fn"];
    let found = offending(&sources("src/peer/lean/session"), &io);
    assert!(found.is_empty(), "the session reaches outside itself:\n{}", found.join("\n"));
}
