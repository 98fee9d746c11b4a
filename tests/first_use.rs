//! First use on a fresh machine: `diemcau serve` started outside the project's folder finds
//! its default configuration (built in), and serves the six bridge points.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn serve_started_outside_the_project_runs_on_the_built_in_default_config() {
    let dir = common::scratch_dir("elsewhere");
    // Started from a shell with a permissive umask.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask 000; exec {} \"$@\"", env!("CARGO_BIN_EXE_diemcau")))
        .arg("diemcau")
        .current_dir(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data", "data"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start diemcau");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let up = line.contains("bridge listening on https://127.0.0.1:");
            seen.push(line);
            if up {
                let _ = tx.send(seen.join("\n"));
                return;
            }
        }
        let _ = tx.send(seen.join("\n"));
    });
    let log = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| "no output within 30 s".into());
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("bridge listening"), "the bridge did not start:\n{log}");
    assert!(log.contains("built-in default configuration"), "it says where its configuration came from:\n{log}");
    let links = std::fs::read_to_string(dir.join("data/join-links.txt")).expect("join links written under --data");
    assert_eq!(links.lines().filter(|l| l.contains("/site/")).count(), 6, "HQ and five ward points:\n{links}");
    // Whatever the umask it was started with, what it creates is its own alone.
    let mut stack = vec![dir.join("data")];
    while let Some(path) = stack.pop() {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o077, 0, "{} is open to others: {:o}", path.display(), meta.permissions().mode());
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
