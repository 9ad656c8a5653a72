//! Counters for the four-letter words and metrics. Plain atomics: they are
//! bumped on every request, so no lock may sit on that path.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Request latency: min, max, total and count, in milliseconds.
#[derive(Debug)]
pub struct LatencyStats {
    min_ms: AtomicI64,
    max_ms: AtomicI64,
    total_ms: AtomicI64,
    count: AtomicI64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            min_ms: AtomicI64::new(i64::MAX),
            max_ms: AtomicI64::new(0),
            total_ms: AtomicI64::new(0),
            count: AtomicI64::new(0),
        }
    }
}

impl LatencyStats {
    pub fn record(&self, latency_ms: i64) {
        self.min_ms.fetch_min(latency_ms, Relaxed);
        self.max_ms.fetch_max(latency_ms, Relaxed);
        self.total_ms.fetch_add(latency_ms, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn reset(&self) {
        self.min_ms.store(i64::MAX, Relaxed);
        self.max_ms.store(0, Relaxed);
        self.total_ms.store(0, Relaxed);
        self.count.store(0, Relaxed);
    }

    /// min, avg, max as Apache prints them (min 0 when nothing was measured).
    pub fn min_avg_max(&self) -> (i64, f64, i64) {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return (0, 0.0, 0);
        }
        let avg = self.total_ms.load(Relaxed) as f64 / count as f64;
        (self.min_ms.load(Relaxed), avg, self.max_ms.load(Relaxed))
    }

    pub fn count(&self) -> i64 {
        self.count.load(Relaxed)
    }
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding: AtomicI64,
    pub latency: LatencyStats,
    /// Connections refused for exceeding maxClientCnxns.
    pub connections_refused: AtomicU64,
    /// Connections closed because they could not keep up with their events.
    pub slow_consumers_closed: AtomicU64,
    pub sessions_expired: AtomicU64,
    /// Set while the transaction log cannot be written for lack of space.
    pub disk_full: std::sync::atomic::AtomicBool,
    /// Writes refused because they could not be made durable.
    pub writes_refused: AtomicU64,
}

impl ServerStats {
    pub fn reset(&self) {
        self.packets_received.store(0, Relaxed);
        self.packets_sent.store(0, Relaxed);
        self.latency.reset();
    }
}

/// Per-connection counters, for `cons`.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding: AtomicI64,
    pub last_zxid: AtomicI64,
    pub last_cxid: AtomicI64,
    pub last_op: AtomicI64,
    pub last_latency_ms: AtomicI64,
    pub last_response_ms: AtomicI64,
    pub latency: LatencyStats,
}

impl ConnStats {
    /// `crst`: as Apache, the last operation is forgotten too (`lop=NA`,
    /// no `lcxid`, `lzxid=0xffffffffffffffff`).
    pub fn reset(&self) {
        self.packets_received.store(0, Relaxed);
        self.packets_sent.store(0, Relaxed);
        self.latency.reset();
        self.last_op.store(0, Relaxed);
        self.last_cxid.store(-1, Relaxed);
        self.last_zxid.store(-1, Relaxed);
        self.last_latency_ms.store(0, Relaxed);
        self.last_response_ms.store(0, Relaxed);
    }
}
