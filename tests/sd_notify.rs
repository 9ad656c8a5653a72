//! systemd's readiness protocol, seen from a socket the test owns in place of
//! systemd: `zkServer start-foreground` with `NOTIFY_SOCKET` (and
//! `WATCHDOG_USEC`) says STATUS while starting, READY=1 only once its client
//! port answers, pings the watchdog, and says STOPPING=1 on SIGTERM.

mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::four_letter_at;
use tempfile::TempDir;

const ZKSERVER: &str = env!("CARGO_BIN_EXE_zkServer");

/// The notification socket and the server reporting to it.
struct Notified {
    dir: TempDir,
    socket: UnixDatagram,
    server: Child,
    addr: SocketAddr,
}

impl Notified {
    /// Starts a server on a free port; `configure` adds to its environment.
    fn start(configure: impl FnOnce(&mut Command)) -> Notified {
        let port = {
            let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            probe.local_addr().unwrap().port()
        };
        Self::start_on(port, configure)
    }

    /// Starts a server configured for `port`.
    fn start_on(port: u16, configure: impl FnOnce(&mut Command)) -> Notified {
        let dir = tempfile::Builder::new()
            .prefix("zkrs-notify-")
            .tempdir()
            .unwrap();
        let socket_path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        let cfg = dir.path().join("zoo.cfg");
        fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut command = Command::new(ZKSERVER);
        command
            .arg("start-foreground")
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("ZOO_LOG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs::File::create(dir.path().join("server.stderr")).unwrap(),
            ));
        configure(&mut command);
        let server = command.spawn().unwrap();
        Notified {
            dir,
            socket,
            server,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        }
    }

    /// The next datagram, or `None` after `timeout`.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                None
            }
            Err(e) => panic!("reading the notification socket: {e}"),
        }
    }

    /// Messages until one satisfies `wanted` (returned last), within `timeout`.
    fn until(&self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no wanted message within {timeout:?}; got {seen:?}; server stderr:\n{}",
                self.stderr()
            );
            if let Some(message) = self.next(left) {
                let done = wanted(&message);
                seen.push(message);
                if done {
                    return seen;
                }
            }
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.stderr")).unwrap_or_default()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the child this test spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(self.server.id() as i32, signal) }, 0);
    }

    /// Waits for the server to exit, killing it after `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.server.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.server.kill();
                panic!("the server did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn lines(message: &str) -> Vec<&str> {
    message.lines().collect()
}

#[test]
fn ready_follows_a_serving_port_then_watchdog_pings_and_stopping_on_sigterm() {
    let mut notified = Notified::start(|command| {
        command.env("WATCHDOG_USEC", "1000000");
    });

    let before_ready = notified.until(Duration::from_secs(20), |m| lines(m).contains(&"READY=1"));
    // The moment READY=1 arrives the port must already serve: no retry here.
    let srvr = four_letter_at(notified.addr, "srvr").expect("the client port answers at READY");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");

    let ready = before_ready.last().unwrap();
    assert!(
        lines(ready).contains(&"STATUS=serving as standalone"),
        "{ready:?}"
    );
    assert!(
        before_ready
            .iter()
            .any(|m| lines(m).contains(&"STATUS=recovering")),
        "a STATUS line before READY: {before_ready:?}"
    );

    // Pings every half WATCHDOG_USEC: in 2.2 s at least 3 (allowing a late
    // tick on a busy machine), and not a flood.
    let window = Instant::now() + Duration::from_millis(2200);
    let mut pings = 0;
    while let Some(left) = window.checked_duration_since(Instant::now()) {
        match notified.next(left) {
            Some(message) if lines(&message).contains(&"WATCHDOG=1") => pings += 1,
            Some(other) => panic!("unexpected message while serving: {other:?}"),
            None => break,
        }
    }
    assert!((3..=7).contains(&pings), "{pings} watchdog pings in 2.2 s");

    notified.signal(libc::SIGTERM);
    let stopping = notified.until(Duration::from_secs(10), |m| {
        lines(m).contains(&"STOPPING=1")
    });
    assert!(
        lines(stopping.last().unwrap())
            .iter()
            .any(|l| l.starts_with("STATUS=stopping")),
        "{stopping:?}"
    );
    let status = notified.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[test]
fn without_watchdog_usec_there_are_no_pings_and_sigint_also_stops() {
    let mut notified = Notified::start(|_| {});
    notified.until(Duration::from_secs(20), |m| lines(m).contains(&"READY=1"));
    assert_eq!(notified.next(Duration::from_millis(1500)), None);
    notified.signal(libc::SIGINT);
    notified.until(Duration::from_secs(10), |m| {
        lines(m).contains(&"STOPPING=1")
    });
    assert!(notified.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_server_that_cannot_serve_never_says_ready() {
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = squatter.local_addr().unwrap().port();
    let mut notified = Notified::start_on(port, |command| {
        command.env("WATCHDOG_USEC", "1000000");
    });
    let status = notified.wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    let mut messages = Vec::new();
    while let Some(message) = notified.next(Duration::from_millis(200)) {
        messages.push(message);
    }
    assert!(
        !messages.iter().any(|m| lines(m).contains(&"READY=1")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("STATUS=failed to start")),
        "{messages:?}"
    );
    drop(squatter);
}
