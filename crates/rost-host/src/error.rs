//! Errors of the client workflows.

/// What can go wrong in a client workflow. Variants are what callers (the CLI,
/// an update driver) branch on; store and sysroot errors pass through typed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the repository or a pull (network, checksum, signature, …).
    #[error(transparent)]
    Store(#[from] rost_store::Error),
    /// From the sysroot (deploy, lock, boot configuration, …).
    #[error(transparent)]
    Sysroot(#[from] rost_sysroot::Error),
    /// A commit's metadata entry that cannot be read.
    #[error("commit {commit}: metadata {key}: {reason}")]
    Metadata {
        /// The commit.
        commit: String,
        /// The metadata key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The sysroot has no deployment to work from.
    #[error(
        "no deployments found in {sysroot} (deploy one first: rost admin deploy --os OS REMOTE:REF)"
    )]
    NoDeployment {
        /// The sysroot.
        sysroot: String,
    },
    /// The deployment's origin names nothing to upgrade from.
    #[error("deployment {deployment}: origin has no refspec to follow")]
    NoRefspec {
        /// `CSUM.SERIAL` of the deployment.
        deployment: String,
    },
    /// The update is older than what is deployed.
    #[error(
        "upgrade target revision {target} with timestamp {target_time} is chronologically older than current revision {current} with timestamp {current_time}; use --allow-downgrade to permit"
    )]
    Downgrade {
        /// The commit offered.
        target: String,
        /// Its timestamp (ISO 8601).
        target_time: String,
        /// The commit deployed.
        current: String,
        /// Its timestamp (ISO 8601).
        current_time: String,
    },
    /// `deploy VERSION|CHECKSUM` found nothing in the branch's history.
    #[error("{what} not found in the history of {refspec}")]
    NotInHistory {
        /// `version 1.2` or `commit CSUM`.
        what: String,
        /// The branch searched.
        refspec: String,
    },
    /// A request that does not fit the sysroot's state.
    #[error("{0}")]
    Refused(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
