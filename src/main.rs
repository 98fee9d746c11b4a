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

fn main() -> anyhow::Result<()> {
    // Files and folders the bridge creates (keys, the store, recordings) are its own alone,
    // whatever the umask it was started with.
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe { libc::umask(0o077) };
    // Before the runtime starts its threads, so that none has an arena of its own yet.
    keep_large_blocks_off_the_heap();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
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

/// Every sign-in checks its key with Argon2id, which takes a 7 MiB block and frees it. glibc
/// raises its mmap threshold the first time such a block is freed, so later ones come from a
/// thread's malloc arena and stay resident once freed: the bridge's RSS grew by a block each
/// time a sign-in ran on a thread (or arena) that had none yet (+8 % in an hour's soak, its
/// live heap flat; docs/performance.md, "Soak"). A fixed threshold keeps every block from
/// 128 KiB up in its own mapping, given back to the system when freed. Media buffers are far
/// smaller, so the forwarding path is untouched.
///
/// glibc also gives every thread that allocates its own arena (up to 8 per core), and each
/// arena keeps its own high-water mark of free space inside pages still partly in use, which
/// no `malloc_trim` returns. Peers are built and packets freed on whichever runtime or
/// blocking-pool thread runs them, so those holes were spread over nine arenas and grew a
/// little with each reconnect. Two arenas, one per core of the machine the bridge is sized
/// for, let the threads reuse each other's free space.
fn keep_large_blocks_off_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; any value is valid for M_MMAP_THRESHOLD
    // up to 32 MiB and for M_ARENA_MAX, and it is called before the runtime starts a thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// How many malloc arenas the bridge's threads share (see `keep_large_blocks_off_the_heap`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;
