//! zkBench, the binary, against real servers: the report's shape (`--json`), an operation
//! count that is exactly what was asked, every workload against ours and against Debian's
//! Apache ZooKeeper 3.8, cleanup, and errors that are counted, not dropped, when the server
//! is killed in the middle of a run, and reads spread over an ensemble that see all of setup.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::ensemble::Ensemble;
use common::support::{raw_client, raw_exists};
use common::{apache_available, wait_until, ApacheServer, Server, ZkUnderTest};

const ZKBENCH: &str = env!("CARGO_BIN_EXE_zkBench");
/// The longest a short zkBench run may take here, JVM warm-up included.
const RUN_LIMIT: Duration = Duration::from_secs(60);
const NO_NODE: i32 = -101;

/// Starts zkBench against `server` with `--json` and `args`; progress lines go to stderr
/// unless `--quiet` is among `args`.
fn spawn(server: &str, args: &[&str]) -> Child {
    Command::new(ZKBENCH)
        .args(["--server", server, "--json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting zkBench")
}

/// Runs zkBench to completion with `--json`, within [`RUN_LIMIT`].
fn zkbench(server: &str, args: &[&str]) -> (Output, Value) {
    let quiet = [&["--quiet"], args].concat();
    finish(spawn(server, &quiet), &format!("zkBench {args:?}"))
}

/// Waits, within [`RUN_LIMIT`], for zkBench (`what`) to exit and parses its JSON report.
fn finish(mut child: Child, what: &str) -> (Output, Value) {
    let mut status = None;
    let exited = wait_until(
        || {
            status = child.try_wait().expect("waiting for zkBench");
            status.is_some()
        },
        RUN_LIMIT,
    );
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("collecting zkBench output");
    assert!(
        exited,
        "{what} ran over {RUN_LIMIT:?}; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON report ({e}); status {:?}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

fn number(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("report has no number at {pointer}:\n{report:#}"))
}

fn count(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("report has no count at {pointer}:\n{report:#}"))
}

/// The run did exactly `ops` operations, all successful, left nothing behind, and its
/// figures are consistent.
fn assert_clean_run(output: &Output, report: &Value, ops: u64) {
    assert!(
        output.status.success(),
        "zkBench exited with {:?}:\n{report:#}",
        output.status
    );
    assert_eq!(count(report, "/ops"), ops, "{report:#}");
    assert_eq!(count(report, "/ok"), ops, "{report:#}");
    assert_eq!(count(report, "/errors"), 0, "{report:#}");
    assert_eq!(
        report["errors_by_kind"],
        serde_json::json!({}),
        "{report:#}"
    );
    assert!(report["stopped_early"].is_null(), "{report:#}");
    assert!(number(report, "/throughput_ops_s") > 0.0, "{report:#}");
    let percentiles: Vec<f64> = ["p50", "p90", "p99", "p99.9", "max"]
        .iter()
        .map(|p| number(report, &format!("/latency_ms/{p}")))
        .collect();
    assert!(percentiles[0] > 0.0, "{report:#}");
    assert!(
        percentiles.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {percentiles:?}"
    );
    assert!(number(report, "/client_cpu/us_per_op") > 0.0, "{report:#}");
    // The host's busy cores come from /proc/stat, in ticks of 10 ms per core: a phase of a
    // few ticks may see none, or only idle ones, and then has no figure or a zero. Over half
    // a second (100 ticks on two cores) they count zkBench's own work, so are never zero.
    let long = number(report, "/elapsed_s") >= 0.5;
    if long || !report["host_cpu"].is_null() {
        let cores = number(report, "/host_cpu/cores");
        let busy = number(report, "/host_cpu/busy_cores");
        let least = if long { f64::MIN_POSITIVE } else { 0.0 };
        assert!(
            cores >= 1.0 && busy >= least && busy <= cores + 0.01,
            "{report:#}"
        );
    }
    assert_eq!(count(report, "/setup/errors"), 0, "{report:#}");
    assert_eq!(count(report, "/cleanup/errors"), 0, "{report:#}");
    assert!(report["cleanup"]["abandoned"].is_null(), "{report:#}");
}

fn assert_root_gone(server: &dyn ZkUnderTest) {
    let mut client = raw_client(server.addr());
    assert_eq!(
        raw_exists(&mut client, "/zkbench", false).0,
        NO_NODE,
        "{}: zkBench left /zkbench behind",
        server.name()
    );
}

#[test]
fn json_report_has_the_asked_op_count_and_every_figure() {
    let server = Server::start();
    let (output, report) = zkbench(
        &server.connect_string(),
        &[
            "set",
            "--ops",
            "300",
            "--sessions",
            "4",
            "--in-flight",
            "2",
            "--keys",
            "150",
            "--warmup",
            "0.2",
            "--value-size",
            "64",
        ],
    );
    assert_clean_run(&output, &report, 300);
    assert_eq!(report["tool"], "zkBench");
    assert_eq!(report["workload"], "set");
    assert_eq!(count(&report, "/sessions"), 4);
    assert_eq!(count(&report, "/in_flight"), 2);
    assert_eq!(count(&report, "/value_size"), 64);
    assert_eq!(count(&report, "/requested/ops"), 300);
    assert_eq!(
        report["sessions_per_server"],
        serde_json::json!({ server.connect_string(): 4 })
    );
    // The root, two directories of keys, 150 keys; all removed again.
    assert_eq!(count(&report, "/setup/done"), 153, "{report:#}");
    assert_eq!(count(&report, "/cleanup/done"), 153, "{report:#}");
    assert!(count(&report, "/warmup/ok") > 0, "{report:#}");
    for field in ["user_s", "system_s", "us_per_op", "cores"] {
        number(&report, &format!("/client_cpu/{field}"));
    }
    assert_root_gone(&server);
}

#[test]
fn mixed_reports_reads_and_writes_apart() {
    let server = Server::start();
    let (output, report) = zkbench(
        &server.connect_string(),
        &[
            "mixed",
            "--read-ratio",
            "0.5",
            "--ops",
            "400",
            "--keys",
            "20",
            "--warmup",
            "0",
        ],
    );
    assert_clean_run(&output, &report, 400);
    let gets = count(&report, "/by_op/get/ok");
    let sets = count(&report, "/by_op/set/ok");
    assert_eq!(gets + sets, 400, "{report:#}");
    // Half of 400 either way, far outside what chance allows for a fair coin.
    assert!(
        (120..=280).contains(&gets),
        "{gets} gets of 400 at ratio 0.5"
    );
    assert_root_gone(&server);
}

/// Each workload with an exact count; returns nothing, fails on the first unclean run.
fn every_workload_runs_clean(server: &dyn ZkUnderTest) {
    for workload in [
        "create",
        "set",
        "get",
        "exists",
        "getChildren",
        "delete",
        "multi",
        "mixed",
    ] {
        let (output, report) = zkbench(
            &server.connect_string(),
            &[
                workload,
                "--ops",
                "200",
                "--sessions",
                "3",
                "--in-flight",
                "2",
                "--keys",
                "120",
                "--warmup",
                "0.2",
            ],
        );
        assert_eq!(report["workload"], workload);
        assert_clean_run(&output, &report, 200);
        assert_root_gone(server);
    }
}

#[test]
fn every_workload_runs_clean_against_ours() {
    every_workload_runs_clean(&Server::start());
}

#[test]
fn every_workload_runs_clean_against_apache() {
    if !apache_available() {
        return;
    }
    every_workload_runs_clean(&ApacheServer::start());
}

/// Setup creates the key space through some members; a read on another may come before
/// that member has applied the last creates (ZooKeeper orders reads per session only), and
/// used to find no node now and then. The first reads follow setup at once here (no
/// warm-up), so a missing catch-up shows as NoNode errors.
#[test]
fn gets_spread_over_an_ensemble_find_every_key_setup_made() {
    let ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(Duration::from_secs(30));
    // A small key space, so the last wave of creates is much of what the first reads pick.
    for round in 0..10 {
        let (output, report) = zkbench(
            &ensemble.connect_string_all(),
            &[
                "get",
                "--sessions",
                "30",
                "--keys",
                "60",
                "--ops",
                "600",
                "--warmup",
                "0",
            ],
        );
        assert!(
            output.status.success(),
            "round {round}: zkBench exited with {:?}:\n{report:#}",
            output.status
        );
        assert_clean_run(&output, &report, 600);
    }
}

/// `--rate` spreads the operations over time: 500 operations at 500 per second cannot be
/// done in much less than a second, while unpaced they take a few milliseconds here.
#[test]
fn a_paced_run_keeps_to_its_schedule() {
    let server = Server::start();
    let (output, report) = zkbench(
        &server.connect_string(),
        &[
            "get",
            "--rate",
            "500",
            "--ops",
            "500",
            "--sessions",
            "4",
            "--keys",
            "50",
            "--warmup",
            "0",
        ],
    );
    assert_clean_run(&output, &report, 500);
    assert_eq!(
        number(&report, "/requested/rate_ops_s"),
        500.0,
        "{report:#}"
    );
    // The last of 500 operations is scheduled 499/500 s after the first.
    let elapsed = number(&report, "/elapsed_s");
    assert!(
        elapsed >= 0.95,
        "500 ops at 500/s took {elapsed} s:\n{report:#}"
    );
}

/// Spawns zkBench with `args` (JSON report, progress on stderr) and waits for a progress
/// line of the measured phase with operations done.
fn spawn_until_running(server: &str, args: &[&str]) -> Child {
    let mut child = spawn(server, args);
    let stderr = child.stderr.take().expect("zkBench's stderr");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let mut seen = Vec::new();
    let running = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let loaded = line.contains(" run ") && !line.contains("done 0 ");
                seen.push(line);
                if loaded {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if !running {
        let _ = child.kill();
    }
    assert!(running, "no progress line with operations done:\n{seen:#?}");
    child
}

/// A paced run counts a stall against every operation it held up, not only against the
/// few that were outstanding: a server frozen for 1 s of a 4 s run at 400 ops/s holds up
/// about 400 of 1,600 scheduled operations, and some 360 of them (over 20%) wait more than
/// 100 ms. Counted from when each was sent (as unpaced runs do), only the 4 in flight would.
#[test]
fn a_paced_run_counts_a_stall_against_every_operation_it_held_up() {
    let server = Server::start();
    let child = spawn_until_running(
        &server.connect_string(),
        &[
            "get",
            "--rate",
            "400",
            "--duration",
            "4",
            "--sessions",
            "4",
            "--keys",
            "50",
            "--warmup",
            "0",
        ],
    );
    server.pause();
    // The fault's length, not a wait for a condition.
    std::thread::sleep(Duration::from_secs(1));
    server.resume();
    let (output, report) = finish(child, "zkBench");
    assert_clean_run(&output, &report, count(&report, "/ops"));
    let p90 = number(&report, "/latency_ms/p90");
    assert!(
        p90 >= 100.0,
        "a 1 s stall at 400 ops/s left p90 at {p90} ms:\n{report:#}"
    );
}

#[test]
fn errors_are_counted_when_the_server_is_killed_mid_run() {
    let mut server = Server::start();
    let child = spawn_until_running(
        &server.connect_string(),
        &[
            "set",
            "--duration",
            "60",
            "--warmup",
            "0",
            "--keys",
            "50",
            "--sessions",
            "4",
            "--stall-timeout",
            "1.5",
            "--timeout",
            "5",
        ],
    );
    server.kill();
    let (output, report) = finish(child, "zkBench");
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let errors = count(&report, "/errors");
    assert!(errors > 0, "no error counted:\n{report:#}");
    assert_eq!(
        count(&report, "/ok") + errors,
        count(&report, "/ops"),
        "{report:#}"
    );
    let by_kind: u64 = report["errors_by_kind"]
        .as_object()
        .expect("errors_by_kind is an object")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_kind, errors, "every error has a kind:\n{report:#}");
    assert!(
        count(&report, "/errors_by_kind/ConnectionLoss") > 0,
        "{report:#}"
    );
    let stopped = report["stopped_early"].as_str().unwrap_or_default();
    assert!(stopped.contains("no operation succeeded"), "{report:#}");
    assert!(
        report["cleanup"]["abandoned"].is_string(),
        "cleanup against a dead server must be given up:\n{report:#}"
    );
}

#[test]
fn an_unbounded_or_impossible_run_is_refused() {
    for args in [
        vec!["get", "--ops", "0"],
        vec!["get", "--duration", "0"],
        vec!["get", "--ops", "5", "--duration", "5"],
        vec!["mixed", "--read-ratio", "2"],
        vec!["nosuchworkload"],
        vec!["get", "--rate", "0"],
        vec!["get", "--rate", "-5"],
        vec!["get", "--rate", "NaN"],
    ] {
        let output = Command::new(ZKBENCH)
            .args(["--server", "127.0.0.1:1"])
            .args(&args)
            .output()
            .expect("running zkBench");
        assert_eq!(output.status.code(), Some(2), "{args:?} was accepted");
    }
}
