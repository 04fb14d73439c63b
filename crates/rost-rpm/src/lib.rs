//! `rost-rpm`: everything rost knows about RPM packages, and nothing about OSTree.
//!
//! Owns:
//! - [`header`]: reading package headers (NEVRA, dependencies with pre/post flags,
//!   weak dependencies, file lists with modes/owners/digests/flags/caps, scriptlets)
//!   through the `rpm` crate, with header and payload digests verified;
//! - [`payload`]: extracting payloads safely (no `..`, no writes through symlinks,
//!   per-file digests checked);
//! - [`evr`]: rpm's version comparison (`rpmvercmp`) and dependency range overlap;
//! - [`repofile`]: dnf-style `.repo` files with `$releasever`/`$basearch`;
//! - [`repomd`], [`metadata`]: rpm-md parsing (streaming) and loading with a cache;
//! - [`poolcache`]: parsed primary metadata interned and indexed, and its binary
//!   cache (like libsolv's `.solv`);
//! - [`richdep`], [`solve`]: rich dependencies and resolution with `resolvo`;
//! - [`download`]: verified, cached, resumable, parallel package downloads.
//!
//! Deliberately ignores: GPG signature policy, the rpmdb, scriptlet execution.
//!
//! ```
//! use rost_rpm::evr::rpmvercmp;
//! use std::cmp::Ordering;
//! assert_eq!(rpmvercmp("1.0~rc1", "1.0"), Ordering::Less);
//! assert_eq!(rpmvercmp("1.0^git1", "1.0"), Ordering::Greater);
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod download;
pub mod error;
pub mod evr;
pub mod header;
pub mod metadata;
pub mod payload;
pub mod payload_stream;
pub mod poolcache;
pub mod repofile;
pub mod repomd;
pub mod richdep;
pub mod solve;

pub use error::{Error, Result};
pub use header::{Dependency, FileInfo, PackageHeader, RpmPackage, load_package};
