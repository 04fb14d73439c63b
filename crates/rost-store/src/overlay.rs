//! Commits built from several layers, as `ostree commit --base REV
//! --tree=dir=PATH --tree=ref=REV …` builds them: each layer is laid over the
//! ones before it, later entries replacing earlier ones of the same name and
//! directories merging recursively (a directory's own metadata comes from
//! the last layer that has it).

use crate::commit::{CommitOptions, CommitResult, finish_commit, write_directory};
use crate::objects::{DirMeta, DirTree, FileHeader, S_IFDIR, S_IFMT, S_IFREG, TreeDir};
use crate::refs::RefSpec;
use crate::repo::RepoMode;
use crate::transaction::{ContentSource, Transaction};
use crate::{Checksum, ObjectType, Repo, Result};

/// One layer of a commit.
#[derive(Debug, Clone)]
pub enum Layer {
    /// A directory on disk, stored with the commit options' modifiers.
    Dir(std::path::PathBuf),
    /// The tree of a stored commit, with the modifiers applied
    /// (`--tree=ref=`).
    Commit(Checksum),
    /// The tree of a stored commit as it is (`--base`: no modifiers apply).
    Base(Checksum),
}

/// Commits `layers` (at least one) merged in order.
pub fn commit_layers(repo: &Repo, layers: &[Layer], opts: &CommitOptions) -> Result<CommitResult> {
    let branch = match &opts.branch {
        Some(b) => Some(RefSpec::parse(b)?),
        None => None,
    };
    let tx = repo.begin()?;
    let mut acc: Option<(Checksum, Checksum)> = None;
    for l in layers {
        let root = match l {
            Layer::Dir(p) => write_directory(&tx, p, opts)?,
            Layer::Base(c) => {
                let commit = repo.load_commit(c)?;
                (commit.root_tree, commit.root_meta)
            }
            Layer::Commit(c) => {
                let commit = repo.load_commit(c)?;
                let m = Modifiers::of(opts, repo.mode());
                if m.is_identity() {
                    (commit.root_tree, commit.root_meta)
                } else {
                    m.rewrite(&tx, commit.root_tree, commit.root_meta)?
                }
            }
        };
        acc = Some(match acc {
            None => root,
            Some(below) => merge(&tx, below, root)?,
        });
    }
    let Some((tree, meta)) = acc else {
        return Err(crate::Error::Other(
            "nothing to commit: no tree given".into(),
        ));
    };
    finish_commit(repo, tx, branch, tree, meta, opts)
}

/// A dirtree staged in `tx` or stored in its repo.
fn load_dirtree(tx: &Transaction<'_>, c: &Checksum) -> Result<DirTree> {
    DirTree::parse(&tx.load_metadata_raw(ObjectType::DirTree, c)?, &c.to_hex())
}

/// Lays `top` over `below`; returns the merged (dirtree, dirmeta).
fn merge(
    tx: &Transaction<'_>,
    below: (Checksum, Checksum),
    top: (Checksum, Checksum),
) -> Result<(Checksum, Checksum)> {
    let b = load_dirtree(tx, &below.0)?;
    let t = load_dirtree(tx, &top.0)?;
    let mut out = DirTree::default();
    let top_has =
        |n: &str| t.files.iter().any(|f| f.name == n) || t.dirs.iter().any(|d| d.name == n);
    out.files
        .extend(b.files.iter().filter(|f| !top_has(&f.name)).cloned());
    out.files.extend(t.files.iter().cloned());
    for d in &b.dirs {
        if let Some(td) = t.dirs.iter().find(|x| x.name == d.name) {
            let (tree, meta) = merge(tx, (d.tree, d.meta), (td.tree, td.meta))?;
            out.dirs.push(TreeDir {
                name: d.name.clone(),
                tree,
                meta,
            });
        } else if !top_has(&d.name) {
            out.dirs.push(d.clone());
        }
    }
    for td in &t.dirs {
        if !b.dirs.iter().any(|d| d.name == td.name) {
            out.dirs.push(td.clone());
        }
    }
    let tree = tx.write_metadata(ObjectType::DirTree, &out.to_bytes())?;
    Ok((tree, top.1))
}

/// The ownership and permission modifiers of a commit.
#[derive(Debug, Clone, Copy)]
struct Modifiers {
    uid: Option<u32>,
    gid: Option<u32>,
    canonical: bool,
    ro_executables: bool,
}

impl Modifiers {
    fn of(opts: &CommitOptions, mode: RepoMode) -> Modifiers {
        Modifiers {
            uid: opts.owner_uid,
            gid: opts.owner_gid,
            canonical: opts.canonical_permissions || mode == RepoMode::BareUserOnly,
            ro_executables: opts.mode_ro_executables,
        }
    }

    fn is_identity(&self) -> bool {
        self.uid.is_none() && self.gid.is_none() && !self.canonical && !self.ro_executables
    }

    fn apply(&self, uid: u32, gid: u32, mode: u32) -> (u32, u32, u32) {
        let mode = if self.ro_executables {
            crate::commit::ro_executable(mode)
        } else {
            mode
        };
        if self.canonical {
            let m = if mode & S_IFMT == S_IFREG || mode & S_IFMT == S_IFDIR {
                mode & (S_IFMT | 0o755)
            } else {
                mode
            };
            return (0, 0, m);
        }
        (self.uid.unwrap_or(uid), self.gid.unwrap_or(gid), mode)
    }

    /// Stores a copy of a tree with the modifiers applied to every entry.
    fn rewrite(
        &self,
        tx: &Transaction<'_>,
        tree: Checksum,
        meta: Checksum,
    ) -> Result<(Checksum, Checksum)> {
        let repo = tx.repo();
        let dm = repo.load_dirmeta(&meta)?;
        let (uid, gid, mode) = self.apply(dm.uid, dm.gid, dm.mode);
        let new_meta = DirMeta {
            uid,
            gid,
            mode,
            xattrs: dm.xattrs,
        };
        let meta = tx.write_metadata(ObjectType::DirMeta, &new_meta.to_bytes())?;
        let mut dt = repo.load_dirtree(&tree)?;
        for f in &mut dt.files {
            let mut obj = repo.load_file(&f.checksum)?;
            let (uid, gid, mode) = self.apply(obj.header.uid, obj.header.gid, obj.header.mode);
            if (uid, gid, mode) == (obj.header.uid, obj.header.gid, obj.header.mode) {
                continue;
            }
            let header = FileHeader {
                uid,
                gid,
                mode,
                ..obj.header.clone()
            };
            let mut content = Vec::with_capacity(usize::try_from(obj.size).unwrap_or(0));
            std::io::Read::read_to_end(&mut obj.reader, &mut content).map_err(|e| {
                crate::Error::Io {
                    op: "reading",
                    path: repo.object_path(ObjectType::File, &f.checksum),
                    source: e,
                }
            })?;
            f.checksum = tx.write_content(&header, ContentSource::Bytes(&content))?;
        }
        for d in &mut dt.dirs {
            let (t, m) = self.rewrite(tx, d.tree, d.meta)?;
            d.tree = t;
            d.meta = m;
        }
        let tree = tx.write_metadata(ObjectType::DirTree, &dt.to_bytes())?;
        Ok((tree, meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::{TreeNode, lookup_path};

    #[test]
    fn later_layers_win_and_directories_merge() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(a.join("d")).unwrap();
        std::fs::create_dir_all(b.join("d")).unwrap();
        std::fs::write(a.join("d/keep"), "keep").unwrap();
        std::fs::write(a.join("d/over"), "old").unwrap();
        std::fs::write(b.join("d/over"), "new").unwrap();
        std::fs::write(b.join("top"), "top").unwrap();
        let repo = Repo::init(&tmp.path().join("r"), RepoMode::Archive).unwrap();
        let opts = CommitOptions {
            branch: Some("x".into()),
            timestamp: Some(1),
            ..Default::default()
        };
        let base = commit_layers(&repo, &[Layer::Dir(a.clone())], &opts).unwrap();
        let owned = CommitOptions {
            owner_uid: Some(42),
            ..opts.clone()
        };
        let c = commit_layers(&repo, &[Layer::Base(base.commit), Layer::Dir(b)], &owned).unwrap();
        let commit = repo.load_commit(&c.commit).unwrap();
        let read =
            |p: &str| match lookup_path(&repo, commit.root_tree, commit.root_meta, p).unwrap() {
                TreeNode::File(f) => {
                    let mut o = repo.load_file(&f).unwrap();
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut o.reader, &mut s).unwrap();
                    (s, o.header.uid)
                }
                TreeNode::Dir(..) => panic!("{p} is a directory"),
            };
        let me = read("/d/keep").1;
        assert_eq!(
            read("/d/keep"),
            ("keep".into(), me),
            "--base entries keep their owner"
        );
        assert_eq!(read("/d/over"), ("new".into(), 42));
        assert_eq!(read("/top"), ("top".into(), 42));
        // --tree=ref= applies the modifiers to the ref's files.
        let r = commit_layers(&repo, &[Layer::Commit(base.commit)], &owned).unwrap();
        let rc = repo.load_commit(&r.commit).unwrap();
        match lookup_path(&repo, rc.root_tree, rc.root_meta, "/d/keep").unwrap() {
            TreeNode::File(f) => assert_eq!(repo.load_file(&f).unwrap().header.uid, 42),
            TreeNode::Dir(..) => panic!("not a file"),
        }
    }
}
