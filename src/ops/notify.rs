//! systemd's readiness protocol (`sd_notify`): READY=1 once the server serves
//! clients, STATUS= lines saying what it does, WATCHDOG=1 pings when the unit
//! asks for them, STOPPING=1 on shutdown. Without `NOTIFY_SOCKET` every call
//! is a no-op, so the same code runs under systemd and anywhere else.
//!
//! Readiness is observed from outside, the way a client would see it: the
//! server's own client port must answer `srvr` with a `Mode:` line. That holds
//! only once the listener is accepting and the state it serves is loaded, and
//! keeps holding the meaning "serves clients" when recovery or joining an
//! ensemble come before serving (a member that has not joined answers without
//! a mode).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, info, warn};

use super::probe::{self, SrvrReport};

/// Sends notifications to the service manager, if there is one.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Notifies when `NOTIFY_SOCKET` is set.
    pub fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty()),
        }
    }

    /// Never notifies.
    pub fn disabled() -> Notifier {
        Notifier { enabled: false }
    }

    /// Whether a service manager listens.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        // A service manager that went away cannot be told anything; the
        // server goes on serving regardless.
        if let Err(e) = sd_notify::notify(states) {
            debug!(error = %e, "cannot notify the service manager");
        }
    }

    /// `STATUS=text`.
    pub fn status(&self, text: &str) {
        self.send(&[NotifyState::Status(text)]);
    }

    /// `READY=1` with `STATUS=status`, in one message.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `STOPPING=1` with `STATUS=status`, in one message.
    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// recommends, when the service manager asked this process for pings.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|timeout| !timeout.is_zero())
        .map(|timeout| timeout / 2)
}

/// The STATUS= text for a server serving in `mode` (`srvr`'s `Mode:`).
pub fn serving_status(mode: &str) -> String {
    format!("serving as {mode}")
}

/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Probes that fail before a warning says so.
const QUIET_FAILURES: u32 = 50;

/// Probes the server listening on `listen` until it answers `srvr` with a
/// mode, then sends READY=1 with `STATUS=serving as <mode>` and returns what
/// it answered. Runs until then: how long start-up may take is the service
/// manager's decision (`TimeoutStartSec=`).
pub async fn announce_when_serving(notifier: Notifier, listen: SocketAddr) -> SrvrReport {
    let addr = probe::reachable_addr(listen);
    let mut pause = Duration::from_millis(10);
    let mut failures = 0u32;
    let mut said_waiting = false;
    loop {
        match probe::ask_async(addr, "srvr", PROBE_TIMEOUT).await {
            Ok(answer) => {
                let report = SrvrReport::parse(&answer);
                if let Some(mode) = &report.mode {
                    let status = serving_status(mode);
                    notifier.ready(&status);
                    info!(%addr, mode = %mode, "ready: {status}");
                    return report;
                }
                if !said_waiting {
                    said_waiting = true;
                    notifier.status("waiting to join the ensemble");
                }
            }
            Err(e) => {
                failures += 1;
                if failures == QUIET_FAILURES {
                    warn!(%addr, error = %e, "the client port does not answer srvr yet; still trying");
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// After READY, keeps `STATUS=` in step with the server's mode (`mode`
/// returns what `srvr` prints after `Mode:`): an ensemble member that
/// becomes leader, loses its quorum or serves read-only says so in
/// `systemctl status`. Checks every `period`.
pub async fn follow_mode(
    notifier: Notifier,
    period: Duration,
    mode: impl Fn() -> &'static str + Send + 'static,
) {
    let mut said = mode();
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = mode();
        if now != said {
            let status = if now == "looking" {
                "looking for a quorum; not serving clients".to_string()
            } else {
                serving_status(now)
            };
            notifier.status(&status);
            info!(from = said, to = now, "mode changed");
            said = now;
        }
    }
}

/// Pings the watchdog every `period` while `liveness` returns within half a
/// period. `liveness` runs on the blocking pool and should take the locks a
/// wedged server would hold forever: a server stuck there stops pinging, and
/// the service manager restarts it after its WatchdogSec=.
pub async fn keep_watchdog(
    notifier: Notifier,
    period: Duration,
    liveness: Arc<dyn Fn() + Send + Sync>,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A check still running from an earlier tick is awaited again rather than
    // joined by another, so a wedged lock holds at most one blocking thread.
    let mut unfinished: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        ticks.tick().await;
        let mut check = unfinished.take().unwrap_or_else(|| {
            let liveness = liveness.clone();
            tokio::task::spawn_blocking(move || liveness())
        });
        match tokio::time::timeout(period / 2, &mut check).await {
            Ok(Ok(())) => notifier.watchdog(),
            Ok(Err(e)) => {
                warn!(error = %e, "the liveness check failed; withholding the watchdog ping")
            }
            Err(_) => {
                warn!(
                    "the server's state has stayed locked for over {:?}; withholding the watchdog ping",
                    period / 2
                );
                unfinished = Some(check);
            }
        }
    }
}
