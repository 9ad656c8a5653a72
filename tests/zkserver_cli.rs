//! `zkServer` as an operator uses it: start in the background, status, stop,
//! restart, and the refusals and failures, with Apache's messages and exit codes.

mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{four_letter_at, wait_until};
use tempfile::TempDir;

const ZKSERVER: &str = env!("CARGO_BIN_EXE_zkServer");

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A process that has exited and been reaped, or exited and awaits reaping.
fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A directory with a zoo.cfg for a server on a free loopback port; any
/// server left running is killed when it is dropped.
struct Sandbox {
    dir: TempDir,
    port: u16,
}

impl Sandbox {
    fn new() -> Sandbox {
        Self::with_cfg(|dir, port| {
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
                dir.join("data").display()
            )
        })
    }

    fn with_cfg(cfg: impl FnOnce(&Path, u16) -> String) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("zkrs-cli-")
            .tempdir()
            .unwrap();
        let port = free_port();
        fs::write(dir.path().join("zoo.cfg"), cfg(dir.path(), port)).unwrap();
        Sandbox { dir, port }
    }

    fn cfg(&self) -> PathBuf {
        self.dir.path().join("zoo.cfg")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pidfile(&self) -> PathBuf {
        self.data_dir().join("zookeeper_server.pid")
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn command(&self) -> Command {
        let mut command = Command::new(ZKSERVER);
        command
            .current_dir(self.dir.path())
            .env_remove("ZOOCFGDIR")
            .env_remove("ZOOCFG")
            .env_remove("ZOOPIDFILE")
            .env_remove("ZOO_LOG_DIR")
            .env_remove("ZOO_LOG_FILE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM");
        command
    }

    /// `zkServer VERB zoo.cfg ARGS…`.
    fn run(&self, verb: &str, args: &[&str]) -> Output {
        self.command()
            .arg(verb)
            .arg(self.cfg())
            .args(args)
            .output()
            .unwrap()
    }

    fn pid(&self) -> u32 {
        fs::read_to_string(self.pidfile())
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Ok(text) = fs::read_to_string(self.pidfile()) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                // SAFETY: kill(2) on the server this sandbox started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

#[test]
fn start_status_stop_with_apaches_messages_and_exit_codes() {
    let sandbox = Sandbox::new();

    let started = sandbox.run("start", &[]);
    assert_exit(&started, 0);
    assert_eq!(stdout(&started), "Starting zookeeper ... STARTED\n");
    assert!(stderr(&started).contains("Using config: "));
    let pid = sandbox.pid();
    assert!(is_alive(pid));
    // STARTED means it answers already, with no waiting on our side.
    let srvr = four_letter_at(sandbox.addr(), "srvr").unwrap();
    assert!(srvr.contains("Mode: standalone"), "{srvr}");

    let status = sandbox.run("status", &[]);
    assert_exit(&status, 0);
    assert_eq!(
        stdout(&status),
        format!(
            "Client port found: {}. Client address: 127.0.0.1. Client SSL: false.\nMode: standalone\n",
            sandbox.port
        )
    );

    let again = sandbox.run("start", &[]);
    assert_exit(&again, 1);
    assert_eq!(
        stdout(&again),
        format!("Starting zookeeper ... already running as process {pid}.\n")
    );
    assert_eq!(
        sandbox.pid(),
        pid,
        "a refused start leaves the pidfile alone"
    );

    let stopped = sandbox.run("stop", &[]);
    assert_exit(&stopped, 0);
    assert_eq!(stdout(&stopped), "Stopping zookeeper ... STOPPED\n");
    assert!(!is_alive(pid));
    assert!(!sandbox.pidfile().exists());

    let status = sandbox.run("status", &[]);
    assert_exit(&status, 1);
    assert!(
        stdout(&status).ends_with("Error contacting service. It is probably not running.\n"),
        "{}",
        stdout(&status)
    );

    let nothing = sandbox.run("stop", &[]);
    assert_exit(&nothing, 0);
    assert_eq!(
        stdout(&nothing),
        format!(
            "Stopping zookeeper ... no zookeeper to stop (could not find file {})\n",
            sandbox.pidfile().display()
        )
    );
}

#[test]
fn restart_replaces_the_process() {
    let sandbox = Sandbox::new();
    assert_exit(&sandbox.run("start", &[]), 0);
    let first = sandbox.pid();
    let restarted = sandbox.run("restart", &[]);
    assert_exit(&restarted, 0);
    assert_eq!(
        stdout(&restarted),
        "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n"
    );
    let second = sandbox.pid();
    assert_ne!(first, second);
    assert!(!is_alive(first));
    assert!(four_letter_at(sandbox.addr(), "srvr")
        .unwrap()
        .contains("Mode: standalone"));
    assert_exit(&sandbox.run("stop", &[]), 0);
}

#[test]
fn status_finds_the_port_on_this_servers_line_and_shows_the_ensemble() {
    let quorum = free_port();
    let election = free_port();
    let absent_peer = free_port();
    let sandbox = Sandbox::with_cfg(|dir, port| {
        let data = dir.join("data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("myid"), "1\n").unwrap();
        format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             server.1=127.0.0.1:{quorum}:{election};127.0.0.1:{port}\n\
             server.2=127.0.0.1:{}:{}:observer;127.0.0.1:{absent_peer}\n\
             server.3=127.0.0.1:{}:{};127.0.0.1:{}\n",
            data.display(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        )
    });
    assert_exit(&sandbox.run("start", &[]), 0);

    // The one member running has no quorum, so it serves nothing: Apache's
    // script says so the same way.
    let status = sandbox.run("status", &[]);
    assert_exit(&status, 1);
    assert!(
        stdout(&status).starts_with(&format!(
            "Client port found: {}. Client address: 127.0.0.1. Client SSL: false.\nError contacting service.",
            sandbox.port
        )),
        "{}",
        stdout(&status)
    );

    // One peer answers, the others are not running: a line each, and exit 1.
    let ensemble = sandbox.run("status", &["--ensemble"]);
    assert_exit(&ensemble, 1);
    let text = stdout(&ensemble);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("ID"));
    assert!(lines[1].starts_with("1 "), "{text}");
    assert!(lines[1].contains(&format!("127.0.0.1:{}", sandbox.port)));
    assert!(
        lines[1].contains("reachable") && !lines[1].contains("unreachable"),
        "{text}"
    );
    assert!(lines[2].starts_with("2 "), "{text}");
    assert!(lines[2].contains("observer"));
    assert!(lines[2].contains("unreachable"), "{text}");
    assert!(lines[3].starts_with("3 "), "{text}");

    let json = sandbox.run("status", &["--ensemble", "--json"]);
    assert_exit(&json, 1);
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let peers = view["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 3);
    assert_eq!(peers[0]["id"], 1);
    assert_eq!(peers[0]["reachable"], true);
    // Alone, it has no quorum: reachable, not serving.
    assert_eq!(peers[0]["serving"], false);
    assert_eq!(peers[1]["id"], 2);
    assert_eq!(peers[1]["role"], "observer");
    assert_eq!(peers[1]["reachable"], false);
    assert!(peers[1]["error"].is_string());

    assert_exit(&sandbox.run("stop", &[]), 0);
}

#[test]
fn status_asks_srvr_whatever_the_whitelist_says() {
    let sandbox = Sandbox::with_cfg(|dir, port| {
        format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=ruok\n",
            dir.join("data").display()
        )
    });
    assert_exit(&sandbox.run("start", &[]), 0);
    let status = sandbox.run("status", &["--json"]);
    assert_exit(&status, 0);
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(view["mode"], "standalone");
    assert_exit(&sandbox.run("stop", &[]), 0);
}

#[test]
fn a_busy_client_port_fails_the_start_before_anything_runs() {
    let sandbox = Sandbox::new();
    let squatter = TcpListener::bind(sandbox.addr()).unwrap();
    let failed = sandbox.run("start", &[]);
    assert_exit(&failed, 1);
    assert_eq!(stdout(&failed), "Starting zookeeper ... FAILED TO START\n");
    assert!(stderr(&failed).contains("in use"), "{}", stderr(&failed));
    assert!(!sandbox.pidfile().exists());
    drop(squatter);
}

#[test]
fn a_server_that_dies_while_starting_fails_without_leaving_a_pidfile() {
    let sandbox = Sandbox::new();
    // Only the server itself opens its log file, so only it can fail on it.
    let failed = sandbox.run("start", &["--log-file", "/dev/null/zk.log"]);
    assert_exit(&failed, 1);
    assert_eq!(stdout(&failed), "Starting zookeeper ... FAILED TO START\n");
    assert!(stderr(&failed).contains("exited"), "{}", stderr(&failed));
    assert!(!sandbox.pidfile().exists());
    let out = fs::read_dir(sandbox.data_dir())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".out"))
        .expect("the daemon's output file");
    let text = fs::read_to_string(out.path()).unwrap();
    assert!(text.contains("/dev/null/zk.log"), "{text}");
}

#[test]
fn an_invalid_configuration_fails_in_front_of_the_operator() {
    let sandbox = Sandbox::with_cfg(|dir, port| {
        format!(
            "dataDir={}\nclientPort={port}\ntickTime=soon\n",
            dir.join("data").display()
        )
    });
    let failed = sandbox.run("start", &[]);
    assert_exit(&failed, 1);
    assert_eq!(stdout(&failed), "Starting zookeeper ... FAILED TO START\n");
    assert!(stderr(&failed).contains("tickTime"), "{}", stderr(&failed));
    assert!(!sandbox.pidfile().exists());
}

#[test]
fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let sandbox = Sandbox::new();
    // A stand-in that ignores SIGTERM and, like a server, has the
    // start-foreground verb on its command line.
    let mut stubborn: Child = Command::new("bash")
        .args([
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.05; done",
            "start-foreground",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(stubborn.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready, "ready\n");
    fs::create_dir_all(sandbox.data_dir()).unwrap();
    fs::write(sandbox.pidfile(), stubborn.id().to_string()).unwrap();

    let stopped = sandbox.run("stop", &["--timeout", "1"]);
    assert_exit(&stopped, 0);
    assert_eq!(stdout(&stopped), "Stopping zookeeper ... STOPPED\n");
    assert!(
        stderr(&stopped).contains("was killed"),
        "{}",
        stderr(&stopped)
    );
    let status = stubborn.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert!(!sandbox.pidfile().exists());
}

#[test]
fn a_stale_pidfile_naming_another_process_is_neither_obeyed_nor_signalled() {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.data_dir()).unwrap();
    // This test's own pid: alive, but not a server.
    fs::write(sandbox.pidfile(), std::process::id().to_string()).unwrap();
    let started = sandbox.run("start", &[]);
    assert_exit(&started, 0);
    assert_ne!(sandbox.pid(), std::process::id());
    assert_exit(&sandbox.run("stop", &[]), 0);

    fs::write(sandbox.pidfile(), std::process::id().to_string()).unwrap();
    let stopped = sandbox.run("stop", &["--timeout", "1"]);
    assert_exit(&stopped, 0);
    assert!(stderr(&stopped).contains("stale pidfile"));
    assert!(!sandbox.pidfile().exists());
}

#[test]
fn log_dir_holds_the_output_and_the_log_which_sighup_reopens() {
    let sandbox = Sandbox::new();
    let logs = sandbox.dir.path().join("logs");
    let started = sandbox
        .command()
        .env("ZOO_LOG_DIR", &logs)
        .env("ZOO_LOG_FILE", "server.log")
        .arg("start")
        .arg(sandbox.cfg())
        .output()
        .unwrap();
    assert_exit(&started, 0);
    let log = logs.join("server.log");
    assert!(wait_until(
        || fs::read_to_string(&log).is_ok_and(|t| t.contains("serving clients")),
        Duration::from_secs(10)
    ));
    assert!(fs::read_dir(&logs)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".out")));

    let rotated = logs.join("server.log.1");
    fs::rename(&log, &rotated).unwrap();
    // SAFETY: kill(2) on the server this test started.
    assert_eq!(unsafe { libc::kill(sandbox.pid() as i32, libc::SIGHUP) }, 0);
    assert!(
        wait_until(
            || fs::read_to_string(&log).is_ok_and(|t| t.contains("log file reopened")),
            Duration::from_secs(10)
        ),
        "no fresh log after SIGHUP"
    );
    assert!(is_alive(sandbox.pid()), "SIGHUP must not stop the server");
    assert!(fs::read_to_string(&rotated)
        .unwrap()
        .contains("serving clients"));
    assert_exit(&sandbox.run("stop", &[]), 0);
}

#[test]
fn config_names_follow_zoocfgdir_as_apaches_scripts_do() {
    let sandbox = Sandbox::new();
    let printed = sandbox
        .command()
        .env("ZOOCFGDIR", sandbox.dir.path())
        .env("ZOOCFG", "zoo.cfg")
        .arg("print-cmd")
        .output()
        .unwrap();
    assert_exit(&printed, 0);
    let line = stdout(&printed);
    assert!(
        line.contains(&format!("\"{}\"", sandbox.cfg().display())),
        "{line}"
    );
    assert!(line.contains("\"start-foreground\""), "{line}");
    assert!(line.contains(&format!("{}/zookeeper-", sandbox.data_dir().display())));
    assert!(
        line.trim_end().ends_with(".out\" 2>&1 < /dev/null"),
        "{line}"
    );

    let by_flag = sandbox
        .command()
        .arg("--config")
        .arg(sandbox.dir.path())
        .arg("print-cmd")
        .output()
        .unwrap();
    assert_eq!(stdout(&by_flag), line);
}

#[test]
fn version_names_the_compatible_apache_release_and_ours() {
    let version = Command::new(ZKSERVER).arg("version").output().unwrap();
    assert_exit(&version, 0);
    let text = stdout(&version);
    assert!(text.starts_with("Apache ZooKeeper, version 3.9."), "{text}");
    assert!(text.contains("zookeeper-rs"), "{text}");
}
