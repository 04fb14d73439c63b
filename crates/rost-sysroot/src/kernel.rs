//! Finding the kernel and initramfs of a deployment, and its bootcsum.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rost_store::fsutil;
use rustix::fs::{FileType, Mode, OFlags};
use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};
use crate::fsx;

/// Where a deployment's kernel lives and what it is called in `/boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLayout {
    /// Kernel path relative to the deployment root.
    pub kernel_src: PathBuf,
    /// Kernel name under `/boot/ostree/OS-BOOTCSUM/` (`vmlinuz-KVER`).
    pub kernel_name: String,
    /// Initramfs path relative to the deployment root, if any.
    pub initramfs_src: Option<PathBuf>,
    /// Initramfs name in `/boot` (`initramfs-KVER.img`).
    pub initramfs_name: Option<String>,
    /// sha256 over the kernel and initramfs bytes (or the legacy name suffix).
    pub bootcsum: String,
}

fn hash_file(dir: BorrowedFd<'_>, name: &Path, h: &mut Sha256) -> Result<()> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .ctx("opening", name)?;
    let mut f = std::fs::File::from(fd);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ctx("reading", name)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

fn is_regular(dir: BorrowedFd<'_>, name: &Path) -> Result<bool> {
    match rustix::fs::statat(dir, name, rustix::fs::AtFlags::empty()) {
        Ok(st) => Ok(FileType::from_raw_mode(st.st_mode) == FileType::RegularFile),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(false),
        Err(e) => Err(e).ctx("stat", name),
    }
}

/// Looks for the kernel as libostree 2022.7 does: `usr/lib/modules/KVER/vmlinuz`
/// first, then the legacy `usr/lib/ostree-boot/` and `boot/` layouts with
/// `vmlinuz-VER-BOOTCSUM`. `Ok(None)` when there is none.
pub fn find_kernel(deploy: BorrowedFd<'_>) -> Result<Option<KernelLayout>> {
    find_kernel_with(deploy, true)
}

/// [`find_kernel`]; without `hash`, `bootcsum` is left empty for the modules
/// layout (callers that already know it skip reading the kernel and initramfs).
pub fn find_kernel_with(deploy: BorrowedFd<'_>, hash: bool) -> Result<Option<KernelLayout>> {
    if let Some(mods) = fsx::open_dir_optional(deploy, Path::new("usr/lib/modules"))? {
        for e in fsutil::list_dir(mods.as_fd()).ctx("listing", "usr/lib/modules")? {
            if e.file_type != FileType::Directory {
                continue;
            }
            let Some(kver) = e.name.to_str() else {
                continue;
            };
            let kdir = Path::new("usr/lib/modules").join(kver);
            let vmlinuz = kdir.join("vmlinuz");
            if !is_regular(deploy, &vmlinuz)? {
                continue;
            }
            let mut h = Sha256::new();
            let initramfs = kdir.join("initramfs.img");
            let has_initramfs = is_regular(deploy, &initramfs)?;
            if hash {
                hash_file(deploy, &vmlinuz, &mut h)?;
                if has_initramfs {
                    hash_file(deploy, &initramfs, &mut h)?;
                }
            }
            return Ok(Some(KernelLayout {
                kernel_src: vmlinuz,
                kernel_name: format!("vmlinuz-{kver}"),
                initramfs_src: has_initramfs.then_some(initramfs),
                initramfs_name: has_initramfs.then(|| format!("initramfs-{kver}.img")),
                bootcsum: if hash {
                    hex::encode(h.finalize())
                } else {
                    String::new()
                },
            }));
        }
    }
    for legacy in ["usr/lib/ostree-boot", "boot"] {
        let Some(d) = fsx::open_dir_optional(deploy, Path::new(legacy))? else {
            continue;
        };
        let mut kernel: Option<(String, String)> = None;
        let mut initramfs: Option<String> = None;
        for e in fsutil::list_dir(d.as_fd()).ctx("listing", legacy)? {
            let Some(name) = e.name.to_str() else {
                continue;
            };
            if e.file_type != FileType::RegularFile {
                continue;
            }
            if name.starts_with("vmlinuz-") && kernel.is_none() {
                if let Some((_, csum)) = name.rsplit_once('-') {
                    kernel = Some((name.to_owned(), csum.to_owned()));
                }
            } else if name.starts_with("initramfs-") && initramfs.is_none() {
                initramfs = Some(name.to_owned());
            }
        }
        if let Some((kname, bootcsum)) = kernel {
            let strip = |n: &str| {
                n.strip_suffix(&format!("-{bootcsum}"))
                    .unwrap_or(n)
                    .to_owned()
            };
            return Ok(Some(KernelLayout {
                kernel_src: Path::new(legacy).join(&kname),
                kernel_name: strip(&kname),
                initramfs_src: initramfs.as_ref().map(|n| Path::new(legacy).join(n)),
                initramfs_name: initramfs.as_deref().map(strip),
                bootcsum,
            }));
        }
    }
    Ok(None)
}
