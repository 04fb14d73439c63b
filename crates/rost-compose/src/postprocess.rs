//! Postprocessing of the assembled tree (after scriptlets, before the rpmdb).
//!
//! Order: add-files, remove-files, remove-from-packages, units and default
//! target, machine-id, treefile scripts (with `/etc` in place), then `etc` back
//! to `usr/etc`, passwd/group split, os-release, `/var` into tmpfiles.d, the
//! top-level layout, and the kernel into `usr/lib/modules/$kver/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::treefile::Loaded;

fn io<T>(r: std::io::Result<T>, op: &'static str, p: &Path) -> Result<T> {
    r.map_err(|e| Error::io(op, p, e))
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Removes a file, symlink or directory tree if present.
pub(crate) fn remove_any(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => io(std::fs::remove_dir_all(p), "removing", p),
        Ok(_) => io(std::fs::remove_file(p), "removing", p),
        Err(_) => Ok(()),
    }
}

/// Removes the directory tree `dir`, subdirectories in parallel (the
/// assembled rootfs has tens of thousands of hardlinks; unlinking them one by
/// one on one thread dominated incremental composes).
pub fn remove_tree_parallel(dir: &Path) -> Result<()> {
    use rayon::prelude::*;
    // Read-only directories (0555 from package headers) must become writable
    // for a non-root user to empty them.
    io(
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        "chmod",
        dir,
    )?;
    let entries: Vec<_> = io(std::fs::read_dir(dir), "listing", dir)?
        .filter_map(|e| e.ok())
        .collect();
    entries.par_iter().try_for_each(|e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => remove_tree_parallel(&p),
            _ => io(std::fs::remove_file(&p), "removing", &p),
        }
    })?;
    io(std::fs::remove_dir(dir), "removing", dir)
}

/// Replaces `p` with a fresh copy of itself, so an in-place write cannot reach
/// the hardlinked object in the package cache.
fn break_hardlink(p: &Path) -> Result<()> {
    let tmp = p.with_extension("rost-copy");
    io(std::fs::copy(p, &tmp), "copying", p)?;
    io(std::fs::rename(&tmp, p), "renaming", &tmp)
}

/// Copies every hardlinked regular file under `dir` (used for `usr/etc`, which
/// scriptlets edit in place).
pub fn break_hardlinks_under(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd {
        let e = io(e, "listing", dir)?;
        let p = e.path();
        let m = io(std::fs::symlink_metadata(&p), "stat", &p)?;
        if m.is_dir() {
            break_hardlinks_under(&p)?;
        } else if m.is_file() && m.nlink() > 1 {
            break_hardlink(&p)?;
        }
    }
    Ok(())
}

/// Steps that run with `etc/` in place, before the treefile scripts.
pub fn apply_files_and_units(
    root: &Path,
    loaded: &Loaded,
    pkg_files: &BTreeMap<String, Vec<String>>,
) -> Result<()> {
    let tf = &loaded.treefile;
    for (_, dest, content) in &loaded.add_files {
        let p = root.join(dest);
        if let Some(parent) = p.parent() {
            io(std::fs::create_dir_all(parent), "creating", parent)?;
        }
        remove_any(&p)?;
        io(std::fs::write(&p, content), "writing", &p)?;
        io(
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)),
            "chmod",
            &p,
        )?;
    }
    for f in tf.remove_files.iter().flatten() {
        let rel = f.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            return Err(Error::Invalid {
                msg: format!("remove-files: invalid path {f:?}"),
            });
        }
        remove_any(&root.join(rel))?;
    }
    for entry in tf.remove_from_packages.iter().flatten() {
        let pkg = &entry[0];
        let files = pkg_files.get(pkg).ok_or_else(|| Error::Invalid {
            msg: format!("remove-from-packages: package {pkg:?} is not in the compose"),
        })?;
        let res: Vec<regex::Regex> = entry[1..]
            .iter()
            .filter_map(|r| regex::Regex::new(r).ok())
            .collect();
        for f in files {
            if res.iter().any(|r| r.is_match(f)) {
                // Scripts see etc/ in place at this point.
                let rel = f.trim_start_matches('/');
                let p = root.join(
                    rel.strip_prefix("boot/")
                        .map_or_else(|| rel.to_owned(), |r| format!("usr/lib/ostree-boot/{r}")),
                );
                let is_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
                if !is_dir {
                    remove_any(&p)?;
                }
            }
        }
    }
    let sysd = root.join("etc/systemd/system");
    for unit in tf.units.iter().flatten() {
        let src = root.join("usr/lib/systemd/system").join(unit);
        let text = std::fs::read_to_string(&src).map_err(|e| Error::Invalid {
            msg: format!("units: cannot read {unit} from usr/lib/systemd/system: {e}"),
        })?;
        let mut wanted = Vec::new();
        let mut in_install = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_install = line == "[Install]";
            } else if in_install
                && let Some(v) = line
                    .strip_prefix("WantedBy=")
                    .or_else(|| line.strip_prefix("RequiredBy="))
            {
                let suffix = if line.starts_with("Wanted") {
                    "wants"
                } else {
                    "requires"
                };
                wanted.extend(v.split_whitespace().map(|t| format!("{t}.{suffix}")));
            }
        }
        if wanted.is_empty() {
            return Err(Error::Invalid {
                msg: format!("units: {unit} has no [Install] WantedBy=/RequiredBy="),
            });
        }
        for w in wanted {
            let d = sysd.join(w);
            io(std::fs::create_dir_all(&d), "creating", &d)?;
            let l = d.join(unit);
            remove_any(&l)?;
            io(
                std::os::unix::fs::symlink(format!("/usr/lib/systemd/system/{unit}"), &l),
                "symlinking",
                &l,
            )?;
        }
    }
    if let Some(t) = &tf.default_target {
        io(std::fs::create_dir_all(&sysd), "creating", &sysd)?;
        let l = sysd.join("default.target");
        remove_any(&l)?;
        io(
            std::os::unix::fs::symlink(format!("/usr/lib/systemd/system/{t}"), &l),
            "symlinking",
            &l,
        )?;
    }
    let mid = root.join("etc/machine-id");
    if tf.machineid_compat.unwrap_or(true) {
        if exists(&root.join("etc")) {
            remove_any(&mid)?;
            io(std::fs::write(&mid, b""), "writing", &mid)?;
            io(
                std::fs::set_permissions(&mid, std::fs::Permissions::from_mode(0o444)),
                "chmod",
                &mid,
            )?;
        }
    } else {
        remove_any(&mid)?;
    }
    Ok(())
}

fn read_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn write_lines(p: &Path, lines: &[String]) -> Result<()> {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    let mode = std::fs::metadata(p).map(|m| m.permissions().mode()).ok();
    remove_any(p)?;
    io(std::fs::write(p, text), "writing", p)?;
    io(
        std::fs::set_permissions(
            p,
            std::fs::Permissions::from_mode(mode.unwrap_or(0o644) & 0o7777),
        ),
        "chmod",
        p,
    )
}

/// rpm-ostree's split: `usr/etc/passwd` keeps root, the rest moves to
/// `usr/lib/passwd`; `usr/etc/group` keeps root and `etc-group-members`.
pub fn split_passwd_group(root: &Path, etc_group_members: &[String]) -> Result<()> {
    for (name, keep_extra) in [("passwd", &[][..]), ("group", etc_group_members)] {
        let etc = root.join("usr/etc").join(name);
        if !exists(&etc) {
            continue;
        }
        let lib = root.join("usr/lib").join(name);
        let mut kept = Vec::new();
        let mut moved = read_lines(&lib);
        for line in read_lines(&etc) {
            let n = line.split(':').next().unwrap_or("");
            if n == "root" || keep_extra.iter().any(|k| k == n) {
                kept.push(line);
            } else if !line.trim().is_empty()
                && !moved.iter().any(|m| m.split(':').next() == Some(n))
            {
                moved.push(line);
            }
        }
        write_lines(&etc, &kept)?;
        write_lines(&lib, &moved)?;
    }
    let ns = root.join("usr/etc/nsswitch.conf");
    if exists(&ns) {
        let lines: Vec<String> = read_lines(&ns)
            .into_iter()
            .map(|l| {
                let t = l.trim_start();
                if (t.starts_with("passwd:") || t.starts_with("group:")) && !l.contains("altfiles")
                {
                    l.replacen("files", "files altfiles", 1)
                } else {
                    l
                }
            })
            .collect();
        write_lines(&ns, &lines)?;
    }
    Ok(())
}

/// Name → id maps from the tree's passwd and group (`usr/etc` and `usr/lib`).
pub fn load_ids(root: &Path) -> (BTreeMap<String, u32>, BTreeMap<String, u32>) {
    let parse = |name: &str| {
        let mut m = BTreeMap::new();
        for dir in ["usr/etc", "usr/lib", "etc"] {
            for l in read_lines(&root.join(dir).join(name)) {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() >= 3
                    && let Ok(id) = f[2].parse::<u32>()
                {
                    m.entry(f[0].to_owned()).or_insert(id);
                }
            }
        }
        m
    };
    (parse("passwd"), parse("group"))
}

/// Writes the version into os-release (`VERSION`, `PRETTY_NAME`, `OSTREE_VERSION`).
pub fn mutate_os_release(root: &Path, base: &str, version: &str) -> Result<()> {
    let mut p = root.join("usr/lib/os-release");
    if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
        p = root.join("usr/etc/os-release");
        if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            return Err(Error::Invalid {
                msg: "mutate-os-release: the tree has no os-release".into(),
            });
        }
    }
    let mut lines: Vec<String> = read_lines(&p)
        .into_iter()
        .filter(|l| !l.starts_with("OSTREE_VERSION="))
        .map(|l| {
            if l.starts_with("VERSION=") || l.starts_with("PRETTY_NAME=") {
                l.replace(base, version)
            } else {
                l
            }
        })
        .collect();
    lines.push(format!("OSTREE_VERSION='{version}'"));
    write_lines(&p, &lines)
}

/// Converts what is left in `var/` into tmpfiles.d lines and empties it.
pub fn var_to_tmpfiles(root: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let var = root.join("var");
    let mut lines = Vec::new();
    fn walk(dir: &Path, abs: &str, lines: &mut Vec<String>) -> Result<()> {
        let mut entries: Vec<_> = io(std::fs::read_dir(dir), "listing", dir)?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let a = format!("{abs}/{name}");
            let m = io(std::fs::symlink_metadata(&p), "stat", &p)?;
            if m.is_dir() {
                lines.push(format!(
                    "d {a} {:04o} {} {} - -",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ));
                walk(&p, &a, lines)?;
            } else if m.file_type().is_symlink() {
                let t = io(std::fs::read_link(&p), "readlink", &p)?;
                lines.push(format!("L {a} - - - - {}", t.display()));
            } else {
                tracing::warn!("dropping {a}: files under /var are not kept in the commit");
            }
        }
        Ok(())
    }
    if std::fs::symlink_metadata(&var).is_ok_and(|m| m.is_dir()) {
        walk(&var, "/var", &mut lines)?;
        remove_any(&var)?;
    }
    io(std::fs::create_dir(&var), "creating", &var)?;
    if !lines.is_empty() {
        let d = root.join("usr/lib/tmpfiles.d");
        io(std::fs::create_dir_all(&d), "creating", &d)?;
        let p = d.join("rost-autovar.conf");
        let mut f = io(std::fs::File::create(&p), "creating", &p)?;
        for l in lines {
            io(writeln!(f, "{l}"), "writing", &p)?;
        }
    }
    Ok(())
}

/// The ostree top-level layout: API mounts, `sysroot`, `/var` symlinks.
pub fn toplevel_layout(root: &Path, tmp_is_dir: bool) -> Result<()> {
    for d in ["dev", "proc", "sys", "run", "sysroot", "boot", "var"] {
        let p = root.join(d);
        if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            remove_any(&p)?;
            io(std::fs::create_dir(&p), "creating", &p)?;
        }
        io(
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)),
            "chmod",
            &p,
        )?;
    }
    // Leftovers of scriptlet sandboxes.
    let tmp = root.join("tmp");
    remove_any(&tmp)?;
    if tmp_is_dir {
        io(std::fs::create_dir(&tmp), "creating", &tmp)?;
        io(
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)),
            "chmod",
            &tmp,
        )?;
    } else {
        io(
            std::os::unix::fs::symlink("sysroot/tmp", &tmp),
            "symlinking",
            &tmp,
        )?;
    }
    let links: &[(&str, &str)] = &[
        ("ostree", "sysroot/ostree"),
        ("home", "var/home"),
        ("root", "var/roothome"),
        ("opt", "var/opt"),
        ("srv", "var/srv"),
        ("mnt", "var/mnt"),
        ("media", "run/media"),
        ("usr/local", "../var/usrlocal"),
    ];
    for (name, target) in links {
        let p = root.join(name);
        remove_any(&p)?;
        io(std::os::unix::fs::symlink(target, &p), "symlinking", &p)?;
    }
    let d = root.join("usr/lib/tmpfiles.d");
    io(std::fs::create_dir_all(&d), "creating", &d)?;
    let conf = "d /var/home 0755 root root - -\n\
                d /var/roothome 0700 root root - -\n\
                d /var/opt 0755 root root - -\n\
                d /var/srv 0755 root root - -\n\
                d /var/mnt 0755 root root - -\n\
                d /var/usrlocal 0755 root root - -\n\
                d /var/usrlocal/bin 0755 root root - -\n\
                d /var/usrlocal/etc 0755 root root - -\n\
                d /var/usrlocal/lib 0755 root root - -\n\
                d /var/usrlocal/sbin 0755 root root - -\n\
                d /var/usrlocal/share 0755 root root - -\n\
                d /var/usrlocal/src 0755 root root - -\n\
                d /run/media 0755 root root - -\n\
                L /var/lib/rpm - - - - ../../usr/lib/sysimage/rpm\n";
    let p = d.join("rost-integration.conf");
    io(std::fs::write(&p, conf), "writing", &p)
}

/// Moves the kernel (and a shipped initramfs) into `usr/lib/modules/$kver/`;
/// returns the kernel version, if the tree has a kernel.
pub fn place_kernel(root: &Path, keep_ostree_boot: bool) -> Result<Option<String>> {
    let modules = root.join("usr/lib/modules");
    let boot = root.join("usr/lib/ostree-boot");
    let mut kvers: Vec<String> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&modules) {
        for e in rd.flatten() {
            if e.path().join("vmlinuz").is_file() {
                kvers.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    // Kernels shipped only in /boot.
    if let Ok(rd) = std::fs::read_dir(&boot) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(k) = n.strip_prefix("vmlinuz-")
                && !kvers.iter().any(|x| x == k)
            {
                let d = modules.join(k);
                io(std::fs::create_dir_all(&d), "creating", &d)?;
                io(
                    std::fs::copy(e.path(), d.join("vmlinuz")),
                    "copying",
                    &e.path(),
                )?;
                kvers.push(k.to_owned());
            }
        }
    }
    kvers.sort();
    if kvers.len() > 1 {
        return Err(Error::Invalid {
            msg: format!("more than one kernel in the tree: {}", kvers.join(", ")),
        });
    }
    let Some(k) = kvers.pop() else {
        return Ok(None);
    };
    let kdir = modules.join(&k);
    let initramfs = kdir.join("initramfs.img");
    let boot_initrd = boot.join(format!("initramfs-{k}.img"));
    if !exists(&initramfs) && boot_initrd.is_file() {
        io(
            std::fs::copy(&boot_initrd, &initramfs),
            "copying",
            &boot_initrd,
        )?;
    }
    if !keep_ostree_boot {
        for n in [format!("vmlinuz-{k}"), format!("initramfs-{k}.img")] {
            remove_any(&boot.join(n))?;
        }
        if std::fs::read_dir(&boot).is_ok_and(|mut r| r.next().is_none()) {
            remove_any(&boot)?;
        }
    }
    Ok(Some(k))
}

/// Path of a treefile-related file inside the tree.
pub fn treefile_json_path(root: &Path) -> PathBuf {
    root.join("usr/share/rpm-ostree/treefile.json")
}
