//! Normalised transcripts of client sessions, and a readable diff between two of them.
//!
//! A transcript line keeps what a client can rely on (outcomes, error codes, versions, sizes,
//! sequence numbers, event order) and masks what legitimately differs between two correct
//! servers (zxids, times, session ids).

use std::fmt::Write as _;

use zookeeper_client as zk;

use super::raw::RawStat;

/// Relations between zxids survive masking: they are fixed by the operation sequence.
fn zxid_relations(czxid: i64, mzxid: i64, pzxid: i64) -> String {
    let rel = |a: i64, b: i64| match a.cmp(&b) {
        std::cmp::Ordering::Less => '<',
        std::cmp::Ordering::Equal => '=',
        std::cmp::Ordering::Greater => '>',
    };
    format!("m{}c p{}c", rel(mzxid, czxid), rel(pzxid, czxid))
}

/// A Stat from the wire, with owners shown only as zero or not.
pub fn raw_stat_line(s: &RawStat) -> String {
    format!(
        "{{v={} cv={} av={} len={} nc={} eph={} {}}}",
        s.version,
        s.cversion,
        s.aversion,
        s.data_length,
        s.num_children,
        if s.ephemeral_owner == 0 { "0" } else { "set" },
        zxid_relations(s.czxid, s.mzxid, s.pzxid)
    )
}

/// The name of a client error, stable across servers.
pub fn err_name(e: &zk::Error) -> String {
    format!("{e:?}")
}

/// The name of a wire error code.
pub fn code_name(code: i32) -> String {
    let name = match code {
        0 => "Ok",
        -1 => "SystemError",
        -2 => "RuntimeInconsistency",
        -3 => "DataInconsistency",
        -4 => "ConnectionLoss",
        -5 => "MarshallingError",
        -6 => "Unimplemented",
        -7 => "OperationTimeout",
        -8 => "BadArguments",
        -13 => "NewConfigNoQuorum",
        -14 => "ReconfigInProgress",
        -100 => "ApiError",
        -101 => "NoNode",
        -102 => "NoAuth",
        -103 => "BadVersion",
        -108 => "NoChildrenForEphemerals",
        -110 => "NodeExists",
        -111 => "NotEmpty",
        -112 => "SessionExpired",
        -113 => "InvalidCallback",
        -114 => "InvalidACL",
        -115 => "AuthFailed",
        -118 => "SessionMoved",
        -119 => "NotReadOnly",
        -120 => "EphemeralOnLocalSession",
        -121 => "NoWatcher",
        -122 => "RequestTimeout",
        -123 => "ReconfigDisabled",
        -124 => "SessionClosedRequireSasl",
        -125 => "QuotaExceeded",
        -127 => "Throttled",
        _ => return format!("code({code})"),
    };
    name.to_string()
}

/// The name of a watch event type.
pub fn event_name(event_type: i32) -> String {
    match event_type {
        -1 => "None".into(),
        1 => "NodeCreated".into(),
        2 => "NodeDeleted".into(),
        3 => "NodeDataChanged".into(),
        4 => "NodeChildrenChanged".into(),
        5 => "DataWatchRemoved".into(),
        6 => "ChildWatchRemoved".into(),
        7 => "PersistentWatchRemoved".into(),
        other => format!("event({other})"),
    }
}

/// The lines of one run, plus the session ids it knows by name.
#[derive(Default)]
pub struct Transcript {
    pub lines: Vec<String>,
    sessions: Vec<(i64, String)>,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names a session so ephemeral owners print as that name instead of a number.
    pub fn name_session(&mut self, id: i64, name: &str) {
        self.sessions.push((id, name.to_string()));
    }

    fn owner(&self, owner: i64) -> String {
        if owner == 0 {
            return "0".into();
        }
        self.sessions
            .iter()
            .find(|(id, _)| *id == owner)
            .map(|(_, name)| name.clone())
            // TTL and container nodes keep their type in the owner field, which is then stable.
            .unwrap_or_else(|| match (owner as u64) >> 56 {
                0x80 | 0xff => format!("{owner:#x}"),
                _ => "unknown-session".into(),
            })
    }

    /// A client Stat with zxids and times masked.
    pub fn stat(&self, s: &zk::Stat) -> String {
        format!(
            "{{v={} cv={} av={} len={} nc={} eph={} {}}}",
            s.version,
            s.cversion,
            s.aversion,
            s.data_length,
            s.num_children,
            self.owner(s.ephemeral_owner),
            zxid_relations(s.czxid, s.mzxid, s.pzxid)
        )
    }

    /// A wire Stat with zxids and times masked.
    pub fn raw_stat(&self, s: &RawStat) -> String {
        let mut line = raw_stat_line(s);
        if s.ephemeral_owner != 0 {
            line = line.replace("eph=set", &format!("eph={}", self.owner(s.ephemeral_owner)));
        }
        line
    }

    pub fn push(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Records `op` with either its error name or what `ok` makes of the value.
    pub fn record<T>(
        &mut self,
        op: &str,
        result: Result<T, zk::Error>,
        ok: impl FnOnce(&Self, T) -> String,
    ) {
        let line = match result {
            Ok(v) => format!("{op} -> {}", ok(self, v)),
            Err(e) => format!("{op} -> ERR {}", err_name(&e)),
        };
        self.lines.push(line);
    }

    /// Records a watch event as it arrived.
    pub fn event(&mut self, watcher: &str, e: &zk::WatchedEvent) {
        self.lines.push(format!(
            "event[{watcher}] {:?} {:?} {}",
            e.event_type, e.session_state, e.path
        ));
    }
}

/// Longest-common-subsequence diff of two line lists, in unified style without context limit.
pub fn line_diff(left: &[String], right: &[String]) -> String {
    let (n, m) = (left.len(), right.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if left[i] == right[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && left[i] == right[j] {
            let _ = writeln!(out, "  {}", left[i]);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "+ {}", right[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "- {}", left[i]);
            i += 1;
        }
    }
    out
}

/// Panics with a line diff when two transcripts differ.
pub fn assert_same_transcript(
    expected_name: &str,
    expected: &[String],
    actual_name: &str,
    actual: &[String],
) {
    if expected == actual {
        return;
    }
    panic!(
        "transcripts differ (- {expected_name}, + {actual_name}):\n{}",
        line_diff(expected, actual)
    );
}
