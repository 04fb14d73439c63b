//! The error type of `rost-store`.

use std::io;
use std::path::PathBuf;

/// Errors returned by the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"opening"`, `"renaming"`, …).
        op: &'static str,
        /// The path involved, relative to the repo where that is clearer.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No repository at the given path.
    #[error("no OSTree repository at {path}: {reason}")]
    NotARepo {
        /// The path given.
        path: PathBuf,
        /// Why it is not one.
        reason: String,
    },
    /// A ref, commit or path that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An object that is present but not valid.
    #[error("corrupted object {object}: {reason}")]
    Corrupt {
        /// `CHECKSUM.TYPE`
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// An object whose content does not hash to its name.
    #[error("corrupted object {object}: checksum mismatch: expected {expected}, actual {actual}")]
    ChecksumMismatch {
        /// `CHECKSUM.TYPE`
        object: String,
        /// The name.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// A string that should be a checksum but is not.
    #[error("invalid checksum {0:?}")]
    InvalidChecksum(String),
    /// A ref name that OSTree would reject.
    #[error("{}", crate::msg::invalid_refspec(.0))]
    InvalidRef(String),
    /// Input the store cannot represent (special files, non-UTF-8 names, …).
    #[error("{path}: {reason}")]
    Unsupported {
        /// The offending path.
        path: PathBuf,
        /// Why it cannot be stored.
        reason: String,
    },
    /// A malformed repository config or key file.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line number where known.
        reason: String,
    },
    /// Anything else the caller should show as is.
    #[error("{0}")]
    Other(String),
}

/// Result alias for the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds operation and path context to `io::Result`s.
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
