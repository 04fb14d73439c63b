//! Staged deployments: `deploy --stage` writes the checkout and origin now;
//! `finalize-staged` (run by a shutdown unit) merges `/etc` from the then
//! current merge deployment and switches the boot configuration.
//!
//! The record lives in `SYSROOT/run/ostree/rost-staged-deployment` (a key
//! file; `/run` so that a reboot without finalization forgets it, as
//! libostree's `/run/ostree/staged-deployment`). libostree's record is a
//! GVariant that rost does not write, so `ostree admin status` does not list
//! a rost-staged deployment.

use std::path::Path;

use rost_store::fsutil::{self, Durability};
use rost_store::keyfile::KeyFile;

use crate::bls::BootEntry;
use crate::error::{Error, IoContext, Result};
use crate::fsx;
use crate::lock::SysrootLock;
use crate::ops::DeployOptions;
use crate::sysroot::{Deployment, Sysroot};

/// The staged record, relative to the sysroot.
pub const STAGED_FILE: &str = "run/ostree/rost-staged-deployment";
/// Ref keeping the staged commit until finalization.
pub const STAGED_REF: &str = "rost/staged";
const GROUP: &str = "staged";

/// A staged deployment and how to finalize it.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub(crate) deployment: Deployment,
    merge: Option<(String, String)>,
    opts: StagedOpts,
}

#[derive(Debug, Clone, Default)]
struct StagedOpts {
    retain: bool,
    retain_pending: bool,
    retain_rollback: bool,
    not_as_default: bool,
}

fn get(kf: &KeyFile, key: &str) -> Result<String> {
    kf.get(GROUP, key)
        .map(str::to_owned)
        .ok_or_else(|| Error::Invalid {
            path: STAGED_FILE.into(),
            reason: format!("missing key {key}"),
        })
}

impl Staged {
    pub(crate) fn load(s: &Sysroot) -> Result<Option<Staged>> {
        let Some(b) = fsx::read_optional(s.dfd(), Path::new(STAGED_FILE))? else {
            return Ok(None);
        };
        let kf = KeyFile::parse(&String::from_utf8_lossy(&b)).map_err(|reason| Error::Invalid {
            path: STAGED_FILE.into(),
            reason,
        })?;
        let bad = |reason: String| Error::Invalid {
            path: STAGED_FILE.into(),
            reason,
        };
        let csum = get(&kf, "checksum")?
            .parse()
            .map_err(|e| bad(format!("checksum: {e}")))?;
        let deployserial = get(&kf, "deployserial")?
            .parse()
            .map_err(|e| bad(format!("deployserial: {e}")))?;
        let mut bootconfig = BootEntry::default();
        bootconfig.set("options", &get(&kf, "kargs")?);
        let mut d = Deployment {
            index: 0,
            osname: get(&kf, "osname")?,
            csum,
            deployserial,
            bootcsum: get(&kf, "bootcsum")?,
            bootserial: 0,
            bootconfig,
            origin: None,
            version: None,
        };
        d.origin = s.read_origin(&d.origin_path())?;
        d.version = s.commit_version(&d.csum);
        let merge = kf
            .get(GROUP, "merge-osname")
            .zip(kf.get(GROUP, "merge-deployment"))
            .map(|(a, b)| (a.to_owned(), b.to_owned()));
        let flag = |k: &str| kf.get_bool(GROUP, k).unwrap_or(false);
        Ok(Some(Staged {
            deployment: d,
            merge,
            opts: StagedOpts {
                retain: flag("retain"),
                retain_pending: flag("retain-pending"),
                retain_rollback: flag("retain-rollback"),
                not_as_default: flag("not-as-default"),
            },
        }))
    }

    fn store(&self, s: &Sysroot) -> Result<()> {
        let mut kf = KeyFile::default();
        let d = &self.deployment;
        kf.set(GROUP, "osname", &d.osname);
        kf.set(GROUP, "checksum", &d.csum.to_string());
        kf.set(GROUP, "deployserial", &d.deployserial.to_string());
        kf.set(GROUP, "bootcsum", &d.bootcsum);
        kf.set(GROUP, "kargs", d.bootconfig.get("options").unwrap_or(""));
        if let Some((os, name)) = &self.merge {
            kf.set(GROUP, "merge-osname", os);
            kf.set(GROUP, "merge-deployment", name);
        }
        for (k, v) in [
            ("retain", self.opts.retain),
            ("retain-pending", self.opts.retain_pending),
            ("retain-rollback", self.opts.retain_rollback),
            ("not-as-default", self.opts.not_as_default),
        ] {
            kf.set(GROUP, k, if v { "true" } else { "false" });
        }
        fsutil::ensure_dir_all_at(s.dfd(), Path::new("run/ostree"), 0o755)
            .ctx("creating", "run/ostree")?;
        fsutil::replace_file_at(
            s.dfd(),
            Path::new(STAGED_FILE),
            kf.to_text().as_bytes(),
            0o644,
            Durability::Now,
        )?;
        Ok(())
    }
}

impl Sysroot {
    /// `deploy --stage`: checkout and origin now, boot configuration at
    /// [`Sysroot::finalize_staged`]. Replaces an earlier staged deployment.
    pub fn stage(&mut self, lock: &SysrootLock, opts: &DeployOptions) -> Result<String> {
        let prepared = self.prepare_deployment(lock, opts, false)?;
        let st = Staged {
            merge: prepared
                .merge
                .as_ref()
                .map(|m| (m.osname.clone(), m.name())),
            deployment: prepared.deployment,
            opts: StagedOpts {
                retain: opts.retain,
                retain_pending: opts.retain_pending,
                retain_rollback: opts.retain_rollback,
                not_as_default: opts.not_as_default,
            },
        };
        self.staged = Some(st.clone());
        // Record first, then drop any earlier staged checkout and protect the commit.
        st.store(self)?;
        crate::failpoint("stage-after-record");
        self.cleanup_deployments()?;
        self.cleanup_locked(false)?;
        Ok(st.deployment.name())
    }

    /// Drops the staged deployment (`rpm-ostree cleanup -p` with a staged
    /// deployment): the record goes first, so a crash leaves only an
    /// unreferenced checkout that the next cleanup removes. Returns its name.
    pub fn unstage(&mut self, _lock: &SysrootLock) -> Result<Option<String>> {
        let Some(st) = self.staged.take() else {
            return Ok(None);
        };
        match rustix::fs::unlinkat(self.dfd(), STAGED_FILE, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).ctx("removing", STAGED_FILE),
        }
        self.cleanup_locked(false)?;
        Ok(Some(st.deployment.name()))
    }

    /// `finalize-staged`: merges `/etc` from the merge deployment as it is now
    /// and makes the staged deployment bootable. `Ok(None)` when nothing is staged.
    pub fn finalize_staged(
        &mut self,
        lock: &SysrootLock,
    ) -> Result<Option<crate::ops::DeployReport>> {
        let Some(st) = self.staged.clone() else {
            return Ok(None);
        };
        let d = st.deployment.clone();
        if self.deployments.iter().any(|x| x.same_as(&d)) {
            // Finalized already; only the record removal was interrupted.
            self.staged = None;
            match rustix::fs::unlinkat(self.dfd(), STAGED_FILE, rustix::fs::AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e).ctx("removing", STAGED_FILE),
            }
            self.cleanup_locked(false)?;
            return Ok(None);
        }
        let merge = st.merge.as_ref().and_then(|(os, name)| {
            self.deployments
                .iter()
                .find(|m| &m.osname == os && &m.name() == name)
                .cloned()
        });
        let dpath = d.path();
        let dfd = fsx::open_dir(self.dfd(), &dpath)?;
        fsx::set_immutable(rustix::fd::AsFd::as_fd(&dfd), false, &dpath)?;
        // A finalization interrupted earlier may have left a partial /etc.
        fsx::remove_all(rustix::fd::AsFd::as_fd(&dfd), Path::new("etc"))?;
        let etc = self.setup_etc(&dfd, &dpath, merge.as_ref())?;
        fsx::set_immutable(rustix::fd::AsFd::as_fd(&dfd), true, &dpath)?;
        drop(dfd);
        let osname = d.osname.clone();
        let opts = DeployOptions {
            retain: st.opts.retain,
            retain_pending: st.opts.retain_pending,
            retain_rollback: st.opts.retain_rollback,
            not_as_default: st.opts.not_as_default,
            ..Default::default()
        };
        let list = self.retained_list(&d, merge.as_ref(), &osname, &opts);
        // The record goes only once the boot configuration names the deployment.
        let write = self.write_deployments(lock, list)?;
        self.staged = None;
        match rustix::fs::unlinkat(self.dfd(), STAGED_FILE, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).ctx("removing", STAGED_FILE),
        }
        self.cleanup_locked(false)?;
        Ok(Some(crate::ops::DeployReport {
            name: d.name(),
            etc,
            write,
        }))
    }
}
