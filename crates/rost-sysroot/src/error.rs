//! The error type of `rost-sysroot`.

use std::io;
use std::path::PathBuf;

/// Errors returned by sysroot operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed; `path` is relative to the sysroot.
    #[error("{op} {path}")]
    Io {
        /// What was being done (`"opening"`, `"renaming"`, …).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An error from the repository (unknown ref, corrupt object, …).
    #[error(transparent)]
    Store(#[from] rost_store::Error),
    /// The commit has no kernel where ostree looks for one.
    #[error(
        "commit {commit} has no kernel: found none in /usr/lib/modules/*/vmlinuz, /usr/lib/ostree-boot or /boot"
    )]
    NoKernel {
        /// The commit being deployed.
        commit: String,
    },
    /// A file of the sysroot that cannot be parsed (BLS entry, origin).
    #[error("{path}: {reason}")]
    Invalid {
        /// The file, relative to the sysroot.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A request that does not fit the sysroot's state (index out of range,
    /// undeploying the booted deployment, no --os and not booted, …).
    #[error("{0}")]
    Refused(String),
}

/// Result alias for the sysroot.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds operation and path context to I/O results.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            op,
            path: path.into(),
            source: e.into(),
        })
    }
}
