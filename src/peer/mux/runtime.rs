//! The per-PeerConnection `Runtime`: tokio for everything except socket wrapping.

use super::tcp::VirtualTcpListener;
use super::udp::VirtualUdpSocket;
use super::{Mux, PcLink};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::{AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime, TokioRuntime};

/// mDNS sockets (port 5353) are passed through untouched; keep mDNS disabled anyway
/// (`with_multicast_dns_mode(Disabled)`), or each PC opens a multicast socket.
const MDNS_PORT: u16 = 5353;

#[derive(Debug)]
pub(crate) struct MuxRuntime {
    inner: TokioRuntime,
    mux: Arc<Mux>,
    link: Arc<PcLink>,
}

impl MuxRuntime {
    pub(super) fn new(mux: Arc<Mux>, link: Arc<PcLink>) -> Self {
        MuxRuntime { inner: TokioRuntime, mux, link }
    }
}

impl Runtime for MuxRuntime {
    fn spawn(&self, f: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(f)
    }

    // spawn_reactor: the trait default (falls back to `spawn`) is fine; the dedicated reactor
    // pool only matters with `with_dedicated_reactor_pool_size(n > 0)`.

    /// Called by the driver's `bind_transports` (driver.rs:650-666) at start and again on an
    /// ICE-restart rebind (only with `with_discard_local_candidates_during_ice_restart(true)`).
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let label = socket.local_addr()?;
        if label.port() == MDNS_PORT {
            return self.inner.wrap_udp_socket(socket);
        }
        // Close the real socket: the process keeps exactly one UDP port. The label is only a
        // name inside this PC (the driver's map key and the host candidate's address); if the
        // kernel hands the same ephemeral port to another PC later, nothing collides.
        drop(socket);
        *self.link.udp_label.lock().unwrap() = Some(label);
        Ok(Arc::new(VirtualUdpSocket { mux: self.mux.clone(), link: self.link.clone(), label }))
    }

    /// Same for ICE-TCP: the driver binds `with_tcp_addrs` (driver.rs:668-684); we keep only
    /// the address and serve accepts from the shared listener.
    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        let label = listener.local_addr()?;
        drop(listener);
        *self.link.tcp_label.lock().unwrap() = Some(label);
        Ok(Arc::new(VirtualTcpListener::new(self.mux.clone(), &self.link, label)))
    }

    /// Only used for remote *passive* TCP candidates (tcp_transport.rs:274-311). Browsers offer
    /// active ones only, and a firewall-friendly server must not dial out: refuse.
    fn connect_tcp<'a>(&'a self, remote: SocketAddr) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        Box::pin(async move { Err(io::Error::new(io::ErrorKind::Unsupported, format!("outgoing ICE-TCP to {remote} disabled"))) })
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
        "mux"
    }
}
