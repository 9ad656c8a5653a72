//! CPU time spent by this process (getrusage) and, on Linux, by other local
//! processes (`/proc/PID/stat`): how zkBench shows that it is not the
//! bottleneck, by comparing its own CPU time per operation with the
//! server's.

use std::time::Duration;

use serde::Serialize;

/// User and system CPU time consumed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    /// Both together.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time consumed between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// This process's CPU time, all threads included.
pub fn own() -> std::io::Result<CpuTime> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given,
    // which points at a zeroed value of that type.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: initialised above (zeroed, then filled by a successful call).
    let usage = unsafe { usage.assume_init() };
    let to_duration = |tv: libc::timeval| {
        Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    Ok(CpuTime {
        user: to_duration(usage.ru_utime),
        system: to_duration(usage.ru_stime),
    })
}

/// Another local process's CPU time, from `/proc/PID/stat` (all threads;
/// clock-tick resolution, usually 10 ms).
pub fn of_process(pid: u32) -> std::io::Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_proc_stat(&stat, clock_ticks_per_second()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        )
    })
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// utime and stime are fields 14 and 15; the command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_proc_stat(stat: &str, ticks_per_second: u64) -> Option<CpuTime> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let to_duration = |ticks: u64| {
        Duration::from_secs(ticks / ticks_per_second)
            + Duration::from_nanos((ticks % ticks_per_second) * 1_000_000_000 / ticks_per_second)
    };
    Some(CpuTime {
        user: to_duration(user),
        system: to_duration(system),
    })
}

/// The whole machine's CPU time so far, from the first line of `/proc/stat`:
/// busy (everything but idle and iowait) and all, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTicks {
    busy: u64,
    total: u64,
}

/// The machine's CPU time so far; `None` where `/proc/stat` is unreadable.
pub fn host() -> Option<HostTicks> {
    parse_host_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// `cpu  user nice system idle iowait irq softirq steal ...` (guest time is
/// already counted in user and nice).
fn parse_host_stat(stat: &str) -> Option<HostTicks> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some(HostTicks {
        busy: total.checked_sub(idle)?,
        total,
    })
}

/// How busy the machine was over a phase, in the report: a host whose every
/// core was busy bounds the figures by itself, whatever the server could do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostUse {
    /// Cores kept busy on average, by any process.
    pub busy_cores: f64,
    pub cores: usize,
}

impl HostUse {
    /// Between two readings, on a machine with `cores` cores.
    pub fn between(before: HostTicks, after: HostTicks, cores: usize) -> Option<HostUse> {
        let total = after.total.checked_sub(before.total)?;
        let busy = after.busy.checked_sub(before.busy)?;
        (total > 0).then(|| HostUse {
            busy_cores: busy as f64 / total as f64 * cores as f64,
            cores,
        })
    }

    /// At least nine tenths of every core busy: the run measured the machine.
    pub fn saturated(&self) -> bool {
        self.busy_cores >= 0.9 * self.cores as f64
    }
}

/// CPU time over a phase, in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuUse {
    pub user_s: f64,
    pub system_s: f64,
    /// Microseconds of CPU per completed operation.
    pub us_per_op: f64,
    /// CPU seconds per second of wall time (1.0 is one core kept busy).
    pub cores: f64,
}

impl CpuUse {
    /// `used` over `ops` operations and `wall` time.
    pub fn of(used: CpuTime, ops: u64, wall: Duration) -> CpuUse {
        let total = used.total().as_secs_f64();
        CpuUse {
            user_s: used.user.as_secs_f64(),
            system_s: used.system.as_secs_f64(),
            us_per_op: if ops == 0 {
                0.0
            } else {
                total * 1e6 / ops as f64
            },
            cores: if wall.is_zero() {
                0.0
            } else {
                total / wall.as_secs_f64()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_busy_time_leaves_out_idle_and_iowait() {
        let before = parse_host_stat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        let after = parse_host_stat("cpu  250 0 150 850 50 0 0 0 0 0\n").unwrap();
        // 250 busy ticks of 300: five sixths of two cores.
        let used = HostUse::between(before, after, 2).unwrap();
        assert!((used.busy_cores - 5.0 / 3.0).abs() < 1e-9, "{used:?}");
        assert!(!used.saturated());
        let busier = parse_host_stat("cpu  400 0 280 860 50 0 0 0 0 0\n").unwrap();
        assert!(HostUse::between(after, busier, 2).unwrap().saturated());
        assert_eq!(parse_host_stat("intr 1 2 3\n"), None);
        assert_eq!(HostUse::between(after, after, 2), None);
    }

    #[test]
    fn proc_stat_fields_are_counted_after_the_name() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        let cpu = parse_proc_stat(line, 100).unwrap();
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.system, Duration::from_millis(750));
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = own().unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = own().unwrap().since(&before);
        assert!(used.total() >= Duration::from_millis(10), "{used:?}");
    }

    #[test]
    fn this_process_is_readable_in_proc() {
        let cpu = of_process(std::process::id()).unwrap();
        assert!(cpu.total() < Duration::from_secs(100_000));
    }
}
