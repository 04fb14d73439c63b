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

/// Compares the trees of two commits.
pub fn diff_commits(repo: &Repo, from: &Checksum, to: &Checksum) -> Result<TreeDiff> {
    let a = repo.load_commit(from)?;
    let b = repo.load_commit(to)?;
    let mut d = TreeDiff::default();
    if a.root_meta != b.root_meta {
        d.modified.push("/".into());
    }
    diff_dirs(repo, &a.root_tree, &b.root_tree, "/", &mut d)?;
    Ok(d)
}

fn add_recursive(repo: &Repo, tree: &Checksum, base: &str, out: &mut Vec<String>) -> Result<()> {
    let t = repo.load_dirtree(tree)?;
    for f in &t.files {
        out.push(join(base, &f.name));
    }
    for sub in &t.dirs {
        let p = join(base, &sub.name);
        out.push(p.clone());
        add_recursive(repo, &sub.tree, &p, out)?;
    }
    Ok(())
}

fn diff_dirs(repo: &Repo, a: &Checksum, b: &Checksum, base: &str, d: &mut TreeDiff) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let ta: DirTree = repo.load_dirtree(a)?;
    let tb: DirTree = repo.load_dirtree(b)?;
    for f in &ta.files {
        let p = join(base, &f.name);
        match tb.files.iter().find(|g| g.name == f.name) {
            Some(g) if g.checksum != f.checksum => d.modified.push(p),
            Some(_) => {}
            None => {
                d.removed.push(p.clone());
                if let Some(sub) = tb.dirs.iter().find(|s| s.name == f.name) {
                    d.added.push(p.clone());
                    add_recursive(repo, &sub.tree, &p, &mut d.added)?;
                }
            }
        }
    }
    for da in &ta.dirs {
        let p = join(base, &da.name);
        match tb.dirs.iter().find(|s| s.name == da.name) {
            Some(db) => {
                if db.meta != da.meta {
                    d.modified.push(p.clone());
                }
                diff_dirs(repo, &da.tree, &db.tree, &p, d)?;
            }
            None => {
                d.removed.push(p.clone());
                if tb.files.iter().any(|g| g.name == da.name) {
                    d.added.push(p);
                }
            }
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
            add_recursive(repo, &sb.tree, &p, &mut d.added)?;
        }
    }
    Ok(())
}
