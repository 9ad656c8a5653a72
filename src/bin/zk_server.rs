//! zkServer: runs and manages a zookeeper-rs server, with the verbs and exit
//! codes of Apache's `zkServer.sh` (start, start-foreground, stop, restart,
//! status, version, print-cmd) and its environment (`ZOOCFGDIR`, `ZOOCFG`,
//! `ZOOPIDFILE`, `ZOO_LOG_DIR`, `ZOO_LOG_FILE`, `SERVER_JVMFLAGS`/`JVMFLAGS`).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{info, warn};

use zookeeper_rs::config::{ConfigWarning, ServerConfig};
use zookeeper_rs::ops::daemon::{self, Stopped};
use zookeeper_rs::ops::env::{self, RawConfig};
use zookeeper_rs::ops::logging::{self, Logging};
use zookeeper_rs::ops::notify::{self, Notifier};
use zookeeper_rs::ops::pidfile::{self, Pidfile};
use zookeeper_rs::ops::{probe, status};
use zookeeper_rs::server::{Server, ServerOptions};

/// What `status` prints when the server does not answer with a mode, as Apache's script does.
const NOT_RUNNING: &str = "Error contacting service. It is probably not running.";
/// How often systemd's STATUS= is brought in line with the mode.
const MODE_CHECK_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(
    name = "zkServer",
    version = zookeeper_rs::ZOOKEEPER_VERSION,
    about = "Run and manage a zookeeper-rs server",
    after_help = "CONFIG is a file name in the configuration directory or a path; without it, \
                  $ZOOCFG, then zoo.cfg, in $ZOOCFGDIR (default /etc/zookeeper)."
)]
struct Cli {
    /// Configuration directory, as Apache's `--config` (default: $ZOOCFGDIR, then /etc/zookeeper).
    #[arg(long = "config", value_name = "CONF_DIR", global = true)]
    conf_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the server in the background; prints STARTED once it answers.
    Start {
        config: Option<PathBuf>,
        /// Seconds to wait for the server to answer before giving up.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
        /// Log to this file (reopened on SIGHUP).
        #[arg(long, value_name = "PATH")]
        log_file: Option<PathBuf>,
    },
    /// Run the server in the foreground until SIGTERM or SIGINT.
    StartForeground {
        config: Option<PathBuf>,
        /// Log to this file (reopened on SIGHUP).
        #[arg(long, value_name = "PATH")]
        log_file: Option<PathBuf>,
    },
    /// Stop the server named by the pidfile: SIGTERM, then SIGKILL after a grace period.
    Stop {
        config: Option<PathBuf>,
        /// Seconds to wait after SIGTERM before sending SIGKILL.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Stop, then start.
    Restart {
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        timeout: u64,
        #[arg(long, value_name = "PATH")]
        log_file: Option<PathBuf>,
    },
    /// Ask the server for its mode (exit 0), or say it is not running (exit 1).
    Status {
        config: Option<PathBuf>,
        /// Ask every server.N of the configuration; exit 0 only if all serve.
        #[arg(long)]
        ensemble: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Seconds each server may take to answer.
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Take over an Apache ZooKeeper dataDir: its znodes, ACLs, Stats, sessions
    /// and zxids become this server's data (its dataDir must be empty).
    Import {
        /// The Apache server's dataDir (holding version-2/snapshot.*).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The Apache server's dataLogDir, when it differs from its dataDir.
        #[arg(long, value_name = "DIR")]
        log_dir: Option<PathBuf>,
        /// This server's zoo.cfg (its dataDir and dataLogDir receive the data).
        config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
    /// Print the command `start` runs.
    PrintCmd {
        config: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        log_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let conf_dir = env::conf_dir(cli.conf_dir.as_deref());
    let config_path = |explicit: Option<PathBuf>| {
        let path = env::config_path(&conf_dir, explicit.as_deref());
        eprintln!("Using config: {}", path.display());
        path
    };
    match cli.command {
        Command::Version => {
            println!(
                "Apache ZooKeeper, version {}",
                zookeeper_rs::ZOOKEEPER_VERSION
            );
            ExitCode::SUCCESS
        }
        Command::Import {
            from,
            log_dir,
            config,
        } => import(&config_path(config), &from, log_dir.as_deref()),
        Command::PrintCmd { config, log_file } => {
            print_cmd(&config_path(config), log_file.as_deref())
        }
        Command::StartForeground { config, log_file } => {
            start_foreground(&config_path(config), log_file.as_deref())
        }
        Command::Start {
            config,
            wait,
            log_file,
        } => start(
            &config_path(config),
            Duration::from_secs(wait),
            log_file.as_deref(),
        ),
        Command::Stop { config, timeout } => {
            stop(&config_path(config), Duration::from_secs(timeout))
        }
        Command::Restart {
            config,
            wait,
            timeout,
            log_file,
        } => {
            let path = config_path(config);
            if stop(&path, Duration::from_secs(timeout)) != ExitCode::SUCCESS {
                return ExitCode::FAILURE;
            }
            start(&path, Duration::from_secs(wait), log_file.as_deref())
        }
        Command::Status {
            config,
            ensemble,
            json,
            timeout,
        } => {
            let path = config_path(config);
            let timeout = Duration::from_secs(timeout.max(1));
            if ensemble {
                ensemble_status(&path, json, timeout)
            } else {
                server_status(&path, json, timeout)
            }
        }
    }
}

fn import(config_path: &Path, from: &Path, log_dir: Option<&Path>) -> ExitCode {
    let run = || -> anyhow::Result<()> {
        let (config, _warnings) = load_config(config_path)?;
        let options = ServerOptions::from_config(&config)?;
        let report = zookeeper_rs::server::recovery::import_apache(&options, from, log_dir)?;
        for note in &report.notes {
            eprintln!("warning: {note}");
        }
        println!(
            "Imported {} znodes and {} sessions up to zxid 0x{:x} from {} and {} transactions in {} log files.",
            report.nodes,
            report.sessions,
            report.last_zxid,
            report.apache_snapshot.display(),
            report.txns_replayed,
            report.log_files
        );
        println!(
            "Wrote {}. Start the server to serve it.",
            report.snapshot_written.display()
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zkServer import: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a finished line of `Starting zookeeper ... ` or `Stopping zookeeper ... `.
fn finish_line(text: &str) {
    println!("{text}");
}

fn begin_line(text: &str) {
    print!("{text}");
    let _ = std::io::stdout().flush();
}

/// The configuration as the server will run it: zoo.cfg, myid, then
/// `SERVER_JVMFLAGS` and `JVMFLAGS` (`-D` flags override the file, as in Apache).
fn load_config(path: &Path) -> anyhow::Result<(ServerConfig, Vec<String>)> {
    let loaded = ServerConfig::from_file(path)?;
    let mut warnings: Vec<String> = loaded
        .warnings
        .iter()
        .map(ConfigWarning::to_string)
        .collect();
    let mut config = loaded.config;
    for var in ["SERVER_JVMFLAGS", "JVMFLAGS"] {
        if let Ok(flags) = std::env::var(var) {
            let flag_warnings = config
                .apply_jvm_flags(&flags)
                .with_context(|| format!("reading {var}"))?;
            warnings.extend(flag_warnings.iter().map(ToString::to_string));
        }
    }
    Ok((config, warnings))
}

fn start_foreground(path: &Path, log_file: Option<&Path>) -> ExitCode {
    let notifier = Notifier::from_env();
    let failed = |e: anyhow::Error| {
        eprintln!("zkServer: {e:#}");
        notifier.status(&format!("failed to start: {e:#}"));
        ExitCode::FAILURE
    };
    let (config, warnings) = match load_config(path) {
        Ok(loaded) => loaded,
        Err(e) => return failed(e),
    };
    let options = match ServerOptions::from_config(&config) {
        Ok(options) => options,
        Err(e) => return failed(e.into()),
    };
    let target = logging::choose_target(log_file);
    let logging = match logging::init(target, config.log_level, config.my_id) {
        Ok(logging) => Arc::new(logging),
        Err(e) => return failed(e.into()),
    };
    for note in logging.notes() {
        warn!("{note}");
    }
    for warning in &warnings {
        warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
    {
        Ok(runtime) => runtime,
        Err(e) => return failed(e),
    };
    let config_shown = path.display().to_string();
    match runtime.block_on(serve(options, notifier, logging, &config_shown)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            failed(e)
        }
    }
}

/// Builds the server and serves until SIGTERM or SIGINT. This is the one place
/// the server is opened, and everything that depends on it being open (the
/// readiness announcement, the watchdog) starts here.
async fn serve(
    options: ServerOptions,
    notifier: Notifier,
    logging: Arc<Logging>,
    config_shown: &str,
) -> anyhow::Result<()> {
    // Installed before anything else so that a signal during start-up stops
    // the server cleanly instead of killing the process.
    let shutdown = ShutdownSignals::install()?;
    let reopen = tokio::spawn(reopen_logs_on_sighup(logging)?);

    notifier.status("recovering");
    let server = Server::open(options.clone()).await?;
    let listen = server.local_addr().context("reading the bound address")?;
    info!(
        config = config_shown,
        version = zookeeper_rs::ZOOKEEPER_VERSION,
        server_id = options.server_id,
        "started"
    );

    let mode_of = server.shared();
    let readiness = tokio::spawn(async move {
        notify::announce_when_serving(notifier, listen).await;
        notify::follow_mode(notifier, MODE_CHECK_PERIOD, move || mode_of.mode()).await;
    });
    let watchdog = notify::watchdog_interval().map(|period| {
        let shared = server.shared();
        // Taking the tree lock is what a wedged server cannot do.
        let liveness: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = shared.tree().last_zxid();
        });
        tokio::spawn(notify::keep_watchdog(notifier, period, liveness))
    });

    server.run(shutdown.wait(notifier)).await;

    readiness.abort();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    reopen.abort();
    info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT, the two ways to ask for a graceful stop.
struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Completes on the first of them, after telling the service manager.
    async fn wait(mut self, notifier: Notifier) {
        let which = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        info!("{which} received; shutting down");
        notifier.stopping(&format!("stopping ({which})"));
    }
}

/// Reopens the log file on each SIGHUP (for logrotate); without a log file,
/// SIGHUP is acknowledged and otherwise ignored rather than fatal.
fn reopen_logs_on_sighup(
    logging: Arc<Logging>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    Ok(async move {
        while hangups.recv().await.is_some() {
            match logging.reopen() {
                Ok(()) => info!("SIGHUP received; log file reopened"),
                Err(e) => warn!(error = %e, "SIGHUP received; cannot reopen the log file"),
            }
        }
    })
}

/// The pidfile for a configuration, read leniently (a server must be
/// stoppable even after its zoo.cfg was edited into something invalid).
fn pidfile_for(raw: &RawConfig) -> anyhow::Result<Pidfile> {
    Ok(Pidfile::new(env::pidfile_path(&raw.data_dir()?)))
}

/// The pid in the pidfile if that process is a running server.
fn running_server(pidfile: &Pidfile) -> Option<u32> {
    pidfile
        .read()
        .ok()
        .flatten()
        .filter(|pid| pidfile::is_running(*pid) && pidfile::is_server_process(*pid))
}

fn start(path: &Path, wait: Duration, log_file: Option<&Path>) -> ExitCode {
    begin_line("Starting zookeeper ... ");
    let failed = |why: String| {
        finish_line("FAILED TO START");
        eprintln!("zkServer: {why}");
        ExitCode::FAILURE
    };
    let raw = match RawConfig::read(path) {
        Ok(raw) => raw,
        Err(e) => return failed(e.to_string()),
    };
    let pidfile = match pidfile_for(&raw) {
        Ok(pidfile) => pidfile,
        Err(e) => return failed(format!("{e:#}")),
    };
    if let Some(pid) = running_server(&pidfile) {
        finish_line(&format!("already running as process {pid}."));
        return ExitCode::FAILURE;
    }
    // Check the configuration here, where the operator sees the error, rather
    // than only in the daemon's output file.
    let options = match load_config(path)
        .and_then(|(config, _)| ServerOptions::from_config(&config).map_err(Into::into))
    {
        Ok(options) => options,
        Err(e) => return failed(format!("{e:#}")),
    };
    if let Err(e) = std::fs::create_dir_all(options.data_dir()) {
        return failed(format!(
            "cannot create dataDir {}: {e}",
            options.data_dir().display()
        ));
    }
    // Another server on the port would answer the readiness probe in our
    // server's place; catch the usual case before starting anything.
    if let Err(e) = std::net::TcpListener::bind(options.client_addr) {
        return failed(format!("cannot listen on {}: {e}", options.client_addr));
    }
    let out = env::daemon_out_path(options.data_dir());
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return failed(format!("cannot find this program's path: {e}")),
    };
    let mut child = match daemon::spawn_detached(&exe, foreground_args(path, log_file), &[], &out) {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot run {}: {e}", exe.display())),
    };
    let pid = child.id();
    if let Err(e) = pidfile.write(pid) {
        let _ = daemon::stop(pid, Duration::from_secs(10));
        finish_line("FAILED TO WRITE PID");
        eprintln!("zkServer: {e}");
        return ExitCode::FAILURE;
    }

    let addr = probe::reachable_addr(options.client_addr);
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = pidfile.remove();
            return failed(format!(
                "the server exited ({status}); see {}",
                out.display()
            ));
        }
        // Any answer counts: a member waiting for its ensemble answers
        // without a mode, and is started all the same.
        if probe::ask(addr, "srvr", Duration::from_secs(2)).is_ok() {
            finish_line("STARTED");
            return ExitCode::SUCCESS;
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = daemon::stop(pid, Duration::from_secs(10));
            let _ = pidfile.remove();
            return failed(format!(
                "no answer on {addr} within {}s, so it was stopped; see {}",
                wait.as_secs(),
                out.display()
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

fn foreground_args(path: &Path, log_file: Option<&Path>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["start-foreground".into(), path.into()];
    if let Some(log_file) = log_file {
        args.push("--log-file".into());
        args.push(log_file.into());
    }
    args
}

fn stop(path: &Path, grace: Duration) -> ExitCode {
    let raw_and_pidfile = RawConfig::read(path)
        .map_err(anyhow::Error::from)
        .and_then(|raw| pidfile_for(&raw));
    begin_line("Stopping zookeeper ... ");
    let pidfile = match raw_and_pidfile {
        Ok(pidfile) => pidfile,
        Err(e) => {
            finish_line("FAILED TO STOP");
            eprintln!("zkServer: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let pid = match pidfile.read() {
        // Apache's script exits 0 here too: nothing to stop is not a failure.
        Ok(None) => {
            finish_line(&format!(
                "no zookeeper to stop (could not find file {})",
                pidfile.path().display()
            ));
            return ExitCode::SUCCESS;
        }
        Ok(Some(pid)) => pid,
        Err(e) => {
            finish_line("FAILED TO STOP");
            eprintln!("zkServer: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !pidfile::is_running(pid) || !pidfile::is_server_process(pid) {
        let _ = pidfile.remove();
        finish_line("STOPPED");
        eprintln!("zkServer: process {pid} was not running; removed the stale pidfile");
        return ExitCode::SUCCESS;
    }
    match daemon::stop(pid, grace) {
        Ok(outcome) => {
            let _ = pidfile.remove();
            finish_line("STOPPED");
            if outcome == Stopped::Killed {
                eprintln!(
                    "zkServer: process {pid} did not stop within {}s of SIGTERM and was killed",
                    grace.as_secs()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            finish_line("FAILED TO STOP");
            eprintln!("zkServer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn server_status(path: &Path, json: bool, timeout: Duration) -> ExitCode {
    let raw = match RawConfig::read(path) {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("zkServer: {e}");
            println!("{NOT_RUNNING}");
            return ExitCode::FAILURE;
        }
    };
    let lookup = status::find_client_target(&raw);
    if !json {
        for note in &lookup.notes {
            println!("{note}");
        }
    }
    let Some(target) = lookup.target else {
        return ExitCode::FAILURE;
    };
    if json {
        let peer = status::Peer {
            id: raw.my_id().unwrap_or(0),
            role: match raw.get("peerType") {
                Some(kind) if kind.eq_ignore_ascii_case("observer") => "observer".to_owned(),
                _ => "participant".to_owned(),
            },
            host: target.host.clone(),
            port: target.port,
        };
        let statuses = status::probe_peers(&[peer], timeout);
        let serving = statuses.iter().all(|s| s.serving);
        match statuses.first().map(serde_json::to_string_pretty) {
            Some(Ok(text)) => println!("{text}"),
            _ => return ExitCode::FAILURE,
        }
        return if serving {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    println!("{}", target.found_line());
    match status::ask_srvr(&target, timeout)
        .ok()
        .and_then(|report| report.mode_line())
    {
        Some(mode_line) => {
            println!("{mode_line}");
            ExitCode::SUCCESS
        }
        None => {
            println!("{NOT_RUNNING}");
            ExitCode::FAILURE
        }
    }
}

fn ensemble_status(path: &Path, json: bool, timeout: Duration) -> ExitCode {
    let peers = match status::peers_of(path) {
        Ok(peers) => peers,
        Err(e) => {
            eprintln!("zkServer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let statuses = status::probe_peers(&peers, timeout);
    if json {
        println!("{}", status::render_json(&statuses));
    } else {
        print!("{}", status::render_table(&statuses));
    }
    if statuses.iter().all(|s| s.serving) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_cmd(path: &Path, log_file: Option<&Path>) -> ExitCode {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("zkServer"));
    let data_dir = RawConfig::read(path)
        .and_then(|raw| raw.data_dir())
        .unwrap_or_else(|_| PathBuf::from("."));
    let mut command = format!("\"{}\"", exe.display());
    for arg in foreground_args(path, log_file) {
        command.push_str(&format!(" \"{}\"", arg.to_string_lossy()));
    }
    println!(
        "{command} > \"{}\" 2>&1 < /dev/null",
        env::daemon_out_path(&data_dir).display()
    );
    ExitCode::SUCCESS
}
