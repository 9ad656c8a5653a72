//! zkServer: runs and manages a zookeeper-rs server, with Apache's verbs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing::{info, warn};

use zookeeper_rs::config::ServerConfig;
use zookeeper_rs::server::{Server, ServerOptions};

/// Where packages install the configuration; `ZOOCFG` or an explicit path
/// overrides it, as with Apache's script.
const DEFAULT_CONFIG: &str = "/etc/zookeeper/zoo.cfg";

#[derive(Parser, Debug)]
#[command(name = "zkServer", version = zookeeper_rs::ZOOKEEPER_VERSION, about = "Run and manage a zookeeper-rs server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server in the foreground until SIGTERM or SIGINT.
    StartForeground {
        /// zoo.cfg to read (default: $ZOOCFG, then /etc/zookeeper/zoo.cfg).
        config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
    /// Print the command that would run the server.
    PrintCmd { config: Option<PathBuf> },
}

fn config_path(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os("ZOOCFG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!(
                "Apache ZooKeeper, version {}",
                zookeeper_rs::ZOOKEEPER_VERSION
            );
            ExitCode::SUCCESS
        }
        Command::PrintCmd { config } => {
            let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("zkServer"));
            println!(
                "{} start-foreground {}",
                exe.display(),
                config_path(config).display()
            );
            ExitCode::SUCCESS
        }
        Command::StartForeground { config } => {
            init_logging();
            match run_foreground(config_path(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("zkServer: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZOO_LOG_LEVEL")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run_foreground(config_path: PathBuf) -> anyhow::Result<()> {
    let loaded = ServerConfig::from_file(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let mut config = loaded.config;
    for var in ["SERVER_JVMFLAGS", "JVMFLAGS"] {
        if let Ok(flags) = std::env::var(var) {
            for warning in config
                .apply_jvm_flags(&flags)
                .with_context(|| format!("reading {var}"))?
            {
                warn!("{warning}");
            }
        }
    }
    let options = ServerOptions::from_config(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let server = Server::open(options).await?;
        info!(config = %config_path.display(), version = zookeeper_rs::ZOOKEEPER_VERSION, "started");
        server.run(shutdown_signal()).await;
        info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server could not stop cleanly; run until
        // killed rather than not at all.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
}
