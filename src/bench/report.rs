//! What a run reports: one [`Report`], printed as text for people or as JSON
//! (`--json`) for scripts. Every error is in it, counted by kind.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::cpu::{CpuUse, HostUse};
use super::stats::{Latency, OpSummary};

/// The command's own name in reports.
pub const TOOL: &str = "zkBench";

/// One timed phase (warm-up or the measured run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhaseReport {
    /// Operations that completed, successfully or with an error.
    pub ops: u64,
    pub ok: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    /// Successful operations per second.
    pub throughput_ops_s: f64,
    /// Latency of the successful operations.
    pub latency_ms: Latency,
    /// Each kind of operation apart (mixed workloads only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_op: BTreeMap<String, OpSummary>,
    /// Why the phase ended before its limit, if it did.
    pub stopped_early: Option<String>,
}

/// Population of the key space before, or removal of the benchmark's nodes
/// after, the timed phases.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Housekeeping {
    /// Nodes created (setup) or deleted (cleanup).
    pub done: u64,
    /// Nodes already there (setup, reused) or already gone (cleanup).
    pub already: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    /// Set when the servers stopped answering and the step was given up.
    pub abandoned: Option<String>,
}

/// What was asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Requested {
    pub duration_s: Option<f64>,
    pub ops: Option<u64>,
    pub warmup_s: f64,
    /// `--rate`: operations per second on a schedule, latency from each
    /// operation's scheduled start; None for as fast as replies come.
    pub rate_ops_s: Option<f64>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub connect_string: String,
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_size: Option<usize>,
    pub value_size: usize,
    pub sessions: usize,
    pub in_flight: usize,
    /// Keys in the key space (0 for create).
    pub keys: u64,
    pub root: String,
    pub seed: u64,
    pub requested: Requested,
    /// How many sessions each server took.
    pub sessions_per_server: BTreeMap<String, usize>,
    pub setup: Housekeeping,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<PhaseReport>,
    /// The measured phase, flattened into the report's top level.
    #[serde(flatten)]
    pub measured: PhaseReport,
    /// This process over the measured phase.
    pub client_cpu: CpuUse,
    /// The processes named with `--server-pid`, over the measured phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<CpuUse>,
    /// The whole machine over the measured phase (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cpu: Option<HostUse>,
    /// None with `--keep`.
    pub cleanup: Option<Housekeeping>,
}

impl Report {
    /// Whether any operation, of any step, failed.
    pub fn has_errors(&self) -> bool {
        self.measured.errors > 0
            || self.setup.errors > 0
            || self.warmup.as_ref().is_some_and(|w| w.errors > 0)
            || self.cleanup.as_ref().is_some_and(|c| c.errors > 0)
    }

    /// Whether the run did all it was asked without a single error.
    pub fn is_clean(&self) -> bool {
        !self.has_errors() && self.measured.stopped_early.is_none()
    }

    /// As JSON, one object.
    pub fn to_json(&self) -> String {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// As text, for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let limit = match (self.requested.ops, self.requested.duration_s) {
            (Some(ops), _) => format!("{ops} ops"),
            (None, Some(s)) => format!("{s} s"),
            (None, None) => "unbounded".into(),
        };
        let workload = match (self.read_ratio, self.multi_size) {
            (Some(ratio), _) => format!("{} (read ratio {ratio})", self.workload),
            (None, Some(size)) => format!("{} ({size} setData each)", self.workload),
            _ => self.workload.clone(),
        };
        let pacing = match self.requested.rate_ops_s {
            Some(rate) => format!(", paced at {rate} ops/s"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{TOOL} {workload} against {}: {} sessions x {} in flight, {}-byte values, {limit} after {} s warm-up{pacing}",
            self.connect_string,
            self.sessions,
            self.in_flight,
            self.value_size,
            self.requested.warmup_s
        );
        let spread: Vec<String> = self
            .sessions_per_server
            .iter()
            .map(|(server, n)| format!("{server} {n}"))
            .collect();
        let _ = writeln!(out, "sessions     {}", spread.join(", "));
        let _ = writeln!(
            out,
            "setup        {} created, {} already there, {} errors{} in {:.1} s",
            self.setup.done,
            self.setup.already,
            self.setup.errors,
            kinds(&self.setup.errors_by_kind),
            self.setup.elapsed_s
        );
        if let Some(warmup) = &self.warmup {
            let _ = writeln!(
                out,
                "warm-up      {} ops, {} errors{} in {:.1} s",
                warmup.ops,
                warmup.errors,
                kinds(&warmup.errors_by_kind),
                warmup.elapsed_s
            );
        }
        let m = &self.measured;
        let _ = writeln!(
            out,
            "ops          {} (ok {}, errors {}) in {:.2} s",
            m.ops, m.ok, m.errors, m.elapsed_s
        );
        let _ = writeln!(out, "throughput   {:.1} ops/s", m.throughput_ops_s);
        let _ = writeln!(out, "latency ms   {}", latency_line(&m.latency_ms));
        for (op, summary) in &m.by_op {
            let _ = writeln!(
                out,
                "  {op:<10} {} ops, {} errors; {}",
                summary.ops,
                summary.errors,
                latency_line(&summary.latency_ms)
            );
        }
        let _ = writeln!(
            out,
            "errors       {}",
            if m.errors_by_kind.is_empty() {
                "none".to_string()
            } else {
                kinds(&m.errors_by_kind)
                    .trim_start_matches(": ")
                    .to_string()
            }
        );
        if let Some(reason) = &m.stopped_early {
            let _ = writeln!(out, "stopped      early: {reason}");
        }
        let _ = writeln!(out, "client CPU   {}", cpu_line(&self.client_cpu));
        if let Some(server) = &self.server_cpu {
            let _ = writeln!(out, "server CPU   {}", cpu_line(server));
            if server.us_per_op > 0.0 {
                let _ = writeln!(
                    out,
                    "             zkBench used {:.0}% of the server's CPU per op",
                    100.0 * self.client_cpu.us_per_op / server.us_per_op
                );
            }
        }
        if let Some(host) = &self.host_cpu {
            let _ = writeln!(
                out,
                "host CPU     {:.2} of {} cores busy",
                host.busy_cores, host.cores
            );
            if host.saturated() {
                let _ = writeln!(
                    out,
                    "             every core was busy: these figures are this machine's limit, not only the server's; run {TOOL} on another host to measure the server alone"
                );
            }
        }
        match &self.cleanup {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "cleanup      {} deleted, {} already gone, {} errors{} in {:.1} s{}",
                    c.done,
                    c.already,
                    c.errors,
                    kinds(&c.errors_by_kind),
                    c.elapsed_s,
                    c.abandoned
                        .as_ref()
                        .map(|why| format!(" (abandoned: {why})"))
                        .unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "cleanup      skipped (--keep): nodes left under {}",
                    self.root
                );
            }
        }
        out
    }
}

fn latency_line(l: &Latency) -> String {
    format!(
        "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3})",
        l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
    )
}

fn cpu_line(cpu: &CpuUse) -> String {
    format!(
        "{:.2} s user + {:.2} s system = {:.1} us/op, {:.2} cores",
        cpu.user_s, cpu.system_s, cpu.us_per_op, cpu.cores
    )
}

fn kinds(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(": {}", listed.join(", "))
}
