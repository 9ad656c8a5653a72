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
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
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
        "gtmk" | "stmk" => out.push_str("0\n"),
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
    let _ = writeln!(out, "Latency min/avg/max: {min}/{avg:.4}/{max}");
    let _ = writeln!(
        out,
        "Received: {}",
        shared.stats.packets_received.load(Relaxed)
    );
    let _ = writeln!(out, "Sent: {}", shared.stats.packets_sent.load(Relaxed));
    let _ = writeln!(out, "Connections: {}", shared.hub().conns.len());
    let _ = writeln!(out, "Outstanding: {}", outstanding(shared));
    let _ = writeln!(out, "Zxid: 0x{zxid:x}");
    let _ = writeln!(out, "Mode: standalone");
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
            let _ = write!(
                out,
                ",sid=0x{:x},lop=NA,est={},to={},lzxid=0x{:x},lresp={},llat={},minlat={},avglat={:.4},maxlat={}",
                c.session_id,
                c.established_ms,
                c.session_timeout_ms,
                s.last_zxid.load(Relaxed),
                s.last_response_ms.load(Relaxed),
                s.last_latency_ms.load(Relaxed),
                min,
                avg,
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
    let _ = writeln!(out, "os.name={}", std::env::consts::OS);
    let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(
        out,
        "user.name={}",
        std::env::var("USER").unwrap_or_default()
    );
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
    line("server_state", &"standalone");
    line("avg_latency", &format_args!("{avg:.4}"));
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
    line("writes_refused", &shared.stats.writes_refused.load(Relaxed));
    if let Some((open, max_fds)) = file_descriptors() {
        line("open_file_descriptor_count", &open);
        line("max_file_descriptor_count", &max_fds);
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
    for (deadline, ids) in buckets {
        let _ = writeln!(out, "{} expire at {}:", ids.len(), wall_offset + deadline);
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
    out.push_str("Connections dump:\n");
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
}
