//! The shared ICE-TCP listener (RFC 6544 passive candidates, RFC 4571 framing).
//!
//! The browser (tcptype active) connects to the shared port and sends a framed STUN Binding
//! request first. The acceptor reads exactly that frame, routes the connection by the ufrag
//! in USERNAME, and hands `(stream, peer, first frame)` to the PC's [`VirtualTcpListener`].
//! The driver then reads the replayed frame as if it had accepted the connection itself.

use super::stun::{self, Class, Kind};
use super::{Mux, PcLink};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, Semaphore};
use webrtc::runtime::{AsyncTcpListener, AsyncTcpStream};

/// The first frame must arrive this soon after connect (a browser sends its check at once).
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// A Binding request is ~100-200 bytes; refuse anything that cannot be one.
const MAX_FIRST_FRAME: usize = 1500;
/// Connections still waiting for their first frame, in all and from one address.
const MAX_PENDING_HANDSHAKES: usize = 1024;
const MAX_PENDING_PER_IP: usize = 8;
/// Connections routed to one PC at once (a browser opens one or two per candidate pair).
const MAX_ROUTED_PER_PC: usize = 8;
/// Frames buffered per connection towards the browser before we drop (slow TCP peer).
const WRITE_QUEUE_FRAMES: usize = 1024;
/// Connections routed to a PC but not yet taken by its driver.
const ACCEPT_QUEUE: usize = 16;
/// The largest frame a routed connection may carry: browsers frame what they would send in
/// one UDP datagram (≤ 1 500 bytes). A larger one closes the connection (RFC 4571 allows
/// 64 KiB; no browser sends it, and the bridge would hold it in memory).
pub(crate) const MAX_FRAME: usize = 2048;
/// A routed connection that carries no whole frame for this long is closed: a browser sends
/// a consent check every few seconds (RFC 7675), so only a half-open or trickling one is.
pub(crate) const ROUTED_IDLE: Duration = Duration::from_secs(30);

/// A connection the acceptor routed to one PC.
#[derive(Debug)]
pub(crate) struct Routed {
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    /// Bytes already read (2-byte length + the first STUN frame), replayed to the driver.
    prefix: Vec<u8>,
    /// Holds the connection's place among its PC's routed connections while it is served.
    place: RoutedPlace,
}

/// One of a PC's routed ICE-TCP connections, counted until dropped.
#[derive(Debug)]
struct RoutedPlace(Arc<PcLink>);

impl RoutedPlace {
    fn new(link: Arc<PcLink>) -> Self {
        link.tcp_routed.fetch_add(1, Ordering::Relaxed);
        RoutedPlace(link)
    }
}

impl Drop for RoutedPlace {
    fn drop(&mut self) {
        self.0.tcp_routed.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts ICE-TCP connections until `stop` or the mux is gone; the listener closes then.
pub(super) async fn accept_loop(mux: std::sync::Weak<Mux>, listener: tokio::net::TcpListener, stop: tokio_util::sync::CancellationToken) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let per_ip: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> = Arc::default();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Some(mux) = mux.upgrade() else { return };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("ICE-TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        mux.counters.tcp_accepted.fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            mux.counters.tcp_rejected.fetch_add(1, Ordering::Relaxed);
            continue; // dropping the stream closes it
        };
        // A few addresses cannot hold every pending slot.
        let ip = peer.ip();
        {
            let mut counts = per_ip.lock().unwrap();
            let n = counts.entry(ip).or_default();
            if *n >= MAX_PENDING_PER_IP {
                mux.counters.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            *n += 1;
        }
        let (mux, per_ip, stop) = (mux.clone(), per_ip.clone(), stop.clone());
        // Bounded by the first-frame timeout, and stopped with the mux.
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = PendingSlot { per_ip, ip };
            let routed = tokio::select! {
                _ = stop.cancelled() => return,
                r = tokio::time::timeout(FIRST_FRAME_TIMEOUT, route(&mux, stream, peer)) => r,
            };
            match routed {
                Ok(Ok(())) => {
                    mux.counters.tcp_routed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    mux.counters.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("ICE-TCP connection from {peer} refused: {e}");
                }
                Err(_) => {
                    mux.counters.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("ICE-TCP connection from {peer}: no first frame in time");
                }
            }
        });
    }
}

/// One connection's place among those waiting for their first frame, from its address.
struct PendingSlot {
    per_ip: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut counts = self.per_ip.lock().unwrap();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// True if a STUN Binding request carries MESSAGE-INTEGRITY made with `pwd` (and, if it has
/// one, a valid FINGERPRINT): only a browser that got the password over its authenticated
/// signalling can make one.
pub fn signed_with(frame: &[u8], pwd: &str) -> bool {
    use rtc::crypto::providers::RingCrypto;
    use rtc::stun::integrity::MessageIntegrity;
    let mut m = rtc::stun::message::Message::new();
    if pwd.is_empty() || m.unmarshal_binary(frame).is_err() {
        return false;
    }
    if m.contains(rtc::stun::attributes::ATTR_FINGERPRINT) && rtc::stun::fingerprint::FINGERPRINT.check(&m).is_err() {
        return false;
    }
    MessageIntegrity::check(&mut m, pwd.as_bytes(), &RingCrypto).is_ok()
}

/// Reads a connection's first RFC 4571 frame, and nothing beyond it: a STUN Binding request
/// with USERNAME. Returns the bytes read (length and frame, to replay to the driver) and the
/// ufrag that routes the connection.
pub async fn read_first_frame<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<(Vec<u8>, String)> {
    let mut prefix = vec![0u8; 2];
    stream.read_exact(&mut prefix).await?;
    let len = u16::from_be_bytes([prefix[0], prefix[1]]) as usize;
    if !(20..=MAX_FIRST_FRAME).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("first frame of {len} bytes")));
    }
    prefix.resize(2 + len, 0);
    stream.read_exact(&mut prefix[2..]).await?; // exactly one frame: nothing read beyond it
    let ufrag = match stun::classify(&prefix[2..]) {
        Kind::Stun { class: Class::Request, username: Some(u), .. } => stun::local_ufrag(u).map(str::to_owned),
        _ => None,
    }
    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "first frame is not a Binding request with USERNAME"))?;
    Ok((prefix, ufrag))
}

/// Reads one RFC 4571 frame (a 2-byte length, then that many bytes). A frame announced over
/// [`MAX_FRAME`] is refused (`InvalidData`) before any of it is read.
pub async fn read_frame<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let n = u16::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of {n} bytes")));
    }
    let mut frame = vec![0u8; n];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn route(mux: &Mux, mut stream: tokio::net::TcpStream, peer: SocketAddr) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (prefix, ufrag) = read_first_frame(&mut stream).await?;
    let (link, pwd) = mux.link_and_pwd(&ufrag).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown ufrag {ufrag}")))?;
    if !signed_with(&prefix[2..], &pwd) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "first check not signed with the ICE password"));
    }
    if link.tcp_routed.load(Ordering::Relaxed) >= MAX_ROUTED_PER_PC {
        return Err(io::Error::new(io::ErrorKind::WouldBlock, "this PeerConnection already has its ICE-TCP connections"));
    }
    let tx = link.tcp_accept_tx.lock().unwrap().clone().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "PeerConnection has no TCP listener"))?;
    let place = RoutedPlace::new(link.clone());
    tx.try_send(Routed { stream, peer, prefix, place }).map_err(|_| io::Error::new(io::ErrorKind::WouldBlock, "PeerConnection is not accepting"))
}

/// What a PC's driver gets from `Runtime::wrap_tcp_listener`.
#[derive(Debug)]
pub(crate) struct VirtualTcpListener {
    pub(super) mux: Arc<Mux>,
    pub(super) link: Arc<PcLink>,
    pub(super) label: SocketAddr,
    pub(super) rx: tokio::sync::Mutex<mpsc::Receiver<Routed>>,
}

impl VirtualTcpListener {
    pub(super) fn new(mux: Arc<Mux>, link: &Arc<PcLink>, label: SocketAddr) -> Self {
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        *link.tcp_accept_tx.lock().unwrap() = Some(tx);
        VirtualTcpListener { mux, link: link.clone(), label, rx: tokio::sync::Mutex::new(rx) }
    }
}

impl AsyncTcpListener for VirtualTcpListener {
    fn accept<'a>(&'a self) -> Pin<Box<dyn Future<Output = io::Result<(Arc<dyn AsyncTcpStream>, SocketAddr)>> + Send + 'a>> {
        Box::pin(async move {
            let routed = self.rx.lock().await.recv().await;
            let Some(Routed { stream, peer, prefix, .. }) = routed else {
                // Never return an error here: the driver re-arms accept immediately after one
                // (tcp_transport.rs:155-168) and would spin. A closed channel (PC closing, or a
                // listener replaced by an ICE-restart rebind) simply never accepts again.
                return futures::future::pending().await;
            };
            let s = VirtualTcpStream::new(self.mux.clone(), self.link.clone(), stream, peer, self.label, prefix);
            Ok((Arc::new(s) as Arc<dyn AsyncTcpStream>, peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.label)
    }
}

/// A routed connection as the driver sees it.
///
/// * `local_addr()` returns the PC's TCP **label**, not the shared port: the driver builds the
///   4-tuple from it (tcp_transport.rs:172) and the ICE agent matches that against its passive
///   host candidate (rtc-ice agent/mod.rs:1026-1051). The real local address would be dropped as
///   "not a valid local candidate".
/// * `write_all` never waits: the driver awaits TCP writes inside its event loop
///   (driver.rs:1142-1144 → tcp_transport.rs:96-112), so one slow TCP peer would stall the PC's
///   ICE/DTLS timers. Frames go to a bounded queue drained by a writer task; when it is full,
///   whole frames are dropped (framing stays intact; RTP sees loss, as on UDP).
#[derive(Debug)]
pub(crate) struct VirtualTcpStream {
    mux: Arc<Mux>,
    link: Arc<PcLink>,
    read: tokio::sync::Mutex<(Vec<u8>, usize, tokio::net::tcp::OwnedReadHalf)>,
    write_tx: mpsc::Sender<Vec<u8>>,
    write_failed: Arc<AtomicBool>,
    label: SocketAddr,
    peer: SocketAddr,
}

impl VirtualTcpStream {
    fn new(mux: Arc<Mux>, link: Arc<PcLink>, stream: tokio::net::TcpStream, peer: SocketAddr, label: SocketAddr, prefix: Vec<u8>) -> Self {
        let (read_half, write_half) = stream.into_split();
        let (write_tx, write_failed) = spawn_writer(write_half, tokio_util::sync::CancellationToken::new());
        VirtualTcpStream { mux, link, read: tokio::sync::Mutex::new((prefix, 0, read_half)), write_tx, write_failed, label, peer }
    }
}

/// The task that writes one ICE-TCP connection's frames, in order, from a bounded queue; it
/// ends when the queue's sender is dropped, the socket fails or `closed` (then the flag is
/// set), and closes the connection's sending side.
fn spawn_writer(mut write_half: tokio::net::tcp::OwnedWriteHalf, closed: tokio_util::sync::CancellationToken) -> (mpsc::Sender<Vec<u8>>, Arc<AtomicBool>) {
    let (write_tx, mut write_rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE_FRAMES);
    let write_failed = Arc::new(AtomicBool::new(false));
    let failed = write_failed.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            let frame = tokio::select! {
                _ = closed.cancelled() => break,
                f = write_rx.recv() => f,
            };
            let Some(frame) = frame else { break };
            if write_half.write_all(&frame).await.is_err() {
                break;
            }
        }
        failed.store(true, Ordering::Relaxed);
        let _ = write_half.shutdown().await;
    });
    (write_tx, write_failed)
}

/// Queues one whole RFC 4571 frame for the writer task: media marks the link as sending over
/// TCP; a full queue drops the frame (counted; framing stays intact and RTP sees loss, as on
/// UDP). `Err` once the connection is gone.
fn queue_frame(mux: &Mux, link: &PcLink, tx: &mpsc::Sender<Vec<u8>>, failed: &AtomicBool, frame: Vec<u8>) -> io::Result<()> {
    if frame.len() > 2 && matches!(stun::classify(&frame[2..]), Kind::Other) {
        link.sent_media(super::Path::Tcp);
    }
    if failed.load(Ordering::Relaxed) {
        return Err(io::Error::new(io::ErrorKind::BrokenPipe, "ICE-TCP connection failed"));
    }
    match tx.try_send(frame) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => {
            mux.counters.tcp_frame_drops.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "writer gone")),
    }
}

impl AsyncTcpStream for VirtualTcpStream {
    fn read<'a, 'b>(&'a self, buf: &'b mut [u8]) -> Pin<Box<dyn Future<Output = io::Result<usize>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            let mut guard = self.read.lock().await;
            let (prefix, pos, half) = &mut *guard;
            if *pos < prefix.len() {
                // Replay what the acceptor consumed to route the connection.
                let n = (prefix.len() - *pos).min(buf.len());
                buf[..n].copy_from_slice(&prefix[*pos..*pos + n]);
                *pos += n;
                if *pos == prefix.len() {
                    *prefix = Vec::new();
                    *pos = 0;
                }
                return Ok(n);
            }
            // Cancel-safe: readable() + try_read, as webrtc's own tokio stream does.
            loop {
                half.readable().await?;
                match half.try_read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn write_all<'a, 'b>(&'a self, buf: &'b [u8]) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'b>>
    where
        'a: 'b,
    {
        // The driver passes one whole RFC 4571 frame per call (frame_packet, tcp_transport.rs:106).
        let result = queue_frame(&self.mux, &self.link, &self.write_tx, &self.write_failed, buf.to_vec());
        Box::pin(std::future::ready(result))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.label)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

impl PcLink {
    /// For a peer that reads the shared ports itself (the lean engine): ICE-TCP connections
    /// routed to this link arrive on the returned channel; serve each with [`serve_framed`].
    pub(crate) fn accept_tcp(&self) -> mpsc::Receiver<Routed> {
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        *self.tcp_accept_tx.lock().unwrap() = Some(tx);
        rx
    }
}

/// One routed ICE-TCP connection of a lean peer: each RFC 4571 frame it carries is queued on
/// `link` like a datagram from the connection's remote address (the routing frame first), and
/// what the peer sends through the returned [`FrameWriter`] goes out as one frame each, by the
/// same writer task as the PeerConnection engine's streams. The reader ends with the
/// connection or `cancel`, the writer when the `FrameWriter` is dropped.
pub(crate) fn serve_framed(mux: Arc<Mux>, link: Arc<PcLink>, routed: Routed, cancel: tokio_util::sync::CancellationToken) -> (SocketAddr, FrameWriter) {
    serve_framed_idle(mux, link, routed, cancel, ROUTED_IDLE)
}

/// [`serve_framed`] with the connection closed after `idle` without a whole frame.
fn serve_framed_idle(
    mux: Arc<Mux>,
    link: Arc<PcLink>,
    routed: Routed,
    cancel: tokio_util::sync::CancellationToken,
    idle: Duration,
) -> (SocketAddr, FrameWriter) {
    let Routed { stream, peer, prefix, place } = routed;
    let (mut read_half, write_half) = stream.into_split();
    // The reader ends the writer too: a connection closed for what it sent closes both ways.
    let closed = cancel.child_token();
    let (tx, failed) = spawn_writer(write_half, closed.clone());
    let (reader_mux, reader_link) = (mux.clone(), link.clone());
    tokio::spawn(async move {
        let _place = place;
        let _closed = closed.drop_guard();
        if prefix.len() > 2 {
            reader_link.push_datagram(peer, bytes::Bytes::copy_from_slice(&prefix[2..]));
        }
        loop {
            let frame = read_frame(&mut read_half);
            let frame = tokio::select! {
                _ = cancel.cancelled() => break,
                f = tokio::time::timeout(idle, frame) => f,
            };
            let frame = match frame {
                Ok(Ok(frame)) => frame,
                Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                    reader_mux.counters.tcp_oversized.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("ICE-TCP connection from {peer} closed: {e}");
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => {
                    reader_mux.counters.tcp_idle.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("ICE-TCP connection from {peer} closed: no whole frame for {idle:?}");
                    break;
                }
            };
            if !reader_link.push_datagram(peer, bytes::Bytes::from(frame)) {
                reader_mux.counters.udp_queue_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (peer, FrameWriter { mux, link, tx, failed })
}

/// Writes frames to one ICE-TCP connection of a lean peer.
#[derive(Debug, Clone)]
pub(crate) struct FrameWriter {
    mux: Arc<Mux>,
    link: Arc<PcLink>,
    tx: mpsc::Sender<Vec<u8>>,
    failed: Arc<AtomicBool>,
}

impl FrameWriter {
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.failed.load(Ordering::Relaxed)
    }

    /// Queues `datagram` as one RFC 4571 frame; false once the connection is gone.
    pub(crate) fn send(&self, datagram: &[u8]) -> bool {
        let mut frame = Vec::with_capacity(2 + datagram.len());
        frame.extend_from_slice(&(datagram.len() as u16).to_be_bytes());
        frame.extend_from_slice(datagram);
        queue_frame(&self.mux, &self.link, &self.tx, &self.failed, frame).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A lean peer's routed ICE-TCP connection, served by [`serve_framed`], and the stranger's
    /// end of it.
    async fn served(idle: Duration) -> (Arc<Mux>, tokio::net::TcpStream, FrameWriter) {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mux = Mux::bind(super::super::MuxConfig { udp_bind: any, tcp_bind: None, advertise_ips: vec![any.ip()] }).await.unwrap();
        let listener = tokio::net::TcpListener::bind(any).await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let link = mux.new_link();
        let routed = Routed { stream, peer, prefix: Vec::new(), place: RoutedPlace::new(link.clone()) };
        let (_, writer) = serve_framed_idle(mux.clone(), link, routed, tokio_util::sync::CancellationToken::new(), idle);
        (mux, client, writer)
    }

    /// Reads until the bridge closes the connection; false if it did not within `within`.
    async fn closed_within(client: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(tokio::time::timeout(within, async { while client.read(&mut buf).await.is_ok_and(|n| n > 0) {} }).await, Ok(()))
    }

    #[tokio::test]
    async fn a_routed_connection_that_sends_an_oversized_frame_is_closed() {
        let (mux, mut client, writer) = served(ROUTED_IDLE).await;
        client.write_all(&[0xFF, 0xFF]).await.unwrap();
        client.write_all(&[0x17; 4000]).await.unwrap();
        assert!(closed_within(&mut client, Duration::from_secs(5)).await, "a 64 KiB frame was waited for");
        assert_eq!(mux.counters.tcp_oversized.load(Ordering::Relaxed), 1);
        assert!(writer.is_closed(), "the sending side closes with it");
    }

    #[tokio::test]
    async fn a_routed_connection_that_goes_quiet_is_closed() {
        // The idle limit shortened to 200 ms (30 s in the bridge).
        let (mux, mut client, _writer) = served(Duration::from_millis(200)).await;
        // Half a frame, then nothing.
        client.write_all(&[0x00, 0x40, 1, 2]).await.unwrap();
        assert!(closed_within(&mut client, Duration::from_secs(10)).await, "a half-open connection was kept");
        assert_eq!(mux.counters.tcp_idle.load(Ordering::Relaxed), 1);
    }
}
