//! `rost-store`: an OSTree-format, content-addressed repository.
//!
//! Owns the object formats (GVariant, checksums), the repository modes, writing
//! and reading objects, committing a directory, checkout, refs, fsck and prune.
//! Knows nothing of RPM or sysroots. Byte compatibility with libostree is the
//! contract: the same tree and metadata give the same commit checksum.
//!
//! ```text
//! REPO/
//!   config                      [core] repo_version=1, mode=bare|bare-user|bare-user-only|archive-z2
//!   objects/XX/REST.EXT         XX = first 2 hex digits; EXT = file|filez|dirtree|dirmeta|commit|commitmeta
//!   refs/heads/REF              "CHECKSUM\n"
//!   refs/remotes/REMOTE/REF
//!   tmp/staging-BOOTID-RAND/    a live (flock'ed) or dead transaction
//!   state/  extensions/  .lock
//! ```
//!
//! Crash-safety invariants:
//! 1. Objects are written in a staging dir, made durable by `syncfs`, and only then
//!    renamed into `objects/` — an object file under its name is always complete.
//! 2. Refs are written (temp + fsync + rename + dir fsync) only after every object
//!    the commit reaches is durable in `objects/`.
//! 3. Writers hold the repo lock shared; prune holds it exclusive.
//!
//! ```no_run
//! use rost_store::{Repo, RepoMode, commit::{commit_directory, CommitOptions}};
//! # fn main() -> rost_store::Result<()> {
//! let repo = Repo::init("repo".as_ref(), RepoMode::Archive)?;
//! let opts = CommitOptions { branch: Some("os/x86_64".into()), subject: "v1".into(), ..Default::default() };
//! let res = commit_directory(&repo, "rootfs".as_ref(), &opts)?;
//! println!("{}", res.commit);
//! # Ok(()) }
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod checkout;
mod checksum;
pub mod commit;
pub mod delta;
pub mod diff;
mod error;
pub mod fetch;
pub mod fsck;
pub mod fsutil;
pub mod gpg;
pub mod gvariant;
pub mod keyfile;
pub mod msg;
pub mod objects;
pub mod overlay;
pub mod prune;
pub mod pull;
pub mod refs;
pub mod remote;
mod repo;
pub mod serve;
pub mod sign;
pub mod summary;
pub mod transaction;
pub mod walk;

pub use checksum::{Checksum, ObjectType};
pub use error::{Error, Result};
pub use repo::{ContentObject, ContentReader, Repo, RepoLock, RepoMode};
