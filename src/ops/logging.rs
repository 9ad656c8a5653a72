//! Where the server's log goes, and at what level.
//!
//! The target, first match wins:
//! 1. `--log-file PATH`: that file.
//! 2. stderr connected to the journal (`JOURNAL_STREAM` names stderr's device
//!    and inode, as systemd sets it for a service): journald, natively, with
//!    structured fields. Event fields get the prefix `ZK_` (`ZK_SESSION`,
//!    `ZK_ZXID`, …) and every entry carries `ZK_MYID` when the server has an
//!    id. If the journal socket cannot be reached, stderr (which the journal
//!    reads anyway).
//! 3. `ZOO_LOG_DIR`: the file `ZOO_LOG_FILE` (default
//!    `zookeeper-USER-server-HOST.log`) in it.
//! 4. stderr.
//!
//! A log file is reopened by [`Logging::reopen`], which the server calls on
//! SIGHUP, so that logrotate can move it away and signal.
//!
//! The level: `ZOO_LOG_LEVEL`, else `RUST_LOG` (either a level or tracing
//! directives such as `info,zookeeper_rs::server=debug`), else the
//! configuration's `zookeeper-rs.logLevel`, else INFO. The environment wins
//! because it is the per-run override; the file holds the standing choice.
//!
//! Unless the directives name `openraft`, its `openraft::replication` target
//! is off: openraft logs a WARN and an ERROR for every RPC to a peer that is
//! down (several a second, for as long as it is down). The peer transport
//! reports the same fact once instead: a WARN when a peer stops answering,
//! an INFO when it answers again.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use super::env;

/// Prefix of the journal fields the server's events carry.
pub const JOURNAL_FIELD_PREFIX: &str = "ZK";
/// The journal field holding the server id.
pub const JOURNAL_MYID_FIELD: &str = "ZK_MYID";

/// Where the log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Journald,
    File(PathBuf),
    Stderr,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open the log file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Whether stderr is the journal stream systemd connected, per `JOURNAL_STREAM`.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let stream = stream.to_string_lossy();
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(io::stderr().as_raw_fd()) {
        // dev_t and ino_t are narrower than u64 on some platforms.
        #[allow(clippy::unnecessary_cast)]
        Ok(stat) => stat.st_dev as u64 == dev && stat.st_ino as u64 == ino,
        Err(_) => false,
    }
}

/// Chooses the target as the module documentation says.
pub fn choose_target(log_file: Option<&Path>) -> Target {
    if let Some(path) = log_file {
        return Target::File(path.to_path_buf());
    }
    if stderr_is_journal() {
        return Target::Journald;
    }
    if let Some(dir) = env::log_dir() {
        return Target::File(dir.join(env::log_file_name()));
    }
    Target::Stderr
}

/// The level filter, and a complaint about an environment value that was not
/// understood (it is then ignored).
pub fn level_filter(from_config: Option<LevelFilter>) -> (EnvFilter, Option<String>) {
    let mut complaint = None;
    for var in ["ZOO_LOG_LEVEL", "RUST_LOG"] {
        let Some(value) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        match EnvFilter::try_new(value.trim()) {
            Ok(filter) if value.contains("openraft") => return (filter, complaint),
            Ok(filter) => return (quiet_openraft(filter), complaint),
            Err(e) => {
                complaint.get_or_insert_with(|| format!("ignoring {var}={value:?}: {e}"));
            }
        }
    }
    let level = from_config.unwrap_or(LevelFilter::INFO);
    (
        quiet_openraft(EnvFilter::default().add_directive(level.into())),
        complaint,
    )
}

/// Turns off openraft's per-RPC replication errors (see the module docs).
fn quiet_openraft(filter: EnvFilter) -> EnvFilter {
    match "openraft::replication=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// A log file that can be reopened under the same name.
#[derive(Debug, Clone)]
pub struct ReopenableFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl ReopenableFile {
    /// Opens `path` for appending, creating it and its directory.
    pub fn open(path: &Path) -> io::Result<ReopenableFile> {
        Ok(ReopenableFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(Self::open_file(path)?)),
        })
    }

    fn open_file(path: &Path) -> io::Result<File> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        OpenOptions::new().create(true).append(true).open(path)
    }

    fn lock(&self) -> MutexGuard<'_, File> {
        // A panic while writing a log line leaves the file usable.
        self.file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens the path again and writes there from now on; the old file is
    /// closed. On failure, writing goes on to the old file.
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = Self::open_file(&self.path)?;
        *self.lock() = fresh;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for ReopenableFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Each event arrives as one formatted buffer: writing it whole under
        // the lock keeps lines from different threads apart.
        self.lock().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

/// What logging was set up to do.
#[derive(Debug)]
pub struct Logging {
    target: Target,
    file: Option<ReopenableFile>,
    notes: Vec<String>,
}

impl Logging {
    /// Where the log goes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Remarks to log once logging works (a fallback taken, a level ignored).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Reopens the log file, if logging to one.
    pub fn reopen(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.reopen(),
            None => Ok(()),
        }
    }
}

/// Installs the global logger: `target`, at the level of [`level_filter`],
/// with `my_id` as a journal field.
pub fn init(
    target: Target,
    level_from_config: Option<LevelFilter>,
    my_id: Option<u64>,
) -> Result<Logging, LogError> {
    let (filter, complaint) = level_filter(level_from_config);
    let mut notes: Vec<String> = complaint.into_iter().collect();
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match &target {
        Target::Journald => match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_field_prefix(Some(JOURNAL_FIELD_PREFIX.to_owned()))
                    .with_custom_fields(my_id.map(|id| (JOURNAL_MYID_FIELD, id.to_string())));
                registry.with(layer).try_init()
            }
            Err(e) => {
                notes.push(format!(
                    "journald is not reachable ({e}); logging to stderr instead"
                ));
                registry.with(stderr_layer()).try_init()
            }
        },
        Target::File(path) => {
            let file = ReopenableFile::open(path).map_err(|source| LogError::Open {
                path: path.clone(),
                source,
            })?;
            let writer = file.clone();
            let installed = registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(move || writer.clone()),
                )
                .try_init();
            return installed
                .map(|()| Logging {
                    target: target.clone(),
                    file: Some(file),
                    notes,
                })
                .map_err(|e| LogError::AlreadyInstalled(e.to_string()));
        }
        Target::Stderr => registry.with(stderr_layer()).try_init(),
    };
    installed.map_err(|e| LogError::AlreadyInstalled(e.to_string()))?;
    Ok(Logging {
        target,
        file: None,
        notes,
    })
}

fn stderr_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_file_wins() {
        assert_eq!(
            choose_target(Some(Path::new("/tmp/x.log"))),
            Target::File(PathBuf::from("/tmp/x.log"))
        );
    }

    #[test]
    fn a_reopened_file_is_written_under_its_name_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/zk.log");
        let mut file = ReopenableFile::open(&path).unwrap();
        file.write_all(b"one\n").unwrap();
        let rotated = dir.path().join("logs/zk.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        file.write_all(b"two\n").unwrap();
        file.reopen().unwrap();
        file.write_all(b"three\n").unwrap();
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
