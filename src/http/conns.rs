//! Connections before anyone has signed in: at most so many from one address and in all, each
//! counted from accept until its socket closes. A stranger opening idle connections (or
//! trickling a header one byte at a time, which the server's header timeout ends) can then
//! never use up the process's file descriptors that sign-in, the API, the store and the
//! recorder need; what is over the limit is closed at once, counted and logged once a minute.
//! A connection that has not started its first request within [`FIRST_REQUEST`] of its TLS
//! handshake is closed too ([`FirstRequest`]); the server's header timeout covers the rest.

use axum_server::accept::Accept;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::warn;

#[derive(Default)]
struct Counts {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
    refused: u64,
    logged_at: Option<Instant>,
}

/// The counts of open HTTPS connections, shared by the acceptor and every connection's guard.
#[derive(Clone)]
pub(crate) struct ConnLimits {
    counts: Arc<Mutex<Counts>>,
    per_ip: usize,
    total: usize,
}

impl ConnLimits {
    pub(crate) fn new(per_ip: usize, total: usize) -> Self {
        ConnLimits { counts: Arc::default(), per_ip: per_ip.max(1), total: total.max(1) }
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<ConnGuard> {
        let mut c = self.counts.lock().expect("connection counts poisoned");
        let from_ip = c.by_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.per_ip || c.total >= self.total {
            c.refused += 1;
            let now = Instant::now();
            if c.logged_at.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
                c.logged_at = Some(now);
                let refused = c.refused;
                warn!(%ip, from_ip, total = c.total, refused, "too many connections ({} from one address, {} in all at most); closing the new ones", self.per_ip, self.total);
            }
            return None;
        }
        *c.by_ip.entry(ip).or_default() += 1;
        c.total += 1;
        Some(ConnGuard { counts: self.counts.clone(), ip })
    }

    /// (open connections, refused so far).
    pub(crate) fn snapshot(&self) -> (usize, u64) {
        let c = self.counts.lock().expect("connection counts poisoned");
        (c.total, c.refused)
    }
}

/// One counted connection; dropping it (when the socket closes) releases its place.
pub(crate) struct ConnGuard {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("connection counts poisoned");
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Accepts a TCP connection if the limits allow, with `TCP_NODELAY` (a signalling message
/// written while the previous one is unacknowledged would otherwise wait for the page's
/// delayed ACK).
#[derive(Clone)]
pub(crate) struct LimitAcceptor {
    pub(crate) limits: ConnLimits,
}

impl<S> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Counted;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Counted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream.peer_addr().map(|a| self.limits.admit(a.ip()));
        std::future::ready(match admitted {
            Ok(Some(guard)) => stream.set_nodelay(true).map(|_| (Counted { stream, _guard: guard }, service)),
            Ok(None) => Err(io::Error::new(io::ErrorKind::ConnectionRefused, "too many connections")),
            Err(e) => Err(e),
        })
    }
}

/// A TCP stream that holds its place in the counts until it is dropped.
pub(crate) struct Counted {
    stream: TcpStream,
    _guard: ConnGuard,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// How long a connection may stay silent after its TLS handshake before its first request.
pub(crate) const FIRST_REQUEST: Duration = Duration::from_secs(10);

/// Wraps an acceptor (the TLS one) so that each connection must begin its first request
/// within [`FIRST_REQUEST`].
#[derive(Clone)]
pub(crate) struct FirstRequest<A> {
    pub(crate) inner: A,
}

impl<A, I, S> Accept<I, S> for FirstRequest<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Hurried<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn std::future::Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((Hurried { stream, deadline: Some(Box::pin(tokio::time::sleep(FIRST_REQUEST))) }, service))
        })
    }
}

/// A stream whose first byte must come before a deadline (then it is an ordinary stream).
pub(crate) struct Hurried<T> {
    stream: T,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Hurried<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Some(deadline) = self.deadline.as_mut() {
            if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
                self.deadline = None;
            } else if read.is_pending() && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request within the first-request timeout")));
            }
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Hurried<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Raises the process's open-file limit to its hard limit (the default soft limit of 1 024 is
/// what a few hundred idle connections used up); returns the limit in force.
pub(crate) fn raise_open_files() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        r.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_address_and_in_all_until_they_close() {
        let limits = ConnLimits::new(2, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert!(limits.admit(a).is_none(), "a third from one address");
        let b1 = limits.admit(b).unwrap();
        assert!(limits.admit(b).is_none(), "a fourth in all");
        drop(a1);
        assert!(limits.admit(b).is_some(), "a place freed by a closed connection");
        drop(b1);
        assert_eq!(limits.snapshot(), (1, 2), "one open (from a), two refused");
    }
}
