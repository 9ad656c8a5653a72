//! `zkBench`: a load generator and latency meter for any ZooKeeper ensemble.
//! Everything but the command line is in `zookeeper_rs::bench`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use zookeeper_rs::bench::{self, parse_duration, BenchConfig, Limit, Workload, WORKLOAD_NAMES};

/// Exit status when the run completed but some operation failed or the
/// measured phase stopped early.
const EXIT_ERRORS: u8 = 1;
/// Exit status when the run could not be made (usage, connection, setup).
const EXIT_FAILED: u8 = 2;
/// The default `maxClientCnxns` of Apache ZooKeeper and ours.
const APACHE_MAX_CLIENT_CNXNS: usize = 60;

#[derive(Parser, Debug)]
#[command(
    name = "zkBench",
    version = zookeeper_rs::ZOOKEEPER_VERSION,
    about = "Benchmark a ZooKeeper server or ensemble (zookeeper-rs or Apache ZooKeeper)",
    after_help = "Workloads: create (new nodes), set, get, exists (random keys), getChildren \
                  (random directory of 100 keys), delete (each key once), multi (--multi-size \
                  setData in one multi), mixed (get with probability --read-ratio, set otherwise).\n\n\
                  Sessions are spread over the servers of --server round-robin. Every run is \
                  bounded: by --duration (default 10 s) or by --ops, and it ends early when no \
                  operation succeeds for --stall-timeout. Latencies are of successful operations, \
                  from an HDR histogram (3 significant digits); errors are counted by kind. With \
                  --rate, operations start on a schedule and latency counts from each one's \
                  scheduled start.\n\n\
                  Exit status: 0 when every operation succeeded, 1 when some failed or the run \
                  stopped early (the report says why), 2 when the run could not be made."
)]
struct Cli {
    /// The workload.
    #[arg(value_name = "WORKLOAD", value_parser = parse_workload, help = format!("One of: {WORKLOAD_NAMES}"))]
    workload: Workload,
    /// Connect string: host:port[,host:port...][/chroot].
    #[arg(
        short = 's',
        long,
        default_value = "127.0.0.1:2181",
        value_name = "CONNECT_STRING"
    )]
    server: String,
    /// For mixed: the fraction of reads (getData), the rest being setData.
    #[arg(long, default_value_t = 0.9, value_name = "R")]
    read_ratio: f64,
    /// Bytes of data per node written.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    value_size: usize,
    /// Client sessions.
    #[arg(long, default_value_t = 16, value_name = "N")]
    sessions: usize,
    /// Requests outstanding per session.
    #[arg(long, default_value_t = 1, value_name = "K")]
    in_flight: usize,
    /// Length of the measured phase (seconds, or with ms/s/m).
    #[arg(long, value_parser = parse_duration, value_name = "S", conflicts_with = "ops")]
    duration: Option<Duration>,
    /// Number of measured operations instead of a duration.
    #[arg(long, value_name = "N")]
    ops: Option<u64>,
    /// Unmeasured load before the measured phase.
    #[arg(long, value_parser = parse_duration, default_value = "2", value_name = "S")]
    warmup: Duration,
    /// Size of the key space (set, get, exists, getChildren, multi, mixed,
    /// delete); delete with --ops uses --keys + --ops keys.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    keys: u64,
    /// setData operations per multi.
    #[arg(long, default_value_t = 4, value_name = "M")]
    multi_size: usize,
    /// Where the benchmark's nodes go.
    #[arg(long, default_value = "/zkbench", value_name = "PATH")]
    root: String,
    /// Leave the benchmark's nodes in place.
    #[arg(long)]
    keep: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// How long one request may wait for its reply.
    #[arg(long, value_parser = parse_duration, default_value = "10", value_name = "S")]
    timeout: Duration,
    /// Session timeout asked of the servers.
    #[arg(long, value_parser = parse_duration, default_value = "30", value_name = "S")]
    session_timeout: Duration,
    /// End a phase in which no operation succeeded for this long.
    #[arg(long, value_parser = parse_duration, default_value = "10", value_name = "S")]
    stall_timeout: Duration,
    /// A local server process whose CPU time over the measured phase is
    /// reported beside zkBench's own (repeat for an ensemble).
    #[arg(long = "server-pid", value_name = "PID")]
    server_pids: Vec<u32>,
    /// Seed of the key choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Operations per second across all sessions, started on a schedule
    /// rather than as soon as each reply comes; latencies then count from
    /// each operation's scheduled start, so a stall shows in every request
    /// it held up. For latency at a given load rather than at saturation.
    #[arg(long, value_name = "OPS")]
    rate: Option<f64>,
    /// Runtime worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn parse_workload(name: &str) -> Result<Workload, String> {
    name.parse::<Workload>().map_err(|e| e.to_string())
}

impl Cli {
    fn config(&self) -> BenchConfig {
        let workload = match self.workload {
            Workload::Mixed { .. } => Workload::Mixed {
                read_ratio: self.read_ratio,
            },
            other => other,
        };
        let limit = match (self.ops, self.duration) {
            (Some(ops), _) => Limit::Ops(ops),
            (None, Some(duration)) => Limit::Duration(duration),
            (None, None) => Limit::Duration(Duration::from_secs(10)),
        };
        BenchConfig {
            connect_string: self.server.clone(),
            workload,
            value_size: self.value_size,
            sessions: self.sessions,
            in_flight: self.in_flight,
            limit,
            warmup: self.warmup,
            keys: self.keys,
            multi_size: self.multi_size,
            root: self.root.clone(),
            keep: self.keep,
            request_timeout: self.timeout,
            session_timeout: self.session_timeout,
            stall_timeout: self.stall_timeout,
            server_pids: self.server_pids.clone(),
            seed: self.seed,
            rate: self.rate,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config();
    if let Err(e) = config.validate() {
        eprintln!("zkBench: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zkBench: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let quiet = cli.quiet;
    let outcome = runtime.block_on(bench::run(&config, |progress| {
        if !quiet {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{}", progress.line());
        }
    }));
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            eprintln!("zkBench: {e}");
            if matches!(e, bench::BenchError::Connect { .. })
                && config.sessions > APACHE_MAX_CLIENT_CNXNS
            {
                eprintln!(
                    "zkBench: servers accept {APACHE_MAX_CLIENT_CNXNS} connections per client address \
                     by default: raise maxClientCnxns (0 = no limit) for {} sessions",
                    config.sessions
                );
            }
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let text = if cli.json {
        report.to_json()
    } else {
        report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", text.trim_end()).is_err() {
        return ExitCode::from(EXIT_FAILED);
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERRORS)
    }
}
