//! The pidfile `zkServer start` writes and `stop` reads: the process id as
//! decimal digits, as Apache's script writes it.

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Why a pidfile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} does not hold a process id (found {found:?})")]
    Garbage { path: PathBuf, found: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// A pidfile at a path.
#[derive(Debug, Clone)]
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    pub fn new(path: impl Into<PathBuf>) -> Pidfile {
        Pidfile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded process id; `None` when there is no pidfile.
    pub fn read(&self) -> Result<Option<u32>, PidfileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PidfileError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let trimmed = text.trim();
        match trimmed.parse::<u32>() {
            Ok(pid) if pid > 0 && i32::try_from(pid).is_ok() => Ok(Some(pid)),
            _ => Err(PidfileError::Garbage {
                path: self.path.clone(),
                found: trimmed.chars().take(40).collect(),
            }),
        }
    }

    /// Records `pid`, replacing the file atomically so that a reader never
    /// sees half of it. Creates the parent directory, as Apache's script does.
    pub fn write(&self, pid: u32) -> Result<(), PidfileError> {
        let failed = |source| PidfileError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, pid.to_string()).map_err(failed)?;
        std::fs::rename(&temporary, &self.path).map_err(failed)
    }

    /// Removes the pidfile; a missing one is already removed.
    pub fn remove(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn nix_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

/// Whether process `pid` exists and has not exited (a zombie waiting for its
/// parent to reap it has exited).
pub fn is_running(pid: u32) -> bool {
    let Some(target) = nix_pid(pid) else {
        return false;
    };
    match kill(target, None) {
        Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

/// Linux's `/proc/PID/stat` state field; `false` where it cannot be read.
fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The command name in parentheses may itself hold spaces and parentheses:
    // the state follows the last closing one.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

/// Whether `pid` looks like a server we started: its command line has the
/// `start-foreground` verb. A pidfile left behind by a crash may name a
/// process id that now belongs to something else, which must not be signalled.
/// Without `/proc` this cannot be told, and the pidfile is trusted, as
/// Apache's script trusts it.
pub fn is_server_process(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == b"start-foreground"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => !Path::new("/proc/self").exists(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = Pidfile::new(dir.path().join("sub/zookeeper_server.pid"));
        assert_eq!(pidfile.read().unwrap(), None);
        pidfile.write(4242).unwrap();
        assert_eq!(pidfile.read().unwrap(), Some(4242));
        std::fs::write(pidfile.path(), "not a pid").unwrap();
        assert!(matches!(pidfile.read(), Err(PidfileError::Garbage { .. })));
        pidfile.remove().unwrap();
        pidfile.remove().unwrap();
    }

    #[test]
    fn this_process_runs_and_is_not_a_server() {
        assert!(is_running(std::process::id()));
        assert!(!is_server_process(std::process::id()));
        assert!(!is_running(0));
    }
}
