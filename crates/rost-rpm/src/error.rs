//! Error type of `rost-rpm`.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading packages, repositories, or solving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done (`"opening"`, `"writing"`, …).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The `rpm` crate could not read a package.
    #[error("reading RPM {path}")]
    Rpm {
        /// The package file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rpm::Error,
    },
    /// A file is malformed or hostile (bad payload path, truncated, …).
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checksum did not match the expected value.
    #[error("{what}: checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The file or object concerned.
        what: String,
        /// Expected digest (hex).
        expected: String,
        /// Actual digest (hex).
        actual: String,
    },
    /// A configuration or metadata file could not be parsed.
    #[error("{file}:{line}: {reason}")]
    Parse {
        /// The file concerned.
        file: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Something requested does not exist (repo id, package, metadata type).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be satisfied; the text explains why.
    #[error("cannot resolve the request:\n{0}")]
    Unsolvable(String),
    /// A network fetch failed.
    #[error("fetching {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
