//! Version comparison with rpm's exact rules (`rpmvercmp`, `rpmverCmp`, `rpmdsCompare`).
//!
//! Hand-written on purpose: the `rpm` crate's `rpm-version` dependency compares
//! versions too, but the solver calls this millions of times on borrowed strings,
//! and dependency-range overlap (`rpmdsCompareEVR`) is not exposed there.
//!
//! Rules, as rpm implements them:
//! - versions split into maximal runs of ASCII digits or ASCII letters; every other
//!   byte is a separator and only separates;
//! - `~` sorts before anything, even the end of the string (`1.0~rc1 < 1.0`);
//! - `^` sorts after the end of the string but before any further segment
//!   (`1.0 < 1.0^git1 < 1.0.1`);
//! - numeric segments compare as numbers (leading zeros ignored) and are newer than
//!   alphabetic ones; alphabetic segments compare bytewise;
//! - when all segments tie, the string with segments left over is newer.

use std::cmp::Ordering;
use std::fmt;

/// Compares two version (or release) strings like rpm's `rpmvercmp`.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let ca = a.get(i).copied();
        let cb = b.get(j).copied();
        // Tilde sorts before everything else, including the end.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret: like tilde, but the end of a string sorts before it.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let (si, sj) = (i, j);
        let isnum = a[i].is_ascii_digit();
        if isnum {
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        } else {
            while i < a.len() && a[i].is_ascii_alphabetic() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_alphabetic() {
                j += 1;
            }
        }
        // Different segment types: numeric is newer than alphabetic.
        if sj == j {
            return if isnum {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let mut seg_a = &a[si..i];
        let mut seg_b = &b[sj..j];
        if isnum {
            while seg_a.first() == Some(&b'0') {
                seg_a = &seg_a[1..];
            }
            while seg_b.first() == Some(&b'0') {
                seg_b = &seg_b[1..];
            }
            match seg_a.len().cmp(&seg_b.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match seg_a.cmp(seg_b) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// An epoch-version-release triple. A missing epoch compares as `0`; a missing
/// release (`None`) matches any release, as in rpm dependency ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Evr {
    /// Epoch, `None` when absent (compares as 0).
    pub epoch: Option<u32>,
    /// Version.
    pub version: String,
    /// Release, `None` when absent.
    pub release: Option<String>,
}

impl Evr {
    /// Builds an EVR from parts.
    pub fn new(epoch: Option<u32>, version: &str, release: Option<&str>) -> Self {
        Evr {
            epoch,
            version: version.to_owned(),
            release: release.map(str::to_owned),
        }
    }

    /// Parses `[epoch:]version[-release]` as rpm does (the release starts after the
    /// last `-`). A non-numeric epoch makes the whole string the version.
    pub fn parse(s: &str) -> Self {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
                (e.parse().ok(), rest)
            }
            Some(("", rest)) => (None, rest),
            _ => (None, s),
        };
        match rest.rsplit_once('-') {
            Some((v, r)) => Evr::new(epoch, v, Some(r)),
            None => Evr::new(epoch, rest, None),
        }
    }

    /// rpm's `rpmverCmp`: epoch, then version, then release when both have one.
    pub fn cmp_rpm(&self, other: &Evr) -> Ordering {
        cmp_evr_parts(
            self.epoch.unwrap_or(0),
            &self.version,
            self.release.as_deref(),
            other.epoch.unwrap_or(0),
            &other.version,
            other.release.as_deref(),
        )
    }
}

/// Compares EVRs given as parts (no allocation); releases compare only when both exist.
pub fn cmp_evr_parts(
    e1: u32,
    v1: &str,
    r1: Option<&str>,
    e2: u32,
    v2: &str,
    r2: Option<&str>,
) -> Ordering {
    e1.cmp(&e2)
        .then_with(|| rpmvercmp(v1, v2))
        .then_with(|| match (r1, r2) {
            (Some(a), Some(b)) => rpmvercmp(a, b),
            _ => Ordering::Equal,
        })
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = self.epoch {
            write!(f, "{e}:")?;
        }
        f.write_str(&self.version)?;
        if let Some(r) = &self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

/// A version comparison operator of a dependency (`RPMSENSE_LESS|GREATER|EQUAL`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Sense {
    /// `<` bit.
    pub less: bool,
    /// `>` bit.
    pub greater: bool,
    /// `=` bit.
    pub equal: bool,
}

impl Sense {
    /// No version constraint.
    pub const ANY: Sense = Sense {
        less: false,
        greater: false,
        equal: false,
    };
    /// `=`.
    pub const EQ: Sense = Sense {
        less: false,
        greater: false,
        equal: true,
    };

    /// From rpm's flag bits (2 = less, 4 = greater, 8 = equal).
    pub fn from_rpm_flags(flags: u32) -> Self {
        Sense {
            less: flags & 2 != 0,
            greater: flags & 4 != 0,
            equal: flags & 8 != 0,
        }
    }

    /// Parses an operator as written in specs and rpm-md (`<`, `<=`, `=`, `==`, `>=`,
    /// `>`) or rpm-md's `LT LE EQ GE GT`.
    pub fn parse(op: &str) -> Option<Self> {
        let (less, greater, equal) = match op {
            "<" | "LT" => (true, false, false),
            "<=" | "=<" | "LE" => (true, false, true),
            "=" | "==" | "EQ" => (false, false, true),
            ">=" | "=>" | "GE" => (false, true, true),
            ">" | "GT" => (false, true, false),
            _ => return None,
        };
        Some(Sense {
            less,
            greater,
            equal,
        })
    }

    /// Whether any comparison bit is set.
    pub fn is_versioned(self) -> bool {
        self.less || self.greater || self.equal
    }

    /// The operator as rpm prints it.
    pub fn as_str(self) -> &'static str {
        match (self.less, self.greater, self.equal) {
            (true, false, true) => "<=",
            (true, false, false) => "<",
            (false, true, true) => ">=",
            (false, true, false) => ">",
            (false, false, true) => "=",
            _ => "",
        }
    }
}

/// rpm's `rpmdsCompare`: do the ranges `a` (e.g. a Provide) and `b` (e.g. a Require)
/// overlap? An unversioned side overlaps everything.
pub fn ranges_overlap(a_sense: Sense, a: &Evr, b_sense: Sense, b: &Evr) -> bool {
    if !a_sense.is_versioned() || !b_sense.is_versioned() {
        return true;
    }
    match a.cmp_rpm(b) {
        Ordering::Less => a_sense.greater || b_sense.less,
        Ordering::Greater => a_sense.less || b_sense.greater,
        Ordering::Equal => {
            (a_sense.equal && b_sense.equal)
                || (a_sense.less && b_sense.less)
                || (a_sense.greater && b_sense.greater)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal as E, Greater as G, Less as L};

    /// rpm's own rpmvercmp facts (tests/rpmvercmp.at in rpm.git), plus tilde/caret cases.
    const CASES: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", E),
        ("1.0", "2.0", L),
        ("2.0", "1.0", G),
        ("2.0.1", "2.0.1", E),
        ("2.0", "2.0.1", L),
        ("2.0.1", "2.0", G),
        ("2.0.1a", "2.0.1a", E),
        ("2.0.1a", "2.0.1", G),
        ("2.0.1", "2.0.1a", L),
        ("5.5p1", "5.5p1", E),
        ("5.5p1", "5.5p2", L),
        ("5.5p2", "5.5p1", G),
        ("5.5p10", "5.5p10", E),
        ("5.5p1", "5.5p10", L),
        ("5.5p10", "5.5p1", G),
        ("10xyz", "10.1xyz", L),
        ("10.1xyz", "10xyz", G),
        ("xyz10", "xyz10", E),
        ("xyz10", "xyz10.1", L),
        ("xyz10.1", "xyz10", G),
        ("xyz.4", "xyz.4", E),
        ("xyz.4", "8", L),
        ("8", "xyz.4", G),
        ("xyz.4", "2", L),
        ("2", "xyz.4", G),
        ("5.5p2", "5.6p1", L),
        ("5.6p1", "5.5p2", G),
        ("5.6p1", "6.5p1", L),
        ("6.5p1", "5.6p1", G),
        ("6.0.rc1", "6.0", G),
        ("6.0", "6.0.rc1", L),
        ("10b2", "10a1", G),
        ("10a2", "10b2", L),
        ("1.0aa", "1.0aa", E),
        ("1.0a", "1.0aa", L),
        ("1.0aa", "1.0a", G),
        ("10.0001", "10.0001", E),
        ("10.0001", "10.1", E),
        ("10.1", "10.0001", E),
        ("10.0001", "10.0039", L),
        ("10.0039", "10.0001", G),
        ("4.999.9", "5.0", L),
        ("5.0", "4.999.9", G),
        ("20101121", "20101121", E),
        ("20101121", "20101122", L),
        ("20101122", "20101121", G),
        ("2_0", "2_0", E),
        ("2.0", "2_0", E),
        ("2_0", "2.0", E),
        ("a", "a", E),
        ("a+", "a+", E),
        ("a+", "a_", E),
        ("a_", "a+", E),
        ("+a", "+a", E),
        ("+a", "_a", E),
        ("_a", "+a", E),
        ("+_", "+_", E),
        ("_+", "+_", E),
        ("_+", "_+", E),
        ("+", "_", E),
        ("_", "+", E),
        ("1.0~rc1", "1.0~rc1", E),
        ("1.0~rc1", "1.0", L),
        ("1.0", "1.0~rc1", G),
        ("1.0~rc1", "1.0~rc2", L),
        ("1.0~rc2", "1.0~rc1", G),
        ("1.0~rc1~git123", "1.0~rc1~git123", E),
        ("1.0~rc1~git123", "1.0~rc1", L),
        ("1.0~rc1", "1.0~rc1~git123", G),
        ("1.0^", "1.0^", E),
        ("1.0^", "1.0", G),
        ("1.0", "1.0^", L),
        ("1.0^git1", "1.0^git1", E),
        ("1.0^git1", "1.0", G),
        ("1.0", "1.0^git1", L),
        ("1.0^git1", "1.0^git2", L),
        ("1.0^git2", "1.0^git1", G),
        ("1.0^git1", "1.01", L),
        ("1.01", "1.0^git1", G),
        ("1.0^20160101", "1.0^20160101", E),
        ("1.0^20160101", "1.0.1", L),
        ("1.0.1", "1.0^20160101", G),
        ("1.0^20160101^git1", "1.0^20160101^git1", E),
        ("1.0^20160102", "1.0^20160101^git1", G),
        ("1.0^20160101^git1", "1.0^20160102", L),
        ("1.0~rc1^git1", "1.0~rc1^git1", E),
        ("1.0~rc1^git1", "1.0~rc1", G),
        ("1.0~rc1", "1.0~rc1^git1", L),
        ("1.0^git1~pre", "1.0^git1~pre", E),
        ("1.0^git1", "1.0^git1~pre", G),
        ("1.0^git1~pre", "1.0^git1", L),
        ("1.0", "1.0.0", L),
        ("0.9", "0.10", L),
        ("1.a", "1.1", L),
        ("", "", E),
        ("", "0", L),
    ];

    #[test]
    fn rpmvercmp_table() {
        assert!(CASES.len() >= 60);
        for &(a, b, want) in CASES {
            assert_eq!(rpmvercmp(a, b), want, "rpmvercmp({a:?}, {b:?})");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "rpmvercmp({b:?}, {a:?})");
        }
    }

    #[test]
    fn evr_parse_and_compare() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1:1.0-1", "2.0-1", G),
            ("0:1.0-1", "1.0-1", E),
            ("1.0-1", "1.0-2", L),
            ("1.0", "1.0-2", E),
            ("2:0.1-1", "1:9.9-9", G),
            ("1.0-1.fc40", "1.0-1.fc39", G),
        ];
        for &(a, b, want) in cases {
            assert_eq!(Evr::parse(a).cmp_rpm(&Evr::parse(b)), want, "{a} vs {b}");
        }
        assert_eq!(Evr::parse("3:1.2-4").to_string(), "3:1.2-4");
        assert_eq!(Evr::parse("1.2").release, None);
    }

    #[test]
    fn range_overlap_table() {
        let s = |o: &str| Sense::parse(o).unwrap();
        let e = Evr::parse;
        // (provide op, provide evr, require op, require evr, overlaps)
        let cases: &[(&str, &str, &str, &str, bool)] = &[
            ("=", "1.0-1", ">=", "1.0", true),
            ("=", "1.0-1", ">", "1.0", false),
            ("=", "1.0-1", ">", "0.9", true),
            ("=", "1.0-1", "<", "1.0-2", true),
            ("=", "1.0-1", "<", "1.0", false),
            ("=", "1.0-1", "=", "1.0", true),
            ("=", "1.0-1", "=", "1.0-2", false),
            (">=", "2.0", "<", "3.0", true),
            (">=", "2.0", "<", "2.0", false),
            ("<=", "2.0", ">=", "2.0", true),
            ("=", "1:1.0-1", ">=", "2.0", true),
        ];
        for &(po, pe, ro, re, want) in cases {
            assert_eq!(
                ranges_overlap(s(po), &e(pe), s(ro), &e(re)),
                want,
                "{po} {pe} vs {ro} {re}"
            );
        }
        assert!(ranges_overlap(Sense::ANY, &Evr::default(), s("<"), &e("1")));
    }
}
