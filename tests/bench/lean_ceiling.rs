//! The ceiling of a lean forwarding path on this machine: what one thread can forward when
//! nothing stands between the router and the socket but the header rewrite, SRTP and the
//! kernel. Not the bridge: a measurement to decide its next design (docs/performance.md, "Why
//! not 120 000 packets per core").
//!
//!   cargo bench --bench lean_ceiling                  # 49 receivers, 300 000 packets out
//!   cargo bench --bench lean_ceiling -- --receivers 125 --packets 500000
//!
//! One sender thread takes a 1 000-byte VP8-sized RTP packet as if just received and, for
//! each of R receivers, rewrites SSRC, sequence number and timestamp, encrypts it with that
//! receiver's own SRTP context (webrtc-rs's `rtc-srtp`, AES-128-GCM, the profile Chromium
//! picks) and sends it to that receiver's loopback socket: once with one `sendto` per packet,
//! once in batches of 32 with `sendmmsg`. Another thread drains the receivers' sockets and
//! counts. Reported: packets per CPU-second of the sender thread (its `RUSAGE_THREAD` time,
//! which on loopback includes the kernel's delivery into the receiving socket) and how many
//! arrived.

use bytes::BytesMut;
use rtc::crypto::providers::RingCrypto;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PACKET_BYTES: usize = 1000;
const BATCH: usize = 32;

fn arg(name: &str, default: usize) -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).map(|v| v.parse().expect(name)).unwrap_or(default)
}

/// CPU time of the calling thread, user + system.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we own; RUSAGE_THREAD is Linux's per-thread usage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn rtp_packet(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0u8; 12 + PACKET_BYTES];
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p[12] = 0x10;
    p
}

struct Leg {
    to: SocketAddr,
    srtp: Context,
    ssrc: u32,
    seq: u16,
}

fn legs(receivers: &[UdpSocket]) -> Vec<Leg> {
    let profile = ProtectionProfile::AeadAes128Gcm;
    receivers
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key: Vec<u8> = (0..profile.key_len()).map(|b| (b + i) as u8).collect();
            let salt: Vec<u8> = (0..profile.salt_len()).map(|b| (b * 3 + i) as u8).collect();
            let srtp = Context::new(&key, &salt, profile, None, None, &RingCrypto).expect("SRTP context");
            Leg { to: r.local_addr().unwrap(), srtp, ssrc: 0x1000 + i as u32, seq: 0 }
        })
        .collect()
}

/// Forwards `packets` packets out, one `sendto` each or `BATCH` per `sendmmsg`; the
/// sender thread's CPU time.
fn forward(socket: &UdpSocket, legs: &mut [Leg], packets: usize, batched: bool) -> Duration {
    let cpu0 = thread_cpu();
    let mut incoming = rtp_packet(0xabcd, 0, 0);
    let mut batch: Vec<(BytesMut, SocketAddr)> = Vec::with_capacity(BATCH);
    let (mut sent, mut n) = (0, 0u32);
    while sent < packets {
        n = n.wrapping_add(1);
        for leg in legs.iter_mut() {
            // The rewrite: this leg's SSRC, sequence and timestamp.
            incoming[2..4].copy_from_slice(&leg.seq.to_be_bytes());
            incoming[4..8].copy_from_slice(&(n.wrapping_mul(6000)).to_be_bytes());
            incoming[8..12].copy_from_slice(&leg.ssrc.to_be_bytes());
            leg.seq = leg.seq.wrapping_add(1);
            let encrypted = leg.srtp.encrypt_rtp(&incoming).expect("encrypt");
            if batched {
                batch.push((encrypted, leg.to));
                if batch.len() == BATCH {
                    send_batch(socket, &batch);
                    batch.clear();
                }
            } else {
                let _ = socket.send_to(&encrypted, leg.to);
            }
            sent += 1;
        }
    }
    if !batch.is_empty() {
        send_batch(socket, &batch);
    }
    thread_cpu() - cpu0
}

fn send_batch(socket: &UdpSocket, batch: &[(BytesMut, SocketAddr)]) {
    let addrs: Vec<socket2::SockAddr> = batch.iter().map(|(_, a)| socket2::SockAddr::from(*a)).collect();
    let mut iovs: Vec<libc::iovec> = batch.iter().map(|(b, _)| libc::iovec { iov_base: b.as_ptr() as *mut _, iov_len: b.len() }).collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..batch.len())
        .map(|i| {
            // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = addrs[i].as_ptr() as *mut _;
            h.msg_hdr.msg_namelen = addrs[i].len();
            h.msg_hdr.msg_iov = &mut iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let mut done = 0;
    while done < msgs.len() {
        // SAFETY: msgs[done..] are valid mmsghdrs pointing at live buffers and addresses.
        let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs[done..].as_mut_ptr(), (msgs.len() - done) as u32, 0) };
        if r <= 0 {
            break; // a full send buffer drops the rest, as UDP does
        }
        done += r as usize;
    }
}

fn main() {
    let (receivers, packets) = (arg("--receivers", 49).clamp(1, 1000), arg("--packets", 300_000).max(1000));
    let sockets: Vec<UdpSocket> = (0..receivers)
        .map(|_| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
            let _ = s.set_recv_buffer_size(4 << 20);
            s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
            s.set_nonblocking(true).unwrap();
            s.into()
        })
        .collect();
    let sockets = Arc::new(sockets);
    let (received, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let drain = {
        let (sockets, received, stop) = (sockets.clone(), received.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let mut got = 0;
                for s in sockets.iter() {
                    while s.recv(&mut buf).is_ok() {
                        got += 1;
                    }
                }
                received.fetch_add(got, Ordering::Relaxed);
                if got == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = socket2::SockRef::from(&sender).set_send_buffer_size(4 << 20);
    let mut legs = legs(&sockets);
    let mut results = Vec::new();
    for batched in [false, true] {
        received.store(0, Ordering::Relaxed);
        let wall = Instant::now();
        let cpu = forward(&sender, &mut legs, packets, batched);
        let wall = wall.elapsed();
        std::thread::sleep(Duration::from_millis(300)); // the drain catches up
        let sent = packets.div_ceil(receivers) * receivers;
        results.push(json!({
            "send": if batched { format!("sendmmsg, {BATCH} per call") } else { "sendto per packet".to_string() },
            "packets_out": sent,
            "sender_cpu_s": cpu.as_secs_f64(),
            "packets_per_cpu_second": sent as f64 / cpu.as_secs_f64(),
            "packets_per_wall_second": sent as f64 / wall.as_secs_f64(),
            "arrived_percent": received.load(Ordering::Relaxed) as f64 / sent as f64 * 100.0,
        }));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    let summary = json!({
        "receivers": receivers,
        "packet_bytes": 12 + PACKET_BYTES,
        "srtp": "AEAD_AES_128_GCM (rtc-srtp, ring)",
        "runs": results,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
}
