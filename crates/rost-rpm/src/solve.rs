//! Dependency resolution with `resolvo` (CDCL SAT).
//!
//! Mapping of rpm semantics onto resolvo:
//! - a resolvo *name* is a package name (one version per name, as dnf installs);
//!   capabilities nobody provides get a *virtual* name with no candidates, so an
//!   unsatisfiable request explains itself by the capability;
//! - a Requires on capability C is a union of version sets, one per package name
//!   providing C, each filtered to the packages that provide C in range
//!   (explicit provides, the implicit `name = EVR`, and file paths);
//! - Conflicts and Obsoletes are resolvo *constraints*: the conflicting name may
//!   only be chosen outside the conflicting range (obsoletes match names, as dnf's
//!   default `obsoletes` without `obsoleteusesprovides`); self-conflicts are ignored;
//! - rich deps: `and` splits, `or`/`unless` become unions, `if` becomes a
//!   conditional requirement, `with`/`without` become one-name filters;
//! - weak deps (Recommends, Supplements) are resolvo soft requirements, added
//!   until a fixpoint, so they are installed only when installable;
//! - candidates of a name are sorted best arch first (noarch ranks with the best),
//!   then newest EVR; per name only the best-priority repos count; equal NEVRAs
//!   from several repos keep the lowest cost.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::fmt::Display;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, LogicalOperator, NameId, Problem, Requirement, SolvableId, Solver,
    SolverCache, StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};

use crate::error::{Error, Result};
use crate::evr::{Sense, cmp_evr_parts, rpmvercmp};
use crate::header::Dependency;
use crate::poolcache::{IndexKind, RepoData};
use crate::repofile::glob_match;
use crate::repomd::RepoPackage;
use crate::richdep::{Rich, eval_rich, parse_rich};

/// A repository as the solver sees it.
#[derive(Debug, Clone)]
pub struct PoolRepo {
    /// Repo id.
    pub id: String,
    /// Lower wins.
    pub priority: i32,
    /// Lower wins among identical packages.
    pub cost: i32,
}

/// Options of a resolution.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// Install Recommends/Supplements when installable (dnf's `install_weak_deps`).
    pub weak_deps: bool,
    /// Package name globs never to consider.
    pub exclude: Vec<String>,
    /// The machine arch (`x86_64`).
    pub basearch: String,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            weak_deps: true,
            exclude: Vec::new(),
            basearch: "x86_64".into(),
        }
    }
}

/// Arch rank for a machine: lower is better; `None` = not installable.
pub fn arch_rank(basearch: &str, arch: &str) -> Option<u32> {
    if arch == "noarch" {
        return Some(0);
    }
    let list: &[&str] = match basearch {
        "x86_64" => &["x86_64", "athlon", "i686", "i586", "i486", "i386"],
        "i686" | "i386" => &["i686", "athlon", "i586", "i486", "i386"],
        "aarch64" => &["aarch64"],
        "ppc64le" => &["ppc64le"],
        "s390x" => &["s390x"],
        other => return (arch == other).then_some(0),
    };
    list.iter().position(|a| *a == arch).map(|p| p as u32)
}

/// Packages of a pool, by solvable id. Each is turned into a [`RepoPackage`]
/// on first access; the solver touches only a few of a large repository's.
pub struct Packages {
    sources: Vec<Source>,
    /// Solvable id → (source, package index in its data).
    ids: Vec<(u32, u32)>,
    cells: Vec<OnceLock<Box<RepoPackage>>>,
    /// File lists replacing primary's (after filelists were loaded).
    file_lists: FxHashMap<u32, Vec<String>>,
}

/// One repository's packages in a pool.
struct Source {
    repo: usize,
    data: RepoData,
    /// Package index in `data` → solvable id, or [`NONE`] when not in the pool.
    global: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Source {
    /// Solvable id of package `l` of this source, [`NONE`] when not in the pool.
    fn solvable(&self, l: u32) -> u32 {
        self.global.get(l as usize).copied().unwrap_or(NONE)
    }
}

impl std::fmt::Debug for Packages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packages")
            .field("len", &self.ids.len())
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl Packages {
    /// Number of packages.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Package `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&RepoPackage> {
        let cell = self.cells.get(i)?;
        Some(cell.get_or_init(|| Box::new(self.materialize(i))))
    }

    /// Every package, in solvable id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &RepoPackage> + '_ {
        (0..self.len()).map(|i| &self[i])
    }

    fn materialize(&self, i: usize) -> RepoPackage {
        let (s, l) = self.ids[i];
        let src = &self.sources[s as usize];
        let mut p = src.data.package(l as usize);
        p.repo = src.repo;
        if let Some(f) = self.file_lists.get(&(i as u32)) {
            p.files = f.clone();
        }
        p
    }

    /// The data and index of solvable `i`.
    fn at(&self, i: u32) -> (&RepoData, usize) {
        let (s, l) = self.ids[i as usize];
        (&self.sources[s as usize].data, l as usize)
    }
}

impl std::ops::Index<usize> for Packages {
    type Output = RepoPackage;

    fn index(&self, i: usize) -> &RepoPackage {
        self.cells[i].get_or_init(|| Box::new(self.materialize(i)))
    }
}

impl<'a> IntoIterator for &'a Packages {
    type Item = &'a RepoPackage;
    type IntoIter = Box<dyn ExactSizeIterator<Item = &'a RepoPackage> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// One repository's primary, to build a pool from.
#[derive(Debug)]
pub struct PoolSource {
    /// Index of the repository in the pool's repos.
    pub repo: usize,
    /// Its packages.
    pub data: RepoData,
}

/// Compatible packages of all repos, with indexes for lookups.
#[derive(Debug)]
pub struct Pool {
    /// Repositories.
    pub repos: Vec<PoolRepo>,
    /// Packages (solvable id = index).
    pub packages: Packages,
    /// File index replacing primary's, once filelists are loaded.
    files: Option<FxHashMap<String, Vec<u32>>>,
    basearch: String,
}

fn pkg_cmp_evr(a: &RepoPackage, b: &RepoPackage) -> Ordering {
    cmp_evr_parts(
        a.epoch,
        &a.version,
        Some(&a.release),
        b.epoch,
        &b.version,
        Some(&b.release),
    )
}

/// Splits `[E:]V[-R]` without allocating.
fn split_evr(s: &str) -> (u32, &str, Option<&str>) {
    let (e, rest) = match s.split_once(':') {
        Some((e, rest)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), rest),
        _ => (0, s),
    };
    match rest.rsplit_once('-') {
        Some((v, r)) => (e, v, Some(r)),
        None => (e, rest, None),
    }
}

/// rpmdsCompare on strings.
fn overlap(a_sense: Sense, a_evr: &str, b_sense: Sense, b_evr: &str) -> bool {
    if !a_sense.is_versioned() || !b_sense.is_versioned() {
        return true;
    }
    let (e1, v1, r1) = split_evr(a_evr);
    let (e2, v2, r2) = split_evr(b_evr);
    match cmp_evr_parts(e1, v1, r1, e2, v2, r2) {
        Ordering::Less => a_sense.greater || b_sense.less,
        Ordering::Greater => a_sense.less || b_sense.greater,
        Ordering::Equal => {
            (a_sense.equal && b_sense.equal)
                || (a_sense.less && b_sense.less)
                || (a_sense.greater && b_sense.greater)
        }
    }
}

fn pkg_evr_string(p: &RepoPackage) -> String {
    format!("{}:{}-{}", p.epoch, p.version, p.release)
}

/// Appends `i` to `map[key]`, allocating the key only when it is new.
fn push_index(map: &mut FxHashMap<String, Vec<u32>>, key: &str, i: u32) {
    match map.get_mut(key) {
        Some(v) => v.push(i),
        None => {
            map.insert(key.to_owned(), vec![i]);
        }
    }
}

impl Pool {
    /// Builds a pool from packages (each tagged with its repo's index): drops
    /// incompatible arches, source packages, excluded names; keeps only the
    /// best-priority repos per name and one copy per NEVRA.
    pub fn new(repos: Vec<PoolRepo>, packages: Vec<RepoPackage>, opts: &SolveOptions) -> Self {
        // One source per run of packages of one repo keeps the packages' order.
        let mut sources = Vec::new();
        let mut start = 0;
        for j in 1..=packages.len() {
            if j == packages.len() || packages[j].repo != packages[start].repo {
                sources.push(PoolSource {
                    repo: packages[start].repo,
                    data: RepoData::from_packages(&packages[start..j]),
                });
                start = j;
            }
        }
        Self::from_sources(repos, sources, opts, |_, _| true)
    }

    /// Builds a pool from repositories' data, like [`Pool::new`]; `admit(repo,
    /// name)` filters further (a repo's `exclude`/`includepkgs`).
    pub fn from_sources(
        repos: Vec<PoolRepo>,
        sources: Vec<PoolSource>,
        opts: &SolveOptions,
        admit: impl Fn(usize, &str) -> bool,
    ) -> Self {
        let prio_of = |repo: usize| repos.get(repo).map_or(99, |r| r.priority);
        let cost_of = |repo: usize| repos.get(repo).map_or(1000, |r| r.cost);
        // keep[s][l]: compatible, not excluded, admitted by its repo.
        let keep: Vec<Vec<bool>> = sources
            .iter()
            .map(|src| {
                let d = &src.data;
                // A repository has a handful of arches.
                let mut arch_ok: Vec<(u32, bool)> = Vec::new();
                (0..d.len())
                    .map(|l| {
                        let id = d.arch_id(l);
                        let ok = match arch_ok.iter().find(|(a, _)| *a == id) {
                            Some(&(_, ok)) => ok,
                            None => {
                                let a = d.arch(l);
                                let ok = a != "src"
                                    && a != "nosrc"
                                    && arch_rank(&opts.basearch, a).is_some();
                                arch_ok.push((id, ok));
                                ok
                            }
                        };
                        ok && {
                            let name = d.name(l);
                            !opts.exclude.iter().any(|g| glob_match(g, name))
                                && admit(src.repo, name)
                        }
                    })
                    .collect()
            })
            .collect();
        // Only the best-priority repos count for a name.
        let one_prio = sources
            .windows(2)
            .all(|w| prio_of(w[0].repo) == prio_of(w[1].repo));
        let mut best_prio: FxHashMap<&str, i32> = FxHashMap::default();
        if !one_prio {
            for (s, src) in sources.iter().enumerate() {
                let prio = prio_of(src.repo);
                for l in (0..src.data.len()).filter(|&l| keep[s][l]) {
                    let e = best_prio.entry(src.data.name(l)).or_insert(prio);
                    *e = (*e).min(prio);
                }
            }
        }
        // One copy per NEVRA: the first, unless a later one's repo costs less.
        let mut chosen: Vec<(u32, u32)> = Vec::new();
        {
            let consider = |s: usize,
                            l: usize,
                            slot: Option<usize>,
                            chosen: &mut Vec<(u32, u32)>| {
                match slot {
                    Some(slot) => {
                        let (ps, _) = chosen[slot];
                        if cost_of(sources[s].repo) < cost_of(sources[ps as usize].repo) {
                            chosen[slot] = (s as u32, l as u32);
                        }
                    }
                    None => chosen.push((s as u32, l as u32)),
                }
            };
            let admitted = |s: usize, l: usize| {
                keep[s][l]
                    && (one_prio
                        || best_prio.get(sources[s].data.name(l))
                            == Some(&prio_of(sources[s].repo)))
            };
            if sources.len() == 1 {
                // Equal NEVRAs share a name: compare within the name index's
                // groups (almost all of one package) instead of hashing.
                let d = &sources[0].data;
                let mut dup = vec![false; d.len()];
                let mut group: Vec<usize> = Vec::new();
                for g in d.groups(IndexKind::Names) {
                    group.clear();
                    group.extend(g.map(|l| l as usize).filter(|&l| l < d.len()));
                    for j in 1..group.len() {
                        let id = d.nevra_ids(group[j]);
                        if group[..j].iter().any(|&k| !dup[k] && d.nevra_ids(k) == id) {
                            dup[group[j]] = true;
                        }
                    }
                }
                // All copies of a NEVRA are admitted alike (same name and arch).
                for l in (0..d.len()).filter(|&l| !dup[l] && admitted(0, l)) {
                    consider(0, l, None, &mut chosen);
                }
            } else {
                let mut seen: FxHashMap<(&str, u32, &str, &str, &str), usize> =
                    FxHashMap::default();
                for (s, src) in sources.iter().enumerate() {
                    let d = &src.data;
                    for l in (0..d.len()).filter(|&l| admitted(s, l)) {
                        let key = (d.name(l), d.epoch(l), d.version(l), d.release(l), d.arch(l));
                        let next = chosen.len();
                        let slot = match seen.entry(key) {
                            std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                            std::collections::hash_map::Entry::Vacant(e) => {
                                e.insert(next);
                                None
                            }
                        };
                        consider(s, l, slot, &mut chosen);
                    }
                }
            }
        }
        drop(best_prio);
        drop(keep);
        // Solvable ids in source order, as the packages came.
        chosen.sort_unstable();
        let mut sources: Vec<Source> = sources
            .into_iter()
            .map(|s| Source {
                repo: s.repo,
                global: vec![NONE; s.data.len()],
                data: s.data,
            })
            .collect();
        for (g, &(s, l)) in chosen.iter().enumerate() {
            sources[s as usize].global[l as usize] = g as u32;
        }
        let n = chosen.len();
        Pool {
            repos,
            packages: Packages {
                sources,
                ids: chosen,
                cells: (0..n).map(|_| OnceLock::new()).collect(),
                file_lists: FxHashMap::default(),
            },
            files: None,
            basearch: opts.basearch.clone(),
        }
    }

    /// Solvable ids under `key` in one index of every source, ascending.
    fn lookup(&self, index: IndexKind, key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for src in &self.packages.sources {
            out.extend(
                src.data
                    .lookup(index, key)
                    .map(|l| src.solvable(l))
                    .filter(|&g| g != NONE),
            );
        }
        out
    }

    /// Packages named `name`, best first: best arch (noarch ranks with the
    /// best), then newest EVR.
    pub fn by_name(&self, name: &str) -> Vec<u32> {
        let mut v = self.lookup(IndexKind::Names, name);
        let key = |i: u32| {
            let (d, l) = self.packages.at(i);
            (
                arch_rank(&self.basearch, d.arch(l)).unwrap_or(u32::MAX),
                d.epoch(l),
                d.version(l),
                d.release(l),
            )
        };
        v.sort_by(|&a, &b| {
            let (ra, ea, va, rela) = key(a);
            let (rb, eb, vb, relb) = key(b);
            ra.cmp(&rb)
                .then_with(|| cmp_evr_parts(eb, vb, Some(relb), ea, va, Some(rela)))
        });
        v
    }

    /// Whether some package is named `name`.
    pub fn has_name(&self, name: &str) -> bool {
        self.packages.sources.iter().any(|src| {
            src.data
                .lookup(IndexKind::Names, name)
                .any(|l| src.solvable(l) != NONE)
        })
    }

    /// Name of package `i`, without materializing it.
    fn name_of(&self, i: u32) -> &str {
        let (d, l) = self.packages.at(i);
        d.name(l)
    }

    /// Packages whose file lists hold `path`.
    fn file_owners(&self, path: &str) -> Vec<u32> {
        match &self.files {
            Some(f) => f.get(path).cloned().unwrap_or_default(),
            None => self.lookup(IndexKind::Files, path),
        }
    }

    /// Packages with Supplements, ascending.
    fn supplementers(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for src in &self.packages.sources {
            out.extend(
                src.data
                    .supplementers()
                    .map(|l| src.solvable(l))
                    .filter(|&g| g != NONE),
            );
        }
        out
    }

    /// Packages obsoleting the name `name`.
    fn obsoleters(&self, name: &str) -> Vec<u32> {
        self.lookup(IndexKind::Obsoletes, name)
    }

    /// Replaces the file lists (e.g. after loading filelists) and reindexes files.
    pub fn set_files(&mut self, f: impl Fn(&RepoPackage) -> Option<Vec<String>>) {
        let lists: Vec<(u32, Vec<String>)> = (0..self.packages.len())
            .filter_map(|i| f(&self.packages[i]).map(|l| (i as u32, l)))
            .collect();
        self.install_file_lists(lists);
    }

    /// Replaces the file lists of the packages for which `f(repo, checksum)`
    /// gives one, without materializing the others.
    pub fn set_files_by_checksum(&mut self, f: impl Fn(usize, &str) -> Option<Vec<String>>) {
        let lists: Vec<(u32, Vec<String>)> = (0..self.packages.len() as u32)
            .filter_map(|i| {
                let (s, l) = self.packages.ids[i as usize];
                let src = &self.packages.sources[s as usize];
                f(src.repo, src.data.checksum(l as usize)).map(|v| (i, v))
            })
            .collect();
        self.install_file_lists(lists);
    }

    fn install_file_lists(&mut self, lists: Vec<(u32, Vec<String>)>) {
        self.packages.file_lists = lists.into_iter().collect();
        // Packages already turned into RepoPackages carry the old lists.
        for c in &mut self.packages.cells {
            c.take();
        }
        let mut files: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        for i in 0..self.packages.len() as u32 {
            match self.packages.file_lists.get(&i) {
                Some(list) => list.iter().for_each(|f| push_index(&mut files, f, i)),
                None => {
                    let (d, l) = self.packages.at(i);
                    d.files(l).for_each(|f| push_index(&mut files, f, i));
                }
            }
        }
        self.files = Some(files);
    }

    /// Whether a file path is provided by some package's known files or provides.
    pub fn knows_file(&self, path: &str) -> bool {
        !self.file_owners(path).is_empty() || !self.lookup(IndexKind::Provides, path).is_empty()
    }

    /// All file-path capabilities required anywhere (to decide whether filelists are needed).
    pub fn required_files(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for src in &self.packages.sources {
            for (path, mut pkgs) in src.data.entries(IndexKind::RequiredFiles) {
                if pkgs.any(|l| src.solvable(l) != NONE) {
                    out.insert(path.to_owned());
                }
            }
        }
        out
    }

    /// Whether package `i` provides capability `name` in range.
    pub fn provides_cap(&self, i: u32, name: &str, sense: Sense, evr: &str) -> bool {
        let p = &self.packages[i as usize];
        if name.starts_with('/') && p.files.iter().any(|f| f == name) {
            return true;
        }
        if p.name == name && overlap(Sense::EQ, &pkg_evr_string(p), sense, evr) {
            return true;
        }
        p.provides
            .iter()
            .any(|d| d.name == name && overlap(d.sense, &d.evr, sense, evr))
    }

    /// Packages providing capability `name` in range.
    pub fn providers(&self, name: &str, sense: Sense, evr: &str) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        let by_prov = self.lookup(IndexKind::Provides, name);
        let by_file = if name.starts_with('/') {
            self.file_owners(name)
        } else {
            Vec::new()
        };
        for &i in by_prov.iter().chain(&by_file) {
            if !out.contains(&i) && self.provides_cap(i, name, sense, evr) {
                out.push(i);
            }
        }
        out
    }

    fn rank(&self, i: u32) -> u32 {
        let (d, l) = self.packages.at(i);
        arch_rank(&self.basearch, d.arch(l)).unwrap_or(u32::MAX)
    }
}
/// What a version set selects among a name's packages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Filter {
    Any,
    /// Provides all of these (cap ids), none of `not`.
    Caps(Vec<u32>, Vec<u32>),
    /// The complement of `Caps` (for conflicts).
    NotCaps(Vec<u32>),
    /// Package's own name+EVR is NOT in the range (for obsoletes).
    NotSelf(u32),
    /// Matches a NEVRA-ish spec.
    Nevra {
        epoch: Option<u32>,
        version: Option<String>,
        release: Option<String>,
        arch: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Cap {
    name: String,
    sense: Sense,
    evr: String,
}

impl Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if self.sense.is_versioned() {
            write!(f, " {} {}", self.sense.as_str(), self.evr)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Interned {
    names: Vec<String>,
    name_ids: FxHashMap<String, u32>,
    /// Per name id: whether packages have that name (else a virtual capability).
    real: Vec<bool>,
    caps: Vec<Cap>,
    cap_ids: FxHashMap<Cap, u32>,
    vsets: Vec<(u32, Filter)>,
    vset_ids: FxHashMap<(u32, Filter), u32>,
    unions: Vec<Vec<VersionSetId>>,
    conditions: Vec<Condition>,
    strings: Vec<String>,
    deps_cache: FxHashMap<u32, KnownDependencies>,
}

/// Names are interned as the solver meets them, not up front: a large
/// repository's pool is never walked whole.
struct Provider<'p> {
    pool: &'p Pool,
    /// Solvable → name id, [`NONE`] until first asked.
    name_of_pkg: RefCell<Vec<u32>>,
    it: RefCell<Interned>,
}

impl<'p> Provider<'p> {
    fn new(pool: &'p Pool) -> Self {
        Provider {
            pool,
            name_of_pkg: RefCell::new(vec![NONE; pool.packages.len()]),
            it: RefCell::new(Interned::default()),
        }
    }

    fn name_id(&self, name: &str) -> u32 {
        if let Some(&id) = self.it.borrow().name_ids.get(name) {
            return id;
        }
        let real = self.pool.has_name(name);
        let mut it = self.it.borrow_mut();
        let id = it.names.len() as u32;
        it.names.push(name.to_owned());
        it.name_ids.insert(name.to_owned(), id);
        it.real.push(real);
        id
    }

    /// Name id of solvable `i`.
    fn pkg_name(&self, i: u32) -> u32 {
        let known = self.name_of_pkg.borrow()[i as usize];
        if known != NONE {
            return known;
        }
        let id = self.name_id(self.pool.name_of(i));
        self.name_of_pkg.borrow_mut()[i as usize] = id;
        id
    }

    /// Sorts name ids by their strings (libsolv's order among names).
    fn sort_names(&self, names: &mut [u32]) {
        let it = self.it.borrow();
        names.sort_by(|&a, &b| it.names[a as usize].cmp(&it.names[b as usize]));
    }

    fn cap_id(&self, name: &str, sense: Sense, evr: &str) -> u32 {
        let cap = Cap {
            name: name.to_owned(),
            sense,
            evr: if sense.is_versioned() {
                evr.to_owned()
            } else {
                String::new()
            },
        };
        let mut it = self.it.borrow_mut();
        if let Some(&id) = it.cap_ids.get(&cap) {
            return id;
        }
        let id = it.caps.len() as u32;
        it.caps.push(cap.clone());
        it.cap_ids.insert(cap, id);
        id
    }

    fn vset(&self, name: u32, filter: Filter) -> VersionSetId {
        let mut it = self.it.borrow_mut();
        let key = (name, filter);
        if let Some(&id) = it.vset_ids.get(&key) {
            return VersionSetId(id);
        }
        let id = it.vsets.len() as u32;
        it.vsets.push(key.clone());
        it.vset_ids.insert(key, id);
        VersionSetId(id)
    }

    fn union(&self, sets: Vec<VersionSetId>) -> Requirement {
        if sets.len() == 1 {
            return Requirement::Single(sets[0]);
        }
        let mut it = self.it.borrow_mut();
        let id = it.unions.len() as u32;
        it.unions.push(sets);
        Requirement::Union(VersionSetUnionId(id))
    }

    fn condition(&self, c: Condition) -> ConditionId {
        let mut it = self.it.borrow_mut();
        it.conditions.push(c);
        ConditionId::new(it.conditions.len() as u32)
    }

    /// Version sets satisfying an atom: one per providing name, or a virtual
    /// name with no candidates when nothing provides it.
    fn atom_sets(
        &self,
        name: &str,
        sense: Sense,
        evr: &str,
        with_virtual: bool,
    ) -> Vec<VersionSetId> {
        let cap = self.cap_id(name, sense, evr);
        let provs = self.pool.providers(name, sense, evr);
        let mut names: Vec<u32> = Vec::new();
        for &p in &provs {
            let n = self.pkg_name(p);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        // libsolv's choice among providers of different names (policy.c,
        // prune_to_best_version): plain strcmp order of the names.
        self.sort_names(&mut names);
        if names.is_empty() {
            if !with_virtual {
                return Vec::new();
            }
            let label = self.it.borrow().caps[cap as usize].to_string();
            let v = self.name_id(&label);
            return vec![self.vset(v, Filter::Any)];
        }
        names
            .into_iter()
            .map(|n| self.vset(n, Filter::Caps(vec![cap], vec![])))
            .collect()
    }

    /// Version sets for an `or`-able rich operand.
    fn rich_sets(&self, r: &Rich) -> Vec<VersionSetId> {
        match r {
            Rich::Atom { name, sense, evr } => self.atom_sets(name, *sense, evr, false),
            Rich::Or(v) => {
                // libsolv turns `(A or B)` into one rule over the providers of A
                // and of B, and picks among them by name, not by operand order.
                let mut sets: Vec<VersionSetId> =
                    v.iter().flat_map(|x| self.rich_sets(x)).collect();
                let it = self.it.borrow();
                let name = |s: &VersionSetId| &it.names[it.vsets[s.0 as usize].0 as usize];
                sets.sort_by(|a, b| name(a).cmp(name(b)));
                sets.dedup();
                sets
            }
            Rich::With(v) | Rich::And(v) if matches!(r, Rich::With(_)) => {
                let caps: Vec<u32> = v.iter().filter_map(|x| self.atom_cap(x)).collect();
                self.filtered_sets(v.first(), caps, vec![])
            }
            Rich::Without(a, b) => {
                let caps: Vec<u32> = self.atom_cap(a).into_iter().collect();
                let not: Vec<u32> = self.atom_cap(b).into_iter().collect();
                self.filtered_sets(Some(a), caps, not)
            }
            Rich::And(v) => v.first().map(|x| self.rich_sets(x)).unwrap_or_default(),
            Rich::If(a, _, _) | Rich::Unless(a, _, _) => self.rich_sets(a),
            Rich::With(_) => Vec::new(),
        }
    }

    fn atom_cap(&self, r: &Rich) -> Option<u32> {
        match r {
            Rich::Atom { name, sense, evr } => Some(self.cap_id(name, *sense, evr)),
            _ => None,
        }
    }

    fn filtered_sets(
        &self,
        first: Option<&Rich>,
        caps: Vec<u32>,
        not: Vec<u32>,
    ) -> Vec<VersionSetId> {
        let Some(Rich::Atom { name, sense, evr }) = first else {
            return Vec::new();
        };
        let mut names: Vec<u32> = self
            .pool
            .providers(name, *sense, evr)
            .into_iter()
            .map(|p| self.pkg_name(p))
            .collect();
        names.sort_unstable();
        names.dedup();
        self.sort_names(&mut names);
        names
            .into_iter()
            .map(|n| self.vset(n, Filter::Caps(caps.clone(), not.clone())))
            .collect()
    }

    fn cond_of(&self, r: &Rich) -> Option<ConditionId> {
        let sets = self.rich_sets(r);
        let mut it = sets.into_iter();
        let first = self.condition(Condition::Requirement(it.next()?));
        Some(it.fold(first, |acc, vs| {
            let c = self.condition(Condition::Requirement(vs));
            self.condition(Condition::Binary(LogicalOperator::Or, acc, c))
        }))
    }

    fn rich_requirements(&self, r: &Rich, out: &mut Vec<ConditionalRequirement>) {
        match r {
            Rich::Atom { name, sense, evr } => {
                let sets = self.atom_sets(name, *sense, evr, true);
                out.push(self.union(sets).into());
            }
            Rich::And(v) => v.iter().for_each(|x| self.rich_requirements(x, out)),
            Rich::If(a, c, e) => {
                let mut inner = Vec::new();
                self.rich_requirements(a, &mut inner);
                if let Some(cond) = self.cond_of(c) {
                    for req in inner {
                        out.push(req.requirement.with_condition(cond));
                    }
                }
                if let Some(e) = e {
                    let mut sets = self.rich_sets(e);
                    sets.extend(self.rich_sets(c));
                    if !sets.is_empty() {
                        out.push(self.union(sets).into());
                    }
                }
            }
            Rich::Unless(a, c, e) => {
                let mut sets = self.rich_sets(a);
                sets.extend(self.rich_sets(c));
                if sets.is_empty() {
                    self.rich_requirements(a, out);
                } else {
                    out.push(self.union(sets).into());
                }
                if let (Some(e), Some(cond)) = (e, self.cond_of(c)) {
                    let mut inner = Vec::new();
                    self.rich_requirements(e, &mut inner);
                    for req in inner {
                        out.push(req.requirement.with_condition(cond));
                    }
                }
            }
            Rich::Or(_) | Rich::With(_) | Rich::Without(_, _) => {
                let sets = self.rich_sets(r);
                if sets.is_empty() {
                    let label = format!("{r:?}");
                    let v = self.name_id(&label);
                    out.push(Requirement::Single(self.vset(v, Filter::Any)).into());
                } else {
                    out.push(self.union(sets).into());
                }
            }
        }
    }

    fn dep_requirements(&self, d: &Dependency, out: &mut Vec<ConditionalRequirement>) {
        if d.is_rpmlib() {
            return;
        }
        if d.is_rich() {
            match parse_rich(&d.name) {
                Ok(r) => self.rich_requirements(&r, out),
                Err(e) => tracing::debug!("ignoring unparsable rich dependency {}: {e}", d.name),
            }
            return;
        }
        let sets = self.atom_sets(&d.name, d.sense, &d.evr, true);
        out.push(self.union(sets).into());
    }

    fn matches(&self, i: u32, filter: &Filter) -> bool {
        let p = &self.pool.packages[i as usize];
        let it = self.it.borrow();
        let has = |c: &u32| {
            let cap = &it.caps[*c as usize];
            self.pool.provides_cap(i, &cap.name, cap.sense, &cap.evr)
        };
        match filter {
            Filter::Any => true,
            Filter::Caps(yes, no) => yes.iter().all(has) && !no.iter().any(has),
            Filter::NotCaps(caps) => !caps.iter().any(has),
            Filter::NotSelf(c) => {
                let cap = &it.caps[*c as usize];
                !(p.name == cap.name && overlap(Sense::EQ, &pkg_evr_string(p), cap.sense, &cap.evr))
            }
            Filter::Nevra {
                epoch,
                version,
                release,
                arch,
            } => {
                epoch.is_none_or(|e| e == p.epoch)
                    && version.as_ref().is_none_or(|v| *v == p.version)
                    && release.as_ref().is_none_or(|r| *r == p.release)
                    && arch.as_ref().is_none_or(|a| *a == p.arch)
            }
        }
    }

    fn compute_deps(&self, i: u32) -> KnownDependencies {
        let p = &self.pool.packages[i as usize];
        let mut deps = KnownDependencies::default();
        for d in &p.requires {
            // A package satisfies its own requirement.
            if !d.is_rich() && self.pool.provides_cap(i, &d.name, d.sense, &d.evr) {
                continue;
            }
            self.dep_requirements(d, &mut deps.requirements);
        }
        let own = self.pkg_name(i);
        for d in &p.conflicts {
            let atoms: Vec<(String, Sense, String)> = if d.is_rich() {
                match parse_rich(&d.name) {
                    Ok(Rich::Or(v)) | Ok(Rich::And(v)) => v
                        .into_iter()
                        .filter_map(|x| match x {
                            Rich::Atom { name, sense, evr } => Some((name, sense, evr)),
                            _ => None,
                        })
                        .collect(),
                    Ok(Rich::Atom { name, sense, evr }) => vec![(name, sense, evr)],
                    _ => {
                        tracing::debug!("ignoring complex rich conflict {}", d.name);
                        Vec::new()
                    }
                }
            } else {
                vec![(d.name.clone(), d.sense, d.evr.clone())]
            };
            for (name, sense, evr) in atoms {
                let cap = self.cap_id(&name, sense, &evr);
                let mut names: Vec<u32> = self
                    .pool
                    .providers(&name, sense, &evr)
                    .into_iter()
                    .map(|q| self.pkg_name(q))
                    .filter(|&n| n != own)
                    .collect();
                names.sort_unstable();
                names.dedup();
                self.sort_names(&mut names);
                for n in names {
                    deps.constrains
                        .push(self.vset(n, Filter::NotCaps(vec![cap])));
                }
            }
        }
        for d in &p.obsoletes {
            if d.name == p.name || d.is_rich() {
                continue;
            }
            // Only names of packages in the pool can be obsoleted.
            if !self.pool.has_name(&d.name) {
                continue;
            }
            let n = self.name_id(&d.name);
            let cap = self.cap_id(&d.name, d.sense, &d.evr);
            deps.constrains.push(self.vset(n, Filter::NotSelf(cap)));
        }
        deps
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl Display + '_ {
        self.pool.packages[solvable.into_raw() as usize].nevra()
    }

    fn display_merged_solvables(&self, solvables: &[SolvableId]) -> impl Display + '_ {
        solvables
            .iter()
            .map(|s| self.pool.packages[s.into_raw() as usize].nevra())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn display_name(&self, name: NameId) -> impl Display + '_ {
        self.it.borrow().names[name.into_raw() as usize].clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl Display + '_ {
        let it = self.it.borrow();
        let (_, f) = &it.vsets[version_set.0 as usize];
        match f {
            Filter::Any => "(any version)".to_owned(),
            Filter::Caps(c, n) => {
                let mut s = format!(
                    "providing {}",
                    c.iter()
                        .map(|c| it.caps[*c as usize].to_string())
                        .collect::<Vec<_>>()
                        .join(" with ")
                );
                for c in n {
                    s += &format!(" without {}", it.caps[*c as usize]);
                }
                s
            }
            Filter::NotCaps(c) => format!(
                "not providing {} (conflict)",
                c.iter()
                    .map(|c| it.caps[*c as usize].to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Filter::NotSelf(c) => format!("not {} (obsoleted)", it.caps[*c as usize]),
            Filter::Nevra {
                epoch,
                version,
                release,
                arch,
            } => format!(
                "{}{}{}{}",
                epoch.map(|e| format!("{e}:")).unwrap_or_default(),
                version.clone().unwrap_or_default(),
                release
                    .as_ref()
                    .map(|r| format!("-{r}"))
                    .unwrap_or_default(),
                arch.as_ref().map(|a| format!(".{a}")).unwrap_or_default()
            ),
        }
    }

    fn display_string(&self, string_id: StringId) -> impl Display + '_ {
        self.it.borrow().strings[string_id.0 as usize].clone()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        NameId::from_raw(self.it.borrow().vsets[version_set.0 as usize].0)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        NameId::from_raw(self.pkg_name(solvable.into_raw()))
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.it.borrow().unions[version_set_union.0 as usize]
            .clone()
            .into_iter()
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.it.borrow().conditions[condition.as_u32() as usize - 1].clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let filter = self.it.borrow().vsets[version_set.0 as usize].1.clone();
        candidates
            .iter()
            .copied()
            .filter(|s| self.matches(s.into_raw(), &filter) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let n = name.into_raw() as usize;
        let (real, pname) = {
            let it = self.it.borrow();
            (it.real[n], it.names[n].clone())
        };
        if !real {
            return Some(Candidates::default());
        }
        let list = self.pool.by_name(&pname);
        Some(Candidates {
            candidates: list.iter().map(|&i| SolvableId::from_raw(i)).collect(),
            ..Default::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        let pkgs = &self.pool.packages;
        solvables.sort_by(|a, b| {
            let (ia, ib) = (a.into_raw(), b.into_raw());
            self.pool.rank(ia).cmp(&self.pool.rank(ib)).then_with(|| {
                let ((da, la), (db, lb)) = (pkgs.at(ia), pkgs.at(ib));
                cmp_evr_parts(
                    db.epoch(lb),
                    db.version(lb),
                    Some(db.release(lb)),
                    da.epoch(la),
                    da.version(la),
                    Some(da.release(la)),
                )
            })
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let i = solvable.into_raw();
        if let Some(d) = self.it.borrow().deps_cache.get(&i) {
            return Dependencies::Known(d.clone());
        }
        let d = self.compute_deps(i);
        self.it.borrow_mut().deps_cache.insert(i, d.clone());
        Dependencies::Known(d)
    }
}

/// Parses a user spec into a requirement. Accepts names, `name.arch`, NEVRAs
/// (`n-v-r.a`, `n-v-r`, `n-v`, with `e:`), `'name >= ver'`, provides and file paths.
fn spec_requirement(prov: &Provider<'_>, spec: &str) -> Result<Requirement> {
    let pool = prov.pool;
    let spec = spec.trim();
    let no_match = || Error::NotFound(format!("no match for argument: {spec}"));
    let words: Vec<&str> = spec.split_whitespace().collect();
    if words.len() == 3
        && let Some(sense) = Sense::parse(words[1])
    {
        let sets = prov.atom_sets(words[0], sense, words[2], false);
        return if sets.is_empty() {
            Err(no_match())
        } else {
            Ok(prov.union(sets))
        };
    }
    if spec.starts_with('/') {
        let sets = prov.atom_sets(spec, Sense::ANY, "", false);
        return if sets.is_empty() {
            Err(no_match())
        } else {
            Ok(prov.union(sets))
        };
    }
    let named = |name: &str, filter: Filter| -> Option<Requirement> {
        let list = pool.by_name(name);
        if list.is_empty() {
            return None;
        }
        let n = prov.name_id(name);
        let ok = list.iter().any(|&i| prov.matches(i, &filter));
        ok.then(|| {
            // dnf installs the obsoleter instead of an obsoleted requested package.
            if let Filter::Any = filter
                && let Some(&best) = list.first()
                && let Some(obs) = obsoleter_of(pool, best)
            {
                let on = prov.pkg_name(obs);
                return Requirement::Single(prov.vset(on, Filter::Any));
            }
            Requirement::Single(prov.vset(n, filter))
        })
    };
    if let Some(r) = named(spec, Filter::Any) {
        return Ok(r);
    }
    if let Some((n, a)) = spec.rsplit_once('.')
        && let Some(r) = named(
            n,
            Filter::Nevra {
                epoch: None,
                version: None,
                release: None,
                arch: Some(a.to_owned()),
            },
        )
    {
        return Ok(r);
    }
    // NEVRA forms: n-[e:]v-r[.a], n-[e:]v
    let try_nevr = |s: &str, arch: Option<&str>| -> Option<Requirement> {
        let (rest, rel) = s.rsplit_once('-')?;
        // n-v-r
        if let Some((n, v)) = rest.rsplit_once('-') {
            let (e, v) = match v.split_once(':') {
                Some((e, v)) => (e.parse().ok(), v),
                None => (None, v),
            };
            if let Some(r) = named(
                n,
                Filter::Nevra {
                    epoch: e,
                    version: Some(v.to_owned()),
                    release: Some(rel.to_owned()),
                    arch: arch.map(str::to_owned),
                },
            ) {
                return Some(r);
            }
        }
        // n-v
        let (e, v) = match rel.split_once(':') {
            Some((e, v)) => (e.parse().ok(), v),
            None => (None, rel),
        };
        named(
            rest,
            Filter::Nevra {
                epoch: e,
                version: Some(v.to_owned()),
                release: None,
                arch: arch.map(str::to_owned),
            },
        )
    };
    if let Some(r) = try_nevr(spec, None) {
        return Ok(r);
    }
    if let Some((s, a)) = spec.rsplit_once('.')
        && let Some(r) = try_nevr(s, Some(a))
    {
        return Ok(r);
    }
    let sets = prov.atom_sets(spec, Sense::ANY, "", false);
    if sets.is_empty() {
        return Err(no_match());
    }
    Ok(prov.union(sets))
}

/// The newest package obsoleting package `i` by name, if any.
fn obsoleter_of(pool: &Pool, i: u32) -> Option<u32> {
    let p = &pool.packages[i as usize];
    let evr = pkg_evr_string(p);
    let mut best: Option<u32> = None;
    for j in pool.obsoleters(&p.name) {
        let q = &pool.packages[j as usize];
        if q.name == p.name {
            continue;
        }
        if q.obsoletes
            .iter()
            .any(|d| d.name == p.name && overlap(Sense::EQ, &evr, d.sense, &d.evr))
        {
            let better = best.is_none_or(|b| pkg_cmp_evr(q, &pool.packages[b as usize]).is_gt());
            if better {
                best = Some(j);
            }
        }
    }
    best
}

/// Resolves `specs` against the pool. Returns package indexes, sorted by NEVRA.
pub fn resolve(pool: &Pool, specs: &[String], opts: &SolveOptions) -> Result<Vec<u32>> {
    let t = std::time::Instant::now();
    let prov = Provider::new(pool);
    let mut reqs: Vec<ConditionalRequirement> = Vec::new();
    for s in specs {
        reqs.push(spec_requirement(&prov, s)?.into());
    }
    let mut solver = Solver::new(prov);
    let mut soft: Vec<SolvableId> = Vec::new();
    let mut solution;
    let mut rounds = 0;
    loop {
        let problem = Problem::new()
            .requirements(reqs.clone())
            .soft_requirements(soft.clone());
        solution = match solver.solve(problem) {
            Ok(s) => s,
            Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
                let text = conflict.display_user_friendly(&solver).to_string();
                return Err(Error::Unsolvable(text));
            }
            Err(UnsolvableOrCancelled::Cancelled(_)) => {
                return Err(Error::Unsolvable("cancelled".into()));
            }
        };
        rounds += 1;
        if !opts.weak_deps || rounds > 20 {
            break;
        }
        let chosen: HashSet<u32> = solution.iter().map(|s| s.into_raw()).collect();
        let more = weak_candidates(pool, &chosen, &soft);
        if more.is_empty() {
            break;
        }
        soft.extend(more.into_iter().map(SolvableId::from_raw));
    }
    tracing::debug!("solved in {:?} ({rounds} rounds)", t.elapsed());
    let mut out: Vec<u32> = solution.into_iter().map(|s| s.into_raw()).collect();
    out.sort_by_key(|&i| pool.packages[i as usize].nevra());
    out.dedup();
    Ok(out)
}

/// Recommends not yet satisfied and Supplements now triggered, as best candidates.
fn weak_candidates(pool: &Pool, chosen: &HashSet<u32>, tried: &[SolvableId]) -> Vec<u32> {
    let tried: HashSet<u32> = tried.iter().map(|s| s.into_raw()).collect();
    let satisfied = |name: &str, sense: Sense, evr: &str| {
        pool.providers(name, sense, evr)
            .iter()
            .any(|p| chosen.contains(p))
    };
    let one_pkg = |yes: &[&Rich], no: &[&Rich]| {
        chosen.iter().any(|&p| {
            let has = |r: &&Rich| match r {
                Rich::Atom { name, sense, evr } => pool.provides_cap(p, name, *sense, evr),
                _ => false,
            };
            yes.iter().all(has) && !no.iter().any(has)
        })
    };
    let eval = |d: &Dependency| -> bool {
        if d.is_rich() {
            parse_rich(&d.name)
                .map(|r| eval_rich(&r, &satisfied, &one_pkg))
                .unwrap_or(true)
        } else {
            satisfied(&d.name, d.sense, &d.evr)
        }
    };
    let best_provider = |name: &str, sense: Sense, evr: &str| -> Option<u32> {
        let provs = pool.providers(name, sense, evr);
        let mut names: Vec<&str> = provs
            .iter()
            .map(|&p| pool.packages[p as usize].name.as_str())
            .collect();
        names.sort_by_key(|n| (*n != name, n.len(), *n));
        let n = names.first()?;
        pool.by_name(n).into_iter().find(|&i| provs.contains(&i))
    };
    let mut out: Vec<u32> = Vec::new();
    let add = |i: u32, out: &mut Vec<u32>| {
        if !chosen.contains(&i) && !tried.contains(&i) && !out.contains(&i) {
            out.push(i);
        }
    };
    let mut chosen_sorted: Vec<u32> = chosen.iter().copied().collect();
    chosen_sorted.sort_unstable();
    for &c in &chosen_sorted {
        for d in &pool.packages[c as usize].recommends {
            if eval(d) {
                continue;
            }
            if d.is_rich() {
                if let Ok(r) = parse_rich(&d.name) {
                    for (n, s, e) in positive_atoms(&r, &satisfied) {
                        if let Some(i) = best_provider(&n, s, &e) {
                            add(i, &mut out);
                        }
                    }
                }
            } else if let Some(i) = best_provider(&d.name, d.sense, &d.evr) {
                add(i, &mut out);
            }
        }
    }
    let chosen_names: HashSet<&str> = chosen
        .iter()
        .map(|&i| pool.packages[i as usize].name.as_str())
        .collect();
    // Only names with a package carrying Supplements can be triggered.
    let mut names: Vec<&str> = pool
        .supplementers()
        .into_iter()
        .map(|i| pool.name_of(i))
        .collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        if chosen_names.contains(n) {
            continue;
        }
        let Some(best) = pool.by_name(n).first().copied() else {
            continue;
        };
        if pool.packages[best as usize].supplements.iter().any(eval) {
            add(best, &mut out);
        }
    }
    out
}

/// The atoms a weak rich dependency asks to install, given what is installed.
fn positive_atoms(
    r: &Rich,
    sat: &dyn Fn(&str, Sense, &str) -> bool,
) -> Vec<(String, Sense, String)> {
    let none = |_: &[&Rich], _: &[&Rich]| false;
    match r {
        Rich::Atom { name, sense, evr } => vec![(name.clone(), *sense, evr.clone())],
        Rich::And(v) | Rich::With(v) => v.iter().flat_map(|x| positive_atoms(x, sat)).collect(),
        Rich::Or(v) => v
            .first()
            .map(|x| positive_atoms(x, sat))
            .unwrap_or_default(),
        Rich::If(a, c, e) => {
            if eval_rich(c, sat, &none) {
                positive_atoms(a, sat)
            } else {
                e.as_ref()
                    .map(|e| positive_atoms(e, sat))
                    .unwrap_or_default()
            }
        }
        Rich::Unless(a, c, e) => {
            if !eval_rich(c, sat, &none) {
                positive_atoms(a, sat)
            } else {
                e.as_ref()
                    .map(|e| positive_atoms(e, sat))
                    .unwrap_or_default()
            }
        }
        Rich::Without(a, _) => positive_atoms(a, sat),
    }
}

/// Sorts NEVRA strings like `rpmvercmp` would not: plain byte order, as `sort` does.
pub fn nevra_sort(v: &mut [String]) {
    v.sort();
}

/// Compares two packages' EVRs (exposed for callers choosing updates).
pub fn compare_packages(a: &RepoPackage, b: &RepoPackage) -> Ordering {
    pkg_cmp_evr(a, b).then_with(|| rpmvercmp(&a.arch, &b.arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(s: &str) -> Dependency {
        let w: Vec<&str> = s.split_whitespace().collect();
        if s.starts_with('(') {
            return Dependency::any(s);
        }
        match w.as_slice() {
            [n, op, v] => Dependency {
                name: (*n).into(),
                sense: Sense::parse(op).unwrap(),
                evr: (*v).into(),
                flags: 0,
            },
            _ => Dependency::any(s),
        }
    }

    /// `name-evr.arch|req1,req2|prov|conflicts|obsoletes|recommends|supplements`
    fn pkg(line: &str) -> RepoPackage {
        let f: Vec<&str> = line.split('|').collect();
        let (nevr, arch) = f[0].rsplit_once('.').unwrap();
        let (nv, rel) = nevr.rsplit_once('-').unwrap();
        let (name, ver) = nv.rsplit_once('-').unwrap();
        let list = |i: usize| -> Vec<Dependency> {
            f.get(i)
                .map(|s| s.split(',').filter(|s| !s.is_empty()).map(dep).collect())
                .unwrap_or_default()
        };
        let (epoch, ver) = match ver.split_once(':') {
            Some((e, v)) => (e.parse().unwrap(), v),
            None => (0, ver),
        };
        let mut provides = list(2);
        provides.push(Dependency {
            name: name.into(),
            sense: Sense::EQ,
            evr: format!("{epoch}:{ver}-{rel}"),
            flags: 0,
        });
        RepoPackage {
            name: name.into(),
            arch: arch.into(),
            epoch,
            version: ver.into(),
            release: rel.into(),
            requires: list(1),
            provides,
            conflicts: list(3),
            obsoletes: list(4),
            recommends: list(5),
            supplements: list(6),
            files: f
                .get(7)
                .map(|s| s.split(',').map(String::from).collect())
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn solve(
        pkgs: &[&str],
        specs: &[&str],
        weak: bool,
    ) -> std::result::Result<Vec<String>, String> {
        let repos = vec![PoolRepo {
            id: "r".into(),
            priority: 99,
            cost: 1000,
        }];
        let opts = SolveOptions {
            weak_deps: weak,
            ..Default::default()
        };
        let pool = Pool::new(repos, pkgs.iter().map(|l| pkg(l)).collect(), &opts);
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        resolve(&pool, &specs, &opts)
            .map(|v| {
                v.into_iter()
                    .map(|i| pool.packages[i as usize].nevra())
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn resolution_table() {
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            bool,
            Result<&'a [&'a str], &'a str>,
        );
        let cases: &[Case] = &[
            (
                "plain requires",
                &["a-1-1.noarch|b", "b-1-1.noarch"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "b-1-1.noarch"]),
            ),
            (
                "newest wins",
                &["a-1-1.noarch", "a-2-1.noarch"],
                &["a"],
                true,
                Ok(&["a-2-1.noarch"]),
            ),
            (
                "versioned requires picks older",
                &["a-1-1.noarch|b < 2", "b-1-1.noarch", "b-2-1.noarch"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "b-1-1.noarch"]),
            ),
            (
                "provides",
                &["a-1-1.noarch|virt >= 2", "p-1-1.noarch||virt = 3"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "p-1-1.noarch"]),
            ),
            (
                "missing",
                &["a-1-1.noarch|nothere"],
                &["a"],
                true,
                Err("nothere"),
            ),
            (
                "conflict forces older",
                &[
                    "a-1-1.noarch|b,c",
                    "b-1-1.noarch",
                    "b-2-1.noarch",
                    "c-1-1.noarch|||b >= 2",
                ],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "b-1-1.noarch", "c-1-1.noarch"]),
            ),
            (
                "hard conflict",
                &["a-1-1.noarch|||b", "b-1-1.noarch"],
                &["a", "b"],
                true,
                Err("b"),
            ),
            (
                "arch preference",
                &["a-1-1.i686", "a-1-1.x86_64"],
                &["a"],
                true,
                Ok(&["a-1-1.x86_64"]),
            ),
            (
                "foreign arch dropped",
                &["a-1-1.aarch64"],
                &["a"],
                true,
                Err("no match"),
            ),
            (
                "recommends on",
                &["a-1-1.noarch|||||r", "r-1-1.noarch"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "r-1-1.noarch"]),
            ),
            (
                "recommends off",
                &["a-1-1.noarch|||||r", "r-1-1.noarch"],
                &["a"],
                false,
                Ok(&["a-1-1.noarch"]),
            ),
            (
                "uninstallable recommends skipped",
                &["a-1-1.noarch|||||r", "r-1-1.noarch|missing"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch"]),
            ),
            (
                "supplements",
                &["a-1-1.noarch", "s-1-1.noarch||||||a"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "s-1-1.noarch"]),
            ),
            (
                "rich or",
                &["a-1-1.noarch|(x or y)", "y-1-1.noarch"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "y-1-1.noarch"]),
            ),
            (
                "rich or picks providers by name like libsolv",
                &[
                    "a-1-1.noarch|(usrmerge or usr-is-merged)",
                    "usrmerge-1-1.noarch|perl|usr-is-merged",
                    "usr-is-merged-1-1.noarch",
                    "perl-1-1.noarch",
                ],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "usr-is-merged-1-1.noarch"]),
            ),
            (
                "virtual provide picks providers by name like libsolv",
                &[
                    "a-1-1.noarch|virt",
                    "zz-1-1.noarch||virt",
                    "aa-long-name-1-1.noarch||virt",
                ],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "aa-long-name-1-1.noarch"]),
            ),
            (
                "rich and",
                &["a-1-1.noarch|(x and y)", "x-1-1.noarch", "y-1-1.noarch"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "x-1-1.noarch", "y-1-1.noarch"]),
            ),
            (
                "rich if false",
                &["a-1-1.noarch|(x if y)", "x-1-1.noarch", "y-1-1.noarch"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch"]),
            ),
            (
                "rich if true",
                &["a-1-1.noarch|(x if y)", "x-1-1.noarch", "y-1-1.noarch"],
                &["a", "y"],
                true,
                Ok(&["a-1-1.noarch", "x-1-1.noarch", "y-1-1.noarch"]),
            ),
            (
                "obsoletes replace request",
                &["old-1-1.noarch", "new-2-1.noarch||||old < 2"],
                &["old"],
                true,
                Ok(&["new-2-1.noarch"]),
            ),
            (
                "obsoletes conflict",
                &["old-1-1.noarch", "new-2-1.noarch||||old < 2"],
                &["old-1-1.noarch", "new"],
                true,
                Err("old"),
            ),
            (
                "file dep",
                &["a-1-1.noarch|/usr/bin/x", "b-1-1.noarch|||||||/usr/bin/x"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch", "b-1-1.noarch"]),
            ),
            (
                "spec with version",
                &["a-1-1.noarch", "a-2-1.noarch"],
                &["a < 2"],
                true,
                Ok(&["a-1-1.noarch"]),
            ),
            (
                "spec nevra",
                &["a-1-1.noarch", "a-2-1.noarch"],
                &["a-1-1.noarch"],
                true,
                Ok(&["a-1-1.noarch"]),
            ),
            (
                "spec nv",
                &["a-1-1.noarch", "a-2-1.noarch"],
                &["a-1"],
                true,
                Ok(&["a-1-1.noarch"]),
            ),
            (
                "epoch beats version",
                &["a-1:1-1.noarch", "a-9-1.noarch"],
                &["a"],
                true,
                Ok(&["a-1:1-1.noarch"]),
            ),
            (
                "self conflict ignored",
                &["a-1-1.noarch|||a"],
                &["a"],
                true,
                Ok(&["a-1-1.noarch"]),
            ),
        ];
        for (what, pkgs, specs, weak, want) in cases {
            let got = solve(pkgs, specs, *weak);
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(
                    g,
                    w.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    "{what}"
                ),
                (Err(w), Err(g)) => assert!(g.contains(w), "{what}: {g}"),
                (w, g) => panic!("{what}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn pool_across_repos() {
        let repo = |id: &str, priority, cost| PoolRepo {
            id: id.into(),
            priority,
            cost,
        };
        let repos = vec![repo("a", 99, 1000), repo("b", 99, 10), repo("c", 50, 1000)];
        let tagged = |line: &str, r: usize| RepoPackage {
            repo: r,
            ..pkg(line)
        };
        let pkgs = vec![
            tagged("x-1-1.x86_64", 0),
            // Same NEVRA twice in one repo: one copy.
            tagged("x-1-1.x86_64", 0),
            tagged("x-2-1.i686", 0),
            tagged("x-1-1.src", 0),
            tagged("x-1-1.aarch64", 0),
            tagged("y-1-1.noarch", 0),
            // Same NEVRA in a cheaper repo of equal priority: that copy.
            tagged("y-1-1.noarch", 1),
            tagged("z-1-1.noarch", 0),
            // A better-priority repo's z hides the others, even older ones.
            tagged("z-0.5-1.noarch", 2),
            tagged("skip-1-1.noarch", 1),
        ];
        let opts = SolveOptions::default();
        let sources: Vec<PoolSource> = [0usize, 1, 2]
            .into_iter()
            .map(|r| PoolSource {
                repo: r,
                data: RepoData::from_packages(pkgs.iter().filter(|p| p.repo == r)),
            })
            .collect();
        let pool = Pool::from_sources(repos, sources, &opts, |r, name| !(r == 1 && name == "skip"));
        let got: Vec<(String, usize)> = pool.packages.iter().map(|p| (p.nevra(), p.repo)).collect();
        let want: Vec<(String, usize)> = [
            ("x-1-1.x86_64", 0),
            ("x-2-1.i686", 0),
            ("y-1-1.noarch", 1),
            ("z-0.5-1.noarch", 2),
        ]
        .iter()
        .map(|(n, r)| (n.to_string(), *r))
        .collect();
        assert_eq!(got, want);
        // x86_64 first, then i686 despite its newer version.
        let best: Vec<String> = pool
            .by_name("x")
            .iter()
            .map(|&i| pool.packages[i as usize].nevra())
            .collect();
        assert_eq!(best, ["x-1-1.x86_64", "x-2-1.i686"]);
        assert!(!pool.has_name("skip") && pool.has_name("z"));
        assert_eq!(pool.providers("y", Sense::ANY, "").len(), 1);
        let specs = vec!["z".to_string(), "y".to_string()];
        let picked = resolve(&pool, &specs, &opts).unwrap();
        let names: Vec<String> = picked
            .iter()
            .map(|&i| pool.packages[i as usize].nevra())
            .collect();
        assert_eq!(names, ["y-1-1.noarch", "z-0.5-1.noarch"]);
    }
}
