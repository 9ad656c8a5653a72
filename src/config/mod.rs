//! zoo.cfg, read the way Apache ZooKeeper 3.9 reads it, into a typed [`ServerConfig`].
//!
//! The file is Java properties text ([`properties`]). Keys and values are trimmed, as Apache
//! trims them. A value that cannot be used is a [`ConfigError`] naming the file, line, key
//! and what was expected; a key nobody knows is only a [`ConfigWarning`], because Apache
//! silently turns unknown keys into `zookeeper.<key>` system properties and many real
//! files carry such leftovers.
//!
//! Decisions where we differ from Apache, or where Apache leaves room:
//! - Bad values fail loading even for settings Apache reads through
//!   `Integer.getInteger`/`Boolean.parseBoolean`, which silently fall back to defaults:
//!   `skipACL=true` disables nothing in Apache (only `yes` does), so here anything other
//!   than `yes`/`no` is an error rather than a quiet surprise. The same holds for
//!   `forceSync` and `leaderServes`.
//! - Server ids are limited to 0..=255 (254 with `extendedTypesEnabled`). Apache accepts
//!   any `long` but puts the id in the top byte of every session id, so larger ids make
//!   sessions of different servers collide. Apache's guide documents 1..=255; its code
//!   accepts 0, so we do too.
//! - `4lw.commands.whitelist` may be separated by commas and/or whitespace (Apache splits
//!   on commas only, so `stat ruok` enables nothing there). Unknown words are warnings.
//! - `jute.maxbuffer` and `readonlymode.enabled` are Java system properties only in
//!   Apache; we accept them in zoo.cfg too.
//! - A relative `dataDir`/`dataLogDir` is resolved against the working directory, as in
//!   Apache, with Apache's warning unless it starts with `./`.
//! - The file is decoded as UTF-8, or byte-for-byte as ISO-8859-1 (Java's reading) when it
//!   is not valid UTF-8.
//!
//! Our own setting: [`LOG_LEVEL_KEY`] (`zookeeper-rs.logLevel`), the log level.

pub mod properties;

mod flags;
mod keys;
mod servers;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use tracing::level_filters::LevelFilter;

use properties::Properties;
use servers::{parse_peer_type, parse_server_line};
pub use servers::{ClientEndpoint, PeerType, QuorumAddress, ServerSpec};

/// Apache's default tick, in milliseconds (`ZooKeeperServer.DEFAULT_TICK_TIME`).
pub const DEFAULT_TICK_TIME_MS: u32 = 3000;
/// Apache's default largest frame (`jute.maxbuffer`), in bytes.
pub const DEFAULT_JUTE_MAX_BUFFER: u32 = 0xfffff;
/// Fewest snapshots auto-purge may keep; Apache raises smaller values to this.
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;
/// Default `commitLogCount`: transactions the replicated log keeps before
/// its latest snapshot.
pub const DEFAULT_COMMIT_LOG_COUNT: u32 = 1000;
/// Largest server id: session ids carry the server id in their top byte.
pub const MAX_SERVER_ID: u64 = 255;
/// Largest server id when extended types (TTL nodes) are on; Apache's
/// `EphemeralType.MAX_EXTENDED_SERVER_ID`.
pub const MAX_EXTENDED_TYPES_SERVER_ID: u64 = 254;
/// Our zoo.cfg key (and `-D` property) for the log level: one of off, error, warn, info,
/// debug, trace (log4j's fatal and all are accepted too).
pub const LOG_LEVEL_KEY: &str = "zookeeper-rs.logLevel";
/// The four-letter words Apache 3.9 knows.
pub const FOUR_LETTER_WORDS: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

const INT_MAX: i64 = i32::MAX as i64;

/// Where a setting came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A line of a configuration file.
    Line {
        /// The file, as named by the caller.
        origin: String,
        /// 1-based line.
        line: usize,
    },
    /// A whole file (a setting that is missing, or a problem spanning lines).
    File {
        /// The file, as named by the caller.
        origin: String,
    },
    /// `-D` flags given to [`ServerConfig::apply_jvm_flags`].
    JvmFlags,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { origin, line } => write!(f, "{origin}:{line}"),
            Location::File { origin } => write!(f, "{origin}"),
            Location::JvmFlags => write!(f, "JVM flags"),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// The text is not valid properties syntax.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A value of the wrong form.
    #[error("{at}: {key}: expected {expected}, found {found:?}")]
    BadValue {
        /// Where.
        at: Location,
        /// The key as written.
        key: String,
        /// What would be accepted.
        expected: String,
        /// The value found.
        found: String,
    },
    /// Settings that are each well formed but cannot be used (together).
    #[error("{at}: {key}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// The key concerned.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The `myid` file holds no usable server id.
    #[error("{}: {message}", path.display())]
    MyId {
        /// The myid file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A problem that does not stop the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where.
    pub at: Location,
    /// The key concerned.
    pub key: String,
    /// What happened.
    pub kind: WarningKind,
}

/// The kinds of [`ConfigWarning`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// Neither Apache nor this server documents the key; it is ignored.
    UnknownKey {
        /// A likely intended spelling, if one is close.
        hint: Option<String>,
    },
    /// The key was given before, on `replaced_line`; this later value is used.
    RepeatedKey {
        /// Line of the value that no longer counts.
        replaced_line: usize,
    },
    /// The value was used, adjusted, or ignored for the reason given.
    Notice {
        /// What happened and why.
        message: String,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ConfigWarning { at, key, kind } = self;
        match kind {
            WarningKind::UnknownKey { hint: None } => {
                write!(f, "{at}: unknown key {key:?}, ignored")
            }
            WarningKind::UnknownKey { hint: Some(hint) } => {
                write!(f, "{at}: unknown key {key:?}, ignored ({hint})")
            }
            WarningKind::RepeatedKey { replaced_line } => write!(
                f,
                "{at}: {key} is given again; this value replaces the one on line {replaced_line}"
            ),
            WarningKind::Notice { message } => write!(f, "{at}: {key}: {message}"),
        }
    }
}

/// A configuration and the warnings met while reading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: ServerConfig,
    /// Problems that do not stop the server; log each.
    pub warnings: Vec<ConfigWarning>,
}

/// Which four-letter words may run (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWords {
    /// `*`: every known word.
    All,
    /// The listed words. `srvr` always runs anyway, and `isro` in read-only mode, as in
    /// Apache; see [`ServerConfig::is_four_letter_word_enabled`].
    Only(BTreeSet<String>),
}

impl Default for FourLetterWords {
    fn default() -> Self {
        FourLetterWords::Only(BTreeSet::from(["srvr".to_owned()]))
    }
}

/// Apache's embedded HTTP admin server settings (`admin.*`). We parse them so that a
/// server can offer the same endpoint; nothing here starts one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminServerConfig {
    /// `admin.enableServer`, default true.
    pub enable_server: bool,
    /// `admin.serverAddress`, default 0.0.0.0.
    pub server_address: String,
    /// `admin.serverPort`, default 8080.
    pub server_port: u16,
    /// `admin.commandURL`, default `/commands`.
    pub command_url: String,
}

impl Default for AdminServerConfig {
    fn default() -> Self {
        AdminServerConfig {
            enable_server: true,
            server_address: "0.0.0.0".to_owned(),
            server_port: 8080,
            command_url: "/commands".to_owned(),
        }
    }
}

/// A server's configuration, with Apache's defaults for everything not set.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `tickTime`, default 3000.
    pub tick_time_ms: u32,
    /// `dataDir` (required): snapshots, and the transaction log unless `dataLogDir` is set.
    pub data_dir: PathBuf,
    /// `dataLogDir`: the transaction log's directory; `dataDir` when unset.
    pub data_log_dir: Option<PathBuf>,
    /// `datadir.autocreate` (a system property in Apache), default true: create missing
    /// data directories.
    pub data_dir_autocreate: bool,
    /// `clientPort`. 0 asks the OS for a free port.
    pub client_port: Option<u16>,
    /// `clientPortAddress`, resolved when the configuration is read (as Apache does).
    pub client_port_address: Option<IpAddr>,
    /// `secureClientPort` (parsed only: TLS is not served).
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`, resolved when read.
    pub secure_client_port_address: Option<IpAddr>,
    /// `observerMasterPort`; Apache treats 0 as unset.
    pub observer_master_port: Option<u16>,
    /// `clientPortListenBacklog`; Apache's -1 (the default) is `None`.
    pub client_port_listen_backlog: Option<u32>,
    /// `maxClientCnxns`, connections per client IP; default 60, 0 = no limit.
    pub max_client_cnxns: u32,
    /// `maxCnxns`, connections in all; default 0 = no limit.
    pub max_cnxns: u32,
    /// `minSessionTimeout`, default 2 × tickTime.
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout`, default 20 × tickTime.
    pub max_session_timeout_ms: u32,
    /// `4lw.commands.whitelist`, default only `srvr`.
    pub four_letter_word_whitelist: FourLetterWords,
    /// `skipACL` (`yes`/`no`), default no.
    pub skip_acl: bool,
    /// `enforceQuota`, default false.
    pub enforce_quota: bool,
    /// `extendedTypesEnabled` (TTL nodes), default false.
    pub extended_types_enabled: bool,
    /// `globalOutstandingLimit`, default 1000.
    pub global_outstanding_limit: u32,
    /// `DigestAuthenticationProvider.superDigest`, `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// `snapCount`, default 100000; Apache raises values below 2 to 2.
    pub snap_count: u32,
    /// `commitLogCount`: in an ensemble, how many committed transactions the
    /// replicated log keeps before its latest snapshot, so that a follower
    /// that lagged by fewer catches up from the log and one that lagged by
    /// more is sent the snapshot. Apache keeps this many proposals in memory
    /// for the same purpose (default 500 there); ours defaults to 1000.
    pub commit_log_count: u32,
    /// `autopurge.snapRetainCount`, default 3, at least 3.
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours, default 0 = no purging.
    pub autopurge_purge_interval_hours: u32,
    /// `preAllocSize` in KiB, default 65536 (64 MiB).
    pub pre_alloc_size_kb: u64,
    /// `forceSync` (`yes`/`no`), default yes.
    pub force_sync: bool,
    /// `jute.maxbuffer`, the largest frame in bytes; default 0xfffff.
    pub jute_max_buffer: u32,
    /// `initLimit` in ticks; needed in a quorum.
    pub init_limit: Option<u32>,
    /// `syncLimit` in ticks; needed in a quorum.
    pub sync_limit: Option<u32>,
    /// `connectToLearnerMasterLimit` in ticks; Apache uses initLimit when unset.
    pub connect_to_learner_master_limit: Option<u32>,
    /// `peerType`, default participant; the server line's role wins when they disagree.
    pub peer_type: PeerType,
    /// `leaderServes` (`yes`/`no`), default yes.
    pub leader_serves: bool,
    /// `standaloneEnabled`, default true.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`, default false.
    pub reconfig_enabled: bool,
    /// `readonlymode.enabled` (a system property in Apache), default false.
    pub readonly_mode_enabled: bool,
    /// `quorumListenOnAllIPs`, default false.
    pub quorum_listen_on_all_ips: bool,
    /// `electionAlg`; only 3 exists.
    pub election_alg: u32,
    /// `syncEnabled` (observers log to disk), default true.
    pub sync_enabled: bool,
    /// `localSessionsEnabled`, default false.
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`, default false.
    pub local_sessions_upgrading_enabled: bool,
    /// `multiAddress.enabled`, default false: allows `|`-separated server addresses.
    pub multi_address_enabled: bool,
    /// `dynamicConfigFile`: where the `server.N` lines live instead.
    pub dynamic_config_file: Option<PathBuf>,
    /// `server.N` lines, in id order.
    pub servers: Vec<ServerSpec>,
    /// This server's id, from `dataDir/myid` (read by [`ServerConfig::from_file`]).
    pub my_id: Option<u64>,
    /// `admin.*`.
    pub admin: AdminServerConfig,
    /// [`LOG_LEVEL_KEY`], or the level of `-Dzookeeper.root.logger`.
    pub log_level: Option<LevelFilter>,
    /// Keys Apache documents that this server accepts without acting on them (TLS,
    /// metrics providers, throttling knobs, ...), key to trimmed value.
    pub other: BTreeMap<String, String>,
    /// The file this was read from, for messages.
    origin: String,
    /// Keys set by the file, with their line, so that flags never override them.
    set_in_file: BTreeMap<String, usize>,
}

/// What a key turned out to be.
enum KeyKind {
    Typed,
    WithoutEffect,
    Unknown,
}

/// A key, its trimmed value and where it came from, with the value parsers.
struct Setting<'a> {
    /// The key in zoo.cfg spelling, which selects the parser.
    key: &'a str,
    /// The key as the operator wrote it (a `-D` flag's property name), for messages.
    shown: &'a str,
    value: &'a str,
    at: &'a Location,
}

/// Integer spellings: Apache parses zoo.cfg keys with `Integer.parseInt` (decimal) but
/// system-property settings with `Integer.getInteger`, which also takes `0x` hex and
/// leading-zero octal.
#[derive(Clone, Copy)]
enum Digits {
    Decimal,
    JavaDecode,
}

impl Setting<'_> {
    fn bad(&self, expected: &str) -> ConfigError {
        ConfigError::BadValue {
            at: self.at.clone(),
            key: self.shown.to_owned(),
            expected: expected.to_owned(),
            found: self.value.to_owned(),
        }
    }

    fn notice(&self, message: String) -> ConfigWarning {
        ConfigWarning {
            at: self.at.clone(),
            key: self.shown.to_owned(),
            kind: WarningKind::Notice { message },
        }
    }

    fn integer(
        &self,
        digits: Digits,
        min: i64,
        max: i64,
        expected: &str,
    ) -> Result<i64, ConfigError> {
        parse_integer(self.value, digits)
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| self.bad(expected))
    }

    fn u32_in(
        &self,
        digits: Digits,
        min: u32,
        max: i64,
        expected: &str,
    ) -> Result<u32, ConfigError> {
        let n = self.integer(digits, i64::from(min), max, expected)?;
        u32::try_from(n).map_err(|_| self.bad(expected))
    }

    fn port(&self, digits: Digits, min: u16) -> Result<u16, ConfigError> {
        let expected = if min == 0 {
            "a port number (0-65535)"
        } else {
            "a port number (1-65535)"
        };
        let n = self.integer(digits, i64::from(min), 65535, expected)?;
        u16::try_from(n).map_err(|_| self.bad(expected))
    }

    /// QuorumPeerConfig's booleans: `true`/`false`, any case.
    fn true_false(&self) -> Result<bool, ConfigError> {
        if self.value.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if self.value.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(self.bad("true or false"))
        }
    }

    /// The `yes`/`no` switches (skipACL, forceSync, leaderServes), spelt exactly as Apache
    /// compares them.
    fn yes_no(&self) -> Result<bool, ConfigError> {
        match self.value {
            "yes" => Ok(true),
            "no" => Ok(false),
            _ => Err(self.bad("yes or no")),
        }
    }

    fn path(&self, warnings: &mut Vec<ConfigWarning>) -> Result<PathBuf, ConfigError> {
        if self.value.is_empty() {
            return Err(self.bad("a directory path"));
        }
        let path = PathBuf::from(self.value);
        if path.is_relative() && !self.value.starts_with("./") {
            warnings.push(self.notice(format!(
                "{:?} is relative to the working directory; write \"./{}\" to show that is meant",
                self.value, self.value
            )));
        }
        Ok(path)
    }

    fn address(&self) -> Result<IpAddr, ConfigError> {
        resolve_host(self.value)
            .ok_or_else(|| self.bad("an IP address or a host name that resolves"))
    }
}

/// Parses an integer as Java would: decimal with an optional sign, or, for
/// `Integer.decode`, also `0x`/`0X`/`#` hex and leading-zero octal.
fn parse_integer(text: &str, digits: Digits) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if unsigned.is_empty() || unsigned.starts_with(['+', '-']) {
        return None;
    }
    let (radix, body) = match digits {
        Digits::Decimal => (10, unsigned),
        Digits::JavaDecode => {
            if let Some(hex) = unsigned
                .strip_prefix("0x")
                .or_else(|| unsigned.strip_prefix("0X"))
                .or_else(|| unsigned.strip_prefix('#'))
            {
                (16, hex)
            } else if unsigned.len() > 1 && unsigned.starts_with('0') {
                (8, &unsigned[1..])
            } else {
                (10, unsigned)
            }
        }
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(body, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Resolves an IP literal (brackets allowed) or a host name, preferring IPv4 as Java does.
fn resolve_host(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() {
        return None;
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(ip);
    }
    let resolved: Vec<IpAddr> = (bare, 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    resolved
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| resolved.first())
        .copied()
}

fn parse_log_level(text: &str) -> Option<LevelFilter> {
    let level = match text.to_ascii_lowercase().as_str() {
        "off" => LevelFilter::OFF,
        "fatal" | "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" | "all" => LevelFilter::TRACE,
        _ => return None,
    };
    Some(level)
}

/// Parses Apache's whitelist; commas and whitespace both separate words.
fn parse_four_letter_words(
    setting: &Setting<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> FourLetterWords {
    let words: Vec<&str> = setting
        .value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains(&"*") {
        return FourLetterWords::All;
    }
    let mut enabled = BTreeSet::new();
    for word in words {
        if FOUR_LETTER_WORDS.contains(&word) {
            enabled.insert(word.to_owned());
        } else {
            warnings.push(setting.notice(format!(
                "{word:?} is not a four-letter word this server knows ({}); ignored",
                FOUR_LETTER_WORDS.join(" ")
            )));
        }
    }
    FourLetterWords::Only(enabled)
}

/// Suggests the intended spelling of an unknown key.
fn unknown_key_hint(key: &str) -> Option<String> {
    if let Some(rest) = key.strip_prefix("zookeeper.") {
        if keys::all_plain_keys().any(|k| k == rest) || keys::is_key_without_effect(rest) {
            return Some(format!(
                "zoo.cfg spells it without the \"zookeeper.\" prefix: {rest}"
            ));
        }
    }
    keys::all_plain_keys()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map(|k| format!("keys are case-sensitive: did you mean {k}?"))
}

/// Settings whose meaning depends on others, held until the whole file is read.
#[derive(Default)]
struct Deferred {
    min_session_timeout: Option<(u32, Location)>,
    max_session_timeout: Option<(u32, Location)>,
    client_port_address: Option<Location>,
    secure_client_port_address: Option<Location>,
    dynamic_config_file: Option<Location>,
    server_lines: Vec<Location>,
}

impl ServerConfig {
    /// A configuration with Apache's defaults and the given data directory.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            tick_time_ms: DEFAULT_TICK_TIME_MS,
            data_dir,
            data_log_dir: None,
            data_dir_autocreate: true,
            client_port: None,
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            observer_master_port: None,
            client_port_listen_backlog: None,
            max_client_cnxns: 60,
            max_cnxns: 0,
            min_session_timeout_ms: 2 * DEFAULT_TICK_TIME_MS,
            max_session_timeout_ms: 20 * DEFAULT_TICK_TIME_MS,
            four_letter_word_whitelist: FourLetterWords::default(),
            skip_acl: false,
            enforce_quota: false,
            extended_types_enabled: false,
            global_outstanding_limit: 1000,
            super_digest: None,
            snap_count: 100_000,
            commit_log_count: DEFAULT_COMMIT_LOG_COUNT,
            autopurge_snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            autopurge_purge_interval_hours: 0,
            pre_alloc_size_kb: 65536,
            force_sync: true,
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            init_limit: None,
            sync_limit: None,
            connect_to_learner_master_limit: None,
            peer_type: PeerType::Participant,
            leader_serves: true,
            standalone_enabled: true,
            reconfig_enabled: false,
            readonly_mode_enabled: false,
            quorum_listen_on_all_ips: false,
            election_alg: 3,
            sync_enabled: true,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            multi_address_enabled: false,
            dynamic_config_file: None,
            servers: Vec::new(),
            my_id: None,
            admin: AdminServerConfig::default(),
            log_level: None,
            other: BTreeMap::new(),
            origin: String::new(),
            set_in_file: BTreeMap::new(),
        }
    }

    /// Reads zoo.cfg as Apache's `QuorumPeerConfig.parse` does: the file itself, the
    /// `dynamicConfigFile` it names (if any, for the `server.N` lines), and `dataDir/myid`.
    pub fn from_file(path: &Path) -> Result<Loaded, ConfigError> {
        let text = read_text(path)?;
        let origin = path.display().to_string();
        let mut loaded = Self::parse_text(&text, &origin)?;
        let config = &mut loaded.config;
        if let Some(dynamic) = config.dynamic_config_file.clone() {
            config.load_dynamic_file(&dynamic)?;
        }
        match myid(&config.data_dir)? {
            Some(id) => {
                let myid_path = config.data_dir.join("myid");
                config.adopt_my_id(id, &myid_path, &mut loaded.warnings)?;
            }
            None => config.settle_peer_type(None, &mut loaded.warnings),
        }
        config.check_quorum_needs()?;
        Ok(loaded)
    }

    /// Reads zoo.cfg text; `origin` names it in messages. Unlike [`ServerConfig::from_file`]
    /// this touches no file: it neither follows `dynamicConfigFile` nor reads `myid`.
    pub fn from_str(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
        Self::parse_text(text, origin)
    }

    fn parse_text(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
        let properties = Properties::parse(text).map_err(|e| ConfigError::Syntax {
            at: Location::Line {
                origin: origin.to_owned(),
                line: e.line,
            },
            message: e.message,
        })?;
        let mut warnings = Vec::new();
        for repeat in properties.repeated() {
            warnings.push(ConfigWarning {
                at: Location::Line {
                    origin: origin.to_owned(),
                    line: repeat.line,
                },
                key: repeat.key.trim().to_owned(),
                kind: WarningKind::RepeatedKey {
                    replaced_line: repeat.replaced_line,
                },
            });
        }

        let mut config = ServerConfig::new(PathBuf::new());
        config.origin = origin.to_owned();
        let mut data_dir_set = false;
        let mut deferred = Deferred::default();
        for property in properties.iter() {
            let key = java_trim(&property.key);
            let value = java_trim(&property.value);
            let at = Location::Line {
                origin: origin.to_owned(),
                line: property.line,
            };
            let setting = Setting {
                key,
                shown: key,
                value,
                at: &at,
            };
            match key {
                "dataDir" => {
                    config.data_dir = setting.path(&mut warnings)?;
                    data_dir_set = true;
                }
                "minSessionTimeout" | "maxSessionTimeout" => {
                    let timeout = if value == "-1" {
                        None
                    } else {
                        Some(setting.u32_in(
                            Digits::Decimal,
                            0,
                            INT_MAX,
                            "a non-negative integer (milliseconds), or -1 for the default",
                        )?)
                    };
                    let slot = if key == "minSessionTimeout" {
                        &mut deferred.min_session_timeout
                    } else {
                        &mut deferred.max_session_timeout
                    };
                    *slot = timeout.map(|t| (t, at.clone()));
                }
                _ if key.starts_with("server.") => {
                    let id_text = &key["server.".len()..];
                    let spec = parse_server_line(&setting, id_text)?;
                    config.servers.push(spec);
                    deferred.server_lines.push(at.clone());
                }
                _ => match config.apply(&setting, &mut warnings)? {
                    KeyKind::Typed | KeyKind::WithoutEffect => {}
                    KeyKind::Unknown => warnings.push(ConfigWarning {
                        at: at.clone(),
                        key: key.to_owned(),
                        kind: WarningKind::UnknownKey {
                            hint: unknown_key_hint(key),
                        },
                    }),
                },
            }
            match key {
                "clientPortAddress" => deferred.client_port_address = Some(at.clone()),
                "secureClientPortAddress" => deferred.secure_client_port_address = Some(at.clone()),
                "dynamicConfigFile" => deferred.dynamic_config_file = Some(at.clone()),
                _ => {}
            }
            config.set_in_file.insert(key.to_owned(), property.line);
        }

        if !data_dir_set {
            return Err(ConfigError::Invalid {
                at: Location::File {
                    origin: origin.to_owned(),
                },
                key: "dataDir".to_owned(),
                message: "not set; it names the directory for snapshots (and the transaction \
                          log unless dataLogDir is set), e.g. dataDir=/var/lib/zookeeper"
                    .to_owned(),
            });
        }
        config.finish(deferred)?;
        Ok(Loaded { config, warnings })
    }

    /// Applies one typed or known setting; reports whether the key was known.
    fn apply(
        &mut self,
        s: &Setting<'_>,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Result<KeyKind, ConfigError> {
        use Digits::{Decimal, JavaDecode};
        const COUNT: &str = "a non-negative integer";
        match s.key {
            "dataLogDir" => self.data_log_dir = Some(s.path(warnings)?),
            "datadir.autocreate" => self.data_dir_autocreate = s.true_false()?,
            "clientPort" => self.client_port = Some(s.port(Decimal, 0)?),
            "clientPortAddress" => self.client_port_address = Some(s.address()?),
            "secureClientPort" => self.secure_client_port = Some(s.port(Decimal, 0)?),
            "secureClientPortAddress" => self.secure_client_port_address = Some(s.address()?),
            "observerMasterPort" => {
                let port = s.port(Decimal, 0)?;
                self.observer_master_port = (port != 0).then_some(port);
            }
            "clientPortListenBacklog" => {
                self.client_port_listen_backlog = if s.value == "-1" {
                    None
                } else {
                    Some(s.u32_in(
                        Decimal,
                        0,
                        INT_MAX,
                        "a non-negative integer, or -1 for the OS default",
                    )?)
                }
            }
            "tickTime" => {
                self.tick_time_ms =
                    s.u32_in(Decimal, 1, INT_MAX, "a positive integer (milliseconds)")?
            }
            "maxClientCnxns" => {
                self.max_client_cnxns =
                    s.u32_in(Decimal, 0, INT_MAX, "a non-negative integer (0 = no limit)")?
            }
            "maxCnxns" => {
                self.max_cnxns = s.u32_in(
                    JavaDecode,
                    0,
                    INT_MAX,
                    "a non-negative integer (0 = no limit)",
                )?
            }
            "initLimit" => {
                self.init_limit =
                    Some(s.u32_in(Decimal, 0, INT_MAX, "a non-negative integer (ticks)")?)
            }
            "syncLimit" => {
                self.sync_limit =
                    Some(s.u32_in(Decimal, 0, INT_MAX, "a non-negative integer (ticks)")?)
            }
            "connectToLearnerMasterLimit" => {
                self.connect_to_learner_master_limit =
                    Some(s.u32_in(Decimal, 0, INT_MAX, "a non-negative integer (ticks)")?)
            }
            "electionAlg" => {
                self.election_alg = s.u32_in(
                    Decimal,
                    3,
                    3,
                    "3 (the only election algorithm since ZooKeeper 3.6)",
                )?
            }
            "quorumListenOnAllIPs" => self.quorum_listen_on_all_ips = s.true_false()?,
            "peerType" => {
                self.peer_type =
                    parse_peer_type(s.value).ok_or_else(|| s.bad("participant or observer"))?
            }
            "syncEnabled" => self.sync_enabled = s.true_false()?,
            "dynamicConfigFile" => {
                if s.value.is_empty() {
                    return Err(s.bad("a file path"));
                }
                self.dynamic_config_file = Some(PathBuf::from(s.value));
            }
            "autopurge.snapRetainCount" => {
                let count = s.integer(
                    Decimal,
                    i64::MIN,
                    INT_MAX,
                    "an integer (snapshots to keep, at least 3)",
                )?;
                self.autopurge_snap_retain_count = match u32::try_from(count) {
                    Ok(n) if n >= MIN_SNAP_RETAIN_COUNT => n,
                    _ => {
                        warnings.push(s.notice(format!(
                            "{count} is below the minimum; keeping {MIN_SNAP_RETAIN_COUNT} snapshots, as Apache does"
                        )));
                        MIN_SNAP_RETAIN_COUNT
                    }
                };
            }
            "autopurge.purgeInterval" => {
                let hours = s.integer(
                    Decimal,
                    i64::MIN,
                    INT_MAX,
                    "an integer (hours; 0 disables purging)",
                )?;
                self.autopurge_purge_interval_hours = u32::try_from(hours).unwrap_or_else(|_| {
                    warnings.push(
                        s.notice("a negative interval disables purging, as 0 does".to_owned()),
                    );
                    0
                });
            }
            "standaloneEnabled" => self.standalone_enabled = s.true_false()?,
            "reconfigEnabled" => self.reconfig_enabled = s.true_false()?,
            "localSessionsEnabled" => self.local_sessions_enabled = s.true_false()?,
            "localSessionsUpgradingEnabled" => {
                self.local_sessions_upgrading_enabled = s.true_false()?
            }
            "multiAddress.enabled" => self.multi_address_enabled = s.true_false()?,
            "skipACL" => self.skip_acl = s.yes_no()?,
            "forceSync" => self.force_sync = s.yes_no()?,
            "leaderServes" => self.leader_serves = s.yes_no()?,
            "enforceQuota" => self.enforce_quota = s.true_false()?,
            "extendedTypesEnabled" => self.extended_types_enabled = s.true_false()?,
            "readonlymode.enabled" => self.readonly_mode_enabled = s.true_false()?,
            "4lw.commands.whitelist" => {
                self.four_letter_word_whitelist = parse_four_letter_words(s, warnings)
            }
            "globalOutstandingLimit" => {
                self.global_outstanding_limit = s.u32_in(JavaDecode, 0, INT_MAX, COUNT)?
            }
            "DigestAuthenticationProvider.superDigest" => {
                let well_formed = s
                    .value
                    .split_once(':')
                    .is_some_and(|(user, digest)| !user.is_empty() && !digest.is_empty());
                if !well_formed {
                    return Err(s.bad(
                        "user:base64-digest, e.g. super:<base64 of sha1(\"super:password\")>",
                    ));
                }
                self.super_digest = Some(s.value.to_owned());
            }
            "snapCount" => {
                let count = s.u32_in(JavaDecode, 0, INT_MAX, COUNT)?;
                self.snap_count = if count < 2 {
                    warnings.push(s.notice(format!("{count} is below 2; using 2, as Apache does")));
                    2
                } else {
                    count
                };
            }
            "commitLogCount" => self.commit_log_count = s.u32_in(JavaDecode, 0, INT_MAX, COUNT)?,
            "preAllocSize" => {
                let kb = s.integer(Decimal, 0, i64::MAX, "a non-negative integer (KiB)")?;
                self.pre_alloc_size_kb = u64::try_from(kb).map_err(|_| s.bad(COUNT))?;
            }
            "jute.maxbuffer" => {
                self.jute_max_buffer =
                    s.u32_in(JavaDecode, 1, INT_MAX, "a positive integer (bytes)")?
            }
            "admin.enableServer" => self.admin.enable_server = s.true_false()?,
            "admin.serverAddress" => {
                if s.value.is_empty() {
                    return Err(s.bad("an address to listen on"));
                }
                self.admin.server_address = s.value.to_owned();
            }
            "admin.serverPort" => self.admin.server_port = s.port(JavaDecode, 0)?,
            "admin.commandURL" => {
                if !s.value.starts_with('/') {
                    return Err(s.bad("a URL path starting with /"));
                }
                self.admin.command_url = s.value.to_owned();
            }
            LOG_LEVEL_KEY => {
                self.log_level = Some(
                    parse_log_level(s.value)
                        .ok_or_else(|| s.bad("one of off, error, warn, info, debug, trace"))?,
                )
            }
            key if keys::is_key_without_effect(key) => {
                self.other.insert(key.to_owned(), s.value.to_owned());
                return Ok(KeyKind::WithoutEffect);
            }
            _ => return Ok(KeyKind::Unknown),
        }
        Ok(KeyKind::Typed)
    }

    /// Where `key` was set in the file, or the file itself when it was not.
    fn key_location(&self, key: &str) -> Location {
        match self.set_in_file.get(key) {
            Some(&line) => Location::Line {
                origin: self.origin.clone(),
                line,
            },
            None => Location::File {
                origin: self.origin.clone(),
            },
        }
    }

    /// Checks and derivations that need the whole file, as at the end of Apache's
    /// `parseProperties`.
    fn finish(&mut self, deferred: Deferred) -> Result<(), ConfigError> {
        if self.client_port.is_none() {
            if let Some(at) = deferred.client_port_address {
                return Err(ConfigError::Invalid {
                    at,
                    key: "clientPortAddress".to_owned(),
                    message: "set, but clientPort is not; add clientPort=2181 (or the port to use)"
                        .to_owned(),
                });
            }
        }
        if self.secure_client_port.is_none() {
            if let Some(at) = deferred.secure_client_port_address {
                return Err(ConfigError::Invalid {
                    at,
                    key: "secureClientPortAddress".to_owned(),
                    message: "set, but secureClientPort is not".to_owned(),
                });
            }
        }

        let tick = self.tick_time_ms;
        let (min_set, max_set) = (
            deferred.min_session_timeout.is_some(),
            deferred.max_session_timeout.is_some(),
        );
        self.min_session_timeout_ms = deferred
            .min_session_timeout
            .as_ref()
            .map_or(tick.saturating_mul(2), |(t, _)| *t);
        self.max_session_timeout_ms = deferred
            .max_session_timeout
            .as_ref()
            .map_or(tick.saturating_mul(20), |(t, _)| *t);
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            // Point at the bound the operator wrote; tickTime is the culprit when neither is.
            let (key, at) = match (deferred.max_session_timeout, deferred.min_session_timeout) {
                (Some((_, at)), _) => ("maxSessionTimeout", at),
                (None, Some((_, at))) => ("minSessionTimeout", at),
                (None, None) => ("tickTime", self.key_location("tickTime")),
            };
            return Err(ConfigError::Invalid {
                at,
                key: key.to_owned(),
                message: format!(
                    "minSessionTimeout ({} ms{}) must not be larger than maxSessionTimeout ({} ms{})",
                    self.min_session_timeout_ms,
                    if min_set { "" } else { ", the default of 2 x tickTime" },
                    self.max_session_timeout_ms,
                    if max_set { "" } else { ", the default of 20 x tickTime" },
                ),
            });
        }

        if let (Some(dynamic_at), Some(server_at)) =
            (&deferred.dynamic_config_file, deferred.server_lines.first())
        {
            return Err(ConfigError::Invalid {
                at: server_at.clone(),
                key: "server".to_owned(),
                message: format!(
                    "server lines must be in the dynamic config file named by dynamicConfigFile \
                     ({dynamic_at}), not in this file"
                ),
            });
        }
        self.check_server_ids()?;
        // With a dynamic config file the server list is not known yet; Apache checks the
        // quorum once it has read that file.
        if self.dynamic_config_file.is_none() {
            self.check_quorum_shape()?;
        }
        Ok(())
    }

    /// Reads the `server.N` lines from the file named by `dynamicConfigFile`.
    fn load_dynamic_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = read_text(path)?;
        let origin = path.display().to_string();
        let properties = Properties::parse(&text).map_err(|e| ConfigError::Syntax {
            at: Location::Line {
                origin: origin.clone(),
                line: e.line,
            },
            message: e.message,
        })?;
        for property in properties.iter() {
            let key = java_trim(&property.key);
            let at = Location::Line {
                origin: origin.clone(),
                line: property.line,
            };
            let setting = Setting {
                key,
                shown: key,
                value: java_trim(&property.value),
                at: &at,
            };
            if let Some(id_text) = key.strip_prefix("server.") {
                self.servers.push(parse_server_line(&setting, id_text)?);
            } else if key.starts_with("group.") || key.starts_with("weight.") {
                self.other.insert(key.to_owned(), setting.value.to_owned());
            } else {
                return Err(ConfigError::Invalid {
                    at,
                    key: key.to_owned(),
                    message:
                        "a dynamic config file holds only server.N, group.N and weight.N lines"
                            .to_owned(),
                });
            }
        }
        self.check_server_ids()?;
        self.check_quorum_shape()
    }

    /// Takes this server's id from `myid_path`, as Apache's `setupMyId`/`setupClientPort`
    /// do: the id must fit the id limit, and a client endpoint on this server's line
    /// becomes the client address (it must agree with `clientPort`/`clientPortAddress`).
    fn adopt_my_id(
        &mut self,
        id: u64,
        myid_path: &Path,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Result<(), ConfigError> {
        if id > self.server_id_limit() {
            return Err(ConfigError::MyId {
                path: myid_path.to_owned(),
                message: format!(
                    "server id {id} is above {}, the limit with extendedTypesEnabled",
                    self.server_id_limit()
                ),
            });
        }
        self.my_id = Some(id);
        self.settle_peer_type(Some(id), warnings);
        let Some(spec) = self.servers.iter().find(|s| s.id == id).cloned() else {
            return Ok(());
        };
        let Some(endpoint) = &spec.client else {
            return Ok(());
        };
        let line_ip = match &endpoint.host {
            None => None,
            Some(host) => Some(resolve_host(host).ok_or_else(|| ConfigError::Invalid {
                at: spec.location.clone(),
                key: format!("server.{id}"),
                message: format!("client host {host:?} does not resolve"),
            })?),
        };
        if let Some(port) = self.client_port {
            let configured_ip = self.client_port_address.filter(|ip| !ip.is_unspecified());
            let line_ip_specific = line_ip.filter(|ip| !ip.is_unspecified());
            let agrees = port == endpoint.port
                && (configured_ip.is_none() || configured_ip == line_ip_specific);
            if !agrees {
                return Err(ConfigError::Invalid {
                    at: spec.location.clone(),
                    key: format!("server.{id}"),
                    message: format!(
                        "this server's client address ({}:{}) differs from clientPort{} ({}:{port}); \
                         keep one of them, or make them agree",
                        endpoint.host.as_deref().unwrap_or("0.0.0.0"),
                        endpoint.port,
                        if self.client_port_address.is_some() { "/clientPortAddress" } else { "" },
                        self.client_port_address
                            .map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string()),
                    ),
                });
            }
        }
        self.client_port = Some(endpoint.port);
        self.client_port_address = line_ip;
        Ok(())
    }

    /// The server list decides this server's role; `peerType` only raises a warning when
    /// it disagrees (Apache's `setupPeerType`). A server absent from the list, or without
    /// an id, is a participant.
    fn settle_peer_type(&mut self, id: Option<u64>, warnings: &mut Vec<ConfigWarning>) {
        let role = id
            .and_then(|id| self.servers.iter().find(|s| s.id == id))
            .map_or(PeerType::Participant, |s| s.peer_type);
        if role == self.peer_type {
            return;
        }
        let who = id.map_or_else(
            || "this server (no myid)".to_owned(),
            |id| format!("server {id}"),
        );
        warnings.push(ConfigWarning {
            at: self.key_location("peerType"),
            key: "peerType".to_owned(),
            kind: WarningKind::Notice {
                message: format!(
                    "peerType says {}, but the server list has {who} as {role}; \
                     using the server list, as Apache does",
                    self.peer_type
                ),
            },
        });
        self.peer_type = role;
    }

    /// A quorum member needs initLimit, syncLimit and a myid (Apache's `checkValidity`).
    fn check_quorum_needs(&self) -> Result<(), ConfigError> {
        if !self.is_distributed() {
            return Ok(());
        }
        for (key, value, example) in [
            ("initLimit", self.init_limit, "initLimit=10"),
            ("syncLimit", self.sync_limit, "syncLimit=5"),
        ] {
            if value.unwrap_or(0) == 0 {
                return Err(ConfigError::Invalid {
                    at: self.key_location(key),
                    key: key.to_owned(),
                    message: format!(
                        "a server in a quorum needs a positive {key} (in ticks), e.g. {example}"
                    ),
                });
            }
        }
        if self.my_id.is_none() {
            return Err(ConfigError::MyId {
                path: self.data_dir.join("myid"),
                message: "missing: a server in a quorum needs its id (the N of its server.N line) \
                          in this file"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// The address to accept clients on: `clientPortAddress` (every IPv4 interface when
    /// unset) with `clientPort`. When this server's `server.N` line has a client part,
    /// [`ServerConfig::from_file`] has already made it the client address, as Apache does.
    /// `None` when no client port is configured.
    pub fn client_address(&self) -> Option<SocketAddr> {
        let port = self.client_port?;
        let ip = self
            .client_port_address
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Some(SocketAddr::new(ip, port))
    }

    /// Whether a four-letter word may run: listed (or `*`), and, as in Apache, `srvr`
    /// always and `isro` whenever read-only mode is on.
    pub fn is_four_letter_word_enabled(&self, word: &str) -> bool {
        if word == "srvr" || (word == "isro" && self.readonly_mode_enabled) {
            return true;
        }
        match &self.four_letter_word_whitelist {
            FourLetterWords::All => FOUR_LETTER_WORDS.contains(&word),
            FourLetterWords::Only(words) => words.contains(word),
        }
    }

    /// The transaction log's directory: `dataLogDir`, or `dataDir` when unset.
    pub fn transaction_log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

/// Java's `String.trim`: strips every character up to U+0020, controls included.
fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// Reads a configuration file as text: UTF-8 when it is valid UTF-8, otherwise
/// ISO-8859-1, which maps every byte to a character as Java's `Properties.load` does.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(not_utf8) => not_utf8.into_bytes().into_iter().map(char::from).collect(),
    })
}

/// Reads this server's id from `data_dir/myid`, as Apache does: the first line, here
/// trimmed of surrounding whitespace, holds a number. `Ok(None)` when there is no such
/// file, which is normal for a standalone server. The id must be at most
/// [`MAX_SERVER_ID`].
pub fn myid(data_dir: &Path) -> Result<Option<u64>, ConfigError> {
    let path = data_dir.join("myid");
    if !path.is_file() {
        return Ok(None);
    }
    let text = read_text(&path)?;
    let first_line = text.split(['\n', '\r']).next().unwrap_or_default().trim();
    let garbage = |message: String| ConfigError::MyId {
        path: path.clone(),
        message,
    };
    if first_line.is_empty() {
        return Err(garbage(format!(
            "the first line is empty; expected this server's id (a number from 0 to {MAX_SERVER_ID})"
        )));
    }
    let id = first_line.parse::<u64>().map_err(|_| {
        garbage(format!(
            "expected this server's id (a number from 0 to {MAX_SERVER_ID}) on the first line, found {first_line:?}"
        ))
    })?;
    if id > MAX_SERVER_ID {
        return Err(garbage(format!(
            "server id {id} is above {MAX_SERVER_ID}: session ids carry the server id in one byte"
        )));
    }
    Ok(Some(id))
}
