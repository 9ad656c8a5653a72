//! zk-pseudo-cluster: writes, runs and removes an ensemble of zookeeper-rs
//! servers on one host (or the files for several hosts, from a TOML
//! description). Each peer gets its own zoo.cfg, dataDir, dataLogDir and myid,
//! and its own client, quorum and election ports.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use zookeeper_rs::ops::cluster::{
    self, EnsemblePlan, Layout, Owner, PeerPaths, DEFAULT_CLIENT_PORT, DEFAULT_HOST,
    DEFAULT_PEER_PORT,
};
use zookeeper_rs::ops::{env, pidfile, status};

/// The user the packaged units run as; under `--systemd` it owns the data.
const SERVICE_USER: &str = "zookeeper";

#[derive(Parser, Debug)]
#[command(
    name = "zk-pseudo-cluster",
    version = zookeeper_rs::ZOOKEEPER_VERSION,
    about = "Write, run and remove a ZooKeeper ensemble on one host",
    after_help = "Local layout: BASE/N/zoo.cfg, BASE/N/data (dataDir, myid), BASE/N/datalog, BASE/N/log.\n\
                  --systemd layout: /etc/zookeeper/N/zoo.cfg and /var/lib/zookeeper/N (dataDir, myid), \
                  /var/lib/zookeeper/N/datalog, as the zookeeper@N unit reads them."
)]
struct Cli {
    /// Directory holding the peers (local layout).
    #[arg(
        long,
        global = true,
        default_value = "zk-pseudo-cluster",
        value_name = "DIR"
    )]
    base_dir: PathBuf,
    /// Use the systemd layout and systemctl.
    #[arg(long, global = true)]
    systemd: bool,
    /// Configuration root of the systemd layout.
    #[arg(
        long,
        global = true,
        default_value = "/etc/zookeeper",
        value_name = "DIR"
    )]
    etc_dir: PathBuf,
    /// State root of the systemd layout.
    #[arg(
        long,
        global = true,
        default_value = "/var/lib/zookeeper",
        value_name = "DIR"
    )]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Write each peer's zoo.cfg, myid and directories.
    Init {
        /// Number of servers.
        #[arg(long, default_value_t = 3, conflicts_with = "from")]
        size: u64,
        /// Describe the ensemble in a TOML file instead (hosts, ports, observers).
        #[arg(long, value_name = "ENSEMBLE_TOML")]
        from: Option<PathBuf>,
        /// First client port; server N takes this + N - 1.
        #[arg(long, default_value_t = DEFAULT_CLIENT_PORT, value_name = "PORT")]
        client_port: u16,
        /// First quorum port; server N takes this + N - 1, and its election port 1000 above.
        #[arg(long, default_value_t = DEFAULT_PEER_PORT, value_name = "PORT")]
        peer_port: u16,
        /// Address every peer listens on.
        #[arg(long, default_value = DEFAULT_HOST)]
        host: String,
        /// Write only these servers (the ones on this host of a multi-host ensemble).
        #[arg(long, value_name = "ID")]
        only: Vec<u64>,
    },
    /// Start every peer (`zkServer start`, or `systemctl start zookeeper@N`).
    Start {
        /// Seconds each peer may take to answer.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// Stop every peer.
    Stop {
        /// Seconds after SIGTERM before SIGKILL.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Ask every server of the ensemble for its mode and zxid.
    Status {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Stop the peers and remove their files.
    Destroy,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zk-pseudo-cluster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn layout(cli: &Cli) -> anyhow::Result<Layout> {
    if cli.systemd {
        return Ok(Layout::Systemd {
            etc_dir: cli.etc_dir.clone(),
            state_dir: cli.state_dir.clone(),
        });
    }
    // Absolute, so the written dataDirs do not depend on where servers start.
    let base = if cli.base_dir.is_absolute() {
        cli.base_dir.clone()
    } else {
        std::env::current_dir()
            .context("reading the working directory")?
            .join(&cli.base_dir)
    };
    Ok(Layout::Local { base })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let layout = layout(&cli)?;
    match cli.command {
        Verb::Init {
            size,
            ref from,
            client_port,
            peer_port,
            ref host,
            ref only,
        } => {
            let plan = match from {
                Some(path) => EnsemblePlan::from_toml_file(path)?,
                None => EnsemblePlan::local(size, host, client_port, peer_port)?,
            };
            init(&plan, &layout, only, cli.systemd)
        }
        Verb::Start { wait } => start(&layout, wait),
        Verb::Stop { timeout } => stop(&layout, timeout),
        Verb::Status { json, timeout } => show_status(&layout, json, timeout),
        Verb::Destroy => destroy(&layout),
    }
}

fn service_owner() -> Option<Owner> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name(SERVICE_USER).ok().flatten()?;
    Some(Owner {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

fn init(
    plan: &EnsemblePlan,
    layout: &Layout,
    only: &[u64],
    systemd: bool,
) -> anyhow::Result<ExitCode> {
    let planned: Vec<PeerPaths> = plan
        .servers
        .iter()
        .filter(|s| only.is_empty() || only.contains(&s.id))
        .map(|s| layout.peer(s.id))
        .collect();
    cluster::check_absent(&planned)?;
    cluster::check_ports_free(plan, only)?;
    let owner = if systemd { service_owner() } else { None };
    let peers = cluster::write_peers(plan, layout, only, owner)?;
    for peer in &peers {
        let Some(server) = plan.server(peer.id) else {
            continue;
        };
        println!(
            "server.{}: {} (client {}:{}, quorum {}, election {}{})",
            server.id,
            peer.cfg.display(),
            server.host,
            server.client_port,
            server.quorum_port,
            server.election_port,
            if server.observer { ", observer" } else { "" }
        );
    }
    if systemd {
        let units: Vec<String> = peers.iter().map(|p| unit_name(p.id)).collect();
        println!("Start with: systemctl start {}", units.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

fn unit_name(id: u64) -> String {
    format!("zookeeper@{id}")
}

fn discover(layout: &Layout) -> anyhow::Result<Vec<PeerPaths>> {
    let peers = layout.discover()?;
    if peers.is_empty() {
        let place = match layout {
            Layout::Local { base } => base.display().to_string(),
            Layout::Systemd { etc_dir, .. } => etc_dir.display().to_string(),
        };
        bail!("no peers under {place}; run init first");
    }
    Ok(peers)
}

/// `zkServer` next to this program, else the one on PATH.
fn zk_server() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("zkServer")))
        .filter(|sibling| sibling.is_file())
        .unwrap_or_else(|| PathBuf::from("zkServer"))
}

fn systemctl<I, S>(args: I) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let status = Command::new("systemctl")
        .args(args)
        .status()
        .context("running systemctl")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `zkServer VERB CFG ARGS` for every peer at once; prints each peer's
/// outcome and returns whether all succeeded.
fn each_peer(peers: &[PeerPaths], verb: &str, extra: &[String]) -> anyhow::Result<bool> {
    let program = zk_server();
    let outputs: Vec<std::io::Result<Output>> = std::thread::scope(|scope| {
        let runs: Vec<_> = peers
            .iter()
            .map(|peer| {
                let program = &program;
                scope.spawn(move || {
                    let mut command = Command::new(program);
                    command.arg(verb).arg(&peer.cfg).args(extra);
                    // Each peer its own log directory: the default file
                    // names would otherwise collide.
                    if let Some(log_dir) = &peer.log_dir {
                        command.env("ZOO_LOG_DIR", log_dir);
                    }
                    command.env_remove("ZOOPIDFILE").output()
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the thread panicked")))
            })
            .collect()
    });
    let mut all_ok = true;
    for (peer, output) in peers.iter().zip(outputs) {
        let output = output.with_context(|| format!("running {} {verb}", program.display()))?;
        let said = String::from_utf8_lossy(&output.stdout);
        println!("server.{}: {}", peer.id, said.trim_end());
        if !output.status.success() {
            all_ok = false;
            for line in String::from_utf8_lossy(&output.stderr)
                .lines()
                .filter(|l| !l.starts_with("Using config:"))
            {
                eprintln!("server.{}: {line}", peer.id);
            }
        }
    }
    Ok(all_ok)
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn start(layout: &Layout, wait: u64) -> anyhow::Result<ExitCode> {
    let peers = discover(layout)?;
    if matches!(layout, Layout::Systemd { .. }) {
        return systemctl(
            std::iter::once("start".to_owned()).chain(peers.iter().map(|p| unit_name(p.id))),
        );
    }
    // All at once: a member that waits for a quorum answers only once the
    // others run too.
    Ok(exit(each_peer(
        &peers,
        "start",
        &["--wait".to_owned(), wait.to_string()],
    )?))
}

fn stop(layout: &Layout, timeout: u64) -> anyhow::Result<ExitCode> {
    let peers = discover(layout)?;
    if matches!(layout, Layout::Systemd { .. }) {
        return systemctl(
            std::iter::once("stop".to_owned()).chain(peers.iter().map(|p| unit_name(p.id))),
        );
    }
    Ok(exit(each_peer(
        &peers,
        "stop",
        &["--timeout".to_owned(), timeout.to_string()],
    )?))
}

fn show_status(layout: &Layout, json: bool, timeout: u64) -> anyhow::Result<ExitCode> {
    let peers = discover(layout)?;
    // Every member has the same server.N lines; any one describes the ensemble.
    let ensemble = status::peers_of(&peers[0].cfg)?;
    let statuses = status::probe_peers(&ensemble, Duration::from_secs(timeout.max(1)));
    if json {
        println!("{}", status::render_json(&statuses));
    } else {
        print!("{}", status::render_table(&statuses));
    }
    Ok(exit(statuses.iter().all(|s| s.serving)))
}

/// Whether `cfg`'s pidfile names a running server.
fn has_running_server(cfg: &Path) -> bool {
    env::RawConfig::read(cfg)
        .and_then(|raw| raw.data_dir())
        .ok()
        .map(|data_dir| pidfile::Pidfile::new(data_dir.join(env::PIDFILE_NAME)))
        .and_then(|pidfile| pidfile.read().ok().flatten())
        .is_some_and(pidfile::is_running)
}

fn destroy(layout: &Layout) -> anyhow::Result<ExitCode> {
    let peers = discover(layout)?;
    // Refuse before touching anything if any peer was not written by us.
    for peer in &peers {
        if !cluster::is_ours(&peer.cfg) {
            bail!(
                "{} was not written by zk-pseudo-cluster; nothing was removed",
                peer.cfg.display()
            );
        }
    }
    match layout {
        Layout::Systemd { .. } => {
            let units: Vec<String> = peers.iter().map(|p| unit_name(p.id)).collect();
            if Command::new("systemctl")
                .arg("stop")
                .args(&units)
                .status()
                .map(|s| !s.success())
                .unwrap_or(false)
            {
                bail!(
                    "systemctl stop {} failed; nothing was removed",
                    units.join(" ")
                );
            }
        }
        Layout::Local { .. } => {
            let running: Vec<PeerPaths> = peers
                .iter()
                .filter(|p| has_running_server(&p.cfg))
                .cloned()
                .collect();
            if !running.is_empty() && !each_peer(&running, "stop", &[])? {
                bail!("some peers did not stop; nothing was removed");
            }
        }
    }
    for peer in &peers {
        cluster::remove_peer(peer)?;
        println!("server.{}: removed", peer.id);
    }
    if let Layout::Local { base } = layout {
        // Only when empty: the directory may hold the operator's own files.
        let _ = std::fs::remove_dir(base);
    }
    Ok(ExitCode::SUCCESS)
}
