//! Running a server in the background and stopping it.
//!
//! `zkServer start` runs `zkServer start-foreground` as a child in a new
//! session (`setsid`), with stdin from /dev/null and stdout and stderr
//! appended to a file, records its pid and exits: the child is then adopted by
//! init. One fork is enough because the server never opens a terminal, so it
//! cannot acquire a controlling terminal even as a session leader; a second
//! fork would only hide the pid the pidfile has to record.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::pidfile::is_running;

/// Starts `program args…` detached from this terminal and session, its
/// output appended to `out`, with `envs` added to the environment.
pub fn spawn_detached<I, S>(
    program: &Path,
    args: I,
    envs: &[(&str, &OsStr)],
    out: &Path,
) -> io::Result<Child>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let output = OpenOptions::new().create(true).append(true).open(out)?;
    let errors = output.try_clone()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::from(File::open("/dev/null")?))
        .stdout(Stdio::from(output))
        .stderr(Stdio::from(errors));
    for (key, value) in envs {
        command.env(key, value);
    }
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
    }
    command.spawn()
}

/// Polls until `pid` has exited or `timeout` passes; whether it exited.
pub fn wait_for_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if !is_running(pid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    NotRunning,
    /// It exited after SIGTERM.
    Gracefully,
    /// It ignored SIGTERM for the whole grace period and was killed.
    Killed,
}

/// Why a process could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("cannot signal process {pid}: {source}")]
    Signal { pid: u32, source: nix::Error },
    #[error("process {pid} is still running after SIGKILL")]
    Unkillable { pid: u32 },
}

/// How long a killed process may take to disappear.
const AFTER_KILL: Duration = Duration::from_secs(10);

/// Sends SIGTERM and waits up to `grace` for the process to exit, then sends
/// SIGKILL.
pub fn stop(pid: u32, grace: Duration) -> Result<Stopped, StopError> {
    let Some(target) = i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
    else {
        return Ok(Stopped::NotRunning);
    };
    if !is_running(pid) {
        return Ok(Stopped::NotRunning);
    }
    match kill(target, Signal::SIGTERM) {
        Ok(()) => {}
        Err(nix::Error::ESRCH) => return Ok(Stopped::NotRunning),
        Err(source) => return Err(StopError::Signal { pid, source }),
    }
    if wait_for_exit(pid, grace) {
        return Ok(Stopped::Gracefully);
    }
    match kill(target, Signal::SIGKILL) {
        Ok(()) => {}
        Err(nix::Error::ESRCH) => return Ok(Stopped::Gracefully),
        Err(source) => return Err(StopError::Signal { pid, source }),
    }
    if wait_for_exit(pid, AFTER_KILL) {
        Ok(Stopped::Killed)
    } else {
        Err(StopError::Unkillable { pid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_child_runs_in_its_own_session_and_stops_on_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("logs/child.out");
        let mut child = spawn_detached(
            Path::new("/bin/sh"),
            ["-c", "echo \"$GREETING\"; exec sleep 30"],
            &[("GREETING", OsStr::new("hello"))],
            &out,
        )
        .unwrap();
        let pid = child.id();
        let session = nix::unistd::getsid(Some(Pid::from_raw(pid as i32))).unwrap();
        assert_eq!(session.as_raw(), pid as i32);
        // Reap in the background so that the exit is seen (a test process is
        // the child's parent, unlike zkServer start which exits).
        let reaper = std::thread::spawn(move || child.wait());
        assert!(crate::ops::pidfile::is_running(pid));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&out).unwrap() != "hello\n" {
            assert!(Instant::now() < deadline, "the child wrote nothing");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            stop(pid, Duration::from_secs(10)).unwrap(),
            Stopped::Gracefully
        );
        reaper.join().unwrap().unwrap();
        assert_eq!(
            stop(pid, Duration::from_secs(1)).unwrap(),
            Stopped::NotRunning
        );
    }
}
