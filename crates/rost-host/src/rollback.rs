//! `rollback` and `cleanup`: reorderings and removals of existing
//! deployments; nothing is pulled or checked out.
//!
//! Both end in one `write_deployments` of `rost-sysroot`, the same atomic
//! boot-configuration swap a deploy ends in, so a crash leaves either the old
//! or the new boot order, never a mix.

use rost_sysroot::Deployment;

use crate::host::Host;
use crate::{Error, Result};

/// What `cleanup` should remove (rpm-ostree's `-p -r -b -m`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CleanupOptions {
    /// `-p`: the pending deployment (staged or ahead of the booted one).
    pub pending: bool,
    /// `-r`: the rollback deployment (unless pinned).
    pub rollback: bool,
    /// `-b`: temporary files, leftover deployments, unreferenced objects.
    pub base: bool,
    /// `-m`: the rpm-md cache (rost keeps none on clients: nothing to do).
    pub repomd: bool,
}

/// What `cleanup` removed.
#[derive(Debug, Clone, Default)]
pub struct CleanupReport {
    /// `CSUM.SERIAL` of each deployment removed.
    pub removed: Vec<String>,
    /// Whether the repository was pruned.
    pub pruned: bool,
}

impl Host {
    /// `rost rollback`: the rollback deployment becomes the default. With a
    /// pending deployment and no rollback one, the booted one goes back on
    /// top (undoing an upgrade or a rollback). Returns the new default's name.
    pub fn rollback(&mut self, osname: Option<&str>) -> Result<String> {
        let lock = self.sysroot.lock()?;
        let roles = self.roles(osname);
        if roles.pending_staged {
            return Err(Error::Refused(
                "Staged deployment (remove with cleanup -p)".into(),
            ));
        }
        let first = match (roles.rollback, roles.pending, roles.booted) {
            (Some(r), _, _) => r,
            (None, Some(_), Some(b)) => b,
            _ => return Err(Error::Refused("No rollback deployment found".into())),
        };
        let mut list: Vec<Deployment> = vec![first.clone()];
        list.extend(
            self.sysroot
                .deployments()
                .iter()
                .filter(|d| !d.same_as(&first))
                .cloned(),
        );
        self.sysroot.write_deployments(&lock, list)?;
        Ok(first.name())
    }

    /// `rost cleanup`.
    pub fn cleanup(
        &mut self,
        osname: Option<&str>,
        opts: &CleanupOptions,
    ) -> Result<CleanupReport> {
        if !(opts.pending || opts.rollback || opts.base || opts.repomd) {
            return Err(Error::Refused(
                "At least one cleanup option must be specified".into(),
            ));
        }
        let lock = self.sysroot.lock()?;
        let mut report = CleanupReport::default();
        let roles = self.roles(osname);
        let mut drop: Vec<Deployment> = Vec::new();
        if opts.pending {
            if roles.pending_staged {
                if let Some(name) = self.sysroot.unstage(&lock)? {
                    report.removed.push(name);
                }
            } else if let Some(p) = roles.pending.filter(|p| !p.is_pinned()) {
                drop.push(p);
            }
        }
        if opts.rollback
            && let Some(r) = roles.rollback.filter(|r| !r.is_pinned())
        {
            drop.push(r);
        }
        if !drop.is_empty() {
            let list: Vec<Deployment> = self
                .sysroot
                .deployments()
                .iter()
                .filter(|d| !drop.iter().any(|x| x.same_as(d)))
                .cloned()
                .collect();
            self.sysroot.write_deployments(&lock, list)?;
            report.removed.extend(drop.iter().map(Deployment::name));
        }
        if opts.base {
            self.sysroot.cleanup(&lock)?;
            report.pruned = true;
        }
        Ok(report)
    }
}
