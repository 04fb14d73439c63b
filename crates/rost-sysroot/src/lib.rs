//! `rost-sysroot`: the `ostree admin` layer — deployments, the `/etc` merge,
//! boot entries and the atomic loader swap — on OSTree's own layout, so the
//! real `ostree admin` and rost can manage one sysroot.
//!
//! Owns: [`Sysroot`] (load, [`Sysroot::deploy`], [`Sysroot::undeploy`],
//! [`Sysroot::set_pinned`], [`Sysroot::cleanup`], …), the sysroot lock
//! ([`SysrootLock`]), BLS entries ([`bls`]), kernel discovery ([`kernel`]) and the
//! `/etc` three-way merge ([`etc_merge`]). Knows nothing of RPM; never prints.
//!
//! ```text
//! SYSROOT/
//!   boot/loader -> loader.B                  B = bootversion (0|1), swapped by rename
//!   boot/loader.B/entries/ostree-N-OS.conf   one BLS entry per deployment
//!   boot/ostree/OS-BOOTCSUM/vmlinuz-KVER     kernel + initramfs, shared
//!   ostree/lock                              sysroot lock (OFD/POSIX record lock)
//!   ostree/repo/                             bare repo; refs ostree/B/S/I pin deployed commits
//!   ostree/boot.B -> boot.B.S                S = subbootversion
//!   ostree/boot.B.S/OS/BOOTCSUM/SERIAL -> ../../../deploy/OS/deploy/CSUM.N
//!   ostree/deploy/OS/var/                    shared /var of the stateroot
//!   ostree/deploy/OS/deploy/CSUM.N/          hardlinked checkout (+ CSUM.N.origin)
//! ```
//!
//! Crash safety: a deployment (checkout, merged `/etc`, origin, kernel in
//! `/boot`, BLS entries in the *other* `loader.B'`, symlink farm) is complete
//! and `syncfs`ed before `boot/loader` is renamed to name it; the booted and
//! rollback deployments are never modified. Anything a crash leaves behind is
//! unreferenced and removed by the next deploy or cleanup.
//!
//! Locking: every writer holds [`SysrootLock`] (`ostree/lock`), which excludes
//! libostree writers too; the repo's own lock guards the prune.
//!
//! ```no_run
//! use rost_sysroot::{Sysroot, LoadOptions, DeployOptions};
//! # fn main() -> rost_sysroot::Result<()> {
//! let mut s = Sysroot::load("/".as_ref(), &LoadOptions::default())?;
//! let lock = s.lock()?;
//! let opts = DeployOptions { osname: Some("fedora".into()), rev: "fedora/x86_64".into(), ..Default::default() };
//! let report = s.deploy(&lock, &opts)?;
//! assert!(!report.name.is_empty());
//! # Ok(()) }
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bls;
mod checkout;
mod error;
pub mod etc_merge;
mod fsx;
pub mod kernel;
mod lock;
mod ops;
mod staged;
mod sysroot;

pub use error::{Error, Result};
pub use lock::{LOCK_FILE, SysrootLock};
pub use ops::{DeployOptions, DeployReport, init_fs};
pub use staged::STAGED_FILE;
pub use sysroot::{
    Deployment, LoadOptions, ORIGIN_TRANSIENT_GROUP, REPO_PATH, Sysroot, WriteReport,
};

/// Aborts the process when `ROST_FAILPOINT` names this point (crash tests).
pub(crate) fn failpoint(point: &str) {
    rost_store::transaction::failpoint(point);
}
