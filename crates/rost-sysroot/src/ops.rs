//! The `ostree admin` operations: init-fs, os-init, deploy, undeploy, pin,
//! set-origin, config-diff.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rost_store::fsutil;
use rost_store::keyfile::KeyFile;
use rost_store::{Repo, RepoMode};
use rustix::fs::AtFlags;

use crate::bls::{BootEntry, KernelArgs};
use crate::error::{Error, IoContext, Result};
use crate::etc_merge::{EtcDiff, apply_diff, compute_diff};
use crate::kernel::find_kernel;
use crate::lock::SysrootLock;
use crate::sysroot::{
    Deployment, ORIGIN_TRANSIENT_GROUP, REPO_PATH, Sysroot, WriteReport, deploy_path,
};
use crate::{failpoint, fsx};

/// `ostree admin init-fs DIR`: the top-level directories and a bare repo.
/// `DIR` must exist. With `modern`, only `boot` and `ostree`.
pub fn init_fs(dir: &Path, modern: bool) -> Result<()> {
    let fd = fsutil::open_dir_at(rustix::fs::CWD, dir).ctx("opening", dir)?;
    let dirs: &[(&str, u32)] = if modern {
        &[("boot", 0o755), ("ostree", 0o755), ("ostree/deploy", 0o755)]
    } else {
        &[
            ("boot", 0o755),
            ("dev", 0o755),
            ("home", 0o755),
            ("proc", 0o755),
            ("run", 0o755),
            ("sys", 0o755),
            ("root", 0o700),
            ("tmp", 0o1777),
            ("ostree", 0o755),
            ("ostree/deploy", 0o755),
        ]
    };
    for (d, mode) in dirs {
        fsutil::ensure_dir_at(fd.as_fd(), Path::new(d), *mode).ctx("creating", *d)?;
        let f = fsx::open_dir(fd.as_fd(), Path::new(d))?;
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(*mode)).ctx("chmod", *d)?;
    }
    let repo = dir.join(REPO_PATH);
    if Repo::open(&repo).is_err() {
        Repo::init(&repo, RepoMode::Bare)?;
    }
    Ok(())
}

impl Sysroot {
    /// `ostree admin os-init OS`: the stateroot and its shared `/var`.
    pub fn os_init(&self, _lock: &SysrootLock, osname: &str) -> Result<()> {
        if osname.is_empty() || osname.contains('/') || osname.starts_with('.') {
            return Err(Error::Refused(format!("invalid osname {osname:?}")));
        }
        let base = PathBuf::from(format!("ostree/deploy/{osname}"));
        self.mkdir_mode(&base, 0o755)?;
        self.mkdir_mode(&base.join("var"), 0o755)?;
        self.mkdir_mode(&base.join("var/tmp"), 0o1777)?;
        self.mkdir_mode(&base.join("var/lib"), 0o755)?;
        self.mkdir_mode(&base.join("var/log"), 0o755)?;
        for (l, t) in [("var/run", "../run"), ("var/lock", "../run/lock")] {
            let p = base.join(l);
            match rustix::fs::symlinkat(t, self.dfd(), &p) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e).ctx("creating symlink", p),
            }
        }
        Ok(())
    }
}

/// Options of [`Sysroot::deploy`] (`ostree admin deploy` flags).
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// `--os`: stateroot; default the booted deployment's.
    pub osname: Option<String>,
    /// The revision to deploy (ref, `remote:ref` or checksum).
    pub rev: String,
    /// `--origin-file`: origin contents instead of `refspec=REV`.
    pub origin: Option<KeyFile>,
    /// `--karg`: replace-or-append arguments.
    pub karg_replace: Vec<String>,
    /// `--karg-append`.
    pub karg_append: Vec<String>,
    /// `--karg-delete`.
    pub karg_delete: Vec<String>,
    /// `--karg-none`: start from no arguments.
    pub karg_none: bool,
    /// `--karg-proc-cmdline`: start from this command line.
    pub karg_cmdline: Option<String>,
    /// `--retain`: keep every existing deployment.
    pub retain: bool,
    /// `--retain-pending`.
    pub retain_pending: bool,
    /// `--retain-rollback`.
    pub retain_rollback: bool,
    /// `--not-as-default`: add after the booted/merge deployment.
    pub not_as_default: bool,
    /// `--no-merge`: neither /etc nor kargs from the merge deployment.
    pub no_merge: bool,
}

/// A checked-out deployment not yet in the boot configuration.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) deployment: Deployment,
    pub(crate) merge: Option<Deployment>,
    pub(crate) etc: Option<EtcDiff>,
}

/// What [`Sysroot::deploy`] did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    /// `CSUM.SERIAL` of the new deployment.
    pub name: String,
    /// The /etc changes carried over, when there was a merge deployment.
    pub etc: Option<EtcDiff>,
    /// The boot configuration write.
    pub write: WriteReport,
}

impl Sysroot {
    fn allocate_deployserial(&self, osname: &str, csum: &str) -> Result<u32> {
        let dir = PathBuf::from(format!("ostree/deploy/{osname}/deploy"));
        let mut next = 0;
        if let Some(d) = fsx::open_dir_optional(self.dfd(), &dir)? {
            for e in fsutil::list_dir(d.as_fd()).ctx("listing", &dir)? {
                let Some(n) = e.name.to_str() else { continue };
                if let Some(s) = n.strip_prefix(csum).and_then(|r| r.strip_prefix('.'))
                    && let Ok(s) = s.trim_end_matches(".origin").parse::<u32>()
                {
                    next = next.max(s + 1);
                }
            }
        }
        for d in &self.deployments {
            if d.osname == osname && d.csum.to_string() == csum {
                next = next.max(d.deployserial + 1);
            }
        }
        Ok(next)
    }

    /// Checks `rev` out as a new deployment, merges /etc, and makes it the
    /// default (or not), keeping what ostree keeps.
    #[tracing::instrument(skip_all, fields(rev = %opts.rev))]
    pub fn deploy(&mut self, lock: &SysrootLock, opts: &DeployOptions) -> Result<DeployReport> {
        let p = self.prepare_deployment(lock, opts, true)?;
        let list = self.retained_list(&p.deployment, p.merge.as_ref(), &p.deployment.osname, opts);
        let name = p.deployment.name();
        let write = self.write_deployments(lock, list)?;
        Ok(DeployReport {
            name,
            etc: p.etc,
            write,
        })
    }

    /// Checkout, optional /etc, origin: everything of a deploy before the
    /// boot configuration is written.
    pub(crate) fn prepare_deployment(
        &mut self,
        _lock: &SysrootLock,
        opts: &DeployOptions,
        with_etc: bool,
    ) -> Result<Prepared> {
        let osname = match (&opts.osname, self.booted()) {
            (Some(o), _) => o.clone(),
            (None, Some(b)) => b.osname.clone(),
            (None, None) => {
                return Err(Error::Refused(
                    "Not currently booted into an OSTree system and no --os= argument given".into(),
                ));
            }
        };
        if fsx::open_dir_optional(self.dfd(), Path::new(&format!("ostree/deploy/{osname}")))?
            .is_none()
        {
            return Err(Error::Refused(format!(
                "stateroot {osname} does not exist (run os-init {osname} first)"
            )));
        }
        let csum = self.repo.resolve_commit(&opts.rev)?;
        let commit = self.repo.load_commit(&csum)?;
        let merge = if opts.no_merge {
            None
        } else {
            self.merge_deployment(Some(&osname)).cloned()
        };
        // Leftovers of an interrupted run.
        self.cleanup_deployments()?;

        let serial = self.allocate_deployserial(&osname, &csum.to_string())?;
        let name = format!("{csum}.{serial}");
        let dpath = deploy_path(&osname, &name);
        let ddir = PathBuf::from(format!("ostree/deploy/{osname}/deploy"));
        fsutil::ensure_dir_at(self.dfd(), &ddir, 0o755).ctx("creating", &ddir)?;
        let res = self.checkout_tree(&csum, &dpath).and_then(|()| {
            if !with_etc {
                return Ok(None);
            }
            let dfd = fsx::open_dir(self.dfd(), &dpath)?;
            self.setup_etc(&dfd, &dpath, merge.as_ref())
        });
        let etc = match res {
            Ok(e) => e,
            Err(e) => {
                let _ = fsx::remove_all(self.dfd(), &dpath);
                return Err(e);
            }
        };
        let dfd = fsx::open_dir(self.dfd(), &dpath)?;
        let kernel = match find_kernel(dfd.as_fd())? {
            Some(k) => k,
            None => {
                drop(dfd);
                let _ = fsx::remove_all(self.dfd(), &dpath);
                return Err(Error::NoKernel {
                    commit: csum.to_string(),
                });
            }
        };
        let origin = opts.origin.clone().unwrap_or_else(|| {
            let mut kf = KeyFile::default();
            kf.set("origin", "refspec", &opts.rev);
            kf
        });
        let mut kargs = if opts.karg_none {
            KernelArgs::default()
        } else if let Some(c) = &opts.karg_cmdline {
            let mut k = KernelArgs::parse(c);
            k.remove_key("BOOT_IMAGE");
            k.remove_key("initrd");
            k
        } else {
            KernelArgs::parse(
                merge
                    .as_ref()
                    .and_then(|m| m.bootconfig.get("options"))
                    .unwrap_or(""),
            )
        };
        for a in &opts.karg_replace {
            kargs.replace(a);
        }
        for a in &opts.karg_append {
            kargs.append(a);
        }
        for a in &opts.karg_delete {
            kargs.delete(a);
        }
        let mut bootconfig = BootEntry::default();
        bootconfig.set("options", &kargs.to_string_joined());
        let new = Deployment {
            index: 0,
            osname: osname.clone(),
            csum,
            deployserial: serial,
            bootcsum: kernel.bootcsum.clone(),
            bootserial: 0,
            bootconfig,
            origin: Some(origin.clone()),
            version: commit.version().map(str::to_owned),
        };
        self.write_origin(&new, &origin)?;
        // The etc/.updated and var/.updated stamps trigger ConditionNeedsUpdate.
        let _ = rustix::fs::unlinkat(&dfd, "etc/.updated", AtFlags::empty());
        let _ = rustix::fs::unlinkat(
            self.dfd(),
            format!("ostree/deploy/{osname}/var/.updated").as_str(),
            AtFlags::empty(),
        );
        fsx::set_immutable(dfd.as_fd(), true, &dpath)?;
        drop(dfd);
        failpoint("deploy-after-checkout");
        let _ = name;
        Ok(Prepared {
            deployment: new,
            merge,
            etc,
        })
    }

    /// libostree's `simple_write_deployment` retention.
    pub(crate) fn retained_list(
        &self,
        new: &Deployment,
        merge: Option<&Deployment>,
        osname: &str,
        opts: &DeployOptions,
    ) -> Vec<Deployment> {
        let booted = self.booted();
        let mut retain = opts.retain;
        let mut retain_pending = opts.retain_pending || retain;
        let mut retain_rollback = opts.retain_rollback || retain;
        if booted.is_none() && merge.is_none() && (retain_pending || retain_rollback) {
            retain = true;
            retain_pending = true;
            retain_rollback = true;
        }
        let mut out = Vec::new();
        let mut added = false;
        if !opts.not_as_default {
            out.push(new.clone());
            added = true;
        }
        let mut before_booted = true;
        let mut before_merge = true;
        for d in &self.deployments {
            let is_booted = booted.is_some_and(|b| b.same_as(d));
            let is_merge = merge.is_some_and(|m| m.same_as(d));
            if is_booted {
                before_booted = false;
            }
            if is_merge {
                before_merge = false;
            }
            let crossed = if booted.is_some() {
                !before_booted
            } else {
                !before_merge
            };
            if retain
                || d.is_pinned()
                || d.osname != osname
                || (retain_pending && !crossed)
                || is_booted
                || is_merge
                || (retain_rollback && crossed)
            {
                out.push(d.clone());
            }
            if !added && crossed {
                out.push(new.clone());
                added = true;
            }
        }
        if !added {
            out.push(new.clone());
        }
        out
    }

    /// Checks the commit out; a tree with `/etc` and no `usr/etc` gets it moved.
    fn checkout_tree(&self, csum: &rost_store::Checksum, dpath: &Path) -> Result<()> {
        crate::checkout::checkout_deployment(
            &self.repo,
            csum,
            self.dfd(),
            dpath,
            &self.path.join(dpath),
        )?;
        let dfd = fsx::open_dir(self.dfd(), dpath)?;
        let has_etc = fsx::exists(dfd.as_fd(), Path::new("etc"))?;
        let has_usr_etc = fsx::exists(dfd.as_fd(), Path::new("usr/etc"))?;
        if has_etc && has_usr_etc {
            return Err(Error::Invalid {
                path: dpath.to_owned(),
                reason: "tree contains both /etc and /usr/etc".into(),
            });
        }
        if has_etc {
            rustix::fs::renameat(&dfd, "etc", &dfd, "usr/etc")
                .ctx("renaming", dpath.join("etc"))?;
        }
        Ok(())
    }

    /// `etc` = copy of `usr/etc` + the merge deployment's changes.
    pub(crate) fn setup_etc(
        &self,
        dfd: &std::os::fd::OwnedFd,
        dpath: &Path,
        merge: Option<&Deployment>,
    ) -> Result<Option<EtcDiff>> {
        if !fsx::exists(dfd.as_fd(), Path::new("usr/etc"))? {
            return Ok(None);
        }
        fsx::copy_tree(
            dfd.as_fd(),
            Path::new("usr/etc"),
            dfd.as_fd(),
            Path::new("etc"),
            &dpath.join("etc"),
        )?;
        let Some(m) = merge else { return Ok(None) };
        let mfd = fsx::open_dir(self.dfd(), &m.path())?;
        let (Some(orig), Some(live)) = (
            fsx::open_dir_optional(mfd.as_fd(), Path::new("usr/etc"))?,
            fsx::open_dir_optional(mfd.as_fd(), Path::new("etc"))?,
        ) else {
            return Ok(None);
        };
        let diff = compute_diff(orig.as_fd(), live.as_fd())?;
        let new_etc = fsx::open_dir(dfd.as_fd(), Path::new("etc"))?;
        apply_diff(&diff, live.as_fd(), new_etc.as_fd())?;
        Ok(Some(diff))
    }

    fn check_index(&self, index: usize) -> Result<&Deployment> {
        self.deployments.get(index).ok_or_else(|| {
            Error::Refused(format!(
                "Out of range deployment index {index}, expected < {}",
                self.deployments.len()
            ))
        })
    }

    /// `ostree admin undeploy INDEX`; returns the removed deployment's name.
    pub fn undeploy(&mut self, lock: &SysrootLock, index: usize) -> Result<String> {
        let d = self.check_index(index)?.clone();
        if self.booted().is_some_and(|b| b.same_as(&d)) {
            return Err(Error::Refused(format!(
                "Cannot undeploy currently booted deployment {index}"
            )));
        }
        let mut list = self.deployments.clone();
        list.remove(index);
        self.write_deployments(lock, list)?;
        Ok(d.name())
    }

    /// `ostree admin pin INDEX [--unpin]`.
    pub fn set_pinned(&mut self, _lock: &SysrootLock, index: usize, pinned: bool) -> Result<()> {
        let d = self.check_index(index)?.clone();
        let mut origin = d.origin.clone().unwrap_or_default();
        if pinned {
            origin.set(ORIGIN_TRANSIENT_GROUP, "pinned", "true");
        } else {
            origin.remove_key(ORIGIN_TRANSIENT_GROUP, "pinned");
            if origin.keys(ORIGIN_TRANSIENT_GROUP).is_empty() {
                origin.remove_group(ORIGIN_TRANSIENT_GROUP);
            }
        }
        self.write_origin(&d, &origin)?;
        self.deployments[index].origin = Some(origin);
        Ok(())
    }

    /// `ostree admin set-origin REMOTE URL [BRANCH]`: a new origin
    /// `refspec=REMOTE:BRANCH` for deployment `index` (default: booted), and
    /// the remote added to the repo config if missing.
    pub fn set_origin(
        &mut self,
        _lock: &SysrootLock,
        index: Option<usize>,
        remote: &str,
        url: &str,
        branch: Option<&str>,
        options: &[(String, String)],
    ) -> Result<()> {
        let d = match index {
            Some(i) => self.check_index(i)?.clone(),
            None => self.booted().cloned().ok_or_else(|| {
                Error::Refused("Not currently booted into an OSTree system".into())
            })?,
        };
        let branch = match branch {
            Some(b) => b.to_owned(),
            None => {
                let r = d.refspec().unwrap_or("");
                r.split_once(':').map_or(r, |(_, b)| b).to_owned()
            }
        };
        let group = format!("remote \"{remote}\"");
        let mut cfg = self.repo.config().clone();
        if !cfg.has_group(&group) {
            cfg.set(&group, "url", url);
            for (k, v) in options {
                cfg.set(&group, k, v);
            }
            self.repo.write_config(cfg)?;
        }
        let mut origin = KeyFile::default();
        origin.set("origin", "refspec", &format!("{remote}:{branch}"));
        self.write_origin(&d, &origin)?;
        let i = d.index;
        self.deployments[i].origin = Some(origin);
        Ok(())
    }

    /// `ostree admin config-diff`: the merge deployment's /etc changes.
    pub fn config_diff(&self, osname: Option<&str>) -> Result<EtcDiff> {
        let m = self
            .merge_deployment(osname)
            .ok_or_else(|| Error::Refused("Not currently booted into an OSTree system".into()))?;
        let mfd = fsx::open_dir(self.dfd(), &m.path())?;
        let orig = fsx::open_dir(mfd.as_fd(), Path::new("usr/etc"))?;
        let live = fsx::open_dir(mfd.as_fd(), Path::new("etc"))?;
        compute_diff(orig.as_fd(), live.as_fd())
    }
}
