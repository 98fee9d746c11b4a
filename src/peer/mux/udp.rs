//! The shared UDP socket: one receive loop that routes datagrams to PCs, and the virtual
//! per-PC socket (`AsyncUdpSocket`) the driver polls.

use super::stun::{self, Class, Kind};
use super::{Mux, PcLink};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Transmit};

/// Socket buffers for the one socket that carries every PC's media.
const SOCKET_BUFFER: usize = 4 << 20;

pub(super) fn bind_shared(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(s.into())
}

impl Mux {
    /// Sends one datagram from the shared port on behalf of `link`, learning routes from what
    /// the link itself decides to send:
    /// - its own Binding request: route the response by transaction id;
    /// - a Binding success response: it authenticated a check from there (MESSAGE-INTEGRITY
    ///   with its password), so later DTLS/SRTP from that address is this link's;
    /// - DTLS/SRTP: the selected pair, same conclusion.
    ///
    /// Error responses and indications teach nothing. `try_send_to`, not `poll_send_to`: many
    /// tasks share this socket and tokio keeps one send waker per socket. A full send buffer
    /// drops the datagram (UDP semantics) and counts it.
    pub(crate) fn send_udp(&self, link: &Arc<PcLink>, to: SocketAddr, contents: &[u8]) -> io::Result<usize> {
        match stun::classify(contents) {
            Kind::Stun { class: Class::Request, txid, .. } => self.remember_txid(txid, link),
            Kind::Stun { class: Class::Success, .. } => self.learn_addr(to, link),
            Kind::Other => {
                self.learn_addr(to, link);
                link.sent_media(super::Path::Udp);
            }
            _ => {}
        }
        self.counters.udp_out.fetch_add(1, Ordering::Relaxed);
        match self.udp_sock.try_send_to(contents, to) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.counters.udp_send_drops.fetch_add(1, Ordering::Relaxed);
                Ok(contents.len())
            }
            Err(e) => Err(e),
        }
    }
}

/// Receives every datagram of the shared port and queues it on the PC it belongs to, until
/// `stop` or the mux is gone.
pub(super) async fn demux_loop(mux: std::sync::Weak<Mux>, sock: Arc<tokio::net::UdpSocket>, stop: tokio_util::sync::CancellationToken) {
    let mut buf = vec![0u8; 2048];
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => r,
        };
        let Some(mux) = mux.upgrade() else { return };
        let (n, from) = match received {
            Ok(r) => r,
            // ICMP port-unreachable from an earlier send shows up here on Linux: transient.
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                tracing::error!("shared UDP socket failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let data = &buf[..n];
        mux.counters.udp_in.fetch_add(1, Ordering::Relaxed);
        let c = &mux.counters;
        let target = match stun::classify(data) {
            // A check from the browser: USERNAME names our PC. Preferred over the address,
            // so a path that moves to another PC (or a reused remote port) follows the ufrag.
            // Unless its address failed too many checks: then it is dropped here.
            Kind::Stun { class: Class::Request, .. } if mux.check_refused(from) => continue,
            Kind::Stun { class: Class::Request, username: Some(u), .. } => {
                match stun::local_ufrag(u).and_then(|u| mux.link_by_ufrag(u)) {
                    Some(l) => {
                        c.udp_by_ufrag.fetch_add(1, Ordering::Relaxed);
                        Some(l)
                    }
                    None => {
                        let by_addr = mux.link_by_addr(&from).inspect(|_| {
                            c.udp_by_addr.fetch_add(1, Ordering::Relaxed);
                        });
                        if by_addr.is_none() {
                            // A check for no site of this bridge: a failed check.
                            mux.check_failed(from);
                        }
                        by_addr
                    }
                }
            }
            // The answer to one of our own checks: whoever sent that transaction.
            Kind::Stun { class: Class::Success | Class::Error, txid, .. } => match mux.take_txid(&txid) {
                Some(l) => {
                    c.udp_by_txid.fetch_add(1, Ordering::Relaxed);
                    Some(l)
                }
                None => mux.link_by_addr(&from).inspect(|_| {
                    c.udp_by_addr.fetch_add(1, Ordering::Relaxed);
                }),
            },
            // DTLS, SRTP, SRTCP, indications: by source address.
            _ => mux.link_by_addr(&from).inspect(|_| {
                c.udp_by_addr.fetch_add(1, Ordering::Relaxed);
            }),
        };
        match target {
            Some(link) => {
                if !link.push_datagram(from, bytes::Bytes::copy_from_slice(data)) {
                    c.udp_queue_drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                c.udp_unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What a PC's driver gets from `Runtime::wrap_udp_socket`: its queue on the shared socket.
#[derive(Debug)]
pub(crate) struct VirtualUdpSocket {
    pub(super) mux: Arc<Mux>,
    pub(super) link: Arc<PcLink>,
    /// The ephemeral address the driver bound; the driver keys this socket by it.
    pub(super) label: SocketAddr,
}

impl AsyncUdpSocket for VirtualUdpSocket {
    /// Not used by the 0.21.1 driver for UDP (it keys sockets by the std socket's address,
    /// `driver.rs:663-665`), but keep it consistent with that key.
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.label)
    }

    fn poll_send(&self, _cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        // `max_gso_segments()` is 1, so the driver never sets `segment_size`: one datagram.
        Poll::Ready(self.mux.send_udp(&self.link, t.destination, t.contents))
    }

    fn poll_recv(&self, cx: &mut Context<'_>, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> Poll<io::Result<usize>> {
        // Fill as many of the driver's buffers as we have datagrams (it passes one today).
        let fill = |bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]| -> usize {
            let mut q = self.link.udp_queue.lock().unwrap();
            let mut n = 0;
            while n < bufs.len().min(meta.len()) {
                let Some(super::Datagram { from, data, .. }) = q.pop_front() else { break };
                let len = data.len().min(bufs[n].len());
                bufs[n][..len].copy_from_slice(&data[..len]);
                // RecvMeta is #[non_exhaustive]: start from default, then set the fields.
                meta[n] = RecvMeta::default();
                meta[n].len = len;
                meta[n].stride = len.max(1); // never 0 (the driver divides by it)
                meta[n].addr = from;
                n += 1;
            }
            n
        };
        let n = fill(bufs, meta);
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        // Register, then look again: a push between the first look and the registration
        // would otherwise be missed. `register` replaces the previous waker, which matters
        // because the driver's burst drain polls with a no-op waker (driver.rs:1077-1081).
        self.link.udp_waker.register(cx.waker());
        let n = fill(bufs, meta);
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        Poll::Pending
    }
}
