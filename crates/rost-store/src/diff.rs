//! Differences between two trees, as `ostree diff` reports them.

use crate::objects::DirTree;
use crate::{Checksum, Repo, Result};

/// Paths that differ between two trees (absolute, `/`-rooted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TreeDiff {
    /// Present in both with different content or metadata.
    pub modified: Vec<String>,
    /// Only in the old tree.
    pub removed: Vec<String>,
    /// Only in the new tree (directories are followed by their contents).
    pub added: Vec<String>,
}

fn join(base: &str, name: &str) -> String {
    if base == "/" {
        format!("/{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// Loads a dirtree by checksum (from a repo, or a transaction's staging).
pub type TreeLoader<'a> = &'a dyn Fn(&Checksum) -> Result<DirTree>;

/// Compares the trees of two commits.
pub fn diff_commits(repo: &Repo, from: &Checksum, to: &Checksum) -> Result<TreeDiff> {
    let a = repo.load_commit(from)?;
    let b = repo.load_commit(to)?;
    diff_trees(
        &|c| repo.load_dirtree(c),
        (a.root_tree, a.root_meta),
        (b.root_tree, b.root_meta),
    )
}

/// Compares two (dirtree, dirmeta) roots. As ostree: an entry whose type
/// changed is modified, and an added directory lists its contents.
pub fn diff_trees(
    load: TreeLoader<'_>,
    a: (Checksum, Checksum),
    b: (Checksum, Checksum),
) -> Result<TreeDiff> {
    let mut d = TreeDiff::default();
    if a.1 != b.1 {
        d.modified.push("/".into());
    }
    diff_dirs(load, &a.0, &b.0, "/", &mut d)?;
    Ok(d)
}

fn add_recursive(
    load: TreeLoader<'_>,
    tree: &Checksum,
    base: &str,
    out: &mut Vec<String>,
) -> Result<()> {
    let t = load(tree)?;
    for f in &t.files {
        out.push(join(base, &f.name));
    }
    for sub in &t.dirs {
        let p = join(base, &sub.name);
        out.push(p.clone());
        add_recursive(load, &sub.tree, &p, out)?;
    }
    Ok(())
}

fn diff_dirs(
    load: TreeLoader<'_>,
    a: &Checksum,
    b: &Checksum,
    base: &str,
    d: &mut TreeDiff,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let ta: DirTree = load(a)?;
    let tb: DirTree = load(b)?;
    for f in &ta.files {
        let p = join(base, &f.name);
        match tb.files.iter().find(|g| g.name == f.name) {
            Some(g) if g.checksum != f.checksum => d.modified.push(p),
            Some(_) => {}
            None if tb.dirs.iter().any(|s| s.name == f.name) => d.modified.push(p),
            None => d.removed.push(p),
        }
    }
    for da in &ta.dirs {
        let p = join(base, &da.name);
        match tb.dirs.iter().find(|s| s.name == da.name) {
            Some(db) => {
                if db.meta != da.meta {
                    d.modified.push(p.clone());
                }
                diff_dirs(load, &da.tree, &db.tree, &p, d)?;
            }
            None if tb.files.iter().any(|g| g.name == da.name) => d.modified.push(p),
            None => d.removed.push(p),
        }
    }
    for g in &tb.files {
        if !ta.files.iter().any(|f| f.name == g.name) && !ta.dirs.iter().any(|s| s.name == g.name) {
            d.added.push(join(base, &g.name));
        }
    }
    for sb in &tb.dirs {
        if !ta.dirs.iter().any(|s| s.name == sb.name) && !ta.files.iter().any(|f| f.name == sb.name)
        {
            let p = join(base, &sb.name);
            d.added.push(p.clone());
            add_recursive(load, &sb.tree, &p, &mut d.added)?;
        }
    }
    Ok(())
}
