//! The workloads, the layout of the key space they use, and one operation
//! of each.
//!
//! Layout under the root (`/zkbench` by default):
//!
//! ```text
//! ROOT/d<j>/k<i>        the key space: key i lives in directory j = i / 100
//! ROOT/new/w<w>-<n>     nodes the create workload makes (worker w, n-th)
//! ```
//!
//! Reads, set, multi and mixed pick keys uniformly at random; getChildren
//! lists a random directory (up to 100 names); delete removes keys in order,
//! each once.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::client::{Client, Error};
use crate::proto::{Acl, CreateMode, MultiOp};

/// Keys per directory of the key space.
pub const KEYS_PER_DIR: u64 = 100;

/// What the measured operations are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// Create a new node per operation.
    Create,
    /// setData on a random key.
    Set,
    /// getData on a random key.
    Get,
    /// exists on a random key.
    Exists,
    /// getChildren on a random directory of the key space.
    GetChildren,
    /// Delete the next key of the key space.
    Delete,
    /// A multi of `--multi-size` setData on random keys.
    Multi,
    /// getData with probability `read_ratio`, setData otherwise.
    Mixed { read_ratio: f64 },
}

impl Workload {
    /// The name given on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Exists => "exists",
            Workload::GetChildren => "getChildren",
            Workload::Delete => "delete",
            Workload::Multi => "multi",
            Workload::Mixed { .. } => "mixed",
        }
    }

    /// Whether the key space must exist before the measured phase.
    pub fn needs_keys(&self) -> bool {
        !matches!(self, Workload::Create)
    }

    /// Whether each kind of operation is reported apart as well.
    pub fn reports_per_op(&self) -> bool {
        matches!(self, Workload::Mixed { .. })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The workload names, for help texts.
pub const WORKLOAD_NAMES: &str = "create, set, get, exists, getChildren, delete, multi, mixed";

/// A workload name that is not one of [`WORKLOAD_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload {0:?} (expected one of: {WORKLOAD_NAMES})")]
pub struct UnknownWorkload(pub String);

impl FromStr for Workload {
    type Err = UnknownWorkload;

    /// Parses a name; `mixed` gets a read ratio of 0.9 until told otherwise.
    fn from_str(name: &str) -> Result<Workload, UnknownWorkload> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "create" => Workload::Create,
            "set" | "setdata" => Workload::Set,
            "get" | "getdata" => Workload::Get,
            "exists" => Workload::Exists,
            "getchildren" | "ls" => Workload::GetChildren,
            "delete" => Workload::Delete,
            "multi" => Workload::Multi,
            "mixed" => Workload::Mixed { read_ratio: 0.9 },
            _ => return Err(UnknownWorkload(name.to_string())),
        })
    }
}

/// Where the benchmark's nodes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub root: String,
}

impl Layout {
    /// Paths under `root` (no trailing slash; `/` is refused by the config).
    pub fn new(root: &str) -> Layout {
        Layout {
            root: root.trim_end_matches('/').to_string(),
        }
    }

    pub fn dir_count(keys: u64) -> u64 {
        keys.div_ceil(KEYS_PER_DIR)
    }

    pub fn dir(&self, dir: u64) -> String {
        format!("{}/d{dir}", self.root)
    }

    pub fn key(&self, key: u64) -> String {
        format!("{}/d{}/k{key}", self.root, key / KEYS_PER_DIR)
    }

    pub fn created_parent(&self) -> String {
        format!("{}/new", self.root)
    }

    pub fn created(&self, worker: u64, seq: u64) -> String {
        format!("{}/new/w{worker}-{seq}", self.root)
    }
}

/// A small, fast generator for key choice (splitmix64): statistical quality
/// is all a uniform key pick needs.
#[derive(Debug, Clone)]
pub struct KeyRng(u64);

impl KeyRng {
    pub fn seeded(seed: u64) -> KeyRng {
        KeyRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0), by Lemire's multiply-shift; the
    /// bias for bounds far below 2^64 is negligible here.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// What each operation needs, shared by every worker.
#[derive(Debug)]
pub struct OpContext {
    pub workload: Workload,
    pub layout: Layout,
    pub keys: u64,
    pub value: Vec<u8>,
    pub multi_size: usize,
}

/// One operation about to be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Create(String),
    Set(String),
    Get(String),
    Exists(String),
    GetChildren(String),
    Delete(String),
    Multi(Vec<String>),
}

impl Op {
    /// The name this operation is counted under.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create(_) => "create",
            Op::Set(_) => "set",
            Op::Get(_) => "get",
            Op::Exists(_) => "exists",
            Op::GetChildren(_) => "getChildren",
            Op::Delete(_) => "delete",
            Op::Multi(_) => "multi",
        }
    }
}

/// What one worker keeps from phase to phase.
#[derive(Debug, Clone)]
pub struct WorkerState {
    pub id: u64,
    pub rng: KeyRng,
    /// Create attempts so far: names `w<id>-0 .. w<id>-<created>` may exist.
    pub created: u64,
}

impl WorkerState {
    pub fn new(id: u64, seed: u64) -> WorkerState {
        WorkerState {
            id,
            rng: KeyRng::seeded(seed ^ id.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            created: 0,
        }
    }

    /// The next operation. `next_delete` hands out the keys to delete, once
    /// each; `None` when the workload has nothing left to do.
    pub fn plan(
        &mut self,
        ctx: &OpContext,
        next_delete: impl FnOnce() -> Option<u64>,
    ) -> Option<Op> {
        let random_key = |rng: &mut KeyRng| ctx.layout.key(rng.below(ctx.keys.max(1)));
        Some(match ctx.workload {
            Workload::Create => {
                let path = ctx.layout.created(self.id, self.created);
                self.created += 1;
                Op::Create(path)
            }
            Workload::Set => Op::Set(random_key(&mut self.rng)),
            Workload::Get => Op::Get(random_key(&mut self.rng)),
            Workload::Exists => Op::Exists(random_key(&mut self.rng)),
            Workload::GetChildren => {
                let dirs = Layout::dir_count(ctx.keys).max(1);
                Op::GetChildren(ctx.layout.dir(self.rng.below(dirs)))
            }
            Workload::Delete => Op::Delete(ctx.layout.key(next_delete()?)),
            Workload::Multi => Op::Multi(
                (0..ctx.multi_size.max(1))
                    .map(|_| random_key(&mut self.rng))
                    .collect(),
            ),
            Workload::Mixed { read_ratio } => {
                if self.rng.chance(read_ratio) {
                    Op::Get(random_key(&mut self.rng))
                } else {
                    Op::Set(random_key(&mut self.rng))
                }
            }
        })
    }
}

/// Sends one operation and waits for its outcome. A read of a missing node
/// is an error (`NoNode`): the key space is meant to be there.
pub async fn execute(client: &Client, ctx: &OpContext, op: Op) -> Result<(), Error> {
    let open = Acl::open_unsafe();
    match op {
        Op::Create(path) => client
            .create(&path, &ctx.value, &open, CreateMode::Persistent)
            .await
            .map(drop),
        Op::Set(path) => client.set_data(&path, &ctx.value, None).await.map(drop),
        Op::Get(path) => client.get_data(&path, false).await.map(drop),
        Op::Exists(path) => match client.exists(&path, false).await? {
            Some(_) => Ok(()),
            None => Err(Error::Keeper {
                code: crate::proto::ErrorCode::NoNode.code(),
                path: Some(path),
            }),
        },
        Op::GetChildren(path) => client.get_children(&path, false).await.map(drop),
        Op::Delete(path) => client.delete(&path, None).await,
        Op::Multi(paths) => client
            .multi(
                paths
                    .into_iter()
                    .map(|path| MultiOp::SetData {
                        path,
                        data: ctx.value.clone(),
                        version: -1,
                    })
                    .collect(),
            )
            .await
            .map(drop),
    }
}

/// Parses a duration in seconds (`10`, `0.5`, `2.5s`) or with a unit (`500ms`,
/// `2m`), for the command line.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10, 2.5s, 500ms, 1m)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("{text:?} is not a non-negative duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in WORKLOAD_NAMES.split(", ") {
            assert_eq!(name.parse::<Workload>().unwrap().name(), name);
        }
        assert!("nope".parse::<Workload>().is_err());
    }

    #[test]
    fn keys_live_in_directories_of_a_hundred() {
        let layout = Layout::new("/zkbench/");
        assert_eq!(layout.key(0), "/zkbench/d0/k0");
        assert_eq!(layout.key(199), "/zkbench/d1/k199");
        assert_eq!(Layout::dir_count(201), 3);
        assert_eq!(layout.created(3, 7), "/zkbench/new/w3-7");
    }

    #[test]
    fn picks_are_uniform_enough_and_ratios_hold() {
        let mut rng = KeyRng::seeded(42);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            buckets[rng.below(10) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (9_000..11_000).contains(&b)),
            "{buckets:?}"
        );
        let reads = (0..100_000).filter(|_| rng.chance(0.8)).count();
        assert!((78_000..82_000).contains(&reads), "{reads}");
        assert_eq!((0..1000).filter(|_| rng.chance(0.0)).count(), 0);
        assert_eq!((0..1000).filter(|_| rng.chance(1.0)).count(), 1000);
    }

    #[test]
    fn deletes_stop_when_the_keys_run_out() {
        let ctx = OpContext {
            workload: Workload::Delete,
            layout: Layout::new("/b"),
            keys: 2,
            value: vec![],
            multi_size: 1,
        };
        let mut worker = WorkerState::new(0, 1);
        assert_eq!(
            worker.plan(&ctx, || Some(1)),
            Some(Op::Delete("/b/d0/k1".into()))
        );
        assert_eq!(worker.plan(&ctx, || None), None);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
