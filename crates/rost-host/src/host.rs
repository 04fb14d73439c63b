//! The host: a sysroot seen as rpm-ostree sees it — a booted deployment, an
//! optional pending one before it and a rollback one after it — and the
//! status model `rost status` renders.
//!
//! A sysroot that is not the running system has no booted deployment; there
//! the first deployment of the stateroot plays the booted one's role (it is
//! what the next boot would start), so merges, diffs and rollback work the
//! same on an image being prepared as on a live machine.

use rost_store::objects::Commit;
use rost_store::{Checksum, Repo};
use rost_sysroot::{Deployment, Sysroot};
use serde::Serialize;

use crate::packages::{Package, commit_packages};
use crate::{Error, Result};

/// Group and key of the origin that names what a deployment follows.
pub const ORIGIN_GROUP: &str = "origin";
/// `[origin] refspec=REMOTE:REF`.
pub const ORIGIN_REFSPEC: &str = "refspec";
/// `[origin] override-commit=CSUM` (set by `deploy`, cleared by `upgrade`).
pub const ORIGIN_OVERRIDE_COMMIT: &str = "override-commit";

/// The deployments that matter for one stateroot.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    /// The booted deployment, or the default one where nothing is booted.
    pub booted: Option<Deployment>,
    /// Whether `booted` is really the running system.
    pub really_booted: bool,
    /// A deployment that would boot next instead of `booted` (staged or ahead
    /// of it in the boot order).
    pub pending: Option<Deployment>,
    /// Whether `pending` is staged (not yet in the boot configuration).
    pub pending_staged: bool,
    /// The first deployment after `booted`: what `rollback` goes back to.
    pub rollback: Option<Deployment>,
}

/// A commit's identity and the facts the client shows about it.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// The commit.
    pub checksum: Checksum,
    /// `version` metadata.
    pub version: Option<String>,
    /// Commit timestamp, seconds since the epoch (UTC).
    pub timestamp: u64,
    /// Package list, when the commit records one.
    pub packages: Option<Vec<Package>>,
}

impl CommitInfo {
    /// Loads the commit `csum` from `repo`.
    pub fn load(repo: &Repo, csum: &Checksum) -> Result<CommitInfo> {
        let commit = repo.load_commit(csum)?;
        Self::from_commit(csum, &commit)
    }

    /// From an already parsed commit.
    pub fn from_commit(csum: &Checksum, commit: &Commit) -> Result<CommitInfo> {
        Ok(CommitInfo {
            checksum: *csum,
            version: commit.version().map(str::to_owned),
            timestamp: commit.timestamp,
            packages: commit_packages(commit, &csum.to_hex())?,
        })
    }
}

/// One deployment in `rost status --json`, with rpm-ostree's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeploymentStatus {
    /// `OSNAME-CSUM.SERIAL`.
    pub id: String,
    /// Stateroot.
    pub osname: String,
    /// Deploy serial.
    pub serial: u32,
    /// Deployed commit.
    pub checksum: String,
    /// The commit's `version`.
    pub version: Option<String>,
    /// Commit timestamp (0 when the commit is not in the repo).
    pub timestamp: u64,
    /// The origin's refspec.
    pub origin: Option<String>,
    /// `[origin] override-commit`, when `deploy` pinned a commit.
    pub override_commit: Option<String>,
    /// The running deployment.
    pub booted: bool,
    /// Staged, waiting for finalization at shutdown.
    pub staged: bool,
    /// Pinned (never garbage-collected).
    pub pinned: bool,
    /// `/usr` unlock state (rost never unlocks: always `"none"`).
    pub unlocked: &'static str,
    /// Packages layered on the base (rost has no layering yet: empty).
    pub packages: Vec<String>,
    /// Layering requests (empty, as `packages`).
    pub requested_packages: Vec<String>,
    /// Local RPM layering requests (empty).
    pub requested_local_packages: Vec<String>,
    /// Base packages removed (empty).
    pub base_removals: Vec<String>,
    /// Requested base removals (empty).
    pub requested_base_removals: Vec<String>,
    /// Whether the origin's remote verifies GPG signatures.
    pub gpg_enabled: bool,
    /// rpm-ostree's client-side initramfs regeneration (never, here).
    pub regenerate_initramfs: bool,
    /// Packages in the commit (from its `rpmostree.rpmdb.pkglist`).
    #[serde(skip)]
    pub package_count: Option<usize>,
    /// Boot order index (0 = default).
    #[serde(skip)]
    pub index: usize,
}

/// `rost status --json` at the top level.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Status {
    /// Deployments in boot order (a staged one first).
    pub deployments: Vec<DeploymentStatus>,
    /// The running transaction: rost has no daemon, so always null.
    pub transaction: Option<Vec<String>>,
    /// A cached `upgrade --check` result (not kept by rost: null).
    pub cached_update: Option<String>,
    /// A registered update driver (none: null).
    pub update_driver: Option<String>,
}

/// The sysroot with rpm-ostree's view of it.
#[derive(Debug)]
pub struct Host {
    pub(crate) sysroot: Sysroot,
}

impl Host {
    /// Wraps a loaded sysroot.
    pub fn new(sysroot: Sysroot) -> Host {
        Host { sysroot }
    }

    /// The sysroot.
    pub fn sysroot(&self) -> &Sysroot {
        &self.sysroot
    }

    /// The stateroot a workflow acts on: the given one, else the booted one's,
    /// else the default deployment's.
    pub fn osname(&self, osname: Option<&str>) -> Result<String> {
        if let Some(o) = osname {
            return Ok(o.to_owned());
        }
        self.sysroot
            .booted()
            .or_else(|| self.sysroot.deployments().first())
            .map(|d| d.osname.clone())
            .ok_or_else(|| Error::NoDeployment {
                sysroot: self.sysroot.path().display().to_string(),
            })
    }

    /// The booted (or default), pending and rollback deployments of `osname`.
    pub fn roles(&self, osname: Option<&str>) -> Roles {
        let Ok(os) = self.osname(osname) else {
            return Roles::default();
        };
        let mine: Vec<&Deployment> = self
            .sysroot
            .deployments()
            .iter()
            .filter(|d| d.osname == os)
            .collect();
        let real = self.sysroot.booted().filter(|b| b.osname == os);
        let anchor = real.or_else(|| mine.first().copied());
        let Some(anchor) = anchor else {
            return Roles::default();
        };
        let pos = mine.iter().position(|d| d.same_as(anchor)).unwrap_or(0);
        let staged = self.sysroot.staged().filter(|s| s.osname == os);
        Roles {
            booted: Some(anchor.clone()),
            really_booted: real.is_some(),
            pending: staged.or_else(|| mine[..pos].first().copied()).cloned(),
            pending_staged: staged.is_some(),
            rollback: mine.get(pos + 1).map(|d| (*d).clone()),
        }
    }

    /// What `rost status` shows.
    pub fn status(&self) -> Status {
        let repo = self.sysroot.repo();
        let booted = self.sysroot.booted();
        let mut list: Vec<(&Deployment, bool)> = Vec::new();
        if let Some(s) = self.sysroot.staged() {
            list.push((s, true));
        }
        list.extend(self.sysroot.deployments().iter().map(|d| (d, false)));
        let deployments = list
            .into_iter()
            .map(|(d, staged)| {
                let commit = repo.load_commit(&d.csum).ok();
                let origin = d.refspec().map(str::to_owned);
                let gpg_enabled = origin
                    .as_deref()
                    .and_then(|o| o.split_once(':'))
                    .and_then(|(remote, _)| rost_store::remote::get_remote(repo, remote).ok())
                    .is_some_and(|r| r.gpg_verify);
                DeploymentStatus {
                    id: format!("{}-{}", d.osname, d.name()),
                    osname: d.osname.clone(),
                    serial: d.deployserial,
                    checksum: d.csum.to_hex(),
                    version: d.version.clone(),
                    timestamp: commit.as_ref().map_or(0, |c| c.timestamp),
                    origin,
                    override_commit: d
                        .origin
                        .as_ref()
                        .and_then(|o| o.get(ORIGIN_GROUP, ORIGIN_OVERRIDE_COMMIT))
                        .map(str::to_owned),
                    booted: booted.is_some_and(|b| b.same_as(d)),
                    staged,
                    pinned: d.is_pinned(),
                    unlocked: "none",
                    packages: Vec::new(),
                    requested_packages: Vec::new(),
                    requested_local_packages: Vec::new(),
                    base_removals: Vec::new(),
                    requested_base_removals: Vec::new(),
                    gpg_enabled,
                    regenerate_initramfs: false,
                    package_count: commit
                        .as_ref()
                        .and_then(|c| commit_packages(c, &d.csum.to_hex()).ok().flatten())
                        .map(|p| p.len()),
                    index: if staged { 0 } else { d.index },
                }
            })
            .collect();
        Status {
            deployments,
            transaction: None,
            cached_update: None,
            update_driver: None,
        }
    }

    /// Whether a deployment that boots next instead of the booted one exists
    /// (`status --pending-exit-77`).
    pub fn has_pending(&self) -> bool {
        self.roles(None).pending.is_some()
    }
}
