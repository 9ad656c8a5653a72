//! Quotas as zkCli manages them: nodes under `/zookeeper/quota` mirroring
//! the limited path, holding `zookeeper_limits` and `zookeeper_stats` in
//! Apache's `StatsTrack` text form.

use std::collections::BTreeMap;

use crate::client::{Client, Error};
use crate::proto::{Acl, CreateMode, ErrorCode};

/// The root of the quota tree.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMIT_NODE: &str = "zookeeper_limits";
const STAT_NODE: &str = "zookeeper_stats";

/// The quota tree's mirror of `path`.
pub fn quota_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}")
}

/// Where the limits of `path` are kept.
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}")
}

/// Where the usage of `path` is kept.
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STAT_NODE}")
}

/// Apache's `StatsTrack`: `count=N,bytes=M` followed, when other keys are
/// set, by `=;key=value…` (the stray `=` keeps pre-3.5 parsers working).
/// Keys that are not set read as -1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack(BTreeMap<String, i64>);

pub const COUNT: &str = "count";
pub const BYTES: &str = "bytes";
pub const COUNT_HARD: &str = "countHardLimit";
pub const BYTES_HARD: &str = "byteHardLimit";

impl StatsTrack {
    /// Parses the text form; pairs are separated by `,` or `;`, and an
    /// empty or malformed value reads as -1.
    pub fn parse(text: &str) -> StatsTrack {
        let mut map = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut parts = pair.split('=');
            let key = parts.next().unwrap_or_default();
            let value = parts
                .next()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(-1);
            map.insert(key.to_string(), value);
        }
        StatsTrack(map)
    }

    pub fn get(&self, key: &str) -> i64 {
        self.0.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.0.insert(key.to_string(), value);
    }
}

impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "count={},bytes={}", self.get(COUNT), self.get(BYTES))?;
        let others: Vec<_> = self
            .0
            .iter()
            .filter(|(k, _)| k.as_str() != COUNT && k.as_str() != BYTES)
            .collect();
        if !others.is_empty() {
            f.write_str("=")?;
            for (key, value) in others {
                write!(f, ";{key}={value}")?;
            }
        }
        Ok(())
    }
}

/// Why a quota could not be set, besides a failed call.
pub enum QuotaError {
    /// Apache reports these as the message alone.
    Refused(String),
    Client(Error, String),
}

impl From<(Error, &str)> for QuotaError {
    fn from((error, path): (Error, &str)) -> QuotaError {
        QuotaError::Client(error, path.to_string())
    }
}

/// Sets the limits given in `quota` (values of -1 are left alone) on
/// `path`, creating the quota nodes as needed. Returns warnings to print
/// when the new limits are already exceeded.
pub async fn set_quota(
    client: &Client,
    path: &str,
    quota: &StatsTrack,
) -> Result<Vec<String>, QuotaError> {
    if client
        .exists(path, false)
        .await
        .map_err(|e| (e, path))?
        .is_none()
    {
        return Err(QuotaError::Refused(format!("{path} does not exist.")));
    }
    check_no_quota_below(client, path).await?;
    check_no_quota_above(client, path).await?;
    let open = Acl::open_unsafe();
    let mut mirror = QUOTA_ROOT.to_string();
    ensure(client, "/zookeeper", &open).await?;
    ensure(client, QUOTA_ROOT, &open).await?;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        mirror.push('/');
        mirror.push_str(part);
        ensure(client, &mirror, &open).await?;
    }
    let limits_node = limit_path(path);
    let stats_node = stat_path(path);
    let limits = match client.get_data(&limits_node, false).await {
        Ok((data, _)) => {
            let mut limits = StatsTrack::parse(&String::from_utf8_lossy(&data));
            for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
                if quota.get(key) > -1 {
                    limits.set(key, quota.get(key));
                }
            }
            client
                .set_data(&limits_node, limits.to_string().as_bytes(), None)
                .await
                .map_err(|e| (e, limits_node.as_str()))?;
            limits
        }
        Err(e) if e.is(ErrorCode::NoNode) => {
            client
                .create(
                    &limits_node,
                    quota.to_string().as_bytes(),
                    &open,
                    CreateMode::Persistent,
                )
                .await
                .map_err(|e| (e, limits_node.as_str()))?;
            let mut usage = StatsTrack::default();
            usage.set(COUNT, 0);
            usage.set(BYTES, 0);
            match client
                .create(
                    &stats_node,
                    usage.to_string().as_bytes(),
                    &open,
                    CreateMode::Persistent,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is(ErrorCode::NodeExists) => {}
                Err(e) => return Err((e, stats_node.as_str()).into()),
            }
            quota.clone()
        }
        Err(e) => return Err((e, limits_node.as_str()).into()),
    };
    let usage = match client.get_data(&stats_node, false).await {
        Ok((data, _)) => StatsTrack::parse(&String::from_utf8_lossy(&data)),
        Err(e) => return Err((e, stats_node.as_str()).into()),
    };
    Ok(exceeded_warnings(&limits, &usage))
}

fn exceeded_warnings(limits: &StatsTrack, usage: &StatsTrack) -> Vec<String> {
    let below = |limit: i64, used: i64| limit > -1 && limit < used;
    let mut warnings = Vec::new();
    let count = usage.get(COUNT);
    if below(limits.get(COUNT), count) || below(limits.get(COUNT_HARD), count) {
        warnings.push(format!(
            "[Warning]: the count quota you create is less than the existing count:{count}"
        ));
    }
    let bytes = usage.get(BYTES);
    if below(limits.get(BYTES), bytes) || below(limits.get(BYTES_HARD), bytes) {
        warnings.push(format!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{bytes}"
        ));
    }
    warnings
}

async fn ensure(client: &Client, path: &str, acl: &[Acl]) -> Result<(), QuotaError> {
    match client.create(path, b"", acl, CreateMode::Persistent).await {
        Ok(_) => Ok(()),
        Err(e) if e.is(ErrorCode::NodeExists) => Ok(()),
        Err(e) => Err((e, path).into()),
    }
}

/// Refuses a quota on a node whose descendants already have one.
async fn check_no_quota_below(client: &Client, path: &str) -> Result<(), QuotaError> {
    let own = quota_path(path);
    let mut stack = vec![own.clone()];
    while let Some(node) = stack.pop() {
        let children = match client.get_children(&node, false).await {
            Ok(children) => children,
            Err(e) if e.is(ErrorCode::NoNode) => continue,
            Err(e) => return Err((e, node.as_str()).into()),
        };
        if node != own && children.iter().any(|c| c == LIMIT_NODE) {
            let trimmed = node.strip_prefix(QUOTA_ROOT).unwrap_or(&node);
            return Err(QuotaError::Refused(format!(
                "{path} has a child {trimmed} which has a quota"
            )));
        }
        for child in children {
            if child != LIMIT_NODE && child != STAT_NODE {
                stack.push(format!("{node}/{child}"));
            }
        }
    }
    Ok(())
}

/// Refuses a quota on a node an ancestor of which already has one.
async fn check_no_quota_above(client: &Client, path: &str) -> Result<(), QuotaError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut mirror = QUOTA_ROOT.to_string();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        mirror.push('/');
        mirror.push_str(part);
        let children = match client.get_children(&mirror, false).await {
            Ok(children) => children,
            Err(e) if e.is(ErrorCode::NoNode) => return Ok(()),
            Err(e) => return Err((e, mirror.as_str()).into()),
        };
        if children.iter().any(|c| c == LIMIT_NODE) {
            let trimmed = mirror.strip_prefix(QUOTA_ROOT).unwrap_or(&mirror);
            return Err(QuotaError::Refused(format!(
                "{path} has a parent {trimmed} which has a quota"
            )));
        }
    }
    Ok(())
}

/// Removes the limits named in `which` (all of them, and the quota nodes,
/// when `None`). Returns false when `path` has no quota.
pub async fn delete_quota(
    client: &Client,
    path: &str,
    which: Option<&[&str]>,
) -> Result<bool, Error> {
    let limits_node = limit_path(path);
    let data = match client.get_data(&limits_node, false).await {
        Ok((data, _)) => data,
        Err(e) if e.is(ErrorCode::NoNode) => return Ok(false),
        Err(e) => return Err(e),
    };
    match which {
        Some(keys) => {
            let mut limits = StatsTrack::parse(&String::from_utf8_lossy(&data));
            for key in keys {
                limits.set(key, -1);
            }
            client
                .set_data(&limits_node, limits.to_string().as_bytes(), None)
                .await?;
        }
        None => {
            let mirror = quota_path(path);
            for child in client.get_children(&mirror, false).await? {
                client.delete(&format!("{mirror}/{child}"), None).await?;
            }
            // Prune the mirror upwards while it is empty.
            let mut node = mirror;
            while node != QUOTA_ROOT && node.starts_with(QUOTA_ROOT) {
                if !client.get_children(&node, false).await?.is_empty() {
                    break;
                }
                client.delete(&node, None).await?;
                match node.rfind('/') {
                    Some(at) => node.truncate(at),
                    None => break,
                }
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_text_matches_apache() {
        let mut quota = StatsTrack::default();
        quota.set(COUNT, 3);
        quota.set(BYTES, -1);
        quota.set(COUNT_HARD, -1);
        quota.set(BYTES_HARD, -1);
        assert_eq!(
            quota.to_string(),
            "count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        let parsed = StatsTrack::parse("count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=7");
        assert_eq!(parsed.get(COUNT_HARD), 7);
        assert_eq!(parsed.get(BYTES), -1);
        let usage = StatsTrack::parse("count=2,bytes=1");
        assert_eq!(usage.to_string(), "count=2,bytes=1");
    }
}
