//! OpenPGP signatures on commits and summaries, in ostree's layout.
//!
//! Signatures are binary detached OpenPGP signatures over the raw `.commit`
//! (or `summary`) bytes, kept as `aay` under `ostree.gpgsigs` in the commit's
//! detached metadata (or in `summary.sig`). A remote's trusted keys are the
//! binary keyring `REPO/REMOTE.trustedkeys.gpg`, as `ostree remote add
//! --gpg-import` writes it.
//!
//! Why the GnuPG binaries rather than a Rust OpenPGP crate: libostree itself
//! goes through gpgme, which drives these same programs; signing must use the
//! user's keys where they live (a GnuPG home and its agent), and verification
//! with `gpgv` against a keyring file is exactly GnuPG's own trust decision, so
//! rost and ostree accept and refuse the same signatures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::gvariant::Value;
use crate::{Checksum, Error, ObjectType, Repo, Result};

/// Detached-metadata key holding OpenPGP signatures.
pub const GPGSIGS_KEY: &str = "ostree.gpgsigs";

/// The keyring file of a remote's trusted keys.
pub fn remote_keyring(repo: &Repo, remote: &str) -> PathBuf {
    repo.path().join(format!("{remote}.trustedkeys.gpg"))
}

fn run_gpg(mut cmd: Command, input: Option<&[u8]>, what: &str) -> Result<Vec<u8>> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        Error::Other(format!(
            "{what}: running {:?}: {e} (is GnuPG installed?)",
            cmd.get_program()
        ))
    })?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(data)
            .map_err(|e| Error::Other(format!("{what}: writing to gpg: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Other(format!("{what}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Makes a binary detached signature of `data` with `key_id`.
pub fn detach_sign(data: &[u8], key_id: &str, homedir: Option<&Path>) -> Result<Vec<u8>> {
    let mut cmd = Command::new("gpg");
    if let Some(h) = homedir {
        cmd.arg("--homedir").arg(h);
    }
    cmd.args([
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--local-user",
        key_id,
    ])
    .args(["--detach-sign", "--output", "-", "-"]);
    run_gpg(cmd, Some(data), &format!("signing with GPG key {key_id}"))
}

fn gpgsigs(meta: Option<&Value>) -> Vec<Vec<u8>> {
    crate::sign::signatures_under(meta, GPGSIGS_KEY)
}

/// `meta` with `sig` appended under `ostree.gpgsigs` (other keys kept).
pub fn with_gpgsig(meta: Option<&Value>, sig: Vec<u8>) -> Value {
    crate::sign::with_signature_under(meta, GPGSIGS_KEY, sig)
}

/// Signs a commit with each key id, appending to its detached metadata.
pub fn sign_commit(
    repo: &Repo,
    commit: &Checksum,
    key_ids: &[String],
    homedir: Option<&Path>,
) -> Result<()> {
    let raw = repo.load_metadata_raw(ObjectType::Commit, commit)?;
    let mut meta = repo.load_detached_metadata(commit)?;
    for k in key_ids {
        let sig = detach_sign(&raw, k, homedir)?;
        meta = Some(with_gpgsig(meta.as_ref(), sig));
    }
    repo.write_detached_metadata(commit, meta.as_ref())
}

/// `summary.sig` bytes: `existing` (if any) plus one signature per key id.
pub fn sign_summary(summary: &[u8], key_ids: &[String], homedir: Option<&Path>) -> Result<Vec<u8>> {
    let mut meta: Option<Value> = None;
    for k in key_ids {
        meta = Some(with_gpgsig(
            meta.as_ref(),
            detach_sign(summary, k, homedir)?,
        ));
    }
    Ok(meta.unwrap_or_else(|| Value::dict_sv([])).to_bytes())
}

/// Verifies `data` against the OpenPGP signatures in `meta` with `keyring`:
/// `Ok` when at least one signature is good.
pub fn verify(data: &[u8], meta: Option<&Value>, keyring: &Path, what: &str) -> Result<()> {
    let sigs = gpgsigs(meta);
    if sigs.is_empty() {
        return Err(Error::Other(format!(
            "{what}: GPG verification enabled, but no signatures found"
        )));
    }
    let mut keyrings: Vec<PathBuf> = Vec::new();
    if keyring.exists() {
        keyrings.push(keyring.to_owned());
    }
    keyrings.extend(global_keyrings());
    if keyrings.is_empty() {
        return Err(Error::Other(format!(
            "{what}: GPG verification enabled, but there is no keyring at {}",
            keyring.display()
        )));
    }
    let dir = tempdir_for_verify()?;
    let data_path = dir.join("data");
    std::fs::write(&data_path, data).map_err(|source| Error::Io {
        op: "writing",
        path: data_path.clone(),
        source,
    })?;
    let mut last = String::new();
    for (i, s) in sigs.iter().enumerate() {
        let sig_path = dir.join(format!("sig{i}"));
        std::fs::write(&sig_path, s).map_err(|source| Error::Io {
            op: "writing",
            path: sig_path.clone(),
            source,
        })?;
        let mut cmd = Command::new("gpgv");
        for k in &keyrings {
            cmd.arg("--keyring").arg(k);
        }
        cmd.arg(&sig_path).arg(&data_path);
        match run_gpg(cmd, None, what) {
            Ok(_) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Ok(());
            }
            Err(e) => last = e.to_string(),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(Error::Other(format!(
        "{what}: no valid GPG signature ({} checked); last: {last}",
        sigs.len()
    )))
}

/// Keyrings trusted for every remote, as libostree reads them: each `*.gpg`
/// file in `$OSTREE_GPG_HOME`, else in `/usr/share/ostree/trusted.gpg.d`.
fn global_keyrings() -> Vec<PathBuf> {
    let dir = std::env::var_os("OSTREE_GPG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/ostree/trusted.gpg.d"));
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "gpg") && p.is_file())
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .collect();
    out.sort();
    out
}

fn tempdir_for_verify() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "rost-gpgv-{}-{}",
        std::process::id(),
        crate::fsutil::random_suffix()
    ));
    std::fs::create_dir(&dir).map_err(|source| Error::Io {
        op: "creating",
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Imports keys from `file` (binary or ASCII-armored) into a remote's keyring.
pub fn import_keys(repo: &Repo, remote: &str, file: &Path) -> Result<()> {
    let keyring = remote_keyring(repo, remote);
    let home = tempdir_for_verify()?;
    let mut cmd = Command::new("gpg");
    cmd.arg("--homedir").arg(&home);
    cmd.args(["--batch", "--no-tty", "--no-default-keyring", "--keyring"])
        .arg(&keyring)
        .arg("--import")
        .arg(file);
    let res = run_gpg(
        cmd,
        None,
        &format!("importing GPG keys from {}", file.display()),
    );
    let _ = std::fs::remove_dir_all(&home);
    res.map(|_| ())
}
