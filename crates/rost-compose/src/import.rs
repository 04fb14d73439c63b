//! Importing one RPM as its own commit in the package cache repository.
//!
//! Each package becomes a commit on `rpmostree/pkg/NAME/EVR.ARCH` (escaped like
//! rpm-ostree) in a bare-user repo under the cache directory, so the next compose
//! reuses it and assembly can hardlink its objects. The commit records the
//! repodata checksum and the import options, so a rebuilt package with the same
//! NEVRA, or other options, is imported again.
//!
//! Path rules: `etc/`→`usr/etc/`, `boot/`→`usr/lib/ostree-boot/`,
//! `opt/`→`usr/lib/opt/`; `/var` and `/run` directories and symlinks become
//! `usr/lib/tmpfiles.d/pkg-NAME.conf` lines (regular files there are dropped);
//! top-level `bin`, `sbin`, `lib*` symlinks are kept and anything below them
//! moves under `usr/`; other top-level directories (`home`, `proc`, …) are left to
//! the postprocessing; any other file is an "unsupported path" error.
//!
//! Every object is owned by root in the cache; non-root owners are recorded by
//! name in the commit metadata (`rost.nonroot`, `a(sss)`) and resolved against
//! the composed tree's passwd/group at commit time.

use std::collections::BTreeMap;
use std::path::Path;

use rost_rpm::header::FileInfo;
use rost_store::gvariant::{Type, Value};
use rost_store::objects::{Commit, DirMeta, DirTree, FileHeader, TreeDir, TreeFile};
use rost_store::refs::RefSpec;
use rost_store::transaction::{ContentSource, Transaction};
use rost_store::{Checksum, ObjectType, Repo};

use crate::error::{Error, Result};

/// Options that change what an import stores (part of the cache key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Keep `%doc` files.
    pub documentation: bool,
    /// Locales kept under `usr/share/locale` (empty: all).
    pub install_langs: Vec<String>,
}

/// Bumped when the import format changes, so old cache entries are redone.
const IMPORT_VERSION: u32 = 2;

impl ImportOptions {
    /// The cache key of these options.
    pub fn key(&self) -> String {
        format!(
            "v{IMPORT_VERSION};docs={};langs={}",
            self.documentation,
            self.install_langs.join(",")
        )
    }
}

/// rpm-ostree's ref escaping: `_` becomes `__`, other bytes outside
/// `[A-Za-z0-9.-]` become `_XX` (so `x86_64` is `x86__64`).
pub fn escape_ref_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            out.push(b as char);
        } else if b == b'_' {
            out.push_str("__");
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// Ref of a package in the cache: `rpmostree/pkg/NAME/EVR.ARCH`.
pub fn pkg_ref(name: &str, epoch: u32, version: &str, release: &str, arch: &str) -> String {
    let evr = if epoch == 0 {
        format!("{version}-{release}")
    } else {
        format!("{epoch}:{version}-{release}")
    };
    format!(
        "rpmostree/pkg/{}/{}.{}",
        escape_ref_part(name),
        escape_ref_part(&evr),
        escape_ref_part(arch)
    )
}

/// Metadata key: repodata checksum of the imported package.
pub const META_REPODATA: &str = "rpmostree.repodata_checksum";
/// Metadata key: import options.
pub const META_IMPORT_KEY: &str = "rost.import-key";
/// Metadata key: non-root owners, `a(sss)` of (path, user, group).
pub const META_NONROOT: &str = "rost.nonroot";
/// Metadata key: NEVRA.
pub const META_NEVRA: &str = "rpmostree.nevra";

/// Returns the cached import of a package if it matches `repodata` and `opts`.
pub fn cached_import(
    repo: &Repo,
    pkgref: &str,
    repodata: &str,
    opts: &ImportOptions,
) -> Result<Option<Checksum>> {
    let spec = RefSpec::parse(pkgref)?;
    let Some(c) = repo.read_ref(&spec)? else {
        return Ok(None);
    };
    let commit = repo.load_commit(&c)?;
    let same = commit
        .metadata
        .lookup(META_REPODATA)
        .and_then(unvariant_str)
        == Some(repodata)
        && commit
            .metadata
            .lookup(META_IMPORT_KEY)
            .and_then(unvariant_str)
            == Some(opts.key().as_str());
    Ok(same.then_some(c))
}

fn unvariant_str(v: &Value) -> Option<&str> {
    match v {
        Value::Variant(b) => b.as_str(),
        v => v.as_str(),
    }
}

/// Where a package path goes.
#[derive(Debug, PartialEq, Eq)]
enum Dest {
    /// Into the tree at this relative path.
    Tree(String),
    /// A tmpfiles.d entry for this absolute path.
    Tmpfiles(String),
    /// Nothing (top-level directories handled by postprocessing).
    Skip,
    /// Not representable.
    Unsupported,
}

fn translate(path: &str, is_dir: bool, is_symlink: bool) -> Dest {
    let rel = path.trim_start_matches('/');
    let (first, rest) = match rel.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (rel, None),
    };
    let join = |prefix: &str| match rest {
        Some(r) => Dest::Tree(format!("{prefix}/{r}")),
        None => Dest::Tree(prefix.to_owned()),
    };
    match first {
        "" => Dest::Skip,
        "usr" => Dest::Tree(rel.to_owned()),
        "etc" => join("usr/etc"),
        "boot" => join("usr/lib/ostree-boot"),
        "opt" => join("usr/lib/opt"),
        "var" | "run" => match rest {
            None => Dest::Skip,
            Some(_) => Dest::Tmpfiles(format!("/{rel}")),
        },
        "bin" | "sbin" | "lib" | "lib64" | "lib32" | "libx32" => match rest {
            None if is_symlink => Dest::Tree(rel.to_owned()),
            None if is_dir => Dest::Skip,
            None => Dest::Unsupported,
            Some(r) => Dest::Tree(format!("usr/{first}/{r}")),
        },
        _ if is_dir => Dest::Skip,
        _ => Dest::Unsupported,
    }
}

/// An in-memory directory being built.
#[derive(Debug, Default)]
pub(crate) struct MemDir {
    pub(crate) meta: Option<DirMeta>,
    pub(crate) dirs: BTreeMap<String, MemDir>,
    pub(crate) files: BTreeMap<String, Checksum>,
}

pub(crate) fn default_dirmeta() -> DirMeta {
    DirMeta {
        uid: 0,
        gid: 0,
        mode: 0o040755,
        xattrs: Vec::new(),
    }
}

impl MemDir {
    pub(crate) fn dir_mut(&mut self, rel: &str) -> &mut MemDir {
        let mut cur = self;
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            cur = cur.dirs.entry(c.to_owned()).or_default();
        }
        cur
    }

    pub(crate) fn insert_file(&mut self, rel: &str, csum: Checksum) {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let d = self.dir_mut(parent);
        d.dirs.remove(name);
        d.files.insert(name.to_owned(), csum);
    }

    /// Writes the dirtree/dirmeta objects; returns (tree, meta).
    pub(crate) fn write(&self, tx: &Transaction<'_>) -> Result<(Checksum, Checksum)> {
        let mut tree = DirTree::default();
        for (name, c) in &self.files {
            tree.files.push(TreeFile {
                name: name.clone(),
                checksum: *c,
            });
        }
        for (name, d) in &self.dirs {
            let (t, m) = d.write(tx)?;
            tree.dirs.push(TreeDir {
                name: name.clone(),
                tree: t,
                meta: m,
            });
        }
        let t = tx.write_metadata(ObjectType::DirTree, &tree.to_bytes())?;
        let meta = self.meta.clone().unwrap_or_else(default_dirmeta);
        let m = tx.write_metadata(ObjectType::DirMeta, &meta.to_bytes())?;
        Ok((t, m))
    }
}

fn keep_file(f: &FileInfo, opts: &ImportOptions) -> bool {
    if f.is_ghost() {
        return false;
    }
    if !opts.documentation && f.is_doc() {
        return false;
    }
    if !opts.install_langs.is_empty()
        && let Some(rest) = f.path.strip_prefix("/usr/share/locale/")
        && let Some((lang, _)) = rest.split_once('/')
    {
        return opts.install_langs.iter().any(|l| {
            lang == l || lang.starts_with(&format!("{l}_")) || lang.starts_with(&format!("{l}@"))
        });
    }
    true
}

/// Imports the RPM at `rpm_path` into the package cache through `tx` (shared by
/// parallel imports: one `syncfs` for the batch); returns the package ref and
/// the commit, for the caller to set once every import succeeded.
pub fn import_rpm(
    tx: &Transaction<'_>,
    rpm_path: &Path,
    repodata: &str,
    opts: &ImportOptions,
) -> Result<(RefSpec, Checksum)> {
    let pkg = rost_rpm::load_package(rpm_path)?;
    let h = &pkg.header;
    let nevra = h.nevra();

    let mut root = MemDir {
        meta: Some(default_dirmeta()),
        ..Default::default()
    };
    let mut nonroot: Vec<(String, String, String)> = Vec::new();
    let mut tmpfiles: Vec<String> = Vec::new();
    let mut regular: std::collections::HashMap<&str, (String, FileHeader)> =
        std::collections::HashMap::new();
    for f in h.files.iter().filter(|f| keep_file(f, opts)) {
        let dest = translate(&f.path, f.is_dir(), f.is_symlink());
        let owner = |u: &str| {
            if u.is_empty() {
                "root".to_owned()
            } else {
                u.to_owned()
            }
        };
        let (user, group) = (owner(&f.user), owner(&f.group));
        let rel = match dest {
            Dest::Skip => continue,
            Dest::Unsupported => {
                return Err(Error::UnsupportedPath {
                    package: nevra,
                    path: f.path.clone(),
                });
            }
            Dest::Tmpfiles(abs) => {
                if f.is_dir() {
                    tmpfiles.push(format!(
                        "d {abs} {:04o} {user} {group} - -",
                        f.mode & 0o7777
                    ));
                } else if f.is_symlink() {
                    let t = f.linkto.clone().unwrap_or_default();
                    tmpfiles.push(format!("L {abs} - - - - {t}"));
                } else {
                    tracing::warn!(
                        "{nevra}: dropping {} (files under /var and /run are not kept)",
                        f.path
                    );
                }
                continue;
            }
            Dest::Tree(rel) => rel,
        };
        if user != "root" || group != "root" {
            nonroot.push((rel.clone(), user.clone(), group.clone()));
        }
        if f.is_dir() {
            let d = root.dir_mut(&rel);
            d.meta = Some(DirMeta {
                uid: 0,
                gid: 0,
                mode: f.mode,
                xattrs: Vec::new(),
            });
            continue;
        }
        let header = FileHeader {
            uid: 0,
            gid: 0,
            mode: f.mode,
            symlink_target: if f.is_symlink() {
                f.linkto.clone().unwrap_or_default()
            } else {
                String::new()
            },
            xattrs: Vec::new(),
        };
        if f.is_symlink() {
            let csum = tx.write_content(&header, ContentSource::Bytes(&[]))?;
            root.insert_file(&rel, csum);
        } else if f.is_regular() {
            regular.insert(f.path.as_str(), (rel, header));
        } else {
            tracing::warn!("{nevra}: skipping special file {}", f.path);
        }
    }
    // Contents straight from the (verified) payload into the repo.
    let mut failed: Option<Error> = None;
    rost_rpm::payload_stream::for_each_regular_file(&pkg, |info, content| {
        if failed.is_some() {
            return Ok(());
        }
        if let Some((rel, header)) = regular.get(info.path.as_str()) {
            match tx.write_content(header, ContentSource::Bytes(content)) {
                Ok(c) => root.insert_file(rel, c),
                Err(e) => failed = Some(e.into()),
            }
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if !tmpfiles.is_empty() {
        let mut text = tmpfiles.join("\n");
        text.push('\n');
        let header = FileHeader {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            symlink_target: String::new(),
            xattrs: Vec::new(),
        };
        let c = tx.write_content(&header, ContentSource::Bytes(text.as_bytes()))?;
        root.insert_file(&format!("usr/lib/tmpfiles.d/pkg-{}.conf", h.name), c);
    }
    let (tree, meta) = root.write(tx)?;
    let nonroot_v = Value::Array(
        Type::parse("(sss)").map_err(|e| Error::Invalid { msg: e.to_string() })?,
        nonroot
            .into_iter()
            .map(|(p, u, g)| Value::Tuple(vec![Value::str(p), Value::str(u), Value::str(g)]))
            .collect(),
    );
    let commit = Commit {
        metadata: Value::dict_sv(vec![
            (META_NEVRA.to_owned(), Value::str(nevra.clone())),
            (META_REPODATA.to_owned(), Value::str(repodata)),
            (META_IMPORT_KEY.to_owned(), Value::str(opts.key())),
            (META_NONROOT.to_owned(), nonroot_v),
        ]),
        parent: None,
        subject: nevra.clone(),
        body: String::new(),
        timestamp: 0,
        root_tree: tree,
        root_meta: meta,
    };
    let c = tx.write_metadata(ObjectType::Commit, &commit.to_bytes())?;
    let r = pkg_ref(
        &h.name,
        h.epoch.unwrap_or(0),
        &h.version,
        &h.release,
        &h.arch,
    );
    Ok((RefSpec::parse(&r)?, c))
}

/// Reads the non-root owner list of an imported package commit.
pub fn nonroot_of(commit: &Commit) -> Vec<(String, String, String)> {
    let Some(v) = commit.metadata.lookup(META_NONROOT) else {
        return Vec::new();
    };
    let v = match v {
        Value::Variant(b) => b.as_ref(),
        v => v,
    };
    let Value::Array(_, items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|t| match t {
            Value::Tuple(x) if x.len() == 3 => Some((
                x[0].as_str()?.to_owned(),
                x[1].as_str()?.to_owned(),
                x[2].as_str()?.to_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        let cases: &[(&str, bool, bool, Dest)] = &[
            ("/usr/bin/x", false, false, Dest::Tree("usr/bin/x".into())),
            (
                "/etc/passwd",
                false,
                false,
                Dest::Tree("usr/etc/passwd".into()),
            ),
            ("/etc", true, false, Dest::Tree("usr/etc".into())),
            (
                "/boot/vmlinuz-1",
                false,
                false,
                Dest::Tree("usr/lib/ostree-boot/vmlinuz-1".into()),
            ),
            (
                "/var/lib/x",
                true,
                false,
                Dest::Tmpfiles("/var/lib/x".into()),
            ),
            ("/var", true, false, Dest::Skip),
            ("/run/x", true, false, Dest::Tmpfiles("/run/x".into())),
            ("/bin", false, true, Dest::Tree("bin".into())),
            ("/bin/sh", false, false, Dest::Tree("usr/bin/sh".into())),
            ("/home", true, false, Dest::Skip),
            ("/home/x/.bashrc", false, false, Dest::Unsupported),
            ("/srv/data", false, false, Dest::Unsupported),
            (
                "/opt/app/bin",
                false,
                false,
                Dest::Tree("usr/lib/opt/app/bin".into()),
            ),
        ];
        for (p, d, l, want) in cases {
            assert_eq!(&translate(p, *d, *l), want, "{p}");
        }
    }

    #[test]
    fn ref_escaping() {
        assert_eq!(
            pkg_ref("foo", 2, "1.0~rc1", "3.fc42", "x86_64"),
            "rpmostree/pkg/foo/2_3A1.0_7Erc1-3.fc42.x86__64"
        );
        assert_eq!(
            pkg_ref("g++", 0, "1", "1", "noarch"),
            "rpmostree/pkg/g_2B_2B/1-1.noarch"
        );
    }
}
