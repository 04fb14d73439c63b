//! Integrity check: every object re-hashed, every ref and commit walked.

use std::collections::HashSet;
use std::io::Read;

use rayon::prelude::*;
use sha2::Digest;

use crate::gvariant::Value;
use crate::objects::{self, Commit, DirMeta, DirTree};
use crate::{Checksum, Error, ObjectType, Repo, Result};

/// One problem found by fsck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckProblem {
    /// The object (`CHECKSUM.TYPE`) or ref concerned.
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// The object, when the problem is a corrupt object that `--delete` may remove.
    pub corrupt: Option<(Checksum, ObjectType)>,
    /// The commits whose trees reach the object (empty for ref problems).
    pub commits: Vec<Checksum>,
}

/// Result of a check.
#[derive(Debug, Default, Clone)]
pub struct FsckReport {
    /// Objects verified.
    pub objects_checked: usize,
    /// Commits walked.
    pub commits_checked: usize,
    /// Everything wrong, in a stable order.
    pub problems: Vec<FsckProblem>,
    /// Corrupt objects removed (with `delete`).
    pub deleted: usize,
    /// Commits already partial (`state/CSUM.commitpartial`), not walked.
    pub partial_commits: usize,
    /// Of those, the ones an earlier fsck marked for missing or deleted
    /// objects (the marker holds `f`, as libostree writes it).
    pub fsck_partial_commits: usize,
    /// Commits this run marked partial: they lack objects (missing, or
    /// corrupt and deleted), so a later pull fetches them again.
    pub marked_partial: Vec<Checksum>,
}

/// Content of a commitpartial marker written by fsck (libostree's
/// `OSTREE_REPO_COMMIT_STATE_FSCK_PARTIAL`).
const FSCK_PARTIAL_MARK: &[u8] = b"f";

/// fsck options.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    /// Remove corrupt objects.
    pub delete: bool,
}

/// Verifies one object; `Err` describes the corruption.
pub fn verify_object(
    repo: &Repo,
    csum: &Checksum,
    ty: ObjectType,
) -> std::result::Result<(), String> {
    if ty == ObjectType::File {
        let obj = repo.load_file(csum).map_err(|e| e.to_string())?;
        let mut h = obj.header.hasher();
        let mut reader = obj.reader;
        let mut buf = vec![0u8; 128 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("reading content: {e}"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            h.update(&buf[..n]);
        }
        if total != obj.size {
            return Err(format!(
                "content is {total} bytes, header says {}",
                obj.size
            ));
        }
        let actual = Checksum(h.finalize().into());
        if actual != *csum {
            return Err(crate::msg::corrupted_object("file", csum, actual));
        }
        return Ok(());
    }
    let bytes = repo
        .load_metadata_raw(ty, csum)
        .map_err(|e| e.to_string())?;
    let name = csum.to_hex();
    match ty {
        ObjectType::CommitMeta => {
            Value::from_bytes(objects::ty(objects::METADATA_TYPE), &bytes)
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        ObjectType::TombstoneCommit => return Ok(()),
        _ => {}
    }
    let actual = Checksum::of(&bytes);
    if actual != *csum {
        return Err(crate::msg::corrupted_object(ty.extension(), csum, actual));
    }
    let parsed = match ty {
        ObjectType::Commit => Commit::parse(&bytes, &name).map(|_| ()),
        ObjectType::DirTree => DirTree::parse(&bytes, &name).map(|_| ()),
        ObjectType::DirMeta => DirMeta::parse(&bytes, &name).map(|_| ()),
        _ => Ok(()),
    };
    parsed.map_err(|e| match e {
        Error::Corrupt { reason, .. } => reason,
        e => e.to_string(),
    })
}

/// Checks the whole repository.
pub fn fsck(repo: &Repo, opts: FsckOptions) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let objects = repo.list_objects()?;
    report.objects_checked = objects.len();
    let mut bad: Vec<FsckProblem> = objects
        .par_iter()
        .filter_map(|(c, t)| {
            verify_object(repo, c, *t).err().map(|message| FsckProblem {
                object: format!("{c}.{t}"),
                message,
                corrupt: Some((*c, *t)),
                commits: Vec::new(),
            })
        })
        .collect();
    bad.sort_by(|a, b| a.object.cmp(&b.object));
    let corrupt: HashSet<(Checksum, ObjectType)> = bad.iter().filter_map(|p| p.corrupt).collect();
    report.problems.extend(bad);

    let present: HashSet<(Checksum, ObjectType)> = objects.iter().copied().collect();
    let refs = repo.list_refs()?;
    for (spec, c) in &refs {
        if !present.contains(&(*c, ObjectType::Commit)) {
            report.problems.push(FsckProblem {
                object: format!("ref {spec}"),
                message: format!(
                    "Loading commit for ref {spec}: {}",
                    crate::msg::no_such_metadata_object(c, "commit")
                ),
                corrupt: None,
                commits: Vec::new(),
            });
        }
    }
    // Walk every commit present (and so everything refs reach) for missing objects.
    let mut seen_trees: HashSet<Checksum> = HashSet::new();
    let mut missing: Vec<FsckProblem> = Vec::new();
    for (c, t) in &objects {
        if *t != ObjectType::Commit || corrupt.contains(&(*c, *t)) {
            continue;
        }
        report.commits_checked += 1;
        // A commit whose pull is incomplete (state/CSUM.commitpartial) may lack
        // objects by design; libostree's fsck treats it the same way.
        let partial = format!("state/{c}.commitpartial");
        if let Some(mark) =
            crate::fsutil::read_file_optional_at(repo.dfd(), std::path::Path::new(&partial))?
        {
            report.partial_commits += 1;
            if mark == FSCK_PARTIAL_MARK {
                report.fsck_partial_commits += 1;
            }
            continue;
        }
        let Ok(commit) = repo.load_commit(c) else {
            continue;
        };
        let mut note_missing = |obj: Checksum, ty: ObjectType, from: &str| {
            if !present.contains(&(obj, ty)) {
                missing.push(FsckProblem {
                    object: format!("{obj}.{ty}"),
                    message: format!("Object missing: {obj}.{ty} (referenced by {from})"),
                    corrupt: None,
                    commits: Vec::new(),
                });
                false
            } else {
                !corrupt.contains(&(obj, ty))
            }
        };
        let from = format!("commit {c}");
        note_missing(commit.root_meta, ObjectType::DirMeta, &from);
        let mut stack = Vec::new();
        if note_missing(commit.root_tree, ObjectType::DirTree, &from) {
            stack.push(commit.root_tree);
        }
        while let Some(t) = stack.pop() {
            if !seen_trees.insert(t) {
                continue;
            }
            let Ok(tree) = repo.load_dirtree(&t) else {
                continue;
            };
            let from = format!("dirtree {t}");
            for f in &tree.files {
                note_missing(f.checksum, ObjectType::File, &from);
            }
            for d in &tree.dirs {
                note_missing(d.meta, ObjectType::DirMeta, &from);
                if note_missing(d.tree, ObjectType::DirTree, &from) {
                    stack.push(d.tree);
                }
            }
        }
    }
    missing.sort_by(|a, b| a.object.cmp(&b.object));
    missing.dedup_by(|a, b| a.object == b.object);
    report.problems.extend(missing);
    if report.problems.iter().all(|p| p.object.starts_with("ref ")) {
        return Ok(report);
    }
    attribute_to_commits(repo, &objects, &mut report.problems)?;

    let mut to_mark: Vec<Checksum> = Vec::new();
    for p in &report.problems {
        if let Some((c, t)) = p.corrupt {
            if !opts.delete {
                continue;
            }
            repo.delete_object(t, &c)?;
            report.deleted += 1;
        }
        to_mark.extend(p.commits.iter().copied());
    }
    to_mark.sort();
    to_mark.dedup();
    for c in to_mark {
        crate::fsutil::ensure_dir_at(repo.dfd(), std::path::Path::new("state"), 0o755).map_err(
            |e| Error::Io {
                op: "creating",
                path: "state".into(),
                source: e.into(),
            },
        )?;
        crate::fsutil::replace_file_at(
            repo.dfd(),
            std::path::Path::new(&format!("state/{c}.commitpartial")),
            FSCK_PARTIAL_MARK,
            0o644,
            crate::fsutil::Durability::Now,
        )?;
        report.marked_partial.push(c);
    }
    Ok(report)
}

/// Fills in which commits reach each problem object. Only run when there
/// are problems: it walks every complete commit's tree on its own.
fn attribute_to_commits(
    repo: &Repo,
    objects: &[(Checksum, ObjectType)],
    problems: &mut [FsckProblem],
) -> Result<()> {
    let wanted: HashSet<String> = problems.iter().map(|p| p.object.clone()).collect();
    for (c, t) in objects {
        if *t != ObjectType::Commit {
            continue;
        }
        let partial = format!("state/{c}.commitpartial");
        if rustix::fs::statat(repo.dfd(), partial.as_str(), rustix::fs::AtFlags::empty()).is_ok() {
            continue;
        }
        let mut hit: HashSet<String> = HashSet::new();
        let commit_name = format!("{c}.{t}");
        if wanted.contains(&commit_name) {
            hit.insert(commit_name);
        }
        if let Ok(commit) = repo.load_commit(c) {
            let mut note = |name: String| {
                if wanted.contains(&name) {
                    hit.insert(name);
                }
            };
            note(format!("{}.{}", commit.root_meta, ObjectType::DirMeta));
            note(format!("{}.{}", commit.root_tree, ObjectType::DirTree));
            let mut seen: HashSet<Checksum> = HashSet::new();
            let mut stack = vec![commit.root_tree];
            while let Some(tc) = stack.pop() {
                if !seen.insert(tc) {
                    continue;
                }
                let Ok(tree) = repo.load_dirtree(&tc) else {
                    continue;
                };
                for f in &tree.files {
                    note(format!("{}.{}", f.checksum, ObjectType::File));
                }
                for d in &tree.dirs {
                    note(format!("{}.{}", d.meta, ObjectType::DirMeta));
                    note(format!("{}.{}", d.tree, ObjectType::DirTree));
                    stack.push(d.tree);
                }
            }
        }
        for p in problems.iter_mut() {
            if hit.contains(&p.object) {
                p.commits.push(*c);
            }
        }
    }
    Ok(())
}
