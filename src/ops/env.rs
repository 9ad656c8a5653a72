//! Where the configuration, pidfile and logs live, following the conventions of
//! Apache's `zkEnv.sh` and `zkServer.sh` so that operators' habits carry over:
//!
//! - `ZOOCFGDIR` (or `zkServer --config DIR`): the configuration directory;
//!   `/etc/zookeeper` here, where the packages install it.
//! - `ZOOCFG`, or the verb's argument: the file. A bare name is looked up in
//!   the configuration directory, anything with a `/` is a path.
//! - `ZOOPIDFILE`: the pidfile, else `dataDir/zookeeper_server.pid`.
//! - `ZOO_LOG_DIR`: where a daemon's output (`zookeeper-USER-server-HOST.out`)
//!   and the log file (`ZOO_LOG_FILE`, else `zookeeper-USER-server-HOST.log`)
//!   go. Unset, a daemon's output goes to the dataDir and logs to stderr.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::properties::Properties;

/// The configuration directory when neither `--config` nor `ZOOCFGDIR` says otherwise.
pub const DEFAULT_CONF_DIR: &str = "/etc/zookeeper";
/// The configuration file's name when neither an argument nor `ZOOCFG` names one.
pub const DEFAULT_CONFIG_NAME: &str = "zoo.cfg";
/// The pidfile's name inside the dataDir, as Apache's script names it.
pub const PIDFILE_NAME: &str = "zookeeper_server.pid";

/// Why a zoo.cfg could not be read for the operations commands.
#[derive(Debug, thiserror::Error)]
pub enum CfgError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}, line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: dataDir is not set")]
    NoDataDir { path: PathBuf },
}

/// A non-empty environment variable.
fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The configuration directory: `--config DIR`, else `ZOOCFGDIR`, else
/// [`DEFAULT_CONF_DIR`].
pub fn conf_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| env_var("ZOOCFGDIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONF_DIR))
}

/// The configuration file: the verb's argument, else `ZOOCFG`, else `zoo.cfg`.
///
/// As in Apache's script a bare file name is taken from `conf_dir`, and a name
/// with a directory part is a path. Unlike it, a bare name that is missing from
/// `conf_dir` but present in the working directory is taken from there, which
/// is what someone typing `zkServer start-foreground zoo.cfg` next to the file
/// means.
pub fn config_path(conf_dir: &Path, explicit: Option<&Path>) -> PathBuf {
    let name = explicit
        .map(Path::to_path_buf)
        .or_else(|| env_var("ZOOCFG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_NAME));
    let bare = name.components().count() == 1 && !name.is_absolute();
    if !bare {
        return name;
    }
    let in_conf_dir = conf_dir.join(&name);
    if !in_conf_dir.exists() && name.is_file() {
        return name;
    }
    in_conf_dir
}

/// The pidfile: `ZOOPIDFILE`, else `data_dir/zookeeper_server.pid`.
pub fn pidfile_path(data_dir: &Path) -> PathBuf {
    env_var("ZOOPIDFILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join(PIDFILE_NAME))
}

/// `ZOO_LOG_DIR`, when set.
pub fn log_dir() -> Option<PathBuf> {
    env_var("ZOO_LOG_DIR").map(PathBuf::from)
}

/// The log file's name inside [`log_dir`]: `ZOO_LOG_FILE`, else
/// `zookeeper-USER-server-HOST.log`.
pub fn log_file_name() -> String {
    env_var("ZOO_LOG_FILE")
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("zookeeper-{}-server-{}.log", user_name(), host_name()))
}

/// Where a daemon's stdout and stderr go: `zookeeper-USER-server-HOST.out` in
/// [`log_dir`], else in the dataDir.
pub fn daemon_out_path(data_dir: &Path) -> PathBuf {
    let name = format!("zookeeper-{}-server-{}.out", user_name(), host_name());
    log_dir()
        .unwrap_or_else(|| data_dir.to_path_buf())
        .join(name)
}

/// The user's name: `USER`, else the password database's name for our uid,
/// else the uid itself (services often run without `USER`).
pub fn user_name() -> String {
    if let Some(user) = env_var("USER") {
        return user.to_string_lossy().into_owned();
    }
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

/// This machine's host name, `localhost` if it has none.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// zoo.cfg read leniently, key by key, the way Apache's shell scripts grep it:
/// no validation beyond the properties syntax, so that `stop` and `status`
/// keep working on a file the server itself would now refuse.
#[derive(Debug, Clone)]
pub struct RawConfig {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

impl RawConfig {
    /// Reads `path` (UTF-8, or byte for byte as ISO-8859-1 like Java).
    pub fn read(path: &Path) -> Result<RawConfig, CfgError> {
        let bytes = std::fs::read(path).map_err(|source| CfgError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(not_utf8) => not_utf8.into_bytes().into_iter().map(char::from).collect(),
        };
        Self::parse(&text, path)
    }

    /// Parses zoo.cfg text; `path` names it in errors and anchors nothing else.
    pub fn parse(text: &str, path: &Path) -> Result<RawConfig, CfgError> {
        let properties = Properties::parse(text).map_err(|e| CfgError::Syntax {
            path: path.to_owned(),
            line: e.line,
            message: e.message,
        })?;
        let values = properties
            .iter()
            .map(|p| (p.key.trim().to_owned(), p.value.trim().to_owned()))
            .collect();
        Ok(RawConfig {
            path: path.to_owned(),
            values,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A key's trimmed value, `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every `server.N` line as (N, value), in id order; lines whose N is not a
    /// number are skipped.
    pub fn server_lines(&self) -> Vec<(u64, &str)> {
        let mut lines: Vec<(u64, &str)> = self
            .values
            .iter()
            .filter_map(|(key, value)| {
                let id = key.strip_prefix("server.")?.parse::<u64>().ok()?;
                Some((id, value.as_str()))
            })
            .collect();
        lines.sort_by_key(|(id, _)| *id);
        lines
    }

    /// `dataDir`, which every server configuration has.
    pub fn data_dir(&self) -> Result<PathBuf, CfgError> {
        self.get("dataDir")
            .map(PathBuf::from)
            .ok_or_else(|| CfgError::NoDataDir {
                path: self.path.clone(),
            })
    }

    /// The server id in `dataDir/myid`, when that file holds a number.
    pub fn my_id(&self) -> Option<u64> {
        let data_dir = self.data_dir().ok()?;
        let text = std::fs::read_to_string(data_dir.join("myid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_come_from_the_conf_dir_and_paths_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("other.cfg"), "dataDir=/x\n").unwrap();
        assert_eq!(
            config_path(dir.path(), Some(Path::new("other.cfg"))),
            dir.path().join("other.cfg")
        );
        assert_eq!(
            config_path(dir.path(), Some(Path::new("/srv/zk/zoo.cfg"))),
            PathBuf::from("/srv/zk/zoo.cfg")
        );
        assert_eq!(
            config_path(dir.path(), Some(Path::new("sub/zoo.cfg"))),
            PathBuf::from("sub/zoo.cfg")
        );
    }

    #[test]
    fn raw_config_reads_values_and_server_lines_without_validating() {
        let raw = RawConfig::parse(
            "dataDir = /var/lib/zk\nclientPort=notanumber\nserver.2=b:1:2;2182\nserver.1=a:1:2\nserver.x=zzz\n",
            Path::new("zoo.cfg"),
        )
        .unwrap();
        assert_eq!(raw.data_dir().unwrap(), PathBuf::from("/var/lib/zk"));
        assert_eq!(raw.get("clientPort"), Some("notanumber"));
        assert_eq!(raw.server_lines(), vec![(1, "a:1:2"), (2, "b:1:2;2182")]);
        assert!(RawConfig::parse("tickTime=1\n", Path::new("z"))
            .unwrap()
            .data_dir()
            .is_err());
    }
}
