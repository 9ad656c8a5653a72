//! Four-letter words: short text commands sent in place of a handshake, in the
//! formats monitoring tools parse (srvr, stat and mntr above all).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use super::Shared;

/// Every word Apache knows; only the whitelisted ones answer.
const WORDS: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// Recognises a four-letter word in the first four bytes of a connection.
pub fn word_from_prefix(prefix: i32) -> Option<&'static str> {
    let bytes = prefix.to_be_bytes();
    WORDS.iter().copied().find(|w| w.as_bytes() == bytes)
}

/// The full text answer to `word`.
pub fn answer(shared: &Shared, word: &str) -> String {
    if !shared.options.config.is_four_letter_word_enabled(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    // An ensemble member without a leader serves nothing, and says so as
    // Apache does (readiness checks and `zkServer status` rely on it).
    if shared.mode() == "looking" && !matches!(word, "ruok" | "envi" | "isro" | "gtmk" | "stmk") {
        return "This ZooKeeper instance is not currently serving requests\n".to_string();
    }
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str(match shared.mode() {
            "looking" => "null",
            "read-only" => "ro",
            _ => "rw",
        }),
        "srvr" => server_summary(shared, &mut out, false),
        "stat" => server_summary(shared, &mut out, true),
        "cons" => {
            connections(shared, &mut out, false);
            out.push('\n');
        }
        "conf" => conf(shared, &mut out),
        "envi" => environment(&mut out),
        "mntr" => monitor(shared, &mut out),
        "dirs" => {
            let _ = writeln!(out, "datadir_size: {}", dir_size(shared.options.data_dir()));
            let _ = writeln!(
                out,
                "logdir_size: {}",
                dir_size(shared.options.data_log_dir())
            );
        }
        "crst" => {
            for conn in shared.hub().conns.values() {
                conn.stats.reset();
            }
            out.push_str("Connection stats reset.\n");
        }
        "srst" => {
            shared.stats.reset();
            out.push_str("Server stats reset.\n");
        }
        "wchs" => {
            let hub = shared.hub();
            let _ = write!(
                out,
                "{} connections watching {} paths\nTotal watches:{}\n",
                hub.watches.watcher_count(),
                hub.watches.watched_path_count(),
                hub.watches.summary_watch_count()
            );
        }
        "wchc" => {
            let hub = shared.hub();
            for (watcher, paths) in hub.watches.by_watcher() {
                let session = hub.conns.get(&watcher).map_or(0, |c| c.session_id);
                let _ = writeln!(out, "0x{session:x}");
                for path in paths {
                    let _ = writeln!(out, "\t{path}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            let hub = shared.hub();
            for (path, watchers) in hub.watches.by_path() {
                let _ = writeln!(out, "{path}");
                for watcher in watchers {
                    let session = hub.conns.get(&watcher).map_or(0, |c| c.session_id);
                    let _ = writeln!(out, "\t0x{session:x}");
                }
            }
            out.push('\n');
        }
        "dump" => dump(shared, &mut out),
        // Trace masks and the tree digest are Java-server internals with
        // nothing to report here.
        "gtmk" | "stmk" => out.push_str(&shared.trace_mask.load(Relaxed).to_string()),
        "hash" => out.push_str("Digest in log and actual tree is disabled.\n"),
        _ => {}
    }
    out
}

fn server_summary(shared: &Shared, out: &mut String, with_clients: bool) {
    let _ = writeln!(out, "Zookeeper version: {}", crate::ZOOKEEPER_VERSION);
    if with_clients {
        out.push_str("Clients:\n");
        connections(shared, out, true);
        out.push('\n');
    }
    let (min, avg, max) = shared.stats.latency.min_avg_max();
    let (zxid, nodes) = {
        let tree = shared.tree();
        (tree.last_zxid(), tree.node_count())
    };
    let _ = writeln!(
        out,
        "Latency min/avg/max: {min}/{}/{max}",
        java_average(avg)
    );
    let _ = writeln!(
        out,
        "Received: {}",
        shared.stats.packets_received.load(Relaxed)
    );
    let _ = writeln!(out, "Sent: {}", shared.stats.packets_sent.load(Relaxed));
    let _ = writeln!(out, "Connections: {}", shared.hub().conns.len());
    let _ = writeln!(out, "Outstanding: {}", outstanding(shared));
    let _ = writeln!(out, "Zxid: 0x{zxid:x}");
    let _ = writeln!(out, "Mode: {}", shared.mode());
    let _ = writeln!(out, "Node count: {nodes}");
}

fn outstanding(shared: &Shared) -> usize {
    let limit = (shared.options.config.global_outstanding_limit as usize).max(1);
    limit.saturating_sub(shared.outstanding.available_permits())
}

fn connections(shared: &Shared, out: &mut String, brief: bool) {
    let hub = shared.hub();
    let mut conns: Vec<_> = hub.conns.values().collect();
    conns.sort_by_key(|c| c.established_ms);
    for c in conns {
        let s = &c.stats;
        let _ = write!(
            out,
            " /{}[1](queued={},recved={},sent={}",
            c.remote,
            s.outstanding.load(Relaxed),
            s.packets_received.load(Relaxed),
            s.packets_sent.load(Relaxed)
        );
        if !brief {
            let (min, avg, max) = s.latency.min_avg_max();
            let last_op = s.last_op.load(Relaxed);
            let _ = write!(
                out,
                ",sid=0x{:x},lop={},est={},to={}",
                c.session_id,
                op_abbreviation(last_op),
                c.established_ms,
                c.session_timeout_ms,
            );
            // Apache omits lcxid until the connection answered a request.
            if last_op != 0 {
                let _ = write!(out, ",lcxid=0x{:x}", s.last_cxid.load(Relaxed));
            }
            // Per-connection averages are whole milliseconds in Apache.
            let _ = write!(
                out,
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                s.last_zxid.load(Relaxed),
                s.last_response_ms.load(Relaxed),
                s.last_latency_ms.load(Relaxed),
                min,
                avg.trunc() as i64,
                max
            );
        }
        out.push_str(")\n");
    }
}

fn conf(shared: &Shared, out: &mut String) {
    let o = &shared.options;
    let _ = writeln!(out, "clientPort={}", o.client_addr.port());
    let _ = writeln!(out, "secureClientPort=-1");
    let _ = writeln!(out, "dataDir={}", absolute(o.data_dir()));
    let _ = writeln!(out, "dataDirSize={}", dir_size(o.data_dir()));
    let _ = writeln!(out, "dataLogDir={}", absolute(o.data_log_dir()));
    let _ = writeln!(out, "dataLogSize={}", dir_size(o.data_log_dir()));
    let _ = writeln!(out, "tickTime={}", o.tick_time_ms());
    let _ = writeln!(out, "maxClientCnxns={}", o.config.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", o.min_session_timeout_ms());
    let _ = writeln!(out, "maxSessionTimeout={}", o.max_session_timeout_ms());
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let _ = writeln!(out, "serverId={}", o.server_id);
}

fn environment(out: &mut String) {
    let host = nix_hostname();
    let _ = writeln!(out, "Environment:");
    let _ = writeln!(out, "zookeeper.version={}", crate::ZOOKEEPER_VERSION);
    let _ = writeln!(out, "host.name={host}");
    // Spelled as a JVM reports them, for tools that read Apache's output.
    let _ = writeln!(out, "os.name={}", java_os_name());
    let _ = writeln!(out, "os.arch={}", java_os_arch());
    let _ = writeln!(out, "os.version={}", os_version());
    let _ = writeln!(out, "user.name={}", user_name());
    let _ = writeln!(
        out,
        "user.home={}",
        std::env::var("HOME").unwrap_or_default()
    );
    let dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let _ = writeln!(out, "user.dir={dir}");
}

fn java_os_name() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".to_owned(),
        "macos" => "Mac OS X".to_owned(),
        "freebsd" => "FreeBSD".to_owned(),
        other => other.to_owned(),
    }
}

fn java_os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        other => other,
    }
}

fn os_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The name of the user the server runs as: the password-file entry of the
/// process's uid, falling back to `$USER` where there is none.
fn user_name() -> String {
    use std::os::unix::fs::MetadataExt as _;
    let from_passwd = std::fs::metadata("/proc/self").ok().and_then(|meta| {
        let uid = meta.uid().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid_field = fields.nth(1)?;
            (uid_field == uid).then(|| name.to_owned())
        })
    });
    from_passwd
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default()
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

fn monitor(shared: &Shared, out: &mut String) {
    let (min, avg, max) = shared.stats.latency.min_avg_max();
    let (nodes, ephemerals, data_size, zxid) = {
        let tree = shared.tree();
        (
            tree.node_count(),
            tree.ephemeral_count(),
            tree.approximate_data_size(),
            tree.last_zxid(),
        )
    };
    let (watch_count, connections) = {
        let hub = shared.hub();
        (hub.watches.watch_count(), hub.conns.len())
    };
    let sessions = shared.sessions().tracker.len();
    let uptime_ms = shared.elapsed_ms();
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "zk_{key}\t{value}");
    };
    line("version", &crate::ZOOKEEPER_VERSION);
    line("server_state", &shared.mode());
    if let Some(state) = peer_state(shared.mode()) {
        line("peer_state", &state);
    }
    line("avg_latency", &java_average(avg));
    line("max_latency", &max);
    line("min_latency", &min);
    line(
        "packets_received",
        &shared.stats.packets_received.load(Relaxed),
    );
    line("packets_sent", &shared.stats.packets_sent.load(Relaxed));
    line("num_alive_connections", &connections);
    line("outstanding_requests", &outstanding(shared));
    line("znode_count", &nodes);
    line("watch_count", &watch_count);
    line("ephemerals_count", &ephemerals);
    line("approximate_data_size", &data_size);
    line("global_sessions", &sessions);
    line("last_zxid", &format_args!("0x{zxid:x}"));
    line("uptime", &uptime_ms);
    line(
        "connection_rejected",
        &shared.stats.connections_refused.load(Relaxed),
    );
    line(
        "slow_consumers_closed",
        &shared.stats.slow_consumers_closed.load(Relaxed),
    );
    line(
        "sessions_expired",
        &shared.stats.sessions_expired.load(Relaxed),
    );
    line("disk_full", &u8::from(shared.stats.disk_full.load(Relaxed)));
    // Snapshots live under dataDir, the transaction log under dataLogDir.
    line("data_dir_size", &dir_size(shared.options.data_dir()));
    line("log_dir_size", &dir_size(shared.options.data_log_dir()));
    line("writes_refused", &shared.stats.writes_refused.load(Relaxed));
    if let Some((open, max_fds)) = file_descriptors() {
        line("open_file_descriptor_count", &open);
        line("max_file_descriptor_count", &max_fds);
    }
    // Apache registers these gauges only on a leader; elsewhere they are
    // absent, not zero.
    let leader = shared
        .ensemble()
        .and_then(|ensemble| ensemble.replicator.leader_figures());
    if let Some(figures) = leader {
        line("learners", &figures.learners);
        line("synced_followers", &figures.synced_followers);
        line(
            "synced_non_voting_followers",
            &figures.synced_non_voting_followers,
        );
        line("synced_observers", &figures.synced_observers);
        line("pending_syncs", &figures.pending_syncs);
        line("leader_uptime", &figures.leader_uptime_ms);
        line("last_proposal_size", &figures.proposal_sizes.last);
        line("max_proposal_size", &figures.proposal_sizes.max);
        line("min_proposal_size", &figures.proposal_sizes.min);
    }
}

/// Apache's detailed peer state, printed by quorum members only (not
/// standalone, not a read-only server). A member that answers `mntr` has
/// finished synchronising with its leader, so it is in Zab's broadcast phase.
fn peer_state(mode: &str) -> Option<&'static str> {
    match mode {
        "leader" => Some("leading - broadcast"),
        "follower" => Some("following - broadcast"),
        "observer" => Some("observing - broadcast"),
        _ => None,
    }
}

fn file_descriptors() -> Option<(usize, u64)> {
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count();
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let max = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some((open, max))
}

fn dump(shared: &Shared, out: &mut String) {
    let buckets = shared.sessions().tracker.buckets();
    let total: usize = buckets.iter().map(|(_, ids)| ids.len()).sum();
    let wall_offset = shared.clock.wall_ms() - shared.elapsed_ms();
    out.push_str("SessionTracker dump:\n");
    let _ = writeln!(out, "Session Sets ({})/({}):", buckets.len(), total);
    for (deadline, ids) in &buckets {
        let _ = writeln!(
            out,
            "{} expire at {}:",
            ids.len(),
            java_date(wall_offset + deadline)
        );
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let tree = shared.tree();
    let mut by_session: Vec<(i64, Vec<String>)> = tree
        .sessions()
        .map(|(id, _)| (id, tree.ephemerals(id)))
        .filter(|(_, paths)| !paths.is_empty())
        .collect();
    by_session.sort();
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", by_session.len());
    for (id, paths) in by_session {
        let _ = writeln!(out, "0x{id:x}:");
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    drop(tree);
    out.push_str("Connections dump:\n");
    // Apache lists connections by when they time out; a connection here
    // times out with its session.
    let deadline_of: std::collections::HashMap<i64, i64> = buckets
        .iter()
        .flat_map(|(deadline, ids)| ids.iter().map(move |id| (*id, *deadline)))
        .collect();
    let mut by_deadline: std::collections::BTreeMap<i64, Vec<(String, i64)>> =
        std::collections::BTreeMap::new();
    let mut connections = 0;
    for conn in shared.hub().conns.values() {
        let Some(deadline) = deadline_of.get(&conn.session_id) else {
            continue;
        };
        connections += 1;
        by_deadline
            .entry(*deadline)
            .or_default()
            .push((format!("/{}", conn.remote), conn.session_id));
    }
    let _ = writeln!(
        out,
        "Connections Sets ({})/({}):",
        by_deadline.len(),
        connections
    );
    for (deadline, mut conns) in by_deadline {
        conns.sort();
        let _ = writeln!(
            out,
            "{} expire at {}:",
            conns.len(),
            java_date(wall_offset + deadline)
        );
        for (remote, session_id) in conns {
            let _ = writeln!(out, "\tip: {remote} sessionId: 0x{session_id:x}");
        }
    }
}

/// A double as Java's `Double.toString` prints an average Apache rounded to
/// four places: `0.0`, `2.0`, `0.4817`, and `1.0E-4` below a thousandth.
fn java_average(avg: f64) -> String {
    let rounded = (avg * 10_000.0).round() / 10_000.0;
    if rounded == 0.0 {
        return "0.0".to_owned();
    }
    if (1e-3..1e7).contains(&rounded.abs()) {
        let plain = format!("{rounded}");
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let scientific = format!("{rounded:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

/// A wall-clock time in milliseconds as Java's `Date.toString` prints it in
/// UTC: `Sun Nov 22 05:29:50 UTC 2026`.
fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1).clamp(0, 11) as usize];
    format!(
        "{weekday} {month_name} {day:02} {:02}:{:02}:{:02} UTC {year}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, in the
/// proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The four-letter name Apache's `cons` gives a connection's last operation.
fn op_abbreviation(op: i64) -> &'static str {
    use crate::proto::OpCode;
    let Some(op) = i32::try_from(op).ok().and_then(OpCode::from_i32) else {
        return "NA";
    };
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Create | OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::Reconfig => "RECO",
        OpCode::SetAcl => "SETA",
        OpCode::CloseSession => "CLOS",
        OpCode::Sync => "SYNC",
        OpCode::Check => "CHEC",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::GetAcl => "GETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::WhoAmI => "HOMI",
        OpCode::GetEphemerals => "GETE",
        OpCode::Notification | OpCode::Auth | OpCode::Sasl | OpCode::Error => "NA",
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Total bytes of the regular files under `dir` (not following links).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    // Bounded: a data dir holds a few hundred files at most; the cap keeps a
    // misconfigured dataDir=/ from stalling the command.
    let mut visited = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            visited += 1;
            if visited > 100_000 {
                return total;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_recognised_from_their_bytes() {
        assert_eq!(word_from_prefix(i32::from_be_bytes(*b"ruok")), Some("ruok"));
        assert_eq!(word_from_prefix(i32::from_be_bytes(*b"mntr")), Some("mntr"));
        assert_eq!(word_from_prefix(45), None);
        assert_eq!(word_from_prefix(i32::from_be_bytes(*b"nope")), None);
    }

    #[test]
    fn averages_print_as_java_doubles() {
        assert_eq!(java_average(0.0), "0.0");
        assert_eq!(java_average(2.0), "2.0");
        assert_eq!(java_average(0.481_749), "0.4817");
        assert_eq!(java_average(12.5), "12.5");
        assert_eq!(java_average(0.000_06), "1.0E-4");
    }

    #[test]
    fn dates_print_as_java_does_in_utc() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_325_390_000), "Sun Nov 22 05:29:50 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn operations_have_apache_abbreviations() {
        assert_eq!(op_abbreviation(3), "EXIS");
        assert_eq!(op_abbreviation(-10), "SESS");
        assert_eq!(op_abbreviation(0), "NA");
        assert_eq!(op_abbreviation(1 << 40), "NA");
    }
}
