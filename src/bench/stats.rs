//! Tallies of one phase: latencies in an HDR histogram, successes, and
//! errors by kind. Shared by every worker of the phase behind one mutex:
//! recording is a few counter updates, far below the cost of the request
//! that preceded it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::Error;
use crate::proto::ErrorCode;

/// Latencies are recorded in microseconds, from 1 µs to an hour, with three
/// significant digits (a bucket is at most 0.1 % wide).
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty histogram of the bounds above.
pub fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
}

/// The name an error is counted under: the server's error code
/// (`NoNode`, `BadVersion`, …) or the client's failure (`ConnectionLoss`,
/// `Timeout`, …). Stable identifiers, so that `--json` consumers can match
/// on them.
pub fn error_kind(error: &Error) -> String {
    match error {
        Error::Keeper { code, .. } | Error::Multi { code, .. } => code_name(*code),
        Error::ConnectionLoss => "ConnectionLoss".into(),
        Error::SessionExpired => "SessionExpired".into(),
        Error::AuthFailed => "AuthFailed".into(),
        Error::Closed => "Closed".into(),
        Error::Timeout(_) => "Timeout".into(),
        Error::InvalidPath(_) => "InvalidPath".into(),
        Error::InvalidArgument(_) => "InvalidArgument".into(),
        Error::FrameTooLarge { .. } => "FrameTooLarge".into(),
        Error::ConnectString { .. } => "ConnectString".into(),
        Error::Unreachable { .. } => "Unreachable".into(),
        Error::Protocol(_) => "Protocol".into(),
        Error::UnexpectedReply(_) => "UnexpectedReply".into(),
        Error::Io(_) => "Io".into(),
    }
}

fn code_name(code: i32) -> String {
    match ErrorCode::from_i32(code) {
        Some(known) => format!("{known:?}"),
        None => format!("ErrorCode({code})"),
    }
}

/// Whether an error means the session cannot reach a server (as opposed to
/// the server refusing one request).
pub fn is_connection_error(error: &Error) -> bool {
    matches!(
        error,
        Error::ConnectionLoss
            | Error::SessionExpired
            | Error::AuthFailed
            | Error::Closed
            | Error::Timeout(_)
            | Error::Unreachable { .. }
            | Error::Io(_)
    )
}

/// Latency percentiles of the successful operations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    pub max: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            mean: histogram.mean() / 1000.0,
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p99_9: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

/// What one kind of operation (or all of them) did in a phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpSummary {
    /// Operations that completed, successfully or not.
    pub ops: u64,
    pub ok: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Of the successful operations only: a failed one's latency says how
    /// fast the failure came, not how fast the server works.
    pub latency_ms: Latency,
}

#[derive(Debug)]
struct OpTally {
    histogram: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

impl OpTally {
    fn new(template: &Histogram<u64>) -> OpTally {
        OpTally {
            histogram: Histogram::new_from(template),
            ok: 0,
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, outcome: Result<Duration, &str>) {
        match outcome {
            Ok(latency) => {
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.histogram.saturating_record(us.max(LOWEST_US));
                self.ok += 1;
            }
            Err(kind) => *self.errors.entry(kind.to_string()).or_default() += 1,
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn summary(&self) -> OpSummary {
        let errors = self.error_count();
        OpSummary {
            ops: self.ok + errors,
            ok: self.ok,
            errors,
            errors_by_kind: self.errors.clone(),
            latency_ms: Latency::of(&self.histogram),
        }
    }
}

#[derive(Debug)]
struct Tally {
    all: OpTally,
    by_op: BTreeMap<&'static str, OpTally>,
}

/// A running count of a phase: operations, errors, the p99 so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub ops: u64,
    pub ok: u64,
    pub errors: u64,
    pub p99: Option<Duration>,
}

/// The shared tally of one phase.
#[derive(Debug)]
pub struct Recorder {
    per_op: bool,
    template: Histogram<u64>,
    tally: Mutex<Tally>,
}

impl Recorder {
    /// With `per_op`, each kind of operation also gets its own tally (for a
    /// mixed workload).
    pub fn new(per_op: bool) -> Result<Recorder, hdrhistogram::CreationError> {
        let template = new_histogram()?;
        Ok(Recorder {
            per_op,
            tally: Mutex::new(Tally {
                all: OpTally::new(&template),
                by_op: BTreeMap::new(),
            }),
            template,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Tally> {
        // A worker that panicked mid-record left counters, not a broken
        // invariant: keep counting.
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one completed operation of kind `op`.
    pub fn record(&self, op: &'static str, outcome: Result<Duration, &Error>) {
        let kind = outcome.as_ref().err().map(|e| error_kind(e));
        let outcome = match (&outcome, &kind) {
            (Ok(latency), _) => Ok(*latency),
            (Err(_), Some(kind)) => Err(kind.as_str()),
            (Err(_), None) => Err("Unknown"),
        };
        let mut tally = self.lock();
        tally.all.record(outcome);
        if self.per_op {
            tally
                .by_op
                .entry(op)
                .or_insert_with(|| OpTally::new(&self.template))
                .record(outcome);
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Snapshot {
        let tally = self.lock();
        let errors = tally.all.error_count();
        let p99 = (!tally.all.histogram.is_empty())
            .then(|| Duration::from_micros(tally.all.histogram.value_at_quantile(0.99)));
        Snapshot {
            ops: tally.all.ok + errors,
            ok: tally.all.ok,
            errors,
            p99,
        }
    }

    /// The summary of every operation, and of each kind when kept apart.
    pub fn summaries(&self) -> (OpSummary, BTreeMap<String, OpSummary>) {
        let tally = self.lock();
        let by_op = tally
            .by_op
            .iter()
            .map(|(op, t)| (op.to_string(), t.summary()))
            .collect();
        (tally.all.summary(), by_op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let recorder = Recorder::new(false).unwrap();
        for ms in 1..=1000u64 {
            recorder.record("get", Ok(Duration::from_micros(ms * 1000)));
        }
        let (all, by_op) = recorder.summaries();
        assert!(by_op.is_empty());
        assert_eq!((all.ops, all.ok, all.errors), (1000, 1000, 0));
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(near(all.latency_ms.p50, 500.0), "{:?}", all.latency_ms);
        assert!(near(all.latency_ms.p90, 900.0), "{:?}", all.latency_ms);
        assert!(near(all.latency_ms.p99, 990.0), "{:?}", all.latency_ms);
        assert!(near(all.latency_ms.p99_9, 999.0), "{:?}", all.latency_ms);
        assert!(near(all.latency_ms.max, 1000.0), "{:?}", all.latency_ms);
    }

    #[test]
    fn errors_are_counted_by_kind_and_kept_out_of_latency() {
        let recorder = Recorder::new(true).unwrap();
        recorder.record("get", Ok(Duration::from_millis(2)));
        recorder.record("set", Err(&Error::ConnectionLoss));
        recorder.record(
            "set",
            Err(&Error::Keeper {
                code: ErrorCode::NoNode.code(),
                path: None,
            }),
        );
        recorder.record("set", Err(&Error::ConnectionLoss));
        let (all, by_op) = recorder.summaries();
        assert_eq!((all.ops, all.ok, all.errors), (4, 1, 3));
        assert_eq!(all.errors_by_kind["ConnectionLoss"], 2);
        assert_eq!(all.errors_by_kind["NoNode"], 1);
        assert_eq!(by_op["set"].errors, 3);
        assert_eq!(by_op["get"].ok, 1);
        assert!((all.latency_ms.max - 2.0).abs() < 0.01);
        let snapshot = recorder.snapshot();
        assert_eq!((snapshot.ops, snapshot.errors), (4, 3));
    }
}
