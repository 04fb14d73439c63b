//! Errors of the compose pipeline.

use std::path::PathBuf;

/// A compose error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A treefile is malformed: names the file and the key.
    #[error("{file}: {msg}")]
    Treefile {
        /// The treefile.
        file: String,
        /// What is wrong, starting with the key path.
        msg: String,
    },
    /// Bad input that is not tied to one treefile.
    #[error("{msg}")]
    Invalid {
        /// What is wrong.
        msg: String,
    },
    /// A package holds a path rost cannot put into an OSTree commit.
    #[error("package {package}: unsupported path {path}")]
    UnsupportedPath {
        /// Package NEVRA.
        package: String,
        /// The offending path.
        path: String,
    },
    /// Two packages own one path with different content.
    #[error("file conflict: {path} differs between {a} and {b}")]
    Conflict {
        /// The path in the tree.
        path: String,
        /// First package.
        a: String,
        /// Second package.
        b: String,
    },
    /// A scriptlet or treefile script failed or cannot run.
    #[error("{package}: {phase} scriptlet: {msg}")]
    Script {
        /// Package NEVRA (or `treefile`).
        package: String,
        /// `pre`, `post`, `posttrans`, `postprocess`.
        phase: String,
        /// What happened.
        msg: String,
    },
    /// I/O failure with the operation and path.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A store error.
    #[error(transparent)]
    Store(#[from] rost_store::Error),
    /// An RPM-side error.
    #[error(transparent)]
    Rpm(#[from] rost_rpm::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
