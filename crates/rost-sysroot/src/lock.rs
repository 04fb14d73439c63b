//! The sysroot lock, compatible with libostree's.
//!
//! libostree (`ostree_sysroot_lock`) takes an exclusive open-file-description
//! record lock (`F_OFD_SETLK`, whole file) on `ostree/lock` and unlinks the file
//! when it lets go. Classic POSIX record locks (`F_SETLK`) and OFD locks
//! conflict with each other, so a rost writer and an ostree writer exclude each
//! other. As libglnx does, a lock taken on a file that was unlinked meanwhile is
//! retried on a fresh file.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{IoContext, Result};

/// Lock file, relative to the sysroot.
pub const LOCK_FILE: &str = "ostree/lock";

/// Held sysroot lock; released (and the file unlinked) on drop.
#[derive(Debug)]
pub struct SysrootLock {
    root: OwnedFd,
    fd: Option<OwnedFd>,
}

impl SysrootLock {
    /// Takes the lock, waiting while another process holds it.
    pub fn acquire(root: &OwnedFd) -> Result<SysrootLock> {
        let root = root.try_clone().ctx("dup", ".")?;
        loop {
            let fd = rustix::fs::openat(
                &root,
                LOCK_FILE,
                OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
            .ctx("opening", LOCK_FILE)?;
            match rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::AGAIN) | Err(Errno::ACCESS) => {
                    tracing::info!("waiting for sysroot lock");
                    rustix::fs::fcntl_lock(&fd, FlockOperation::LockExclusive)
                        .ctx("locking", LOCK_FILE)?;
                }
                Err(e) => return Err(e).ctx("locking", LOCK_FILE),
            }
            // The previous holder may have unlinked the file we locked.
            let st = rustix::fs::fstat(&fd).ctx("stat", LOCK_FILE)?;
            if st.st_nlink > 0 {
                return Ok(SysrootLock { root, fd: Some(fd) });
            }
        }
    }

    /// Tries to take the lock without waiting; `Ok(None)` if someone holds it.
    pub fn try_acquire(root: &OwnedFd) -> Result<Option<SysrootLock>> {
        let root = root.try_clone().ctx("dup", ".")?;
        let fd = rustix::fs::openat(
            &root,
            LOCK_FILE,
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .ctx("opening", LOCK_FILE)?;
        match rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(SysrootLock { root, fd: Some(fd) })),
            Err(Errno::AGAIN) | Err(Errno::ACCESS) => Ok(None),
            Err(e) => Err(e).ctx("locking", LOCK_FILE),
        }
    }
}

impl Drop for SysrootLock {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Unlink while still holding the lock, as libglnx does.
            let _ = rustix::fs::unlinkat(&self.root, Path::new(LOCK_FILE), AtFlags::empty());
            let _ = rustix::fs::fcntl_lock(fd.as_fd(), FlockOperation::Unlock);
        }
    }
}
