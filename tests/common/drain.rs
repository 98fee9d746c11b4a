//! A light receiver for the load generator: a webrtc-rs `Runtime` whose UDP socket counts the
//! SRTP media it receives and drops it before webrtc-rs decrypts it. STUN, DTLS and SRTCP pass
//! through, so the site joins, keeps ICE consent and publishes like any other. With a share
//! below 100 % it is a lossy downlink for media only (the handshake is never hit), for tests
//! of what the bridge does about a receiver's loss.
//!
//! Why: 130 simulated sites that each decrypt ~725 packets/s cost the generator about a core
//! on this 2-core machine, which starves the bridge it measures. With `--measured M`, sites
//! past the first M are light: the datagrams still cross the kernel to their sockets (the
//! bridge's cost is unchanged), the generator just stops paying for what no one looks at.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use webrtc::runtime::{AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime, TokioRuntime, Transmit};

/// Datagrams dropped in one poll before the socket yields to the rest of its driver.
const DRAIN_PER_POLL: usize = 256;

/// What the light receivers drained, counted while `on`.
#[derive(Debug, Default)]
pub struct Drained {
    pub on: AtomicBool,
    pub datagrams: AtomicU64,
}

/// RTP (not RTCP) by its first two bytes (RFC 5761 §4: RTCP packet types 192–223).
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

#[derive(Debug)]
pub struct DrainRuntime {
    inner: TokioRuntime,
    drained: Arc<Drained>,
    percent: f64,
}

impl DrainRuntime {
    /// Drops every media datagram.
    pub fn new(drained: Arc<Drained>) -> Self {
        Self::dropping(drained, 100.0)
    }

    /// Drops `percent` of the media datagrams, at random.
    pub fn dropping(drained: Arc<Drained>, percent: f64) -> Self {
        DrainRuntime { inner: TokioRuntime, drained, percent }
    }
}

struct DrainSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    drained: Arc<Drained>,
    percent: f64,
}

impl DrainSocket {
    fn drops(&self) -> bool {
        self.percent >= 100.0 || rand::random::<f64>() * 100.0 < self.percent
    }
}

impl fmt::Debug for DrainSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainSocket").finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for DrainSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        self.inner.poll_send(cx, t)
    }

    fn poll_recv(&self, cx: &mut Context<'_>, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> Poll<io::Result<usize>> {
        for _ in 0..DRAIN_PER_POLL {
            let n = match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            // Keep what is not media, in order, at the front.
            let mut kept = 0;
            for i in 0..n {
                let (len, stride) = (meta[i].len, meta[i].stride.max(1));
                if is_rtp(&bufs[i][..len]) && self.drops() {
                    if self.drained.on.load(Ordering::Relaxed) {
                        self.drained.datagrams.fetch_add(len.div_ceil(stride) as u64, Ordering::Relaxed);
                    }
                    continue;
                }
                if kept != i {
                    let (front, back) = bufs.split_at_mut(i);
                    front[kept][..len].copy_from_slice(&back[0][..len]);
                    meta[kept] = meta[i];
                }
                kept += 1;
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
        }
        // Still more to drain: let the driver run its timers and sends first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    // One datagram per buffer: a coalesced run could mix media and control.
    fn max_gro_segments(&self) -> usize {
        1
    }
}

impl Runtime for DrainRuntime {
    fn spawn(&self, f: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(f)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(DrainSocket { inner: self.inner.wrap_udp_socket(socket)?, drained: self.drained.clone(), percent: self.percent }))
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(&'a self, remote: SocketAddr) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(d)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, f: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(f)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "drain"
    }
}
