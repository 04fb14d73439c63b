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

use rustc_hash::FxHashMap;

use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, LogicalOperator, NameId, Problem, Requirement, SolvableId, Solver,
    SolverCache, StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};

use crate::error::{Error, Result};
use crate::evr::{Sense, cmp_evr_parts, rpmvercmp};
use crate::header::Dependency;
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

/// Compatible packages of all repos, with indexes for lookups.
#[derive(Debug)]
pub struct Pool {
    /// Repositories.
    pub repos: Vec<PoolRepo>,
    /// Packages (solvable id = index).
    pub packages: Vec<RepoPackage>,
    by_name: FxHashMap<String, Vec<u32>>,
    provides: FxHashMap<String, Vec<u32>>,
    files: FxHashMap<String, Vec<u32>>,
    /// Obsoleted name → packages whose Obsoletes name it.
    obsoleters: FxHashMap<String, Vec<u32>>,
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
    /// Builds a pool: drops incompatible arches, source packages, excluded names;
    /// keeps only the best-priority repos per name and one copy per NEVRA.
    pub fn new(repos: Vec<PoolRepo>, packages: Vec<RepoPackage>, opts: &SolveOptions) -> Self {
        let n = packages.len();
        let mut best_prio: FxHashMap<&str, i32> =
            FxHashMap::with_capacity_and_hasher(n, Default::default());
        let keep: Vec<bool> = packages
            .iter()
            .map(|p| {
                p.arch != "src"
                    && p.arch != "nosrc"
                    && arch_rank(&opts.basearch, &p.arch).is_some()
                    && !opts.exclude.iter().any(|g| glob_match(g, &p.name))
            })
            .collect();
        for (p, k) in packages.iter().zip(&keep) {
            if *k {
                let prio = repos.get(p.repo).map_or(99, |r| r.priority);
                let e = best_prio.entry(&p.name).or_insert(prio);
                *e = (*e).min(prio);
            }
        }
        let mut seen: FxHashMap<(&str, u32, &str, &str, &str), usize> =
            FxHashMap::with_capacity_and_hasher(n, Default::default());
        let mut chosen: Vec<Option<usize>> = Vec::with_capacity(n);
        for (i, p) in packages.iter().enumerate() {
            let prio = repos.get(p.repo).map_or(99, |r| r.priority);
            if !keep[i] || best_prio.get(p.name.as_str()) != Some(&prio) {
                continue;
            }
            let key = (
                p.name.as_str(),
                p.epoch,
                p.version.as_str(),
                p.release.as_str(),
                p.arch.as_str(),
            );
            match seen.get(&key) {
                Some(&slot) => {
                    let Some(prev) = chosen[slot] else { continue };
                    let cost = |j: usize| repos.get(packages[j].repo).map_or(1000, |r| r.cost);
                    if cost(i) < cost(prev) {
                        chosen[slot] = Some(i);
                    }
                }
                None => {
                    seen.insert(key, chosen.len());
                    chosen.push(Some(i));
                }
            }
        }
        let mut keep_idx = vec![false; packages.len()];
        for i in chosen.into_iter().flatten() {
            keep_idx[i] = true;
        }
        drop(seen);
        drop(best_prio);
        // In place: nothing moves before the first dropped package (usually none).
        let mut packages = packages;
        let mut keep_idx = keep_idx.into_iter();
        packages.retain(|_| keep_idx.next().unwrap_or(false));
        let n = packages.len();
        let mut pool = Pool {
            repos,
            packages,
            by_name: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            provides: FxHashMap::with_capacity_and_hasher(n * 2, Default::default()),
            files: FxHashMap::default(),
            obsoleters: FxHashMap::default(),
            basearch: opts.basearch.clone(),
        };
        pool.index();
        pool
    }

    fn index(&mut self) {
        let mut caps: Vec<&str> = Vec::new();
        for (i, p) in self.packages.iter().enumerate() {
            let i = i as u32;
            push_index(&mut self.by_name, &p.name, i);
            caps.clear();
            caps.extend(p.provides.iter().map(|d| d.name.as_str()));
            caps.push(&p.name);
            caps.sort_unstable();
            caps.dedup();
            for c in &caps {
                push_index(&mut self.provides, c, i);
            }
            for f in &p.files {
                push_index(&mut self.files, f, i);
            }
            for d in &p.obsoletes {
                push_index(&mut self.obsoleters, &d.name, i);
            }
        }
        let basearch = self.basearch.clone();
        let pkgs = &self.packages;
        for v in self.by_name.values_mut() {
            v.sort_by(|&a, &b| {
                let (pa, pb) = (&pkgs[a as usize], &pkgs[b as usize]);
                let ra = arch_rank(&basearch, &pa.arch).unwrap_or(u32::MAX);
                let rb = arch_rank(&basearch, &pb.arch).unwrap_or(u32::MAX);
                ra.cmp(&rb).then_with(|| pkg_cmp_evr(pb, pa))
            });
        }
    }

    /// Replaces the file lists (e.g. after loading filelists) and reindexes files.
    pub fn set_files(&mut self, f: impl Fn(&RepoPackage) -> Option<Vec<String>>) {
        for p in &mut self.packages {
            if let Some(files) = f(p) {
                p.files = files;
            }
        }
        self.files.clear();
        for (i, p) in self.packages.iter().enumerate() {
            for f in &p.files {
                push_index(&mut self.files, f, i as u32);
            }
        }
    }

    /// Whether a file path is provided by some package's known files or provides.
    pub fn knows_file(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.provides.contains_key(path)
    }

    /// All file-path capabilities required anywhere (to decide whether filelists are needed).
    pub fn required_files(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for p in &self.packages {
            for d in p.requires.iter().chain(&p.conflicts).chain(&p.recommends) {
                if d.name.starts_with('/') {
                    out.insert(d.name.clone());
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
        let by_prov = self.provides.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let by_file = if name.starts_with('/') {
            self.files.get(name).map(Vec::as_slice).unwrap_or(&[])
        } else {
            &[]
        };
        for &i in by_prov.iter().chain(by_file) {
            if !out.contains(&i) && self.provides_cap(i, name, sense, evr) {
                out.push(i);
            }
        }
        out
    }

    fn rank(&self, i: u32) -> u32 {
        arch_rank(&self.basearch, &self.packages[i as usize].arch).unwrap_or(u32::MAX)
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
    /// Number of real package names (ids below are real; above are virtual caps).
    caps: Vec<Cap>,
    cap_ids: FxHashMap<Cap, u32>,
    vsets: Vec<(u32, Filter)>,
    vset_ids: FxHashMap<(u32, Filter), u32>,
    unions: Vec<Vec<VersionSetId>>,
    conditions: Vec<Condition>,
    strings: Vec<String>,
    deps_cache: FxHashMap<u32, KnownDependencies>,
}

struct Provider<'p> {
    pool: &'p Pool,
    name_of_pkg: Vec<u32>,
    real_names: usize,
    it: RefCell<Interned>,
}

impl<'p> Provider<'p> {
    fn new(pool: &'p Pool) -> Self {
        let mut it = Interned::default();
        let mut names: Vec<&String> = pool.by_name.keys().collect();
        names.sort();
        it.names.reserve(names.len());
        it.name_ids.reserve(names.len());
        for n in names {
            let id = it.names.len() as u32;
            it.names.push(n.clone());
            it.name_ids.insert(n.clone(), id);
        }
        let name_of_pkg = pool
            .packages
            .iter()
            .map(|p| it.name_ids.get(&p.name).copied().unwrap_or(0))
            .collect();
        let real_names = it.names.len();
        Provider {
            pool,
            name_of_pkg,
            real_names,
            it: RefCell::new(it),
        }
    }

    fn name_id(&self, name: &str) -> u32 {
        let mut it = self.it.borrow_mut();
        if let Some(&id) = it.name_ids.get(name) {
            return id;
        }
        let id = it.names.len() as u32;
        it.names.push(name.to_owned());
        it.name_ids.insert(name.to_owned(), id);
        id
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
            let n = self.name_of_pkg[p as usize];
            if !names.contains(&n) {
                names.push(n);
            }
        }
        // libsolv's choice among providers of different names (policy.c,
        // prune_to_best_version): plain strcmp order of the names.
        {
            let it = self.it.borrow();
            names.sort_by(|&a, &b| it.names[a as usize].cmp(&it.names[b as usize]));
        }
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
            .map(|p| self.name_of_pkg[p as usize])
            .collect();
        names.dedup();
        names.sort_unstable();
        names.dedup();
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
        let own = self.name_of_pkg[i as usize];
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
                    .map(|q| self.name_of_pkg[q as usize])
                    .filter(|&n| n != own)
                    .collect();
                names.sort_unstable();
                names.dedup();
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
            if let Some(&n) = self.it.borrow().name_ids.get(&d.name) {
                if (n as usize) >= self.real_names {
                    continue;
                }
            } else {
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
        NameId::from_raw(self.name_of_pkg[solvable.into_raw() as usize])
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
        if n >= self.real_names {
            return Some(Candidates::default());
        }
        let pname = self.it.borrow().names[n].clone();
        let list = self.pool.by_name.get(&pname)?;
        Some(Candidates {
            candidates: list.iter().map(|&i| SolvableId::from_raw(i)).collect(),
            ..Default::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        let pkgs = &self.pool.packages;
        solvables.sort_by(|a, b| {
            let (ia, ib) = (a.into_raw(), b.into_raw());
            self.pool
                .rank(ia)
                .cmp(&self.pool.rank(ib))
                .then_with(|| pkg_cmp_evr(&pkgs[ib as usize], &pkgs[ia as usize]))
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
        let list = pool.by_name.get(name)?;
        let n = prov.it.borrow().name_ids.get(name).copied()?;
        let ok = list.iter().any(|&i| prov.matches(i, &filter));
        ok.then(|| {
            // dnf installs the obsoleter instead of an obsoleted requested package.
            if let Filter::Any = filter
                && let Some(&best) = list.first()
                && let Some(obs) = obsoleter_of(pool, best)
            {
                let on = prov.name_of_pkg[obs as usize];
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
    let by = pool
        .obsoleters
        .get(&p.name)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for &j in by {
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
        pool.by_name
            .get(*n)?
            .iter()
            .copied()
            .find(|&i| provs.contains(&i))
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
    let mut names: Vec<&String> = pool.by_name.keys().collect();
    names.sort();
    for n in names {
        if chosen_names.contains(n.as_str()) {
            continue;
        }
        let Some(&best) = pool.by_name.get(n).and_then(|v| v.first()) else {
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
}
