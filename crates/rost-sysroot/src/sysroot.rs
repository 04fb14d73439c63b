//! Loading a sysroot's deployments and writing a new deployment list.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rost_store::fsutil::{self, Durability};
use rost_store::keyfile::KeyFile;
use rost_store::refs::RefSpec;
use rost_store::{Checksum, Repo};
use rustix::fs::{AtFlags, FileType, Mode};

use crate::bls::{BootEntry, KernelArgs, parse_os_release, version_cmp};
use crate::error::{Error, IoContext, Result};
use crate::kernel::{KernelLayout, find_kernel_with};
use crate::lock::SysrootLock;
use crate::{failpoint, fsx};

/// The repository inside a sysroot.
pub const REPO_PATH: &str = "ostree/repo";
/// Group of `.origin` holding the transient pin.
pub const ORIGIN_TRANSIENT_GROUP: &str = "libostree-transient";

/// One deployment, as named by a BLS entry.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Position in the boot order (0 = default).
    pub index: usize,
    /// Stateroot.
    pub osname: String,
    /// Deployed commit.
    pub csum: Checksum,
    /// Disambiguates repeated deployments of one commit.
    pub deployserial: u32,
    /// sha256 of kernel ‖ initramfs.
    pub bootcsum: String,
    /// Index among the deployments sharing (osname, bootcsum).
    pub bootserial: u32,
    /// The BLS entry (its `options` hold the kernel arguments).
    pub bootconfig: BootEntry,
    /// The `.origin` key file, if present.
    pub origin: Option<KeyFile>,
    /// The commit's `version` metadata, if the commit is present and has one.
    pub version: Option<String>,
}

impl Deployment {
    /// `CSUM.SERIAL`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.csum, self.deployserial)
    }

    /// The checkout, relative to the sysroot.
    pub fn path(&self) -> PathBuf {
        deploy_path(&self.osname, &self.name())
    }

    /// The origin file, relative to the sysroot.
    pub fn origin_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.origin", self.path().display()))
    }

    /// `[libostree-transient] pinned=true` in the origin.
    pub fn is_pinned(&self) -> bool {
        self.origin
            .as_ref()
            .and_then(|o| o.get_bool(ORIGIN_TRANSIENT_GROUP, "pinned"))
            .unwrap_or(false)
    }

    /// The origin's `refspec`.
    pub fn refspec(&self) -> Option<&str> {
        self.origin
            .as_ref()
            .and_then(|o| o.get("origin", "refspec"))
    }

    /// Same deployment (stateroot, commit and serial).
    pub fn same_as(&self, other: &Deployment) -> bool {
        self.osname == other.osname
            && self.csum == other.csum
            && self.deployserial == other.deployserial
    }

    fn kargs_without_ostree(&self) -> String {
        let mut k = KernelArgs::parse(self.bootconfig.get("options").unwrap_or(""));
        k.remove_key("ostree");
        k.to_string_joined()
    }
}

pub(crate) fn deploy_path(osname: &str, name: &str) -> PathBuf {
    PathBuf::from(format!("ostree/deploy/{osname}/deploy/{name}"))
}

/// How a sysroot is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The running root (`/` on a booted system): as libostree, the deployment
    /// whose directory has the same device and inode is the booted one.
    pub booted_root: Option<PathBuf>,
    /// The running kernel's command line: its `ostree=` names the booted
    /// deployment when `booted_root` matches none.
    pub cmdline: Option<String>,
}

/// What [`Sysroot::write_deployments`] did (libostree prints the same facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    /// Whether the bootversion flipped (new `loader.N`).
    pub bootconfig_swap: bool,
    /// The bootversion now in effect.
    pub bootversion: u32,
    /// The subbootversion now in effect.
    pub subbootversion: u32,
    /// New deployment count minus old.
    pub count_change: i64,
}

impl std::fmt::Display for WriteReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; bootconfig swap: {}; bootversion: boot.{}.{}, deployment count change: {}",
            if self.bootconfig_swap {
                "Bootloader updated"
            } else {
                "Transaction complete"
            },
            if self.bootconfig_swap { "yes" } else { "no" },
            self.bootversion,
            self.subbootversion,
            self.count_change
        )
    }
}

/// An OSTree sysroot: `boot/`, `ostree/repo`, `ostree/deploy/*`.
#[derive(Debug)]
pub struct Sysroot {
    pub(crate) path: PathBuf,
    pub(crate) fd: OwnedFd,
    pub(crate) repo: Repo,
    pub(crate) bootversion: u32,
    pub(crate) subbootversion: u32,
    pub(crate) deployments: Vec<Deployment>,
    pub(crate) booted: Option<usize>,
    pub(crate) staged: Option<crate::staged::Staged>,
    load_opts: LoadOptions,
}

fn parse_ostree_karg(v: &str) -> Option<(u32, String, String, u32)> {
    let rest = v.strip_prefix("/ostree/boot.")?;
    let mut it = rest.split('/');
    let b: u32 = it.next()?.parse().ok()?;
    let os = it.next()?.to_owned();
    let bootcsum = it.next()?.to_owned();
    let serial: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || b > 1 || os.is_empty() {
        return None;
    }
    Some((b, os, bootcsum, serial))
}

fn parse_deploy_name(name: &str) -> Option<(Checksum, u32)> {
    let (c, s) = name.rsplit_once('.')?;
    Some((c.parse().ok()?, s.parse().ok()?))
}

impl Sysroot {
    /// Opens the sysroot at `path` and reads its deployments.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Sysroot> {
        let fd = fsutil::open_dir_at(rustix::fs::CWD, path).ctx("opening sysroot", path)?;
        let repo = Repo::open(&path.join(REPO_PATH))?;
        let mut s = Sysroot {
            path: path.to_owned(),
            fd,
            repo,
            bootversion: 0,
            subbootversion: 0,
            deployments: Vec::new(),
            booted: None,
            staged: None,
            load_opts: opts.clone(),
        };
        s.reload(opts)?;
        Ok(s)
    }

    /// Takes the sysroot lock (shared with libostree) and re-reads the state,
    /// which another writer may have changed before the lock was ours.
    pub fn lock(&mut self) -> Result<SysrootLock> {
        let lock = SysrootLock::acquire(&self.fd)?;
        let opts = self.load_opts.clone();
        self.reload(&opts)?;
        Ok(lock)
    }

    /// The sysroot's root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repository at `ostree/repo`.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Deployments in boot order (index 0 is the default).
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// The booted deployment, if the load options named one.
    pub fn booted(&self) -> Option<&Deployment> {
        self.booted.map(|i| &self.deployments[i])
    }

    /// The staged deployment (`deploy --stage`), waiting for `finalize-staged`.
    pub fn staged(&self) -> Option<&Deployment> {
        self.staged.as_ref().map(|s| &s.deployment)
    }

    /// Current bootversion (target of `boot/loader`).
    pub fn bootversion(&self) -> u32 {
        self.bootversion
    }

    /// Current subbootversion (target of `ostree/boot.B`).
    pub fn subbootversion(&self) -> u32 {
        self.subbootversion
    }

    pub(crate) fn dfd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn reload(&mut self, opts: &LoadOptions) -> Result<()> {
        let fd = self.fd.as_fd();
        self.bootversion = match fsx::readlink_optional(fd, Path::new("boot/loader"))? {
            None => 0,
            Some(t) if t == "loader.0" => 0,
            Some(t) if t == "loader.1" => 1,
            Some(t) => {
                return Err(Error::Invalid {
                    path: "boot/loader".into(),
                    reason: format!("unexpected symlink target {t:?}"),
                });
            }
        };
        self.subbootversion = self.read_subbootversion(self.bootversion)?;
        let entries_dir = PathBuf::from(format!("boot/loader.{}/entries", self.bootversion));
        let mut entries = Vec::new();
        if let Some(d) = fsx::open_dir_optional(fd, &entries_dir)? {
            for e in fsutil::list_dir(d.as_fd()).ctx("listing", &entries_dir)? {
                let Some(name) = e.name.to_str() else {
                    continue;
                };
                if !name.ends_with(".conf") || e.file_type != FileType::RegularFile {
                    continue;
                }
                let p = entries_dir.join(name);
                let text = fsx::read_optional(fd, &p)?.unwrap_or_default();
                entries.push((p, BootEntry::parse(&String::from_utf8_lossy(&text))));
            }
        }
        entries.sort_by(|a, b| {
            version_cmp(
                b.1.get("version").unwrap_or(""),
                a.1.get("version").unwrap_or(""),
            )
        });
        let mut deployments = Vec::new();
        for (p, entry) in entries {
            let opts_s = entry.get("options").unwrap_or("");
            let kargs = KernelArgs::parse(opts_s);
            let Some(ostree) = kargs.get("ostree") else {
                // Not an ostree entry: libostree skips it too.
                continue;
            };
            let (_, osname, bootcsum, bootserial) =
                parse_ostree_karg(ostree).ok_or_else(|| Error::Invalid {
                    path: p.clone(),
                    reason: format!("invalid ostree= argument {ostree:?}"),
                })?;
            let link = ostree.trim_start_matches('/');
            let target =
                fsx::readlink_optional(fd, Path::new(link))?.ok_or_else(|| Error::Invalid {
                    path: p.clone(),
                    reason: format!("ostree= target {link} does not exist"),
                })?;
            let dname = target.rsplit('/').next().unwrap_or("");
            let (csum, deployserial) = parse_deploy_name(dname).ok_or_else(|| Error::Invalid {
                path: link.into(),
                reason: format!("unexpected deployment link target {target:?}"),
            })?;
            let mut d = Deployment {
                index: deployments.len(),
                osname,
                csum,
                deployserial,
                bootcsum,
                bootserial,
                bootconfig: entry,
                origin: None,
                version: None,
            };
            d.origin = self.read_origin(&d.origin_path())?;
            d.version = self.commit_version(&d.csum);
            deployments.push(d);
        }
        self.staged = crate::staged::Staged::load(self)?;
        self.booted = None;
        if let Some(root) = &opts.booted_root
            && let Ok(rst) = rustix::fs::stat(root)
        {
            for (i, d) in deployments.iter().enumerate() {
                if let Ok(st) = rustix::fs::statat(fd, d.path(), AtFlags::empty())
                    && st.st_dev == rst.st_dev
                    && st.st_ino == rst.st_ino
                {
                    self.booted = Some(i);
                }
            }
        }
        if self.booted.is_none()
            && let Some(cmd) = &opts.cmdline
            && let Some(v) = KernelArgs::parse(cmd).get("ostree")
            && let Some(t) = fsx::readlink_optional(fd, Path::new(v.trim_start_matches('/')))?
            && let Some((csum, serial)) = parse_deploy_name(t.rsplit('/').next().unwrap_or(""))
        {
            self.booted = deployments
                .iter()
                .position(|d| d.csum == csum && d.deployserial == serial);
        }
        self.deployments = deployments;
        Ok(())
    }

    fn read_subbootversion(&self, b: u32) -> Result<u32> {
        let p = PathBuf::from(format!("ostree/boot.{b}"));
        Ok(match fsx::readlink_optional(self.dfd(), &p)? {
            None => 0,
            Some(t) if t == format!("boot.{b}.1") => 1,
            Some(t) if t == format!("boot.{b}.0") => 0,
            Some(t) => {
                return Err(Error::Invalid {
                    path: p,
                    reason: format!("unexpected symlink target {t:?}"),
                });
            }
        })
    }

    pub(crate) fn commit_version(&self, csum: &Checksum) -> Option<String> {
        self.repo
            .load_commit(csum)
            .ok()
            .and_then(|c| c.version().map(str::to_owned))
    }

    pub(crate) fn read_origin(&self, p: &Path) -> Result<Option<KeyFile>> {
        match fsx::read_optional(self.dfd(), p)? {
            None => Ok(None),
            Some(b) => KeyFile::parse(&String::from_utf8_lossy(&b))
                .map(Some)
                .map_err(|reason| Error::Invalid {
                    path: p.to_owned(),
                    reason,
                }),
        }
    }

    pub(crate) fn write_origin(&self, d: &Deployment, kf: &KeyFile) -> Result<()> {
        fsutil::replace_file_at(
            self.dfd(),
            &d.origin_path(),
            kf.to_text().as_bytes(),
            0o644,
            Durability::Now,
        )?;
        Ok(())
    }

    /// The merge deployment for `osname`: the booted one if it belongs to that
    /// stateroot, else the first deployment of it.
    pub fn merge_deployment(&self, osname: Option<&str>) -> Option<&Deployment> {
        if let Some(b) = self.booted()
            && osname.is_none_or(|o| o == b.osname)
        {
            return Some(b);
        }
        let os = osname?;
        self.deployments.iter().find(|d| d.osname == os)
    }

    fn syncfs(&self) -> Result<()> {
        rustix::fs::syncfs(&self.fd).ctx("syncfs", ".")?;
        if let Some(b) = fsx::open_dir_optional(self.dfd(), Path::new("boot"))? {
            rustix::fs::syncfs(&b).ctx("syncfs", "boot")?;
        }
        Ok(())
    }

    /// Copies the kernel (and initramfs) of `d` into `boot/ostree/OS-BOOTCSUM/`.
    fn install_kernel(&self, d: &Deployment, k: &KernelLayout) -> Result<()> {
        let fd = self.dfd();
        let bdir = PathBuf::from(format!("boot/ostree/{}-{}", d.osname, d.bootcsum));
        fsutil::ensure_dir_all_at(fd, &bdir, 0o755).ctx("creating", &bdir)?;
        let bfd = fsx::open_dir(fd, &bdir)?;
        let dfd = fsx::open_dir(fd, &d.path())?;
        let mut pairs = vec![(&k.kernel_src, &k.kernel_name)];
        if let (Some(s), Some(n)) = (&k.initramfs_src, &k.initramfs_name) {
            pairs.push((s, n));
        }
        let mut changed = false;
        for (src, name) in pairs {
            if fsx::exists(bfd.as_fd(), Path::new(name))? {
                continue;
            }
            fsx::link_or_copy_durable(
                dfd.as_fd(),
                src,
                bfd.as_fd(),
                Path::new(name),
                &bdir.join(name),
            )?;
            changed = true;
        }
        if changed {
            rustix::fs::fsync(&bfd).ctx("fsync", &bdir)?;
        }
        Ok(())
    }

    fn title_for(&self, d: &Deployment, multi_os: bool) -> Result<String> {
        let dfd = fsx::open_dir(self.dfd(), &d.path())?;
        let text = match fsx::read_optional(dfd.as_fd(), Path::new("usr/lib/os-release"))? {
            Some(t) => Some(t),
            None => fsx::read_optional(dfd.as_fd(), Path::new("etc/os-release"))?,
        };
        let kv = parse_os_release(&String::from_utf8_lossy(&text.unwrap_or_default()));
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let mut title = get("PRETTY_NAME")
            .or_else(|| get("ID"))
            .unwrap_or_else(|| "(Unknown)".to_owned());
        if let Some(v) = &d.version
            && !v.is_empty()
            && !title.contains(v.as_str())
        {
            title.push(' ');
            title.push_str(v);
        }
        title.push_str(" (ostree");
        if multi_os {
            title.push(':');
            title.push_str(&d.osname);
        }
        title.push_str(&format!(":{})", d.index));
        Ok(title)
    }

    fn write_farm(&self, b: u32, s: u32, list: &[Deployment]) -> Result<()> {
        let fd = self.dfd();
        let farm = PathBuf::from(format!("ostree/boot.{b}.{s}"));
        fsx::remove_all(fd, &farm)?;
        for d in list {
            let dir = farm.join(&d.osname).join(&d.bootcsum);
            fsutil::ensure_dir_all_at(fd, &dir, 0o755).ctx("creating", &dir)?;
            let link = dir.join(d.bootserial.to_string());
            let target = format!("../../../deploy/{}/deploy/{}", d.osname, d.name());
            rustix::fs::symlinkat(target.as_str(), fd, &link).ctx("creating symlink", &link)?;
        }
        Ok(())
    }

    /// Makes `list` the deployment list: the crash-safe sequence of libostree's
    /// `write_deployments` (entries and symlink farm first, `syncfs`, then one
    /// atomic symlink rename). Cleans up and prunes afterwards.
    pub fn write_deployments(
        &mut self,
        lock: &SysrootLock,
        list: Vec<Deployment>,
    ) -> Result<WriteReport> {
        match self.write_deployments_inner(lock, list) {
            Ok(r) => Ok(r),
            Err(e) => {
                // Nothing names what was half-written: remove it (best effort;
                // the next cleanup retries).
                if let Err(ce) = self.cleanup_locked(false) {
                    tracing::debug!("cleanup after failed write: {ce}");
                }
                Err(e)
            }
        }
    }

    fn write_deployments_inner(
        &mut self,
        _lock: &SysrootLock,
        mut list: Vec<Deployment>,
    ) -> Result<WriteReport> {
        for i in 0..list.len() {
            let n = list[..i]
                .iter()
                .filter(|d| d.osname == list[i].osname && d.bootcsum == list[i].bootcsum)
                .count();
            list[i].index = i;
            list[i].bootserial = n as u32;
        }
        let requires_new = list.len() != self.deployments.len()
            || list.iter().zip(&self.deployments).any(|(a, b)| {
                a.bootcsum != b.bootcsum
                    || a.kargs_without_ostree() != b.kargs_without_ostree()
                    || a.version != b.version
            });
        let fd = self.dfd();
        let new_b = if requires_new {
            1 - self.bootversion
        } else {
            self.bootversion
        };
        let new_s = 1 - self.read_subbootversion(new_b)?;
        // `boot/boot -> .` lets /boot/... paths work whether or not /boot is
        // its own partition.
        match rustix::fs::symlinkat(".", fd, "boot/boot") {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).ctx("creating symlink", "boot/boot"),
        }
        if requires_new {
            let loader = PathBuf::from(format!("boot/loader.{new_b}"));
            fsx::remove_all(fd, &loader)?;
            let entries = loader.join("entries");
            fsutil::ensure_dir_all_at(fd, &entries, 0o755).ctx("creating", &entries)?;
            let multi_os = list.iter().any(|d| d.osname != list[0].osname);
            let n = list.len();
            for d in list.iter_mut() {
                let dfd = fsx::open_dir(fd, &d.path())?;
                // The bootcsum is the deployment's (computed when it was
                // deployed); only the file names are needed here.
                let k = find_kernel_with(dfd.as_fd(), false)?.ok_or_else(|| Error::NoKernel {
                    commit: d.csum.to_string(),
                })?;
                self.install_kernel(d, &k)?;
                let boot_link = format!(
                    "/ostree/boot.{new_b}/{}/{}/{}",
                    d.osname, d.bootcsum, d.bootserial
                );
                let mut kargs = KernelArgs::parse(d.bootconfig.get("options").unwrap_or(""));
                kargs.replace(&format!("ostree={boot_link}"));
                let prefix = format!("/ostree/{}-{}", d.osname, d.bootcsum);
                d.bootconfig
                    .set("linux", &format!("{prefix}/{}", k.kernel_name));
                match &k.initramfs_name {
                    Some(i) => d.bootconfig.set("initrd", &format!("{prefix}/{i}")),
                    None => {
                        d.bootconfig.remove("initrd");
                        kargs.replace(&format!(
                            "init={boot_link}/usr/lib/ostree/ostree-prepare-root"
                        ));
                    }
                }
                d.bootconfig.set("options", &kargs.to_string_joined());
                let title = self.title_for(d, multi_os)?;
                d.bootconfig.set("title", &title);
                d.bootconfig.set("version", &(n - d.index).to_string());
                let name = entries.join(format!("ostree-{}-{}.conf", n - d.index, d.osname));
                fsutil::replace_file_at(
                    fd,
                    &name,
                    d.bootconfig.to_text().as_bytes(),
                    0o644,
                    Durability::Batched,
                )?;
            }
            failpoint("write-after-entries");
        }
        self.write_farm(new_b, new_s, &list)?;
        failpoint("write-after-farm");
        self.syncfs()?;
        fsx::swap_symlink(
            fd,
            Path::new(&format!("ostree/boot.{new_b}")),
            &format!("boot.{new_b}.{new_s}"),
        )?;
        if requires_new {
            failpoint("write-before-loader-swap");
            // The farm swap must be durable before /boot names it.
            let ofd = fsx::open_dir(fd, Path::new("ostree"))?;
            rustix::fs::fsync(&ofd).ctx("fsync", "ostree")?;
            fsx::swap_symlink(fd, Path::new("boot/loader"), &format!("loader.{new_b}"))?;
            let bfd = fsx::open_dir(fd, Path::new("boot"))?;
            rustix::fs::fsync(&bfd).ctx("fsync", "boot")?;
        } else {
            let ofd = fsx::open_dir(fd, Path::new("ostree"))?;
            rustix::fs::fsync(&ofd).ctx("fsync", "ostree")?;
        }
        failpoint("write-after-swap");
        let report = WriteReport {
            bootconfig_swap: requires_new,
            bootversion: new_b,
            subbootversion: new_s,
            count_change: list.len() as i64 - self.deployments.len() as i64,
        };
        let booted = self.booted().cloned();
        self.bootversion = new_b;
        self.subbootversion = new_s;
        self.booted = booted.and_then(|b| list.iter().position(|d| d.same_as(&b)));
        self.deployments = list;
        self.cleanup_locked(true)?;
        Ok(report)
    }

    /// `ostree admin cleanup`: removes other boot versions, unreferenced
    /// deployments and boot directories, regenerates the `ostree/B/S/I` refs
    /// and prunes the repository (refs only, depth 0).
    pub fn cleanup(&mut self, _lock: &SysrootLock) -> Result<()> {
        self.cleanup_locked(true)
    }

    pub(crate) fn cleanup_locked(&mut self, prune: bool) -> Result<()> {
        let fd = self.dfd();
        let (b, s) = (self.bootversion, self.subbootversion);
        for p in [
            format!("boot/loader.{}", 1 - b),
            "boot/loader.tmp".to_owned(),
            format!("ostree/boot.{}", 1 - b),
            format!("ostree/boot.{}.0", 1 - b),
            format!("ostree/boot.{}.1", 1 - b),
            format!("ostree/boot.{b}.{}", 1 - s),
            format!("ostree/boot.{b}.tmp"),
            format!("ostree/boot.{}.tmp", 1 - b),
        ] {
            fsx::remove_all(fd, Path::new(&p))?;
        }
        self.cleanup_deployments()?;
        failpoint("cleanup-before-refs");
        self.write_refs()?;
        if prune {
            rost_store::prune::prune(
                &self.repo,
                rost_store::prune::PruneOptions {
                    refs_only: true,
                    depth: 0,
                    ..Default::default()
                },
            )?;
        }
        Ok(())
    }

    /// Removes deployment directories and origins no deployment names, and
    /// `boot/ostree/OS-BOOTCSUM` directories no deployment uses.
    pub(crate) fn cleanup_deployments(&self) -> Result<()> {
        let fd = self.dfd();
        let Some(dd) = fsx::open_dir_optional(fd, Path::new("ostree/deploy"))? else {
            return Ok(());
        };
        for os in fsutil::list_dir(dd.as_fd()).ctx("listing", "ostree/deploy")? {
            let Some(osname) = os.name.to_str() else {
                continue;
            };
            if os.file_type != FileType::Directory {
                continue;
            }
            let dir = PathBuf::from(format!("ostree/deploy/{osname}/deploy"));
            let Some(dfd) = fsx::open_dir_optional(fd, &dir)? else {
                continue;
            };
            for e in fsutil::list_dir(dfd.as_fd()).ctx("listing", &dir)? {
                let Some(name) = e.name.to_str() else {
                    continue;
                };
                if name.starts_with(".tmp-") {
                    // An interrupted origin write.
                    fsx::remove_all(dfd.as_fd(), Path::new(name))?;
                    continue;
                }
                let base = name.strip_suffix(".origin").unwrap_or(name);
                let Some((csum, serial)) = parse_deploy_name(base) else {
                    continue;
                };
                let live = self
                    .deployments
                    .iter()
                    .chain(self.staged.as_ref().map(|s| &s.deployment))
                    .any(|d| d.osname == osname && d.csum == csum && d.deployserial == serial);
                if !live {
                    tracing::debug!("removing unreferenced {}", dir.join(name).display());
                    fsx::remove_all(dfd.as_fd(), Path::new(name))?;
                }
            }
        }
        if let Some(bo) = fsx::open_dir_optional(fd, Path::new("boot/ostree"))? {
            for e in fsutil::list_dir(bo.as_fd()).ctx("listing", "boot/ostree")? {
                let Some(name) = e.name.to_str() else {
                    continue;
                };
                if e.file_type != FileType::Directory {
                    continue;
                }
                let Some((os, bootcsum)) = name.rsplit_once('-') else {
                    continue;
                };
                if bootcsum.len() != 64 {
                    continue;
                }
                let live = self
                    .deployments
                    .iter()
                    .any(|d| d.osname == os && d.bootcsum == bootcsum);
                if !live {
                    fsx::remove_all(bo.as_fd(), Path::new(name))?;
                } else {
                    // Interrupted kernel copies.
                    let kd = fsx::open_dir(bo.as_fd(), Path::new(name))?;
                    for f in fsutil::list_dir(kd.as_fd()).ctx("listing", name)? {
                        if f.name.to_str().is_some_and(|n| n.starts_with(".tmp-")) {
                            fsx::remove_all(kd.as_fd(), Path::new(&f.name))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn write_refs(&self) -> Result<()> {
        let (b, s) = (self.bootversion, self.subbootversion);
        let mut want = Vec::new();
        for d in &self.deployments {
            let spec = RefSpec::parse(&format!("ostree/{b}/{s}/{}", d.index))?;
            if self.repo.read_ref(&spec)? != Some(d.csum) {
                self.repo.write_ref(&spec, Some(&d.csum))?;
            }
            want.push(spec);
        }
        if let Some(st) = &self.staged {
            // Protects the staged commit from the refs-only prune until
            // finalization gives it an ostree/B/S/I ref.
            let spec = RefSpec::parse(crate::staged::STAGED_REF)?;
            if self.repo.read_ref(&spec)? != Some(st.deployment.csum) {
                self.repo.write_ref(&spec, Some(&st.deployment.csum))?;
            }
        } else if self
            .repo
            .read_ref(&RefSpec::parse(crate::staged::STAGED_REF)?)?
            .is_some()
        {
            self.repo
                .write_ref(&RefSpec::parse(crate::staged::STAGED_REF)?, None)?;
        }
        for (spec, _) in self.repo.list_refs()? {
            if spec.remote.is_none() && spec.name.starts_with("ostree/") && !want.contains(&spec) {
                self.repo.write_ref(&spec, None)?;
            }
        }
        // Remove now-empty ref directories, as libostree leaves none behind.
        for p in [
            "refs/heads/ostree/0/0",
            "refs/heads/ostree/0/1",
            "refs/heads/ostree/1/0",
            "refs/heads/ostree/1/1",
            "refs/heads/ostree/0",
            "refs/heads/ostree/1",
        ] {
            let _ = rustix::fs::unlinkat(self.repo.dfd(), Path::new(p), AtFlags::REMOVEDIR);
        }
        Ok(())
    }

    /// Creates a directory beneath the sysroot with `mode`.
    pub(crate) fn mkdir_mode(&self, p: &Path, mode: u32) -> Result<()> {
        fsutil::ensure_dir_at(self.dfd(), p, mode).ctx("creating", p)?;
        let f = fsx::open_dir(self.dfd(), p)?;
        rustix::fs::fchmod(&f, Mode::from_raw_mode(mode)).ctx("chmod", p)?;
        Ok(())
    }
}
