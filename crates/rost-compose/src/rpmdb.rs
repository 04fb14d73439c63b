//! The rpmdb inside the composed tree.
//!
//! Choice: run the real `rpm --root TREE --dbpath /usr/lib/sysimage/rpm --justdb
//! --nodeps --noscripts --notriggers -i` over the downloaded packages as a
//! build-time tool. The database is then exactly what rpm itself writes (sqlite
//! backend, every index table, header blobs with the install tags), which a
//! hand-written sqlite writer would have to chase across rpm versions; rpm is
//! already a hard requirement of any RPM build host. The dbpath is pinned with a
//! macro file in the tree (`usr/lib/rpm/macros.d/macros.rost`), and
//! `usr/share/rpm` points at it for older tools. `SOURCE_DATE_EPOCH` is passed
//! through: rpm (≥ 4.18, checked) then records it as install time and
//! transaction id, and the sqlite file is byte-identical across runs.
//!
//! rpm runs against a root of its own ([`build_rpmdb`]), not the assembled tree:
//! with `--justdb` it writes nothing but the database, so it can run while the
//! tree is assembled and scriptlets run, and [`install_rpmdb`] moves the result
//! into the tree afterwards. (In that root rpm's file fingerprints see no
//! directories; two packages shipping one file under two paths through a
//! symlinked directory are then not matched by rpm, while rost's own conflict
//! check compares paths in any case.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Where the database lives in the tree.
pub const DBPATH: &str = "/usr/lib/sysimage/rpm";

/// Writes the rpmdb for `rpms` (in install order) under [`DBPATH`] in
/// `staging`, a directory of its own that [`install_rpmdb`] moves it from.
pub fn build_rpmdb(staging: &Path, rpms: &[PathBuf], source_date_epoch: Option<u64>) -> Result<()> {
    let root = staging;
    let db = root.join(DBPATH.trim_start_matches('/'));
    std::fs::create_dir_all(&db).map_err(|e| Error::io("creating", &db, e))?;
    let mut cmd = Command::new("rpm");
    cmd.arg("--root").arg(root);
    cmd.args([
        "--dbpath",
        DBPATH,
        "--justdb",
        "--nodeps",
        "--noscripts",
        "--notriggers",
    ]);
    cmd.args([
        "--nosignature",
        "--nodigest",
        "--ignorearch",
        "--ignoreos",
        "--ignoresize",
    ]);
    cmd.args(["--define", "_pkgverify_level none"]);
    cmd.args(["--define", "_db_backend sqlite"]);
    cmd.arg("-i").args(rpms);
    if let Some(e) = source_date_epoch {
        cmd.env("SOURCE_DATE_EPOCH", e.to_string());
    }
    let out = cmd.output().map_err(|e| Error::Invalid {
        msg: format!("cannot run rpm to write the rpmdb: {e}"),
    })?;
    if !out.status.success() {
        return Err(Error::Invalid {
            msg: format!(
                "rpm --justdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    for junk in [".rpm.lock", "rpmdb.sqlite-shm", "rpmdb.sqlite-wal"] {
        let _ = std::fs::remove_file(db.join(junk));
    }
    Ok(())
}

/// Moves the database [`build_rpmdb`] wrote in `staging` into the tree at
/// `root`, pins the dbpath with a macro file, and points `usr/share/rpm` at it.
pub fn install_rpmdb(root: &Path, staging: &Path) -> Result<()> {
    let macros = root.join("usr/lib/rpm/macros.d");
    std::fs::create_dir_all(&macros).map_err(|e| Error::io("creating", &macros, e))?;
    let mf = macros.join("macros.rost");
    std::fs::write(&mf, format!("%_dbpath {DBPATH}\n"))
        .map_err(|e| Error::io("writing", &mf, e))?;
    let rel = DBPATH.trim_start_matches('/');
    let db = root.join(rel);
    std::fs::create_dir_all(&db).map_err(|e| Error::io("creating", &db, e))?;
    let built = staging.join(rel);
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&built)
        .map_err(|e| Error::io("listing", &built, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io("listing", &built, e))?;
    names.sort();
    for n in names {
        let (from, to) = (built.join(&n), db.join(&n));
        std::fs::rename(&from, &to).map_err(|e| Error::io("moving", &from, e))?;
    }
    let share = root.join("usr/share");
    std::fs::create_dir_all(&share).map_err(|e| Error::io("creating", &share, e))?;
    let link = share.join("rpm");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("../lib/sysimage/rpm", &link)
        .map_err(|e| Error::io("symlinking", &link, e))?;
    Ok(())
}
