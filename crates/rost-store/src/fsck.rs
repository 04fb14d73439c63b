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
    /// Commits marked partial (not walked).
    pub partial_commits: usize,
}

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
            return Err(format!(
                "Corrupted file object; checksum expected='{csum}' actual='{actual}'"
            ));
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
        return Err(format!(
            "Corrupted metadata object; checksum expected='{csum}' actual='{actual}'"
        ));
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
                message: format!("Ref '{spec}' points to missing commit {c}"),
                corrupt: None,
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
        if rustix::fs::statat(repo.dfd(), partial.as_str(), rustix::fs::AtFlags::empty()).is_ok() {
            report.partial_commits += 1;
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

    if opts.delete {
        for p in &report.problems {
            if let Some((c, t)) = p.corrupt {
                repo.delete_object(t, &c)?;
                report.deleted += 1;
            }
        }
    }
    Ok(report)
}
