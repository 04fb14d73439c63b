//! rost run as `ostree` (a symlink named `ostree`): the same command lines
//! against rost and the real ostree must give the same results, outputs and
//! error texts (libostree's test suite and scripts match them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{require_tool, tempdir};

/// The two tools under comparison: rost through an `ostree` symlink, and
/// the real one.
fn tools(dir: &Path) -> [PathBuf; 2] {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(crate::util::rost_bin(), bin.join("ostree")).unwrap();
    [bin.join("ostree"), PathBuf::from("ostree")]
}

/// Runs `tool ARGS…` in `cwd`.
fn run(tool: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(tool)
        .current_dir(cwd)
        .args(args)
        .env_remove("OSTREE_REPO")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("spawn")
}

#[track_caller]
fn ok(tool: &Path, cwd: &Path, args: &[&str]) -> String {
    let o = run(tool, cwd, args);
    assert!(
        o.status.success(),
        "{} {args:?} failed\nstdout: {}\nstderr: {}",
        tool.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The `error:` lines of a command that must fail (ostree adds its usage
/// text to some; rost does not).
#[track_caller]
fn fails(tool: &Path, cwd: &Path, args: &[&str]) -> String {
    let o = run(tool, cwd, args);
    assert!(
        !o.status.success(),
        "{} {args:?} unexpectedly succeeded",
        tool.display()
    );
    String::from_utf8(o.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// All of stderr of a command that must fail.
#[track_caller]
fn stderr_of_failure(tool: &Path, cwd: &Path, args: &[&str]) -> String {
    let o = run(tool, cwd, args);
    assert!(
        !o.status.success(),
        "{} {args:?} unexpectedly succeeded",
        tool.display()
    );
    String::from_utf8(o.stderr).unwrap()
}

/// A fresh work dir per tool with a repo `r` of `mode` holding two commits
/// of a small tree on branch `b`.
fn setup(root: &Path, tool: &Path, name: &str, mode: &str) -> PathBuf {
    let w = root.join(name);
    std::fs::create_dir_all(w.join("t/d")).unwrap();
    std::fs::write(w.join("t/a"), "a\n").unwrap();
    std::fs::write(w.join("t/d/b"), "b\n").unwrap();
    ok(tool, &w, &["--repo=r", "init", &format!("--mode={mode}")]);
    for ts in ["@1000000000", "@1000000100"] {
        ok(
            tool,
            &w,
            &[
                "--repo=r",
                "commit",
                "-b",
                "b",
                "-s",
                "s",
                "--timestamp",
                ts,
                "t",
            ],
        );
        std::fs::write(w.join("t/a"), "a2\n").unwrap();
    }
    w
}

#[test]
fn interop_config_get_set_unset_and_their_errors() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "archive");
        let mut log = String::new();
        log += &ok(tool, &w, &["config", "--repo=r", "get", "core.mode"]);
        log += &ok(
            tool,
            &w,
            &["config", "--repo=r", "get", "--group=core", "repo_version"],
        );
        ok(
            tool,
            &w,
            &[
                "config",
                "--repo=r",
                "--",
                "set",
                "core.lock-timeout-secs",
                "-1",
            ],
        );
        log += &ok(
            tool,
            &w,
            &["config", "--repo=r", "get", "core.lock-timeout-secs"],
        );
        ok(
            tool,
            &w,
            &["config", "--repo=r", "unset", "core.lock-timeout-secs"],
        );
        ok(
            tool,
            &w,
            &["config", "--repo=r", "unset", "--group=nosuch", "k"],
        );
        log += &fails(
            tool,
            &w,
            &["config", "--repo=r", "get", "core.lock-timeout-secs"],
        );
        log += &fails(tool, &w, &["config", "--repo=r", "get", "nodot"]);
        log += &fails(
            tool,
            &w,
            &["config", "--repo=r", "get", "--group=nosuch", "k"],
        );
        log += &fails(
            tool,
            &w,
            &["config", "--repo=r", "set", "core.a", "b", "extra"],
        );
        // Of two --repo options the last one counts.
        log += &ok(
            tool,
            &w,
            &[
                "--repo=nonexistent",
                "--repo=r",
                "config",
                "get",
                "core.mode",
            ],
        );
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_refs_prefixes_aliases_and_errors() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "archive");
        let mut log = String::new();
        for new in ["foo/x", "foo/y", "origin:z"] {
            ok(
                tool,
                &w,
                &["--repo=r", "refs", "b", &format!("--create={new}")],
            );
        }
        let mut sorted = |s: String| {
            let mut l: Vec<&str> = s.lines().collect();
            l.sort();
            log += &l.join("\n");
            log.push('\n');
        };
        sorted(ok(tool, &w, &["--repo=r", "refs", "foo"]));
        sorted(ok(tool, &w, &["--repo=r", "refs", "--list", "foo"]));
        sorted(ok(tool, &w, &["--repo=r", "refs", "origin:"]));
        ok(
            tool,
            &w,
            &["--repo=r", "refs", "-A", "foo/x", "--create=al/one"],
        );
        sorted(ok(tool, &w, &["--repo=r", "refs", "-A"]));
        let x = ok(tool, &w, &["--repo=r", "rev-parse", "foo/x"]);
        assert_eq!(x, ok(tool, &w, &["--repo=r", "rev-parse", "al/one"]));
        // A dot file in refs/ is no ref.
        std::fs::write(w.join("r/refs/heads/.hidden"), "junk").unwrap();
        sorted(ok(tool, &w, &["--repo=r", "refs"]));
        log += &fails(tool, &w, &["--repo=r", "refs", "--delete", "foo/x"]);
        // Which ref under foo/ is named depends on directory order.
        let e = fails(tool, &w, &["--repo=r", "refs", "b", "--create=foo"]);
        assert!(
            e.starts_with("error: Conflict: ")
                && e.contains(" exists under foo when attempting write"),
            "{e}"
        );
        log += &fails(tool, &w, &["--repo=r", "refs", "b", "--create=foo/y"]);
        log += &fails(tool, &w, &["--repo=r", "refs", "b", "--create=-bad"]);
        log += &fails(tool, &w, &["--repo=r", "refs", "--create=new"]);
        log += &fails(
            tool,
            &w,
            &["--repo=r", "refs", "-A", "nosuch", "--create=n"],
        );
        log += &fails(tool, &w, &["--repo=r", "refs", "-A", "b", "--create=o:n"]);
        ok(
            tool,
            &w,
            &["--repo=r", "refs", "b", "--create=foo/y", "--force"],
        );
        ok(
            tool,
            &w,
            &["--repo=r", "refs", "--delete", "foo/y", "nosuch"],
        );
        // Remote refs resolve by their bare name too.
        log += &ok(tool, &w, &["--repo=r", "rev-parse", "z"]);
        // Checksum prefixes resolve.
        log += &ok(tool, &w, &["--repo=r", "rev-parse", &x[..10]]);
        log += &fails(tool, &w, &["--repo=r", "rev-parse", "-S"]);
        ok(tool, &w, &["--repo=r", "reset", "b", "b^"]);
        log += &ok(tool, &w, &["--repo=r", "log", "b"]);
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_fsck_delete_marks_partial_and_pull_local_repairs() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "archive");
        ok(tool, &w, &["--repo=c", "init", "--mode=archive"]);
        ok(tool, &w, &["--repo=c", "pull-local", "r", "b"]);
        let c = ok(tool, &w, &["--repo=c", "rev-parse", "b"]);
        let c = c.trim();
        // Damage the content object of /a.
        let ls = ok(tool, &w, &["--repo=c", "ls", "-C", "b", "/a"]);
        let f = ls.split_whitespace().nth(4).unwrap().to_owned();
        let obj = w.join(format!("c/objects/{}/{}.filez", &f[..2], &f[2..]));
        std::fs::remove_file(&obj).unwrap();
        std::fs::write(&obj, "whoops").unwrap();
        let mut log = String::new();
        let e = fails(tool, &w, &["--repo=c", "fsck"]);
        assert!(e.starts_with(&format!("error: In commits {c}")), "{e}");
        let e = stderr_of_failure(tool, &w, &["--repo=c", "fsck", "--delete"]);
        assert!(
            e.contains(&format!("Marking commit as partial: {c}")),
            "{e}"
        );
        assert!(w.join(format!("c/state/{c}.commitpartial")).is_file());
        log += &fails(tool, &w, &["--repo=c", "fsck"]);
        ok(tool, &w, &["--repo=c", "pull-local", "r", "b"]);
        assert!(!w.join(format!("c/state/{c}.commitpartial")).exists());
        let out = ok(tool, &w, &["--repo=c", "fsck"]);
        assert!(out.starts_with("Validating refs...\n"), "{out}");
        assert!(out.contains("no errors found"), "{out}");
        // A missing object marks its commit partial even without --delete.
        std::fs::remove_file(&obj).unwrap();
        let e = stderr_of_failure(tool, &w, &["--repo=c", "fsck", "-q"]);
        assert!(e.contains("Object missing"), "{e}");
        assert!(w.join(format!("c/state/{c}.commitpartial")).is_file());
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_commit_flags_bootable_skip_if_unchanged_source_date_epoch() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "bare-user");
        std::fs::create_dir_all(w.join("k/usr/lib/modules/5.1")).unwrap();
        std::fs::write(w.join("k/usr/lib/modules/5.1/vmlinuz"), "k").unwrap();
        let mut log = String::new();
        let c = ok(
            tool,
            &w,
            &[
                "--repo=r",
                "commit",
                "--bootable",
                "-b",
                "k",
                "--timestamp=@5",
                "k",
            ],
        );
        log += &c;
        for key in ["ostree.linux", "ostree.bootable"] {
            // An option before the command, as admin-test.sh writes it.
            log += &ok(
                tool,
                &w,
                &[
                    "--repo=r",
                    &format!("--print-metadata-key={key}"),
                    "show",
                    "k",
                ],
            );
        }
        log += &fails(
            tool,
            &w,
            &["--repo=r", "commit", "--bootable", "-b", "x", "t"],
        );
        let again = ok(
            tool,
            &w,
            &["--repo=r", "commit", "--skip-if-unchanged", "-b", "k", "k"],
        );
        assert_eq!(again, c, "--skip-if-unchanged made a new commit");
        let env = |v: &str| {
            Command::new(tool)
                .current_dir(&w)
                .env("SOURCE_DATE_EPOCH", v)
                .args(["--repo=r", "commit", "-b", "e", "t"])
                .output()
                .unwrap()
        };
        log += &String::from_utf8(env("1234567890").stdout).unwrap();
        for bad in ["invalid", "12345678901234567890"] {
            let o = env(bad);
            assert!(!o.status.success());
            log += &String::from_utf8(o.stderr).unwrap();
        }
        log += &ok(tool, &w, &["--repo=r", "show", "e"]);
        ok(
            tool,
            &w,
            &["--repo=r", "commit", "--consume", "-b", "t", "--tree=dir=t"],
        );
        assert!(!w.join("t").exists(), "--consume left the tree");
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn version_is_yaml_with_features() {
    let tmp = tempdir("ostree-mode-");
    let [rost, _] = tools(tmp.path());
    let out = ok(&rost, tmp.path(), &["--version"]);
    assert!(out.starts_with("libostree:\n Version: '2022.7'\n"), "{out}");
    assert!(out.contains("\n Features:\n"), "{out}");
    assert!(out.contains("  - sign-ed25519\n"), "{out}");
}

#[test]
fn interop_diff_against_a_directory_and_checksum() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "bare-user");
        ok(tool, &w, &["--repo=r", "checkout", "-U", "b", "co"]);
        std::fs::write(w.join("co/new"), "n\n").unwrap();
        std::fs::create_dir(w.join("co/nd")).unwrap();
        std::fs::write(w.join("co/nd/x"), "x\n").unwrap();
        std::fs::remove_dir_all(w.join("co/d")).unwrap();
        std::fs::write(w.join("co/d"), "now a file\n").unwrap();
        std::fs::remove_file(w.join("co/a")).unwrap();
        let mut log = String::new();
        log += &ok(tool, &w, &["--repo=r", "diff", "b", "./co"]);
        log += &ok(tool, &w, &["--repo=r", "diff", "b^", "b"]);
        // A type change is a modification.
        ok(
            tool,
            &w,
            &[
                "--repo=r",
                "commit",
                "-b",
                "c",
                "--timestamp=@7",
                "--tree=dir=co",
            ],
        );
        log += &ok(tool, &w, &["--repo=r", "diff", "b", "c"]);
        // `checksum` names the object a file would be stored as.
        let sum = ok(tool, &w, &["checksum", "co/new"]);
        let ls = ok(tool, &w, &["--repo=r", "ls", "-C", "c", "/new"]);
        assert_eq!(ls.split_whitespace().nth(4), Some(sum.trim()), "{ls}");
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_pull_local_hardlinks_and_bareuseronly_files() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "bare-user");
        let c = ok(tool, &w, &["--repo=r", "rev-parse", "b"]);
        let c = c.trim();
        let commit_rel = format!("objects/{}/{}.commit", &c[..2], &c[2..]);
        let ino = |p: &str| std::fs::metadata(w.join(p)).unwrap().ino();
        // Same mode: content and metadata are hardlinked.
        ok(tool, &w, &["--repo=s", "init", "--mode=bare-user"]);
        let out = ok(tool, &w, &["--repo=s", "pull-local", "r", "b"]);
        assert!(out.contains("content objects imported"), "{out}");
        assert_eq!(
            ino(&format!("r/{commit_rel}")),
            ino(&format!("s/{commit_rel}"))
        );
        let ls = ok(tool, &w, &["--repo=r", "ls", "-C", "b", "/a"]);
        let f = ls.split_whitespace().nth(4).unwrap().to_owned();
        let file_rel = format!("objects/{}/{}.file", &f[..2], &f[2..]);
        assert_eq!(ino(&format!("r/{file_rel}")), ino(&format!("s/{file_rel}")));
        // Another mode: metadata still is.
        ok(tool, &w, &["--repo=z", "init", "--mode=archive"]);
        ok(tool, &w, &["--repo=z", "pull-local", "r", "b"]);
        assert_eq!(
            ino(&format!("r/{commit_rel}")),
            ino(&format!("z/{commit_rel}"))
        );
        // --bareuseronly-files refuses a setuid file.
        std::fs::write(w.join("t/suid"), "s\n").unwrap();
        std::fs::set_permissions(w.join("t/suid"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        ok(
            tool,
            &w,
            &["--repo=r", "commit", "-b", "suid", "--timestamp=@9", "t"],
        );
        ok(tool, &w, &["--repo=u", "init", "--mode=archive"]);
        let e = fails(
            tool,
            &w,
            &[
                "--repo=u",
                "pull-local",
                "--bareuseronly-files",
                "r",
                "suid",
            ],
        );
        assert!(
            e.contains("Content object ") && e.contains(": invalid mode 0104755 with bits 04000"),
            "{e}"
        );
        ok(
            tool,
            &w,
            &["--repo=u", "pull-local", "--bareuseronly-files", "r", "b"],
        );
        results.push(ok(tool, &w, &["--repo=u", "refs"]));
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_repo_through_a_symlink_and_pull_url_override() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "archive");
        std::os::unix::fs::symlink("r", w.join("link")).unwrap();
        let mut log = ok(tool, &w, &["--repo=link", "rev-parse", "b"]);
        ok(tool, &w, &["--repo=m", "init", "--mode=archive"]);
        let bogus = format!("file://{}/nonexistent", w.display());
        let real = format!("file://{}/r", w.display());
        ok(
            tool,
            &w,
            &["--repo=m", "remote", "add", "--no-gpg-verify", "o", &bogus],
        );
        fails(tool, &w, &["--repo=m", "pull", "o", "b"]);
        ok(
            tool,
            &w,
            &["--repo=m", "pull", &format!("--url={real}"), "o", "b"],
        );
        log += &ok(tool, &w, &["--repo=m", "rev-parse", "o:b"]);
        // The override does not change the configured URL.
        log += &ok(tool, &w, &["--repo=m", "remote", "show-url", "o"])
            .replace(&w.display().to_string(), "W");
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_commit_statoverride_and_skip_list() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "bare-user");
        std::fs::write(w.join("t/x"), "x\n").unwrap();
        std::fs::write(w.join("t/d/y"), "y\n").unwrap();
        std::fs::write(w.join("so.txt"), "2048 /a\n+1 /d\n=384 /x\n").unwrap();
        std::fs::write(w.join("skip.txt"), "/d/y\n").unwrap();
        ok(
            tool,
            &w,
            &[
                "--repo=r",
                "commit",
                "-b",
                "s",
                "--timestamp=@3",
                "--statoverride=so.txt",
                "--skip-list=skip.txt",
                "t",
            ],
        );
        results.push(ok(tool, &w, &["--repo=r", "ls", "-R", "s"]));
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_cat_follows_symlinks_and_checkout_of_a_file_subpath() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "bare-user");
        std::os::unix::fs::symlink("d/b", w.join("t/l1")).unwrap();
        std::os::unix::fs::symlink("l1", w.join("t/l2")).unwrap();
        std::os::unix::fs::symlink("d", w.join("t/ld")).unwrap();
        ok(
            tool,
            &w,
            &["--repo=r", "commit", "-b", "l", "--timestamp=@4", "t"],
        );
        let mut log = ok(tool, &w, &["--repo=r", "cat", "l", "/l2"]);
        for p in ["/d", "/ld"] {
            let e = fails(tool, &w, &["--repo=r", "cat", "l", p]);
            assert!(e.contains("open directory"), "{p}: {e}");
        }
        ok(
            tool,
            &w,
            &[
                "--repo=r",
                "checkout",
                "-U",
                "--subpath",
                "/d/b",
                "l",
                "sub",
            ],
        );
        log += &std::fs::read_to_string(w.join("sub/b")).unwrap();
        // ostree ignores arguments after `init`.
        ok(tool, &w, &["--repo=n", "init", "extra", "--mode=archive"]);
        log += &ok(tool, &w, &["--repo=n", "config", "get", "core.mode"]);
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn interop_trusted_local_pulls_mode_ro_executables_and_missing_remotes_dir() {
    use std::os::unix::fs::PermissionsExt;
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("ostree-mode-");
    let mut results = Vec::new();
    for (i, tool) in tools(tmp.path()).iter().enumerate() {
        let w = setup(tmp.path(), tool, &format!("w{i}"), "bare-user");
        // A corrupt object in the source: --untrusted notices, a trusted
        // pull-local (libostree's default) hardlinks it as it is.
        let ls = ok(tool, &w, &["--repo=r", "ls", "-C", "b", "/a"]);
        let f = ls.split_whitespace().nth(4).unwrap().to_owned();
        let obj = w.join(format!("r/objects/{}/{}.file", &f[..2], &f[2..]));
        // Appended in place, so the object keeps its user.ostreemeta xattr.
        std::io::Write::write_all(
            &mut std::fs::OpenOptions::new().append(true).open(&obj).unwrap(),
            b"junk",
        )
        .unwrap();
        ok(tool, &w, &["--repo=s", "init", "--mode=bare-user"]);
        let e = fails(
            tool,
            &w,
            &["--repo=s", "pull-local", "--untrusted", "r", "b"],
        );
        assert!(e.contains("Corrupted") || e.contains("corrupted"), "{e}");
        ok(tool, &w, &["--repo=s", "pull-local", "r", "b"]);
        // --mode-ro-executables drops the write bits of executables only.
        std::fs::write(w.join("t/exe"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(w.join("t/exe"), std::fs::Permissions::from_mode(0o775)).unwrap();
        ok(
            tool,
            &w,
            &[
                "--repo=s",
                "commit",
                "-b",
                "x",
                "--timestamp=@8",
                "--mode-ro-executables",
                "t",
            ],
        );
        let mut log = ok(tool, &w, &["--repo=s", "ls", "x", "/exe", "/d/b"]);
        std::fs::rename(w.join("s/refs/remotes"), w.join("s/remotes.orig")).unwrap();
        log += &fails(tool, &w, &["--repo=s", "refs", "--list"]);
        results.push(log);
    }
    assert_eq!(results[0], results[1]);
}
