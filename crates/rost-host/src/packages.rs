//! The package list of a commit (`rpmostree.rpmdb.pkglist`) and the
//! package-level diff between two commits, as `rpm-ostree db diff` and
//! `upgrade` print it.
//!
//! The diff is a merge walk of two name-sorted lists: same name and arch with a
//! different EVR is an upgrade or downgrade (by rpm's EVR order), a name only in
//! the old list is removed, only in the new one added. Reading the commit
//! metadata is enough: no checkout, no rpmdb, so `upgrade --check` needs only
//! the commit object.

use std::cmp::Ordering;

use rost_store::gvariant::Value;
use rost_store::objects::Commit;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Commit metadata key holding the package list, type `a(sssss)`.
pub const PKGLIST_KEY: &str = "rpmostree.rpmdb.pkglist";

/// One installed package, as recorded in a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Epoch (0 when the package has none).
    pub epoch: u32,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// Architecture.
    pub arch: String,
}

impl Package {
    /// `[EPOCH:]VERSION-RELEASE`, epoch omitted when 0 (rpm-ostree's form).
    pub fn evr(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }

    /// `NAME-[EPOCH:]VERSION-RELEASE.ARCH`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    /// `NAME.ARCH`.
    pub fn na(&self) -> String {
        format!("{}.{}", self.name, self.arch)
    }

    /// `NAME-VERSION-RELEASE`.
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }

    /// rpm's order on EVRs.
    pub fn cmp_evr(&self, other: &Package) -> Ordering {
        rost_rpm::evr::cmp_evr_parts(
            self.epoch,
            &self.version,
            Some(&self.release),
            other.epoch,
            &other.version,
            Some(&other.release),
        )
    }

    /// Whether a `db list` pattern (shell glob, case-insensitive) matches the
    /// name, NEVRA, NAME.ARCH or NVR.
    pub fn matches(&self, pattern: &glob::Pattern) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: false,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        [self.name.clone(), self.nevra(), self.na(), self.nvr()]
            .iter()
            .any(|s| pattern.matches_with(s, opts))
    }
}

fn sort_key(a: &Package, b: &Package) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| a.arch.cmp(&b.arch))
        .then_with(|| a.cmp_evr(b))
}

/// Reads the package list from a commit's metadata, sorted by name, arch, EVR.
/// `Ok(None)` when the commit has no package list (not composed from RPMs).
pub fn commit_packages(commit: &Commit, csum: &str) -> Result<Option<Vec<Package>>> {
    let Some(v) = commit.metadata.lookup(PKGLIST_KEY) else {
        return Ok(None);
    };
    let bad = |reason: &str| Error::Metadata {
        commit: csum.to_owned(),
        key: PKGLIST_KEY,
        reason: reason.to_owned(),
    };
    let items = match v {
        Value::Variant(inner) => match inner.as_ref() {
            Value::Array(_, items) => items,
            _ => return Err(bad("not an array")),
        },
        Value::Array(_, items) => items,
        _ => return Err(bad("not an array")),
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let Value::Tuple(f) = it else {
            return Err(bad("entry is not a tuple"));
        };
        let s = |i: usize| f.get(i).and_then(Value::as_str).map(str::to_owned);
        let (Some(name), Some(epoch), Some(version), Some(release), Some(arch)) =
            (s(0), s(1), s(2), s(3), s(4))
        else {
            return Err(bad("entry is not (sssss)"));
        };
        let epoch = if epoch.is_empty() {
            0
        } else {
            epoch
                .parse()
                .map_err(|_| bad(&format!("{name}: epoch {epoch:?} is not a number")))?
        };
        out.push(Package {
            name,
            epoch,
            version,
            release,
            arch,
        });
    }
    out.sort_by(sort_key);
    Ok(Some(out))
}

/// Package changes from one commit to another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    /// (old, new) pairs where new has the higher EVR.
    pub upgraded: Vec<(Package, Package)>,
    /// (old, new) pairs where new has the lower EVR.
    pub downgraded: Vec<(Package, Package)>,
    /// Only in the old commit.
    pub removed: Vec<Package>,
    /// Only in the new commit.
    pub added: Vec<Package>,
}

impl PackageDiff {
    /// Merge-walks two lists sorted by [`commit_packages`].
    pub fn compute(old: &[Package], new: &[Package]) -> PackageDiff {
        let mut d = PackageDiff::default();
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let ord = match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) => (&a.name, &a.arch).cmp(&(&b.name, &b.arch)),
                (Some(_), None) => Ordering::Less,
                (None, _) => Ordering::Greater,
            };
            match ord {
                Ordering::Less => {
                    d.removed.push(old[i].clone());
                    i += 1;
                }
                Ordering::Greater => {
                    d.added.push(new[j].clone());
                    j += 1;
                }
                Ordering::Equal => {
                    let (a, b) = (&old[i], &new[j]);
                    match a.cmp_evr(b) {
                        Ordering::Less => d.upgraded.push((a.clone(), b.clone())),
                        Ordering::Greater => d.downgraded.push((a.clone(), b.clone())),
                        Ordering::Equal => {}
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        d
    }

    /// No package changed.
    pub fn is_empty(&self) -> bool {
        self.upgraded.is_empty()
            && self.downgraded.is_empty()
            && self.removed.is_empty()
            && self.added.is_empty()
    }

    /// `2 upgraded, 1 removed, 1 added` (zero counts left out), as rpm-ostree's
    /// one-line `Diff:` summary.
    pub fn summary(&self) -> String {
        let parts = [
            (self.upgraded.len(), "upgraded"),
            (self.downgraded.len(), "downgraded"),
            (self.removed.len(), "removed"),
            (self.added.len(), "added"),
        ];
        parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `rpm-ostree db version`'s package-set hash: `COUNT:SHA256` over each
/// package's `[EPOCH:]NAME-VERSION-RELEASE.ARCH`, in list order.
pub fn rpmdb_version(pkgs: &[Package]) -> String {
    let mut h = Sha256::new();
    for p in pkgs {
        let envra = if p.epoch == 0 {
            format!("{}-{}-{}.{}", p.name, p.version, p.release, p.arch)
        } else {
            format!(
                "{}:{}-{}-{}.{}",
                p.epoch, p.name, p.version, p.release, p.arch
            )
        };
        h.update(envra.as_bytes());
    }
    format!("{}:{}", pkgs.len(), hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, evr: &str, arch: &str) -> Package {
        let (epoch, rest) = match evr.split_once(':') {
            Some((e, r)) => (e.parse().expect("epoch"), r),
            None => (0, evr),
        };
        let (v, r) = rest.rsplit_once('-').expect("v-r");
        Package {
            name: name.into(),
            epoch,
            version: v.into(),
            release: r.into(),
            arch: arch.into(),
        }
    }

    #[test]
    fn diff_table() {
        let old = vec![
            p("a", "1.0-1", "x86_64"),
            p("b", "2.0-1", "noarch"),
            p("c", "1:1.0-1", "x86_64"),
            p("d", "1.0-1", "x86_64"),
            p("e", "1.0~rc1-1", "x86_64"),
            p("lib", "1-1", "i686"),
        ];
        let new = vec![
            p("a", "1.0-2", "x86_64"),
            p("b", "2.0-1", "noarch"),
            p("c", "2.0-1", "x86_64"),
            p("e", "1.0-1", "x86_64"),
            p("f", "1-1", "noarch"),
            p("lib", "1-1", "x86_64"),
        ];
        let d = PackageDiff::compute(&old, &new);
        let names = |v: &[(Package, Package)]| v.iter().map(|x| x.1.nevra()).collect::<Vec<_>>();
        assert_eq!(names(&d.upgraded), ["a-1.0-2.x86_64", "e-1.0-1.x86_64"]);
        // Epoch 1 beats any version with epoch 0.
        assert_eq!(names(&d.downgraded), ["c-2.0-1.x86_64"]);
        let n = |v: &[Package]| v.iter().map(Package::nevra).collect::<Vec<_>>();
        assert_eq!(n(&d.removed), ["d-1.0-1.x86_64", "lib-1-1.i686"]);
        assert_eq!(n(&d.added), ["f-1-1.noarch", "lib-1-1.x86_64"]);
        assert_eq!(d.summary(), "2 upgraded, 1 downgraded, 2 removed, 2 added");
        assert!(PackageDiff::compute(&old, &old).is_empty());
        assert_eq!(PackageDiff::compute(&old, &old).summary(), "");
    }

    #[test]
    fn formats() {
        let a = p("bash", "5.2-1", "x86_64");
        assert_eq!(a.evr(), "5.2-1");
        assert_eq!(a.nevra(), "bash-5.2-1.x86_64");
        let b = p("shadow", "2:4.13-1", "x86_64");
        assert_eq!(b.nevra(), "shadow-2:4.13-1.x86_64");
        assert_eq!(b.nvr(), "shadow-4.13-1");
        let pat = glob::Pattern::new("BASH*").expect("pattern");
        assert!(a.matches(&pat));
        assert!(!b.matches(&pat));
        assert!(b.matches(&glob::Pattern::new("shadow.x86_64").expect("pattern")));
    }

    #[test]
    fn rpmdb_version_counts_and_hashes() {
        let pkgs = vec![p("a", "1-1", "noarch"), p("b", "1:2-3", "x86_64")];
        let v = rpmdb_version(&pkgs);
        let mut h = Sha256::new();
        h.update(b"a-1-1.noarch");
        h.update(b"1:b-2-3.x86_64");
        assert_eq!(v, format!("2:{}", hex::encode(h.finalize())));
    }

    #[test]
    fn reads_pkglist_and_rejects_bad_entries() {
        let tuple = rost_store::gvariant::Type::parse("(sssss)").expect("type");
        let entry = |e: &str| {
            Value::Tuple(
                ["z", e, "1", "1", "noarch"]
                    .iter()
                    .map(|s| Value::str(*s))
                    .collect(),
            )
        };
        let commit = |items: Vec<Value>| Commit {
            metadata: Value::dict_sv(vec![(
                PKGLIST_KEY.to_owned(),
                Value::Array(tuple.clone(), items),
            )]),
            parent: None,
            subject: String::new(),
            body: String::new(),
            timestamp: 0,
            root_tree: rost_store::Checksum([0; 32]),
            root_meta: rost_store::Checksum([0; 32]),
        };
        let got = commit_packages(&commit(vec![entry("0"), entry("3")]), "c")
            .expect("parses")
            .expect("has list");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].epoch, 3);
        let err = commit_packages(&commit(vec![entry("x")]), "c1").expect_err("bad epoch");
        assert!(err.to_string().contains("c1"), "{err}");
        assert!(err.to_string().contains(PKGLIST_KEY), "{err}");
    }
}
