//! Deleting unreachable objects.

use std::collections::HashSet;

use rustix::fs::AtFlags;

use crate::walk::{ReachOptions, reachable_objects};
use crate::{Checksum, ObjectType, Repo, Result};

/// Prune options (ostree's flag names).
#[derive(Debug, Clone, Copy)]
pub struct PruneOptions {
    /// Only refs are roots (otherwise every commit object is one).
    pub refs_only: bool,
    /// Parents to keep behind each root: -1 = all.
    pub depth: i64,
    /// Delete commits older than this (seconds since epoch), except ref tips.
    pub keep_younger_than: Option<u64>,
    /// Report only; delete nothing.
    pub no_prune: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            refs_only: false,
            depth: -1,
            keep_younger_than: None,
            no_prune: false,
        }
    }
}

/// What prune did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PruneReport {
    /// Objects before pruning.
    pub total: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Bytes freed.
    pub freed_bytes: u64,
}

/// Deletes every object no root reaches.
pub fn prune(repo: &Repo, opts: PruneOptions) -> Result<PruneReport> {
    let _lock = repo.lock(true)?;
    let mut objects = repo.list_objects()?;
    let refs = repo.list_refs()?;
    let tips: HashSet<Checksum> = refs.values().copied().collect();
    let mut report = PruneReport {
        total: objects.len(),
        ..Default::default()
    };

    if let Some(cutoff) = opts.keep_younger_than {
        for (c, t) in &objects {
            if *t != ObjectType::Commit || tips.contains(c) {
                continue;
            }
            if let Ok(commit) = repo.load_commit(c)
                && commit.timestamp < cutoff
            {
                report.deleted += 1;
                report.freed_bytes += delete(repo, ObjectType::Commit, c, opts.no_prune)?;
            }
        }
        objects = repo.list_objects()?;
    }

    let mut keep: HashSet<(Checksum, ObjectType)> = HashSet::new();
    let reach = ReachOptions {
        depth: opts.depth,
        ignore_missing: true,
    };
    for c in &tips {
        reachable_objects(repo, c, reach, &mut keep)?;
    }
    if !opts.refs_only && opts.keep_younger_than.is_none() {
        for (c, t) in &objects {
            if *t == ObjectType::Commit {
                reachable_objects(repo, c, reach, &mut keep)?;
            }
        }
    }
    for (c, t) in &objects {
        let keep_it = match t {
            // Detached metadata lives as long as its commit.
            ObjectType::CommitMeta => keep.contains(&(*c, ObjectType::Commit)),
            ObjectType::TombstoneCommit => true,
            _ => keep.contains(&(*c, *t)),
        };
        if !keep_it {
            report.deleted += 1;
            report.freed_bytes += delete(repo, *t, c, opts.no_prune)?;
        }
    }
    Ok(report)
}

fn delete(repo: &Repo, ty: ObjectType, c: &Checksum, dry_run: bool) -> Result<u64> {
    let p = repo.object_path(ty, c);
    let size = rustix::fs::statat(repo.dfd(), &p, AtFlags::SYMLINK_NOFOLLOW)
        .map(|s| s.st_size as u64)
        .unwrap_or(0);
    if !dry_run {
        repo.delete_object(ty, c)?;
    }
    Ok(size)
}
