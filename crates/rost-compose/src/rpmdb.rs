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

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Where the database lives in the tree.
pub const DBPATH: &str = "/usr/lib/sysimage/rpm";

/// Writes the rpmdb for `rpms` into `root`.
pub fn write_rpmdb(root: &Path, rpms: &[PathBuf], source_date_epoch: Option<u64>) -> Result<()> {
    let macros = root.join("usr/lib/rpm/macros.d");
    std::fs::create_dir_all(&macros).map_err(|e| Error::io("creating", &macros, e))?;
    let mf = macros.join("macros.rost");
    std::fs::write(&mf, format!("%_dbpath {DBPATH}\n"))
        .map_err(|e| Error::io("writing", &mf, e))?;
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
    let share = root.join("usr/share");
    std::fs::create_dir_all(&share).map_err(|e| Error::io("creating", &share, e))?;
    let link = share.join("rpm");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("../lib/sysimage/rpm", &link)
        .map_err(|e| Error::io("symlinking", &link, e))?;
    Ok(())
}
