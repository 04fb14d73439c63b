//! Refs: `refs/heads/<ref>`, `refs/remotes/<remote>/<ref>`, revision parsing.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType};
use rustix::io::Errno;

use crate::error::IoContext;
use crate::fsutil::{self, Durability};
use crate::{Checksum, Error, ObjectType, Repo, Result};

/// Whether `name` is a valid ref name: `(F/)*F` with `F = [\w\d][-._\w\d]*`.
pub fn is_valid_ref(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(c) if c.is_alphanumeric() || c == '_' => {}
                _ => return false,
            }
            chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
}

/// A ref, optionally on a remote (`remote:ref`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefSpec {
    /// Remote name, if any.
    pub remote: Option<String>,
    /// Ref name.
    pub name: String,
}

impl RefSpec {
    /// Parses `ref` or `remote:ref`, validating the ref name.
    pub fn parse(s: &str) -> Result<RefSpec> {
        let (remote, name) = match s.split_once(':') {
            Some((r, n)) => (Some(r.to_owned()), n),
            None => (None, s),
        };
        if !is_valid_ref(name)
            || remote
                .as_deref()
                .is_some_and(|r| r.is_empty() || r.contains('/'))
        {
            return Err(Error::InvalidRef(s.to_owned()));
        }
        Ok(RefSpec {
            remote,
            name: name.to_owned(),
        })
    }

    fn path(&self) -> PathBuf {
        match &self.remote {
            Some(r) => PathBuf::from("refs/remotes").join(r).join(&self.name),
            None => PathBuf::from("refs/heads").join(&self.name),
        }
    }
}

impl std::fmt::Display for RefSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.remote {
            Some(r) => write!(f, "{r}:{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn parse_ref_file(data: &[u8], path: &Path) -> Result<Checksum> {
    let s = std::str::from_utf8(data).map_err(|_| Error::Corrupt {
        object: path.display().to_string(),
        reason: "ref is not UTF-8".into(),
    })?;
    s.trim_end().parse().map_err(|_| Error::Corrupt {
        object: path.display().to_string(),
        reason: format!("ref holds {:?}, not a checksum", s.trim_end()),
    })
}

/// Alias chains longer than this are not followed.
const MAX_ALIAS_DEPTH: usize = 8;

impl Repo {
    /// Reads a ref, `None` when it does not exist. A local alias (a symlink
    /// under `refs/heads`) reads as the ref it names.
    pub fn read_ref(&self, spec: &RefSpec) -> Result<Option<Checksum>> {
        let mut spec = spec.clone();
        for _ in 0..MAX_ALIAS_DEPTH {
            match (&spec.remote, self.read_ref_alias(&spec.name)?) {
                (None, Some(target)) => spec.name = target,
                _ => break,
            }
        }
        let p = spec.path();
        match fsutil::read_file_optional_at(self.dfd(), &p) {
            Ok(Some(d)) => Ok(Some(parse_ref_file(&d, &p)?)),
            Ok(None) => Ok(None),
            // A directory of refs (`a` when `a/b` exists) is not itself a ref.
            Err(Error::Io { source, .. })
                if source.raw_os_error() == Some(Errno::ISDIR.raw_os_error()) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Points a ref at `target`, or deletes it with `None`. Durable on return.
    ///
    /// Callers must only name commits whose objects are already durable.
    pub fn write_ref(&self, spec: &RefSpec, target: Option<&Checksum>) -> Result<()> {
        let p = spec.path();
        match target {
            Some(c) => {
                // An empty directory (left by deleting the refs under it)
                // gives way; one that still holds refs is a conflict.
                match rustix::fs::unlinkat(self.dfd(), &p, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT | Errno::NOTDIR) => {}
                    Err(Errno::NOTEMPTY | Errno::EXIST) => {
                        let under = fsutil::open_dir_at(self.dfd(), &p)
                            .ok()
                            .and_then(|fd| fsutil::list_dir(fd.as_fd()).ok())
                            .and_then(|l| l.into_iter().next())
                            .map(|e| e.name.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        return Err(Error::Other(crate::msg::ref_conflict(under, spec)));
                    }
                    Err(e) => return Err(e).ctx("removing", p),
                }
                if let Some(parent) = p.parent() {
                    fsutil::ensure_dir_all_at(self.dfd(), parent, 0o755).ctx("creating", parent)?;
                }
                fsutil::replace_file_at(
                    self.dfd(),
                    &p,
                    format!("{c}\n").as_bytes(),
                    0o644,
                    Durability::Now,
                )
            }
            None => match rustix::fs::unlinkat(self.dfd(), &p, AtFlags::empty()) {
                Ok(()) => Ok(()),
                Err(Errno::NOENT) => Err(Error::NotFound(crate::msg::refspec_not_found(spec))),
                Err(e) => Err(e).ctx("removing", p),
            },
        }
    }

    /// The ref a local alias names, `None` when `name` is not an alias.
    ///
    /// An alias is a symlink `refs/heads/NAME` whose target is a path relative
    /// to its directory, as `ostree refs --alias --create` writes it.
    pub fn read_ref_alias(&self, name: &str) -> Result<Option<String>> {
        let p = Path::new("refs/heads").join(name);
        let target = match rustix::fs::readlinkat(self.dfd(), &p, Vec::new()) {
            Ok(t) => t,
            Err(Errno::NOENT | Errno::INVAL | Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e).ctx("reading link", p),
        };
        let target = target.to_string_lossy();
        let mut parts: Vec<&str> = name.split('/').collect();
        parts.pop();
        for c in target.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(Error::Corrupt {
                            object: p.display().to_string(),
                            reason: format!("alias target {target:?} leaves refs/heads"),
                        });
                    }
                }
                c => parts.push(c),
            }
        }
        Ok(Some(parts.join("/")))
    }

    /// Every local alias: alias name to the ref it names.
    pub fn list_ref_aliases(&self) -> Result<BTreeMap<String, String>> {
        let mut names = Vec::new();
        self.walk_ref_links(Path::new("refs/heads"), "", &mut names)?;
        let mut out = BTreeMap::new();
        for n in names {
            if let Some(t) = self.read_ref_alias(&n)? {
                out.insert(n, t);
            }
        }
        Ok(out)
    }

    /// Walks the ref directory `dir` depth-first, calling `f(path, name, type)`
    /// for every entry that is not a directory; `name` is the ref name below
    /// the walk's root. A missing `dir` is an empty one.
    fn walk_ref_dir(
        &self,
        dir: &Path,
        prefix: &str,
        f: &mut dyn FnMut(&Path, String, FileType) -> Result<()>,
    ) -> Result<()> {
        let fd = match fsutil::open_dir_at(self.dfd(), dir) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).ctx("opening", dir),
        };
        for e in fsutil::list_dir(fd.as_fd()).ctx("listing", dir)? {
            let Some(n) = e.name.to_str() else { continue };
            // As ostree: dot files (temporaries, tools' stamps) are not refs.
            if n.starts_with('.') {
                continue;
            }
            let full = if prefix.is_empty() {
                n.to_owned()
            } else {
                format!("{prefix}/{n}")
            };
            let p = dir.join(n);
            if e.file_type == FileType::Directory {
                self.walk_ref_dir(&p, &full, f)?;
            } else {
                f(&p, full, e.file_type)?;
            }
        }
        Ok(())
    }

    fn walk_ref_links(&self, dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        self.walk_ref_dir(dir, prefix, &mut |_, name, ty| {
            if ty == FileType::Symlink {
                out.push(name);
            }
            Ok(())
        })
    }

    /// Makes the local ref `alias` a symlink to the local ref `target`
    /// (replacing what was there). Durable on return.
    pub fn write_ref_alias(&self, alias: &str, target: &str) -> Result<()> {
        let p = Path::new("refs/heads").join(alias);
        let parent = p.parent().unwrap_or(Path::new("refs/heads"));
        fsutil::ensure_dir_all_at(self.dfd(), parent, 0o755).ctx("creating", parent)?;
        let depth = alias.split('/').count() - 1;
        let link = format!("{}{target}", "../".repeat(depth));
        let tmp = parent.join(format!(".tmp-alias.{}", fsutil::random_suffix()));
        rustix::fs::symlinkat(link.as_str(), self.dfd(), &tmp).ctx("creating", &tmp)?;
        if let Err(e) = rustix::fs::renameat(self.dfd(), &tmp, self.dfd(), &p) {
            let _ = rustix::fs::unlinkat(self.dfd(), &tmp, AtFlags::empty());
            return Err(e).ctx("renaming into place", p);
        }
        let pfd = fsutil::open_dir_at(self.dfd(), parent).ctx("opening", parent)?;
        rustix::fs::fsync(&pfd).ctx("fsync", parent)?;
        Ok(())
    }

    /// Every ref: local ones by name, remote ones as `remote:name`.
    pub fn list_refs(&self) -> Result<BTreeMap<RefSpec, Checksum>> {
        let mut out = BTreeMap::new();
        self.walk_refs(Path::new("refs/heads"), "", &mut |name, c| {
            out.insert(RefSpec { remote: None, name }, c);
        })?;
        // As libostree: a repository without refs/remotes is broken, not empty.
        let remotes = match fsutil::open_dir_at(self.dfd(), Path::new("refs/remotes")) {
            Ok(fd) => fsutil::list_dir(fd.as_fd()).ctx("listing", "refs/remotes")?,
            Err(e) => {
                // strerror's text, as libostree prints it (no "(os error N)").
                let text = std::io::Error::from(e).to_string();
                let text = text.split(" (os error").next().unwrap_or_default();
                return Err(Error::Other(format!(
                    "Listing refs: opendir(refs/remotes): {text}"
                )));
            }
        };
        for r in remotes {
            if r.file_type != FileType::Directory {
                continue;
            }
            let Some(remote) = r.name.to_str() else {
                continue;
            };
            let base = Path::new("refs/remotes").join(remote);
            self.walk_refs(&base, "", &mut |name, c| {
                out.insert(
                    RefSpec {
                        remote: Some(remote.to_owned()),
                        name,
                    },
                    c,
                );
            })?;
        }
        Ok(out)
    }

    fn walk_refs(
        &self,
        dir: &Path,
        prefix: &str,
        f: &mut dyn FnMut(String, Checksum),
    ) -> Result<()> {
        let aliases_here = dir.starts_with("refs/heads");
        self.walk_ref_dir(dir, prefix, &mut |p, name, ty| {
            if ty == FileType::Symlink {
                // An alias (only meaningful under refs/heads).
                let spec = RefSpec {
                    remote: None,
                    name: name.clone(),
                };
                if aliases_here && let Some(c) = self.read_ref(&spec)? {
                    f(name, c);
                }
            } else if let Some(d) = fsutil::read_file_optional_at(self.dfd(), p)? {
                f(name, parse_ref_file(&d, p)?);
            }
            Ok(())
        })
    }

    /// Resolves a revision: a checksum, a ref, `remote:ref`, with `^` suffixes
    /// for parents. `Ok(None)` when the ref does not exist.
    pub fn resolve_rev_optional(&self, rev: &str) -> Result<Option<Checksum>> {
        if let Some(base) = rev.strip_suffix('^') {
            let Some(c) = self.resolve_rev_optional(base)? else {
                return Ok(None);
            };
            let commit = self.load_commit(&c)?;
            return commit.parent.map(Some).ok_or_else(|| {
                Error::NotFound(format!(
                    "Revision '{rev}' not found: commit {c} has no parent"
                ))
            });
        }
        if Checksum::is_valid_hex(rev) {
            return rev.parse().map(Some);
        }
        if let Some(c) = self.resolve_partial_checksum(rev)? {
            return Ok(Some(c));
        }
        let spec = RefSpec::parse(rev)?;
        if let Some(c) = self.read_ref(&spec)? {
            return Ok(Some(c));
        }
        if spec.remote.is_none() {
            // `remote/ref` as a path under refs/remotes, then mirrors.
            for base in ["refs/remotes", "refs/mirrors"] {
                let p = Path::new(base).join(&spec.name);
                if let Some(d) = fsutil::read_file_optional_at(self.dfd(), &p)? {
                    return Ok(Some(parse_ref_file(&d, &p)?));
                }
            }
            // Then the same name under any remote, as libostree does.
            let remotes = match fsutil::open_dir_at(self.dfd(), Path::new("refs/remotes")) {
                Ok(fd) => fsutil::list_dir(fd.as_fd()).ctx("listing", "refs/remotes")?,
                Err(Errno::NOENT) => Vec::new(),
                Err(e) => return Err(e).ctx("opening", "refs/remotes"),
            };
            let mut names: Vec<String> = remotes
                .into_iter()
                .filter(|e| e.file_type == FileType::Directory)
                .filter_map(|e| e.name.into_string().ok())
                .collect();
            names.sort();
            for r in names {
                let spec = RefSpec {
                    remote: Some(r),
                    name: spec.name.clone(),
                };
                if let Some(c) = self.read_ref(&spec)? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// A commit named by a checksum prefix (at least 4 lowercase hex
    /// digits), as ostree accepts one; `None` when no commit matches. A
    /// prefix matching several commits is an error.
    fn resolve_partial_checksum(&self, rev: &str) -> Result<Option<Checksum>> {
        if rev.len() < 4
            || rev.len() >= 64
            || !rev
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Ok(None);
        }
        let dir = Path::new("objects").join(&rev[..2]);
        let fd = match fsutil::open_dir_at(self.dfd(), &dir) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e).ctx("opening", dir),
        };
        let mut found: Option<Checksum> = None;
        for e in fsutil::list_dir(fd.as_fd()).ctx("listing", &dir)? {
            let Some(n) = e.name.to_str() else { continue };
            let Some(rest) = n.strip_suffix(".commit") else {
                continue;
            };
            let hex = format!("{}{rest}", &rev[..2]);
            if !hex.starts_with(rev) {
                continue;
            }
            let Ok(c) = hex.parse::<Checksum>() else {
                continue;
            };
            if found.is_some() {
                return Err(Error::Other(format!("Refspec {rev} not unique")));
            }
            found = Some(c);
        }
        Ok(found)
    }

    /// Resolves a revision; a missing ref is an error.
    pub fn resolve_rev(&self, rev: &str) -> Result<Checksum> {
        self.resolve_rev_optional(rev)?
            .ok_or_else(|| Error::NotFound(crate::msg::refspec_not_found(rev)))
    }

    /// Resolves a revision and checks that the commit object is present.
    pub fn resolve_commit(&self, rev: &str) -> Result<Checksum> {
        let c = self.resolve_rev(rev)?;
        if !self.has_object(ObjectType::Commit, &c)? {
            return Err(Error::NotFound(crate::msg::no_such_metadata_object(
                c, "commit",
            )));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for ok in ["b", "fedora/x86_64/silverblue", "a.b-c_d", "_x", "1"] {
            assert!(is_valid_ref(ok), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", ".a", "-a", "a b", "a:b", "a/../b"] {
            assert!(!is_valid_ref(bad), "{bad}");
        }
    }

    #[test]
    fn refspecs() {
        let s = RefSpec::parse("origin:os/x86_64").unwrap();
        assert_eq!(s.remote.as_deref(), Some("origin"));
        assert_eq!(s.to_string(), "origin:os/x86_64");
        assert!(RefSpec::parse(":x").is_err());
    }
}
