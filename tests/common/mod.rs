//! Test harness shared by every integration test file.
//!
//! It runs real server processes on 127.0.0.1: our `zkServer` binary ([`Server`]) and, as the
//! reference, Debian's Apache ZooKeeper ([`ApacheServer`]). Both read the same kind of zoo.cfg
//! written into a fresh temporary directory, listen on a port the OS chose, and are killed when
//! their handle is dropped, panics included. Readiness is a real read, never a fixed delay.
//!
//! Environment:
//! - `CI`: tests whose external tools are missing fail instead of printing `SKIP:`.
//! - `ZKRS_DIFF_SELFTEST=1`: comparisons run Apache against Apache (proves the scripts).
//! - `ZKRS_KEEP_TEST_DIRS`: keep each server's directory (config, data, output) after the test.
#![allow(dead_code)]

pub mod ensemble;
pub mod history;
pub mod raw;
pub mod support;
pub mod transcript;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use zookeeper_client as zk;

/// How long our server may take to serve its first read.
const OUR_START_TIMEOUT: Duration = Duration::from_secs(20);
/// A JVM on two busy cores can be slow to come up.
const APACHE_START_TIMEOUT: Duration = Duration::from_secs(45);
/// How long a SIGTERM may take before it counts as a hang.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at finding a free port when another process takes ours between probe and bind.
const PORT_ATTEMPTS: usize = 4;

/// Where Debian's `zookeeper` package puts its jars.
pub const APACHE_JAR_DIR: &str = "/usr/share/java";
/// Debian's Java command-line client.
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// Debian's multi-threaded C client shell (package `zookeeper-bin`).
pub const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(mut condition: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Decides whether a test needing an external tool may run.
///
/// Missing tools fail the test under CI (env `CI` set) so that a broken install step cannot
/// turn into silently skipped coverage; elsewhere the test prints `SKIP:` and returns early.
pub fn require_tool(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required when CI is set; install it (see .ci/run)");
    }
    eprintln!("SKIP: {what} is not installed");
    false
}

fn apache_installed() -> bool {
    Path::new(APACHE_JAR_DIR).join("zookeeper.jar").is_file()
        && Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

/// Whether Debian's Apache ZooKeeper server can run here (see [`require_tool`]).
pub fn apache_available() -> bool {
    require_tool(
        "Apache ZooKeeper (Debian package zookeeper) and java",
        apache_installed(),
    )
}

/// Whether Debian's zkCli.sh can run here (see [`require_tool`]).
pub fn zkcli_available() -> bool {
    require_tool(
        "zkCli.sh (Debian package zookeeper)",
        apache_installed() && Path::new(ZKCLI).is_file(),
    )
}

/// Whether Debian's cli_mt can run here (see [`require_tool`]).
pub fn cli_mt_available() -> bool {
    require_tool(
        "cli_mt (Debian package zookeeper-bin)",
        Path::new(CLI_MT).is_file(),
    )
}

/// Sends a four-letter word and reads the answer to EOF.
pub fn four_letter_at(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Connects a `zookeeper_client::Client`, failing instead of retrying forever.
pub async fn connect(connect_string: &str) -> zk::Client {
    try_connect(connect_string)
        .await
        .unwrap_or_else(|e| panic!("connecting to {connect_string}: {e}"))
}

/// Like [`connect`] but returns the error.
pub async fn try_connect(connect_string: &str) -> Result<zk::Client, String> {
    let attempt = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(5))
        .with_fail_eagerly()
        .connect(connect_string);
    match tokio::time::timeout(Duration::from_secs(15), attempt).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out after 15 s".into()),
    }
}

/// One server under test, whichever implementation it is.
pub trait ZkUnderTest {
    /// A short name for messages and transcripts: "zookeeper-rs" or "apache".
    fn name(&self) -> &'static str;
    fn addr(&self) -> SocketAddr;
    /// `127.0.0.1:PORT`, as clients take it.
    fn connect_string(&self) -> String {
        self.addr().to_string()
    }
    /// Sends a four-letter word over a raw TCP connection and reads the answer to EOF.
    fn four_letter(&self, word: &str) -> String {
        four_letter_at(self.addr(), word)
            .unwrap_or_else(|e| panic!("{}: four-letter word {word:?}: {e}", self.name()))
    }
    /// SIGKILL, no chance to clean up.
    fn kill(&mut self);
    /// SIGTERM, then waits for the exit; returns the exit status.
    fn stop(&mut self) -> ExitStatus;
    /// Starts again with the same configuration and data directory and waits until it serves.
    fn restart(&mut self);
    fn data_dir(&self) -> PathBuf;
    /// The server's captured stderr so far.
    fn log(&self) -> String;
}

/// Which implementation to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Ours,
    Apache,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Ours => "zookeeper-rs",
            Impl::Apache => "apache",
        }
    }

    /// Starts a server of this kind with extra zoo.cfg lines.
    pub fn start_with(self, extra_cfg_lines: &str) -> Box<dyn ZkUnderTest> {
        match self {
            Impl::Ours => Box::new(Server::start_with(extra_cfg_lines)),
            Impl::Apache => Box::new(ApacheServer::start_with(extra_cfg_lines)),
        }
    }
}

/// A server process with its own directory; shared by both implementations.
struct Process {
    kind: Impl,
    dir: TempDir,
    cfg_path: PathBuf,
    /// The caller's zoo.cfg lines, kept to rewrite the file with another port.
    extra_cfg_lines: String,
    port: u16,
    child: Option<Child>,
    starts: u32,
    /// Set once the output has been shown, so a failing start does not print it twice.
    output_shown: bool,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a probe socket");
    listener.local_addr().expect("probe socket address").port()
}

fn zoo_cfg(data_dir: &Path, port: u16, extra_cfg_lines: &str) -> String {
    let overridden = |key: &str| {
        extra_cfg_lines
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{key}=")))
    };
    let mut cfg = String::new();
    if !overridden("tickTime") {
        cfg.push_str("tickTime=2000\n");
    }
    cfg.push_str(&format!(
        "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
        data_dir.display()
    ));
    if !overridden("4lw.commands.whitelist") {
        cfg.push_str("4lw.commands.whitelist=*\n");
    }
    if !overridden("admin.enableServer") {
        cfg.push_str("admin.enableServer=false\n");
    }
    for line in extra_cfg_lines.lines() {
        let line = line.trim();
        if !line.is_empty() {
            cfg.push_str(line);
            cfg.push('\n');
        }
    }
    cfg
}

const LOG4J_PROPERTIES: &str = "\
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.Target=System.err
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n
";

fn apache_classpath() -> String {
    // Debian's zookeeper.jar manifest omits the netty codec/resolver jars and any slf4j backend.
    [
        "zookeeper.jar",
        "slf4j-log4j12.jar",
        "log4j-1.2.jar",
        "netty-codec.jar",
        "netty-resolver.jar",
        "netty-transport-native-unix-common.jar",
    ]
    .iter()
    .map(|jar| format!("{APACHE_JAR_DIR}/{jar}"))
    .collect::<Vec<_>>()
    .join(":")
}

impl Process {
    fn start(kind: Impl, extra_cfg_lines: &str) -> Process {
        let mut process = Process::configure(kind, extra_cfg_lines);
        process.launch();
        process
    }

    /// Creates the directory, the empty dataDir and zoo.cfg, without starting.
    fn configure(kind: Impl, extra_cfg_lines: &str) -> Process {
        let dir = tempfile::Builder::new()
            .prefix(&format!("zkrs-{}-", kind.name()))
            .tempdir()
            .expect("creating a temporary directory");
        fs::create_dir(dir.path().join("data")).expect("creating dataDir");
        if kind == Impl::Apache {
            fs::write(dir.path().join("log4j.properties"), LOG4J_PROPERTIES)
                .expect("writing log4j.properties");
        }
        let cfg_path = dir.path().join("zoo.cfg");
        let mut process = Process {
            kind,
            dir,
            cfg_path,
            extra_cfg_lines: extra_cfg_lines.to_string(),
            port: 0,
            child: None,
            starts: 0,
            output_shown: false,
        };
        process.write_cfg();
        process
    }

    /// Writes zoo.cfg with a port that is free now.
    fn write_cfg(&mut self) {
        self.port = free_port();
        let data_dir = self.dir.path().join("data");
        fs::write(
            &self.cfg_path,
            zoo_cfg(&data_dir, self.port, &self.extra_cfg_lines),
        )
        .expect("writing zoo.cfg");
    }

    /// Starts the configured server and waits until it serves, moving to another port when
    /// another process took its port.
    fn launch(&mut self) {
        for attempt in 1..=PORT_ATTEMPTS {
            if attempt > 1 {
                self.write_cfg();
            }
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(StartError::PortTaken) if attempt < PORT_ATTEMPTS => continue,
                Err(e) => self.fail_start(e),
            }
        }
        unreachable!("the last attempt either returns or fails the test")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("server-{}.stderr", self.starts))
    }

    fn command(&self) -> Command {
        match self.kind {
            Impl::Ours => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkServer"));
                cmd.arg("start-foreground").arg(&self.cfg_path);
                cmd
            }
            Impl::Apache => {
                let mut cmd = Command::new("java");
                cmd.arg(format!(
                    "-Dlog4j.configuration=file:{}",
                    self.dir.path().join("log4j.properties").display()
                ))
                // A small, quick-starting JVM: the tests run many servers side by side.
                .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                .arg("-Dzookeeper.admin.enableServer=false")
                .arg("-cp")
                .arg(apache_classpath())
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(&self.cfg_path);
                cmd
            }
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        self.starts += 1;
        let stderr = File::create(self.stderr_path()).expect("creating the stderr capture file");
        let stdout = stderr.try_clone().expect("duplicating the capture file");
        let child = self
            .command()
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        self.child = Some(child);
        let timeout = match self.kind {
            Impl::Ours => OUR_START_TIMEOUT,
            Impl::Apache => APACHE_START_TIMEOUT,
        };
        let addr = self.addr();
        let mut last_error = String::from("no attempt yet");
        let mut exited = None;
        let ready = wait_until(
            || {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    exited = Some(status);
                    return true;
                }
                match probe_read(addr) {
                    Ok(()) => true,
                    Err(e) => {
                        last_error = e;
                        false
                    }
                }
            },
            timeout,
        );
        if let Some(status) = exited {
            self.child = None;
            let log = self.log();
            if log.contains("Address already in use") {
                return Err(StartError::PortTaken);
            }
            return Err(StartError::Exited(status));
        }
        if !ready {
            self.kill();
            return Err(StartError::NotServing(timeout, last_error));
        }
        // Another test's server may have taken the port between the probe
        // and our bind, and answered in our place while ours was failing:
        // make sure the server answering is the one whose directory we made.
        if let Ok(conf) = four_letter_at(addr, "conf") {
            let ours = self.dir.path().display().to_string();
            if conf.contains("dataDir=") && !conf.contains(&ours) {
                self.kill();
                return Err(StartError::PortTaken);
            }
        }
        Ok(())
    }

    fn fail_start(&mut self, e: StartError) -> ! {
        self.kill();
        self.output_shown = true;
        panic!(
            "{} did not start ({}) with config {}:\n--- zoo.cfg ---\n{}--- server output ({}) ---\n{}\n--- end ---",
            self.kind.name(),
            e,
            self.cfg_path.display(),
            fs::read_to_string(&self.cfg_path).unwrap_or_default(),
            self.stderr_path().display(),
            self.log()
        );
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.kind.name()));
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "sending SIGTERM: {}",
            std::io::Error::last_os_error()
        );
        let mut status = None;
        let exited = wait_until(
            || {
                status = child.try_wait().expect("waiting for the server");
                status.is_some()
            },
            STOP_TIMEOUT,
        );
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not exit within {:?} of SIGTERM; output:\n{}",
                self.kind.name(),
                STOP_TIMEOUT,
                self.log()
            );
        }
        status.expect("exit status after a successful wait")
    }

    fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if let Err(e) = self.spawn_and_wait() {
            self.fail_start(e);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.output_shown {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- last lines of {} output ({}) ---",
                self.kind.name(),
                self.stderr_path().display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            eprintln!("--- end ---");
        }
        self.kill();
        if std::env::var_os("ZKRS_KEEP_TEST_DIRS").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("keeping {}", self.dir.path().display());
        }
    }
}

#[derive(Debug)]
enum StartError {
    Spawn(String),
    Exited(ExitStatus),
    NotServing(Duration, String),
    PortTaken,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Spawn(e) => write!(f, "could not spawn: {e}"),
            StartError::Exited(status) => write!(f, "exited with {status} before serving"),
            StartError::NotServing(t, last) => {
                write!(f, "no successful read within {t:?}; last attempt: {last}")
            }
            StartError::PortTaken => write!(f, "its port was taken"),
        }
    }
}

/// A real session and a real read: `exists /zookeeper` must answer with a Stat.
fn probe_read(addr: SocketAddr) -> Result<(), String> {
    let mut client =
        raw::RawClient::connect(addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    let reply = client
        .call(
            raw::op::EXISTS,
            &raw::Body::new().string("/zookeeper").boolean(false),
        )
        .map_err(|e| e.to_string())?;
    let _ = client.close();
    if reply.err != 0 {
        return Err(format!(
            "exists /zookeeper answered {}",
            transcript::code_name(reply.err)
        ));
    }
    Ok(())
}

macro_rules! server_handle {
    ($name:ident, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $name {
            process: Process,
        }

        impl $name {
            /// Starts with the default configuration.
            pub fn start() -> Self {
                Self::start_with("")
            }

            /// Starts with extra zoo.cfg lines (`key=value`, one a line); `tickTime`,
            /// `4lw.commands.whitelist` and `admin.enableServer` given here replace the defaults.
            pub fn start_with(extra_cfg_lines: &str) -> Self {
                Self {
                    process: Process::start($kind, extra_cfg_lines),
                }
            }

            /// Writes the configuration (with an empty dataDir) without starting, so a test
            /// can prepare the data first; [`Self::launch`] starts it.
            pub fn configure(extra_cfg_lines: &str) -> Self {
                Self {
                    process: Process::configure($kind, extra_cfg_lines),
                }
            }

            /// Starts a configured server and waits until it serves.
            pub fn launch(&mut self) {
                assert!(self.process.child.is_none(), "already running");
                self.process.launch()
            }

            /// The zoo.cfg the server was started with.
            pub fn cfg_path(&self) -> &Path {
                &self.process.cfg_path
            }

            /// Freezes the process (SIGSTOP): its sockets stay open, nothing is answered.
            pub fn pause(&self) {
                self.signal(nix::sys::signal::Signal::SIGSTOP);
            }

            /// Lets a paused process run again (SIGCONT).
            pub fn resume(&self) {
                self.signal(nix::sys::signal::Signal::SIGCONT);
            }

            fn signal(&self, signal: nix::sys::signal::Signal) {
                let child = self.process.child.as_ref().expect("a running server");
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                nix::sys::signal::kill(pid, signal).expect("signalling the server");
            }

            /// Whether the process is still alive.
            pub fn is_running(&mut self) -> bool {
                match self.process.child.as_mut() {
                    Some(child) => child.try_wait().ok().flatten().is_none(),
                    None => false,
                }
            }
        }

        impl ZkUnderTest for $name {
            fn name(&self) -> &'static str {
                $kind.name()
            }
            fn addr(&self) -> SocketAddr {
                self.process.addr()
            }
            fn kill(&mut self) {
                self.process.kill()
            }
            fn stop(&mut self) -> ExitStatus {
                self.process.stop()
            }
            fn restart(&mut self) {
                self.process.restart()
            }
            fn data_dir(&self) -> PathBuf {
                self.process.dir.path().join("data")
            }
            fn log(&self) -> String {
                self.process.log()
            }
        }
    };
}

server_handle!(
    Server,
    Impl::Ours,
    "Our `zkServer` binary, run as `zkServer start-foreground zoo.cfg`."
);
server_handle!(
    ApacheServer,
    Impl::Apache,
    "Debian's Apache ZooKeeper 3.8 (standalone `QuorumPeerMain`), the reference implementation."
);
