//! Fixture trees for the repository tests, and a manifest to compare trees.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use sha2::Digest;

/// A `security.capability` v2 value granting cap_net_raw (permitted).
pub const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn write(p: &Path, data: &[u8], mode: u32) {
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

/// Builds the tree every interop test commits. With `privileged` (root), it
/// adds real ownership and `security.capability`.
pub fn build_fixture(root: &Path, privileged: bool) {
    std::fs::create_dir_all(root).unwrap();
    write(&root.join("regular"), b"hello\n", 0o644);
    write(&root.join("empty"), b"", 0o644);
    write(&root.join("exec"), b"#!/bin/sh\necho hi\n", 0o755);
    write(&root.join("setuid"), b"suid", 0o4755);
    write(&root.join("setgid"), b"sgid", 0o2755);
    write(&root.join("groupwrite"), b"gw", 0o664);
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&root.join("big.bin"), &big, 0o644);
    symlink("/usr/bin/env", root.join("abs-link")).unwrap();
    symlink("regular", root.join("rel-link")).unwrap();
    symlink("../does/not/exist", root.join("dangling-link")).unwrap();
    symlink("sub", root.join("dir-link")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    write(&root.join("sub/file"), b"in sub\n", 0o600);
    std::fs::hard_link(root.join("regular"), root.join("sub/hardlink")).unwrap();
    std::fs::hard_link(root.join("regular"), root.join("hardlink2")).unwrap();
    std::fs::create_dir(root.join("empty-dir")).unwrap();
    let mut deep = root.join("deep");
    for i in 0..24 {
        deep = deep.join(format!("level{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    write(&deep.join("bottom"), b"bottom\n", 0o644);
    for (d, mode) in [
        ("sticky", 0o1777),
        ("private", 0o700),
        ("sgid-dir", 0o2711),
        ("readonly", 0o555),
    ] {
        std::fs::create_dir(root.join(d)).unwrap();
        write(&root.join(d).join("f"), d.as_bytes(), 0o644);
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // Names that sort differently under strcmp and locale collation.
    for n in ["B", "_u", "a", ".hidden", "é"] {
        write(&root.join(n), n.as_bytes(), 0o644);
    }
    xattr(&root.join("regular"), "user.b", b"2");
    xattr(&root.join("regular"), "user.a", b"1");
    xattr(&root.join("sub"), "user.dir", b"dirval");
    xattr(&root.join("exec"), "user.bin", &[0, 1, 2, 255]);
    if privileged {
        for (p, uid, gid) in [
            ("sub/file", 1000, 1000),
            ("setgid", 0, 2000),
            ("private", 1234, 5678),
        ] {
            rustix::fs::chownat(
                rustix::fs::CWD,
                root.join(p),
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
        }
        // chown clears setgid: restore it.
        std::fs::set_permissions(root.join("setgid"), std::fs::Permissions::from_mode(0o2755))
            .unwrap();
        rustix::fs::chownat(
            rustix::fs::CWD,
            root.join("rel-link"),
            Some(rustix::fs::Uid::from_raw(42)),
            Some(rustix::fs::Gid::from_raw(43)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
        write(&root.join("capable"), b"cap", 0o755);
        xattr(&root.join("capable"), "security.capability", &CAP_NET_RAW);
    }
}

/// How to normalise metadata before comparing.
#[derive(Clone, Copy, Debug)]
pub struct ManifestOpts {
    /// Compare owners.
    pub owners: bool,
    /// Compare xattrs (user.* and security.capability).
    pub xattrs: bool,
    /// Mask modes as bare-user-only / --canonical-permissions do.
    pub canonical: bool,
}

fn list_xattrs(p: &Path) -> Vec<(String, String)> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut buf[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in buf[..n].split(|&c| c == 0).filter(|n| !n.is_empty()) {
        let name_s = String::from_utf8_lossy(name).into_owned();
        if !(name_s.starts_with("user.") || name_s == "security.capability") {
            continue;
        }
        let mut v = vec![0u8; 4096];
        let vn = rustix::fs::lgetxattr(p, name, &mut v[..]).unwrap();
        out.push((name_s, hex::encode(&v[..vn])));
    }
    out.sort();
    out
}

/// A line per path: type, mode, owner, size, content hash, link target, xattrs.
pub fn manifest(root: &Path, opts: ManifestOpts) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, opts, &mut out);
    out
}

fn walk(root: &Path, p: &Path, opts: ManifestOpts, out: &mut BTreeMap<String, String>) {
    let md = std::fs::symlink_metadata(p).unwrap();
    let rel = p.strip_prefix(root).unwrap();
    let rel = format!("/{}", String::from_utf8_lossy(rel.as_os_str().as_bytes()));
    let ft = md.file_type();
    let mut mode = md.mode() & 0o7777;
    if opts.canonical && !ft.is_symlink() {
        mode &= 0o755;
    }
    let (kind, detail) = if ft.is_symlink() {
        ("l", std::fs::read_link(p).unwrap().display().to_string())
    } else if ft.is_dir() {
        ("d", String::new())
    } else {
        let data = std::fs::read(p).unwrap();
        (
            "f",
            format!(
                "{} {}",
                data.len(),
                hex::encode(sha2::Sha256::digest(&data))
            ),
        )
    };
    let owner = if opts.owners {
        format!("{}:{}", md.uid(), md.gid())
    } else {
        "-".into()
    };
    let x = if opts.xattrs {
        format!("{:?}", list_xattrs(p))
    } else {
        String::new()
    };
    let mode_s = if ft.is_symlink() {
        "-".to_owned()
    } else {
        format!("{mode:o}")
    };
    out.insert(rel, format!("{kind} {mode_s} {owner} {detail} {x}"));
    if ft.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            walk(root, &p.join(OsStr::new(&n)), opts, out);
        }
    }
}

/// Asserts two manifests are equal, printing the differing lines.
#[track_caller]
pub fn assert_same_tree(
    what: &str,
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) {
    if expected == actual {
        return;
    }
    let mut diff = String::new();
    for (k, v) in expected {
        match actual.get(k) {
            Some(a) if a == v => {}
            Some(a) => diff.push_str(&format!("~ {k}\n    expected {v}\n    actual   {a}\n")),
            None => diff.push_str(&format!("- {k} {v}\n")),
        }
    }
    for (k, v) in actual {
        if !expected.contains_key(k) {
            diff.push_str(&format!("+ {k} {v}\n"));
        }
    }
    panic!("{what}: trees differ\n{diff}");
}
