//! Traversals: objects reachable from a commit, and path lookup inside a tree.

use std::collections::HashSet;

use crate::{Checksum, Error, ObjectType, Repo, Result};

/// A node found by path inside a commit's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeNode {
    /// A directory: (dirtree, dirmeta).
    Dir(Checksum, Checksum),
    /// A file or symlink: its content object.
    File(Checksum),
}

/// Looks `path` up (absolute or relative to the root) below a root directory.
pub fn lookup_path(
    repo: &Repo,
    root_tree: Checksum,
    root_meta: Checksum,
    path: &str,
) -> Result<TreeNode> {
    let mut node = TreeNode::Dir(root_tree, root_meta);
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let TreeNode::Dir(t, _) = node else {
            return Err(Error::NotFound(format!(
                "No such file or directory: {path}"
            )));
        };
        let tree = repo.load_dirtree(&t)?;
        if let Some(d) = tree.dirs.iter().find(|d| d.name == comp) {
            node = TreeNode::Dir(d.tree, d.meta);
        } else if let Some(f) = tree.files.iter().find(|f| f.name == comp) {
            node = TreeNode::File(f.checksum);
        } else {
            return Err(Error::NotFound(format!(
                "No such file or directory: {path}"
            )));
        }
    }
    Ok(node)
}

/// Options for [`reachable_objects`].
#[derive(Debug, Clone, Copy)]
pub struct ReachOptions {
    /// How many parents to follow: 0 = only this commit, -1 = all.
    pub depth: i64,
    /// Skip missing objects instead of failing (for partial repos).
    pub ignore_missing: bool,
}

/// Adds every object reachable from `commit` (within `depth` parents) to `out`.
pub fn reachable_objects(
    repo: &Repo,
    commit: &Checksum,
    opts: ReachOptions,
    out: &mut HashSet<(Checksum, ObjectType)>,
) -> Result<()> {
    let mut cur = Some(*commit);
    let mut depth = opts.depth;
    while let Some(c) = cur {
        if !out.insert((c, ObjectType::Commit)) {
            // Already walked this commit (and so its tree); parents may still be new.
        }
        let commit = match repo.load_commit(&c) {
            Ok(cm) => cm,
            Err(Error::NotFound(_)) if opts.ignore_missing => {
                out.remove(&(c, ObjectType::Commit));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if repo.has_object(ObjectType::CommitMeta, &c)? {
            out.insert((c, ObjectType::CommitMeta));
        }
        walk_dir(
            repo,
            commit.root_tree,
            commit.root_meta,
            opts.ignore_missing,
            out,
        )?;
        if depth == 0 {
            break;
        }
        if depth > 0 {
            depth -= 1;
        }
        cur = commit.parent;
    }
    Ok(())
}

fn walk_dir(
    repo: &Repo,
    tree: Checksum,
    meta: Checksum,
    ignore_missing: bool,
    out: &mut HashSet<(Checksum, ObjectType)>,
) -> Result<()> {
    out.insert((meta, ObjectType::DirMeta));
    if !out.insert((tree, ObjectType::DirTree)) {
        return Ok(());
    }
    let t = match repo.load_dirtree(&tree) {
        Ok(t) => t,
        Err(Error::NotFound(_)) if ignore_missing => return Ok(()),
        Err(e) => return Err(e),
    };
    for f in &t.files {
        out.insert((f.checksum, ObjectType::File));
    }
    for d in &t.dirs {
        walk_dir(repo, d.tree, d.meta, ignore_missing, out)?;
    }
    Ok(())
}
