//! Starting the bridge: config, data directory, store, keys, TLS, actor, router, HTTP.
//!
//! [`start`] returns once the socket is bound, with the actual address (port 0 works), so
//! `main` and tests share one start-up path.

use crate::auth::{keys, Auth};
use crate::conference::{self, ConferenceHandle};
use crate::config::Settings;
use crate::health;
use crate::health::board::StatsBoard;
use crate::health::monitor::{HealthHandle, MonitorParts};
use crate::http;
use crate::media::router::Router;
use crate::peer::mux::{Mux, MuxConfig};
use crate::peer::{MediaNetwork, PeerContext};
use crate::recording::composer::Composer;
use crate::recording::Recorder;
use crate::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Shared state of a running bridge; handed to every HTTP handler and session.
pub(crate) struct Bridge {
    /// HTTPS connections open and refused (before sign-in too).
    pub(crate) conns: crate::http::conns::ConnLimits,
    pub(crate) settings: Arc<Settings>,
    pub(crate) store: Store,
    pub(crate) conference: ConferenceHandle,
    pub(crate) health: HealthHandle,
    pub(crate) peers: PeerContext,
    pub(crate) started: Instant,
    /// Credentials, sessions and limits.
    pub(crate) auth: Arc<Auth>,
    /// Where recordings are written (one folder each, with its `index.json`).
    pub(crate) recordings: PathBuf,
    /// Makes one watchable file of each recording; its progress for the archive.
    pub(crate) composer: Composer,
}

/// What the page of a site whose key was re-issued is told as its seat goes.
/// What the bridge logs when `RUST_LOG` says nothing: its own lines at info, the media
/// libraries' only when they matter (their DTLS extension warnings would fill a log). The test
/// bridges log the same.
pub const DEFAULT_LOG_FILTER: &str = "info,webrtc=warn,rtc=warn,rtc_ice=error,rtc_dtls=error,rtc_srtp=warn";

const KEY_REISSUED: &str = "Khóa của điểm cầu đã được cấp lại; hãy dùng đường dẫn mới. / This site's key was re-issued; use the new link.";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("--listen {0:?} is not an ip:port address")]
    Listen(String),
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Access(#[from] keys::AccessError),
    #[error(transparent)]
    Tls(#[from] http::tls::TlsError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("serving stopped: {0}")]
    Serve(String),
    #[error("cannot open the media ports (UDP {udp}, TCP {tcp:?}): {reason}")]
    MediaPorts { udp: u16, tcp: Option<u16>, reason: String },
    #[error("cannot make the media engine's DTLS certificate: {0}")]
    Dtls(String),
}

pub struct Options {
    pub config: PathBuf,
    pub listen: Option<String>,
    /// Overrides both media ports (UDP and ICE-TCP).
    pub media_port: Option<u16>,
    pub data: PathBuf,
}

/// A bridge that is accepting connections.
pub(crate) struct Running {
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Serves until `shutdown` is cancelled (or the server fails).
    pub(crate) async fn wait(self) -> std::io::Result<()> {
        self.server.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default (webrtc-rs's own chatter kept down).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()))
        .init();
}

/// A TLS handshake, and a request's header, must be complete within these.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// File descriptors kept out of the connections' reach: the store, recordings, media sockets,
/// ICE-TCP, logs.
const RESERVED_FILES: u64 = 512;

/// `diemcau serve`: runs until SIGINT or SIGTERM, then tells the sites and saves the state.
pub async fn serve(opts: Options) -> Result<(), StartError> {
    let running = start(opts).await?;
    let shutdown = running.shutdown.clone();
    let conference = running.bridge.conference.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        info!("shutting down: telling the sites and saving the conference state");
        conference.shutdown().await;
        shutdown.cancel();
    });
    running.wait().await.map_err(|e| StartError::Serve(e.to_string()))
}

pub(crate) async fn start(opts: Options) -> Result<Running, StartError> {
    let mut settings = Settings::load(&opts.config)?;
    let open_files = http::conns::raise_open_files();
    info!(open_files, "open-file limit");
    if let Some(listen) = &opts.listen {
        settings.listen = listen.parse().map_err(|_| StartError::Listen(listen.clone()))?;
    }
    if let Some(port) = opts.media_port {
        settings.media_udp_port = Some(port);
        settings.media_tcp_port = Some(port);
    }
    let settings = Arc::new(settings);
    std::fs::create_dir_all(&opts.data).map_err(|e| StartError::DataDir { path: opts.data.display().to_string(), reason: e.to_string() })?;
    let store = Store::open(&opts.data)?;
    let tls = http::tls::load(settings.tls.cert.as_deref(), settings.tls.key.as_deref(), &opts.data, settings.listen.ip()).await?;

    let listener = std::net::TcpListener::bind(settings.listen).map_err(|e| StartError::Bind { addr: settings.listen, reason: e.to_string() })?;
    listener.set_nonblocking(true).map_err(|e| StartError::Bind { addr: settings.listen, reason: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind { addr: settings.listen, reason: e.to_string() })?;
    let base_url = settings.public_url.clone().unwrap_or_else(|| format!("https://localhost:{}", addr.port()));

    let links = keys::provision_keys(&settings, &store, &base_url)?;
    if links.is_empty() {
        info!("site keys already provisioned; join links are in {}", opts.data.join("join-links.txt").display());
    } else {
        keys::write_links_file(&opts.data, &settings.title, &links)?;
        println!("Đường dẫn tham gia / join links (also in {}):", opts.data.join("join-links.txt").display());
        for l in &links {
            println!("  {:<12} {:<32} {}", l.site_id, l.site_name, l.url);
        }
    }

    let bind_ip = settings.media_bind_ip();
    let (udp_port, tcp_port) = settings.media_ports();
    let mux = Mux::bind(MuxConfig {
        udp_bind: SocketAddr::new(bind_ip, udp_port),
        tcp_bind: tcp_port.map(|p| SocketAddr::new(bind_ip, p)),
        advertise_ips: match (settings.media_public_ip, bind_ip.is_unspecified()) {
            (Some(public), _) => vec![public],
            (None, true) => crate::peer::mux::interface_ips(),
            (None, false) => vec![bind_ip],
        },
    })
    .await
    .map_err(|e| StartError::MediaPorts { udp: udp_port, tcp: tcp_port, reason: e.to_string() })?;
    let shutdown = CancellationToken::new();
    let router = Router::new(settings.sites.len());
    let site_ids: Arc<[String]> = settings.sites.iter().map(|s| s.id.clone()).collect();
    let recordings = settings.recording_dir.clone().unwrap_or_else(|| opts.data.join("recordings"));
    let recorder = Recorder::spawn(recordings.clone(), settings.recording_min_free_bytes, router.clone(), site_ids.clone());
    let recording = recorder.status();
    let composer = Composer::spawn(recordings.clone(), settings.composer.clone(), settings.clone(), store.clone(), shutdown.clone());
    composer.follow(recorder.status(), shutdown.clone());
    let conference = conference::spawn(settings.clone(), store.clone(), router.clone(), recorder, shutdown.clone());
    let peers = PeerContext {
        router,
        network: MediaNetwork {
            mux: mux.clone(),
            engine: settings.media_engine,
            identity: Arc::new(crate::peer::lean::transport::Identity::generate().map_err(|e| StartError::Dtls(e.to_string()))?),
        },
        site_ids,
        board: Arc::new(StatsBoard::new(settings.sites.len())),
        slots: (settings.audio_slots, settings.video_slots),
        video_codecs: settings.video_codecs.clone(),
        audio_red: settings.audio_red,
        lines: Arc::new(crate::peer::ceilings::Ceilings::new(settings.sites.iter().map(|s| s.line))),
    };
    let health = health::monitor::spawn(
        MonitorParts {
            settings: settings.clone(),
            board: peers.board.clone(),
            router: peers.router.clone(),
            view: conference.view(),
            store: store.clone(),
            thresholds: settings.thresholds,
            recording,
            composition: composer.failures(),
            lines: peers.lines.clone(),
        },
        shutdown.clone(),
    );
    let auth = Arc::new(Auth::new(settings.clone(), store.clone(), settings.limits)?);
    // A site whose key was re-issued loses its seat as well as its sessions: auth names it,
    // the conference evicts it.
    let mut reissued = auth.clone().watch_credentials(shutdown.clone());
    let evicting = conference.clone();
    tokio::spawn(async move {
        while let Some(crate::auth::KeyReissued { site }) = reissued.recv().await {
            evicting.evict(site, KEY_REISSUED.into()).await;
        }
    });
    let limits = &settings.limits;
    let conns = http::conns::ConnLimits::new(limits.connections_per_ip, limits.connections_total.min(open_files.saturating_sub(RESERVED_FILES) as usize));
    let bridge = Arc::new(Bridge {
        conns: conns.clone(),
        settings: settings.clone(),
        store,
        conference,
        health,
        peers,
        started: Instant::now(),
        auth,
        recordings,
        composer,
    });
    let app = http::app(bridge.clone());

    let handle = axum_server::Handle::new();
    // Connections are counted per address and in all before anyone signs in (http/conns.rs),
    // with TCP_NODELAY; the TLS handshake must end within 10 s and a request's header within
    // HEADER_TIMEOUT, so idle or trickling strangers give their descriptors back.
    let mut server = axum_server::from_tcp_rustls(listener, tls)
        .map(|tls| http::conns::FirstRequest { inner: tls.handshake_timeout(HANDSHAKE_TIMEOUT).acceptor(http::conns::LimitAcceptor { limits: conns.clone() }) })
        .handle(handle.clone());
    server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let server = server.serve(app.into_make_service_with_connect_info::<SocketAddr>());
    let server = tokio::spawn(server);
    let (stopper, stopped_mux) = (shutdown.clone(), mux.clone());
    tokio::spawn(async move {
        stopper.cancelled().await;
        handle.graceful_shutdown(Some(std::time::Duration::from_secs(3)));
        // The shared media ports' tasks stop and the ports are given back.
        stopped_mux.shutdown();
    });
    let tcp = mux.tcp_addr.map(|a| format!(", ICE-TCP {a}")).unwrap_or_default();
    info!(version = crate::VERSION, "bridge listening on https://{addr} (media on UDP {}{tcp})", mux.udp_addr);
    Ok(Running { bridge, shutdown, server })
}
