//! The few file operations the log performs, with the seam where tests inject
//! faults (fsync failure, full disk) without root or a special filesystem.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

#[cfg(any(test, feature = "failpoints"))]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(any(test, feature = "failpoints"))]
use std::sync::Arc;

/// Simulated faults, shared with the test that drives them.
#[cfg(any(test, feature = "failpoints"))]
#[derive(Debug, Default)]
pub struct FaultInjector {
    fail_sync: AtomicBool,
    disk_full: AtomicBool,
}

#[cfg(any(test, feature = "failpoints"))]
impl FaultInjector {
    /// While set, every fsync/fdatasync fails with EIO.
    pub fn set_fail_sync(&self, on: bool) {
        self.fail_sync.store(on, Ordering::SeqCst);
    }

    /// While set, preallocation fails with ENOSPC and a data write stores
    /// half of its bytes, then fails with ENOSPC.
    pub fn set_disk_full(&self, on: bool) {
        self.disk_full.store(on, Ordering::SeqCst);
    }
}

/// The file operations that can fail in ways the log must classify. Without
/// the fault injector compiled in this is a zero-sized pass-through.
#[derive(Clone, Debug, Default)]
pub(super) struct Faults {
    #[cfg(any(test, feature = "failpoints"))]
    pub(super) injector: Arc<FaultInjector>,
}

impl Faults {
    #[cfg(any(test, feature = "failpoints"))]
    fn sync_fault(&self) -> io::Result<()> {
        if self.injector.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    #[cfg(not(any(test, feature = "failpoints")))]
    fn sync_fault(&self) -> io::Result<()> {
        Ok(())
    }

    #[cfg(any(test, feature = "failpoints"))]
    fn disk_full(&self) -> bool {
        self.injector.disk_full.load(Ordering::SeqCst)
    }

    #[cfg(not(any(test, feature = "failpoints")))]
    fn disk_full(&self) -> bool {
        false
    }

    /// fdatasync.
    pub(super) fn sync_data(&self, file: &File) -> io::Result<()> {
        self.sync_fault()?;
        file.sync_data()
    }

    /// fsync of a directory, which makes creations, renames and deletions in
    /// it durable.
    pub(super) fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.sync_fault()?;
        File::open(dir)?.sync_all()
    }

    /// Writes all of `bytes` at `offset`.
    pub(super) fn write_at(&self, file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
        if self.disk_full() {
            file.write_all_at(&bytes[..bytes.len() / 2], offset)?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        file.write_all_at(bytes, offset)
    }

    /// Reserves blocks for the first `len` bytes of `file` (extending it), so
    /// that a full disk shows up here rather than as a failed fsync later.
    pub(super) fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        if self.disk_full() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        allocate(file, len)
    }
}

#[cfg(target_os = "linux")]
fn allocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len_signed = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "allocation too large"))?;
    loop {
        // SAFETY: the descriptor belongs to `file`, which outlives the call;
        // fallocate reads no memory of ours.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len_signed) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            // Filesystems without fallocate get a sparse file: a full disk then
            // surfaces on write instead.
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => return extend(file, len),
            _ => return Err(error),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn allocate(file: &File, len: u64) -> io::Result<()> {
    extend(file, len)
}

fn extend(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

/// Overwrites `from..to` with zeros. Used to drop records; the blocks are
/// already allocated, so no fault is injected here.
pub(super) fn zero_range(file: &File, from: u64, to: u64) -> io::Result<()> {
    const CHUNK: usize = 64 << 10;
    let zeros = [0u8; CHUNK];
    let mut offset = from;
    while offset < to {
        let n = usize::try_from(to - offset).map_or(CHUNK, |left| left.min(CHUNK));
        file.write_all_at(&zeros[..n], offset)?;
        offset += n as u64;
    }
    Ok(())
}

/// Whether `error` means the disk or the quota is full.
pub(super) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT)
    )
}
