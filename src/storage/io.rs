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

/// Reads a whole file of `len` bytes into a zeroed buffer, skipping the
/// ranges the filesystem reports as holes (SEEK_DATA/SEEK_HOLE): a
/// preallocated segment is mostly unwritten extents, which read as zeros, and
/// reading them copies and faults in megabytes for nothing. Returns the buffer
/// and the end of the last range that was read: every byte from there on is
/// zero without having been touched. Where the filesystem cannot tell holes
/// apart, everything is read.
pub(super) fn read_data_ranges(file: &File, len: usize) -> io::Result<(Vec<u8>, usize)> {
    // Zeroed allocation of this size comes from fresh pages: the parts never
    // written to cost no memory.
    let mut bytes = vec![0u8; len];
    let mut data_end = 0usize;
    let mut pos = 0usize;
    while pos < len {
        let Some((start, end)) = next_data_range(file, pos, len)? else {
            break;
        };
        let range = bytes.get_mut(start..end).unwrap_or_default();
        file.read_exact_at(range, start as u64)?;
        data_end = end;
        pos = end;
    }
    Ok((bytes, data_end))
}

/// The next range at or after `from` that may hold nonzero bytes, clamped to
/// `len`; `None` when only holes follow.
fn next_data_range(file: &File, from: usize, len: usize) -> io::Result<Option<(usize, usize)>> {
    use std::os::fd::AsRawFd;
    let seek = |at: usize, whence: libc::c_int| -> io::Result<Option<usize>> {
        let offset =
            libc::off_t::try_from(at).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: lseek on a descriptor the caller keeps open; it moves only
        // the file offset, which positional reads ignore.
        let rc = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
        if rc >= 0 {
            return Ok(Some(usize::try_from(rc).unwrap_or(usize::MAX).min(len)));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            // No data at or after `offset`.
            Some(libc::ENXIO) => Ok(None),
            // No hole support: treat everything as data.
            Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
                Ok(Some(if whence == libc::SEEK_DATA { at } else { len }))
            }
            _ => Err(error),
        }
    };
    let Some(start) = seek(from, libc::SEEK_DATA)? else {
        return Ok(None);
    };
    if start >= len {
        return Ok(None);
    }
    let end = seek(start, libc::SEEK_HOLE)?
        .filter(|&end| end > start)
        .unwrap_or(len);
    Ok(Some((start, end)))
}
