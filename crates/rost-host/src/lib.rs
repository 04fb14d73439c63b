//! `rost-host`: what an administrator types on a running machine — status,
//! upgrade, deploy, rebase, rollback, cleanup and package-level diffs — on
//! top of `rost-store` (pull) and `rost-sysroot` (deployments).
//!
//! Owns: rpm-ostree's view of a sysroot ([`Host::roles`]: booted, pending,
//! rollback), the status model with rpm-ostree's JSON names ([`Status`]),
//! the update workflows ([`Host::upgrade`], [`Host::deploy_revision`],
//! [`Host::rebase`], [`Host::rollback`], [`Host::cleanup`]) and package
//! diffs from commit metadata ([`packages`]). Ignores: rendering (the binary
//! prints), package layering and overrides (not built yet).
//!
//! Crash safety comes from the layers below: pulled objects are verified
//! before they are stored under their names, and a new boot order becomes
//! real only through `rost-sysroot`'s single atomic loader swap. A workflow
//! killed at any point leaves the previous default bootable and a rerun
//! completes it.
//!
//! ```no_run
//! use rost_host::{Host, MoveOptions, Outcome};
//! use rost_sysroot::{LoadOptions, Sysroot};
//! # fn main() -> rost_host::Result<()> {
//! let mut host = Host::new(Sysroot::load("/".as_ref(), &LoadOptions::default())?);
//! let report = host.upgrade(&MoveOptions::default())?;
//! if report.outcome == Outcome::Deployed {
//!     let diff = report.diff.unwrap_or_default();
//!     assert!(diff.summary().len() < 1000);
//! }
//! # Ok(()) }
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod error;
mod host;
pub mod packages;
mod rollback;
mod upgrade;

pub use error::{Error, Result};
pub use host::{
    CommitInfo, DeploymentStatus, Host, ORIGIN_GROUP, ORIGIN_OVERRIDE_COMMIT, ORIGIN_REFSPEC,
    Roles, Status,
};
pub use rollback::{CleanupOptions, CleanupReport};
pub use upgrade::{Depth, MoveOptions, MoveReport, Outcome, iso8601};
