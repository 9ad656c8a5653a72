//! Time, behind a seam. The server reads wall-clock time only to stamp
//! transactions (ctime/mtime, TTL judgement); session expiry and every timer use
//! tokio's clock, which a test or a simulation can pause and advance. Swapping
//! [`Clock`] is how a deterministic simulation controls the wall clock too.

use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Milliseconds on tokio's monotonic clock since `origin`; what the session
/// tracker counts in.
pub fn elapsed_ms(origin: tokio::time::Instant) -> i64 {
    origin.elapsed().as_millis() as i64
}
