//! `diemcau`: parse the command line, then serve the bridge or run one management command.

use clap::{Parser, Subcommand};
use diemcau::cli;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "diemcau", version, about = "Điểm Cầu — cầu truyền hình hội nghị / video-conference bridge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[arg(long, global = true, default_value = "config/default.toml")]
    config: PathBuf,
    #[arg(long, global = true, default_value = "./data")]
    data: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Start the bridge.
    Serve {
        /// Overrides server.listen, e.g. 127.0.0.1:0 for a free port (media too, unless set).
        #[arg(long)]
        listen: Option<String>,
        /// Overrides media.udp_port and media.tcp_port (0 = a free port).
        #[arg(long)]
        media_port: Option<u16>,
    },
    /// Site keys: `keys rotate <site>` re-issues one (its old link stops working), `keys list`.
    Keys { action: String, site: Option<String> },
    /// People who sign in: `user add <name> --role technician|chair|secretariat`, `user passwd <name>`,
    /// `user remove <name>`, `user list`. A password is generated unless --password-stdin.
    User {
        action: String,
        name: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Files and folders the bridge creates (keys, the store, recordings) are its own alone,
    // whatever the umask it was started with.
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe { libc::umask(0o077) };
    diemcau::server::init_logging();
    let Cli { command, config, data } = Cli::parse();
    let name = |n: Option<String>| n.ok_or_else(|| anyhow::anyhow!("give a name"));
    match command {
        Command::Serve { listen, media_port } => diemcau::server::serve(diemcau::server::Options { config, listen, media_port, data }).await?,
        Command::Keys { action, site } => match (action.as_str(), site) {
            ("rotate", Some(site)) => cli::rotate(&config, &data, &site)?,
            ("list", _) => cli::list_keys(&config, &data)?,
            _ => anyhow::bail!("usage: diemcau keys rotate <site> | keys list"),
        },
        Command::User { action, name: n, role, password_stdin } => match action.as_str() {
            "add" => cli::set_user(&data, &name(n)?, role.as_deref(), password_stdin, false)?,
            "passwd" => cli::set_user(&data, &name(n)?, role.as_deref(), password_stdin, true)?,
            "remove" => cli::remove_user(&data, &name(n)?)?,
            "list" => cli::list_users(&data)?,
            _ => anyhow::bail!("usage: diemcau user add|passwd|remove|list"),
        },
    }
    Ok(())
}

/// The bridge allocates with jemalloc, not glibc's malloc. Over an hour's meeting glibc kept
/// the free space of every peer built and dropped (each reconnect: its NACK rings, SRTP
/// contexts and buffers, built on whichever thread ran it) inside pages still partly in use,
/// per thread arena, where no `malloc_trim` reaches: the RSS grew 8–10 % an hour with the live
/// heap flat (docs/performance.md, "Soak"). jemalloc keeps allocations of one size together
/// and gives dirty pages back to the system after about ten seconds unused.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation:
/// - a background thread purges dirty pages on time, one second after they were freed (by
///   default only when the program next allocates, after ten seconds);
/// - one arena. By default jemalloc gives each of up to four arenas per CPU its own partly
///   used pages of every size; the bridge's threads spread over eight of them, and the RSS
///   climbed for the first twenty minutes of the soak (+7.7 % from 5 to 20 min) with the live
///   heap flat. With one arena it was flat from the fifth minute (+0.3 %); the threads' own
///   caches keep the arena's lock off the packet path (docs/performance.md, "Soak").
///
/// A thin pointer to a C string, as the `const char *malloc_conf` jemalloc declares.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 53] = b"background_thread:true,dirty_decay_ms:1000,narenas:1\0";
