//! `diemcau serve`: parse the command line, start the bridge, wait for a signal.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "diemcau", version, about = "Điểm Cầu — cầu truyền hình hội nghị / video-conference bridge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the bridge.
    Serve {
        #[arg(long, default_value = "config/default.toml")]
        config: PathBuf,
        /// Overrides server.listen, e.g. 127.0.0.1:0 for a free port.
        #[arg(long)]
        listen: Option<String>,
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webrtc=warn,rtc=warn,rtc_ice=error,rtc_dtls=error,rtc_srtp=warn".into()),
        )
        .init();
    let Command::Serve { config, listen, data } = Cli::parse().command;
    let running = diemcau::server::start(diemcau::server::Options { config, listen, data }).await?;
    let shutdown = running.shutdown.clone();
    let conference = running.bridge.conference.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down: telling the sites and saving the conference state");
        conference.shutdown().await;
        shutdown.cancel();
    });
    running.wait().await?;
    Ok(())
}
