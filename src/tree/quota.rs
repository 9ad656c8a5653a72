//! Quota bookkeeping: the `/zookeeper/quota` layout (Apache's `Quotas`) and the
//! text format of its limit and usage nodes (Apache's `StatsTrack`).
//!
//! A quota on `/app` lives in `/zookeeper/quota/app/zookeeper_limits` (limits,
//! written by the client) and `/zookeeper/quota/app/zookeeper_stats` (usage,
//! kept current by the tree). Both hold `key=value` pairs such as
//! `count=10,bytes=1000`; since 3.7 the hard limits follow after a trailing
//! `=` that old parsers ignore: `count=-1,bytes=-1=;byteHardLimit=5;countHardLimit=3`.

use std::collections::BTreeMap;
use std::fmt;

/// The node under which quota nodes live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The name of a quota's limits node.
pub const LIMITS_NODE: &str = "zookeeper_limits";
/// The name of a quota's usage node.
pub const STATS_NODE: &str = "zookeeper_stats";

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD_LIMIT: &str = "countHardLimit";
const BYTE_HARD_LIMIT: &str = "byteHardLimit";

/// `/zookeeper/quota<path>/zookeeper_limits`.
pub fn limits_path(quota_path: &str) -> String {
    format!("{QUOTA_ROOT}{quota_path}/{LIMITS_NODE}")
}

/// `/zookeeper/quota<path>/zookeeper_stats`.
pub fn stats_path(quota_path: &str) -> String {
    format!("{QUOTA_ROOT}{quota_path}/{STATS_NODE}")
}

/// The quota'd path a node directly under `/zookeeper/quota/...` belongs to:
/// for the parent `/zookeeper/quota/a/b`, `/a/b`. `None` for parents outside
/// the quota tree and for `/zookeeper/quota` itself (Apache would try to put a
/// quota on the empty path there and fail).
pub(crate) fn quota_path_of_parent(parent_path: &str) -> Option<&str> {
    let rest = parent_path.strip_prefix(QUOTA_ROOT)?;
    (rest.len() > 1 && rest.starts_with('/')).then_some(rest)
}

/// Counts and limits parsed from a quota node, keeping unknown keys so that
/// rewriting a usage node preserves them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

/// The node's text is not in `StatsTrack` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed quota text")]
pub struct MalformedStats;

impl StatsTrack {
    /// Usage with only a count and a byte total, as the tree writes it.
    pub fn usage(count: i64, bytes: i64) -> StatsTrack {
        let mut track = StatsTrack::default();
        track.values.insert(COUNT.to_owned(), count);
        track.values.insert(BYTES.to_owned(), bytes);
        track
    }

    /// Parses a node's data the way Apache's `StatsTrack(String)` does: pairs
    /// separated by runs of `,` or `;`, `key=value` with an empty value meaning
    /// -1. Input Apache would fail on (a pair without `=`, a leading separator,
    /// a non-number) is an error.
    pub fn parse(data: &[u8]) -> Result<StatsTrack, MalformedStats> {
        let text = std::str::from_utf8(data).map_err(|_| MalformedStats)?;
        let mut track = StatsTrack::default();
        if text.is_empty() {
            return Ok(track);
        }
        for pair in split_pairs(text) {
            let mut parts: Vec<&str> = pair.split('=').collect();
            while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
            let (Some(key), Some(value)) = (parts.first(), parts.get(1)) else {
                return Err(MalformedStats);
            };
            let value = if value.is_empty() {
                -1
            } else {
                parse_java_long(value).ok_or(MalformedStats)?
            };
            track.values.insert((*key).to_owned(), value);
        }
        Ok(track)
    }

    fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    /// The node count (usage) or soft count limit; -1 when absent.
    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    /// The byte total (usage) or soft byte limit; -1 when absent.
    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    /// The hard count limit; -1 when absent.
    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD_LIMIT)
    }

    /// The hard byte limit; -1 when absent.
    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD_LIMIT)
    }

    /// Adds to the count and byte total (an absent value counts as -1, as in
    /// Apache).
    pub fn add(&mut self, count_diff: i64, bytes_diff: i64) {
        let count = self.count().wrapping_add(count_diff);
        let bytes = self.bytes().wrapping_add(bytes_diff);
        self.values.insert(COUNT.to_owned(), count);
        self.values.insert(BYTES.to_owned(), bytes);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // count and bytes always come first, for parsers older than 3.7.
        write!(f, "{COUNT}={},{BYTES}={}", self.count(), self.bytes())?;
        let mut extra = self
            .values
            .iter()
            .filter(|(key, _)| key.as_str() != COUNT && key.as_str() != BYTES)
            .peekable();
        if extra.peek().is_some() {
            // The extra '=' makes old parsers ignore everything after it.
            f.write_str("=")?;
            for (key, value) in extra {
                write!(f, ";{key}={value}")?;
            }
        }
        Ok(())
    }
}

/// Java's `Pattern.compile("[,;]+").split(text)`: separators come in runs, a
/// leading separator yields an empty first piece, trailing empties are dropped.
fn split_pairs(text: &str) -> Vec<&str> {
    let is_separator = |c: char| c == ',' || c == ';';
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_separator(c) {
            pieces.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !is_separator(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            start = end;
        }
    }
    pieces.push(&text[start..]);
    while pieces.len() > 1 && pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
}

/// Java's `Long.parseLong` for ASCII input.
fn parse_java_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = s.strip_prefix('+').unwrap_or(s);
    trimmed.parse().ok()
}

/// Per-namespace quota limits and usage, as Apache's `QuotaMetricsUtils`
/// reports them in `mntr` (`quota_count_limit_per_namespace` and friends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaMetrics {
    pub count_limit: BTreeMap<String, i64>,
    pub bytes_limit: BTreeMap<String, i64>,
    pub count_usage: BTreeMap<String, i64>,
    pub bytes_usage: BTreeMap<String, i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_format_round_trips() {
        let mut limits = StatsTrack::default();
        limits.values.insert(COUNT.into(), 4);
        limits.values.insert(COUNT_HARD_LIMIT.into(), 4);
        limits.values.insert(BYTES.into(), 9);
        limits.values.insert(BYTE_HARD_LIMIT.into(), 15);
        let text = limits.to_string();
        assert_eq!(text, "count=4,bytes=9=;byteHardLimit=15;countHardLimit=4");
        let parsed = StatsTrack::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed, limits);
        assert_eq!(parsed.count(), 4);
        assert_eq!(parsed.bytes(), 9);
        assert_eq!(parsed.count_hard_limit(), 4);
        assert_eq!(parsed.byte_hard_limit(), 15);
    }

    #[test]
    fn old_format_and_missing_keys() {
        let parsed = StatsTrack::parse(b"count=2,bytes=5").unwrap();
        assert_eq!(parsed.to_string(), "count=2,bytes=5");
        assert_eq!(parsed.count_hard_limit(), -1);
        assert_eq!(parsed.byte_hard_limit(), -1);
        let empty = StatsTrack::parse(b"").unwrap();
        assert_eq!(empty.count(), -1);
        assert_eq!(empty.to_string(), "count=-1,bytes=-1");
        assert_eq!(StatsTrack::usage(3, 7).to_string(), "count=3,bytes=7");
    }

    #[test]
    fn parse_edge_cases_like_java() {
        let ok: &[(&str, i64, i64)] = &[
            ("count=1,,;bytes=2", 1, 2),
            ("count=1,bytes=2,", 1, 2),
            ("count=1,bytes=2=", 1, 2),
            ("count==5,bytes=+3", -1, 3),
            ("bytes=-7", -1, -7),
        ];
        for &(text, count, bytes) in ok {
            let parsed = StatsTrack::parse(text.as_bytes()).unwrap();
            assert_eq!((parsed.count(), parsed.bytes()), (count, bytes), "{text}");
        }
        for bad in [
            ",count=1",
            "count",
            "count=",
            "count=x",
            "count=1.5",
            "=",
            "count=99999999999999999999",
        ] {
            assert_eq!(
                StatsTrack::parse(bad.as_bytes()),
                Err(MalformedStats),
                "{bad}"
            );
        }
    }

    #[test]
    fn add_keeps_extra_keys() {
        let mut stats = StatsTrack::parse(b"count=1,bytes=2=;zzz=9").unwrap();
        stats.add(1, 10);
        assert_eq!(stats.to_string(), "count=2,bytes=12=;zzz=9");
    }

    #[test]
    fn quota_path_of_parent_rules() {
        assert_eq!(quota_path_of_parent("/zookeeper/quota/a"), Some("/a"));
        assert_eq!(quota_path_of_parent("/zookeeper/quota/a/b"), Some("/a/b"));
        assert_eq!(quota_path_of_parent("/zookeeper/quota"), None);
        assert_eq!(quota_path_of_parent("/zookeeper/quotax/a"), None);
        assert_eq!(quota_path_of_parent("/a"), None);
        assert_eq!(limits_path("/a"), "/zookeeper/quota/a/zookeeper_limits");
        assert_eq!(stats_path("/a"), "/zookeeper/quota/a/zookeeper_stats");
    }
}
