//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the freshly built `rost` binary.
pub fn rost_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rost"))
}

/// A `Command` running `rost` with the given arguments.
pub fn rost(args: &[&str]) -> Command {
    let mut cmd = Command::new(rost_bin());
    cmd.args(args);
    cmd
}

/// Whether `CI=true` is set: then missing tools are failures, not skips.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns true when `tool` is on PATH. Under CI a missing tool panics, so an
/// interop test can never pass by silently skipping.
pub fn require_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(tool))))
        .unwrap_or(false);
    if !found {
        if in_ci() {
            panic!("required tool `{tool}` is not installed (CI=true: missing tools are failures)");
        }
        eprintln!("SKIP: `{tool}` not installed");
    }
    found
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether the tests run as root (needed for real ownership and `security.*` xattrs).
pub fn is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc to avoid a libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Runs a command, panicking with its stderr when it fails; returns stdout.
#[track_caller]
pub fn run_ok(mut cmd: impl std::borrow::BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let out = cmd.output().expect("spawn");
    assert_success(&out, &format!("{cmd:?}"));
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs a command that must fail; returns its output.
#[track_caller]
pub fn run_fail(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    let out = cmd.output().expect("spawn");
    assert!(
        !out.status.success(),
        "{cmd:?} unexpectedly succeeded\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

#[track_caller]
fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ostree --repo=REPO ARGS…` (the real tool).
pub fn ostree(repo: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display()));
    c.args(args);
    c
}

/// `rost repo --repo REPO ARGS…`.
pub fn rrepo(repo: &Path, args: &[&str]) -> Command {
    let mut c = rost(&["repo", "--repo", repo.to_str().expect("UTF-8 test path")]);
    c.args(args);
    c
}

/// A fresh directory beside the build dir (same filesystem as the repos,
/// xattr-capable), removed on drop.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).expect("creating the test tmpdir");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .expect("creating a tempdir")
}

/// The cargo target directory (where costly fixtures are cached).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// One package to build: spec file name, spec text, `rpmbuild --target` arch.
pub struct SpecFile {
    /// File name under SPECS/.
    pub file: String,
    /// The spec.
    pub text: String,
    /// `--target` for rpmbuild (None for noarch).
    pub target: Option<String>,
}

/// Builds (or reuses) an rpm-md repository of `specs` with the real rpmbuild and
/// createrepo_c, cached under `target/rost-fixtures/TAG-HASH/` (built aside and
/// renamed in, so parallel test processes share it). Returns the directory
/// holding `repodata/` and the RPMs.
pub fn rpm_fixture_repo(tag: &str, specs: &[SpecFile]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tag.hash(&mut h);
    for s in specs {
        (&s.file, &s.text, &s.target).hash(&mut h);
    }
    let root = target_dir().join("rost-fixtures");
    let dir = root.join(format!("{tag}-{:016x}", h.finish()));
    if dir.join("repo/repodata/repomd.xml").is_file() {
        return dir.join("repo");
    }
    std::fs::create_dir_all(&root).expect("creating the fixture cache");
    let tmp = tempfile::tempdir_in(&root).expect("creating a fixture build dir");
    let top = tmp.path().join("build");
    let repo = tmp.path().join("out/repo");
    std::fs::create_dir_all(top.join("SPECS")).expect("creating SPECS");
    std::fs::create_dir_all(&repo).expect("creating the repo dir");
    for s in specs {
        let spec = top.join("SPECS").join(&s.file);
        std::fs::write(&spec, &s.text).expect("writing a spec");
        let mut cmd = Command::new("rpmbuild");
        cmd.arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", repo.display()))
            .arg("--define")
            .arg("_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm");
        if let Some(t) = &s.target {
            cmd.arg("--target").arg(t);
        }
        cmd.arg("-bb").arg(&spec);
        run_ok(&mut cmd);
    }
    run_ok(Command::new("createrepo_c").arg("--quiet").arg(&repo));
    match std::fs::rename(tmp.path().join("out"), &dir) {
        Ok(()) => {}
        // Another test process built the same fixture first.
        Err(_) if dir.join("repo/repodata/repomd.xml").is_file() => {}
        Err(e) => panic!("renaming fixture into place: {e}"),
    }
    dir.join("repo")
}
