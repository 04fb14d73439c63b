//! `rost repo` integration tests, most of them against the real `ostree`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tree::{ManifestOpts, assert_same_tree, build_fixture, manifest};
use crate::util::{is_root, ostree, require_tool, rost, rrepo, run_fail, run_ok, tempdir};

const MODES: [&str; 4] = ["archive", "bare", "bare-user", "bare-user-only"];
const TS: &str = "2020-01-01T00:00:00Z";

fn commit_args(tree: &str) -> Vec<&str> {
    vec![
        "commit",
        "-b",
        "os/x86_64",
        "--timestamp",
        TS,
        "-s",
        "subject line",
        "--body",
        "a body\nwith two lines",
        "--add-metadata-string",
        "version=1.0",
        "--add-metadata-string",
        "rost.test=yes",
        tree,
    ]
}

fn object_files(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let objs = repo.join("objects");
    for d in std::fs::read_dir(&objs).unwrap() {
        let d = d.unwrap();
        for f in std::fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            out.push(format!(
                "{}/{}",
                d.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

fn manifest_opts(mode: &str) -> ManifestOpts {
    match mode {
        "bare-user-only" => ManifestOpts {
            owners: false,
            xattrs: false,
            canonical: true,
        },
        _ => ManifestOpts {
            owners: is_root(),
            xattrs: true,
            canonical: false,
        },
    }
}

/// Acceptance 1 and 2: same commit checksum and objects as ostree in every
/// mode; each tool fscks and checks out what the other wrote.
#[test]
fn interop_commit_parity_and_roundtrip_all_modes() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("repo-it-");
    let tree = tmp.path().join("tree");
    build_fixture(&tree, is_root());
    let tree_s = tree.to_str().unwrap();
    for mode in MODES {
        let o = tmp.path().join(format!("ostree-{mode}"));
        let r = tmp.path().join(format!("rost-{mode}"));
        run_ok(ostree(&o, &["init", &format!("--mode={mode}")]));
        run_ok(rrepo(&r, &["init", "--mode", mode]));
        let oc = run_ok(ostree(&o, &commit_args(tree_s)));
        let rc = run_ok(rrepo(&r, &commit_args(tree_s)));
        assert_eq!(
            rc.trim(),
            oc.trim(),
            "{mode}: commit checksum differs from ostree's"
        );
        assert_eq!(
            object_files(&r),
            object_files(&o),
            "{mode}: object sets differ"
        );
        for obj in object_files(&o) {
            if mode != "archive" || !obj.ends_with(".filez") {
                let read = |p: PathBuf| {
                    if p.symlink_metadata().unwrap().file_type().is_symlink() {
                        std::fs::read_link(p)
                            .unwrap()
                            .into_os_string()
                            .into_encoded_bytes()
                    } else {
                        std::fs::read(p).unwrap()
                    }
                };
                let a = read(o.join("objects").join(&obj));
                let b = read(r.join("objects").join(&obj));
                assert!(a == b, "{mode}: object {obj} differs in bytes");
            }
        }
        let ofsck = run_ok(ostree(&r, &["fsck"]));
        assert!(ofsck.contains("no errors found"), "{mode}: {ofsck}");
        run_ok(rrepo(&o, &["fsck"]));
        run_ok(rrepo(&r, &["fsck"]));

        let expected = manifest(&tree, manifest_opts(mode));
        let co_o = tmp.path().join(format!("co-ostree-of-rost-{mode}"));
        run_ok(ostree(
            &r,
            &["checkout", "os/x86_64", co_o.to_str().unwrap()],
        ));
        assert_same_tree(
            &format!("{mode}: ostree checkout of rost commit"),
            &expected,
            &manifest(&co_o, manifest_opts(mode)),
        );
        let co_r = tmp.path().join(format!("co-rost-of-ostree-{mode}"));
        run_ok(rrepo(
            &o,
            &["checkout", "os/x86_64", co_r.to_str().unwrap()],
        ));
        assert_same_tree(
            &format!("{mode}: rost checkout of ostree commit"),
            &expected,
            &manifest(&co_r, manifest_opts(mode)),
        );
    }
}

/// The read-only commands print what ostree prints for the same repo.
#[test]
fn interop_read_commands_match_ostree_output() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("repo-it-");
    let tree = tmp.path().join("tree");
    build_fixture(&tree, is_root());
    let o = tmp.path().join("o");
    run_ok(ostree(&o, &["init", "--mode=archive"]));
    run_ok(ostree(&o, &commit_args(tree.to_str().unwrap())));
    std::fs::write(tree.join("regular"), b"changed\n").unwrap();
    std::fs::remove_file(tree.join("rel-link")).unwrap();
    std::fs::create_dir_all(tree.join("newdir/inner")).unwrap();
    std::fs::write(tree.join("newdir/inner/x"), b"x").unwrap();
    std::fs::set_permissions(
        tree.join("sub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    run_ok(ostree(
        &o,
        &[
            "commit",
            "-b",
            "os/x86_64",
            "--timestamp=2021-02-03T04:05:06Z",
            "-s",
            "second",
            tree.to_str().unwrap(),
        ],
    ));
    run_ok(ostree(&o, &["refs", "--create=other/ref", "os/x86_64^"]));
    let cases: Vec<Vec<&str>> = vec![
        vec!["ls", "os/x86_64"],
        vec!["ls", "-R", "os/x86_64"],
        vec!["ls", "-R", "-X", "-C", "os/x86_64"],
        vec!["ls", "os/x86_64", "/sub", "/regular", "/abs-link"],
        vec!["ls", "-d", "os/x86_64", "/sub"],
        vec!["cat", "os/x86_64", "/regular"],
        vec!["show", "os/x86_64"],
        vec!["show", "os/x86_64^"],
        vec!["show", "--print-metadata-key=version", "os/x86_64^"],
        vec![
            "show",
            "--print-metadata-key=ostree.ref-binding",
            "os/x86_64",
        ],
        vec!["log", "os/x86_64"],
        vec!["refs"],
        vec!["rev-parse", "os/x86_64^"],
        vec!["rev-parse", "other/ref"],
        vec!["diff", "os/x86_64^", "os/x86_64"],
    ];
    for args in cases {
        let expected = run_ok(ostree(&o, &args));
        // Both spellings: rost's own and the argv0 `ostree` one.
        let mut ours = rost(&["repo", &format!("--repo={}", o.display())]);
        ours.args(&args);
        assert_eq!(run_ok(&mut ours), expected, "rost repo {args:?}");
    }
}

fn ostree_symlink(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(crate::util::rost_bin(), bin.join("ostree")).unwrap();
    bin.join("ostree")
}

/// Scripts written for ostree run unchanged against rost through argv0.
#[test]
fn interop_argv0_ostree_mode_accepts_ostree_argument_order() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("repo-it-");
    let tree = tmp.path().join("tree");
    build_fixture(&tree, false);
    let fake = ostree_symlink(tmp.path());
    let r = tmp.path().join("r");
    let o = tmp.path().join("o");
    run_ok(Command::new(&fake).args([
        format!("--repo={}", r.display()),
        "init".into(),
        "--mode=archive".into(),
    ]));
    run_ok(ostree(&o, &["init", "--mode=archive"]));
    let args = [
        "commit",
        "-b",
        "b",
        "--timestamp=2020-01-01T00:00:00Z",
        "-s",
        "s",
        tree.to_str().unwrap(),
    ];
    let ours = run_ok(
        Command::new(&fake)
            .arg(format!("--repo={}", r.display()))
            .args(args),
    );
    let theirs = run_ok(ostree(&o, &args));
    assert_eq!(ours, theirs);
    let out = run_ok(Command::new(&fake).args(["fsck", &format!("--repo={}", r.display())]));
    assert!(out.contains("no errors found"), "{out}");
}

fn commit_fixture(mode: &str) -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempdir("repo-it-");
    let tree = tmp.path().join("tree");
    build_fixture(&tree, false);
    let r = tmp.path().join("r");
    run_ok(rrepo(&r, &["init", "--mode", mode]));
    let c = run_ok(rrepo(
        &r,
        &[
            "commit",
            "-b",
            "b",
            "--timestamp",
            TS,
            tree.to_str().unwrap(),
        ],
    ));
    (tmp, r, c.trim().to_owned())
}

fn object_of(repo: &Path, path: &str, file_ext: &str) -> (String, PathBuf) {
    let line = run_ok(rrepo(repo, &["ls", "-C", "b", path]));
    let csum = line.split_whitespace().nth(4).unwrap().to_owned();
    let p = repo
        .join("objects")
        .join(&csum[..2])
        .join(format!("{}.{file_ext}", &csum[2..]));
    assert!(p.exists(), "{}", p.display());
    (csum, p)
}

fn root_dirtree(repo: &Path) -> (String, PathBuf) {
    let line = run_ok(rrepo(repo, &["ls", "-d", "-C", "b", "/"]));
    let csum = line.split_whitespace().nth(4).unwrap().to_owned();
    let p = repo
        .join("objects")
        .join(&csum[..2])
        .join(format!("{}.dirtree", &csum[2..]));
    (csum, p)
}

#[track_caller]
fn fsck_fails_naming(repo: &Path, needles: &[&str]) {
    let out = run_fail(rrepo(repo, &["fsck"]));
    let err = String::from_utf8_lossy(&out.stderr);
    for n in needles {
        assert!(err.contains(n), "fsck output lacks {n:?}:\n{err}");
    }
    assert_eq!(out.status.code(), Some(1));
}

/// Acceptance 3: corruption is found, named, and `--delete` removes it.
#[test]
fn interop_fsck_detects_and_names_corruption() {
    let have_ostree = require_tool("ostree");
    for (mode, ext) in [("archive", "filez"), ("bare-user", "file")] {
        // A flipped byte in a content object.
        let (_t, r, _) = commit_fixture(mode);
        let (csum, p) = object_of(&r, "/big.bin", ext);
        let mut data = std::fs::read(&p).unwrap();
        let n = data.len();
        data[n / 2] ^= 0x55;
        let perm = std::fs::metadata(&p).unwrap().permissions();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        std::fs::write(&p, &data).unwrap();
        std::fs::set_permissions(&p, perm).unwrap();
        fsck_fails_naming(&r, &[&csum, "fsck content object"]);
        if have_ostree {
            assert!(
                !ostree(&r, &["fsck"]).output().unwrap().status.success(),
                "ostree fsck missed the flip"
            );
        }
        run_fail(rrepo(&r, &["fsck", "--delete"]));
        assert!(!p.exists(), "--delete left the corrupt object");

        // A truncated dirtree.
        let (_t, r, _) = commit_fixture(mode);
        let (csum, p) = root_dirtree(&r);
        let data = std::fs::read(&p).unwrap();
        std::fs::write(&p, &data[..data.len() / 2]).unwrap();
        fsck_fails_naming(&r, &[&csum, "dirtree"]);

        // An object missing under a commit.
        let (_t, r, _) = commit_fixture(mode);
        let (csum, p) = object_of(&r, "/sub/file", ext);
        std::fs::remove_file(&p).unwrap();
        fsck_fails_naming(&r, &[&format!("{csum}.file"), "missing"]);

        // A ref to a missing commit.
        let (_t, r, _) = commit_fixture(mode);
        let bogus = "ab".repeat(32);
        std::fs::write(r.join("refs/heads/dangling"), format!("{bogus}\n")).unwrap();
        fsck_fails_naming(&r, &["dangling", &bogus]);
    }
}

fn no_staging_left(repo: &Path) {
    let left: Vec<_> = std::fs::read_dir(repo.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("staging-"))
        .collect();
    assert!(left.is_empty(), "staging dirs left behind: {left:?}");
}

fn assert_clean_failure(repo: &Path, out: &std::process::Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for n in needles {
        assert!(err.contains(n), "error lacks {n:?}: {err}");
    }
    assert_eq!(
        run_ok(rrepo(repo, &["refs"])),
        "",
        "a failed commit wrote a ref"
    );
    no_staging_left(repo);
    run_ok(rrepo(repo, &["fsck"]));
}

/// Acceptance 5: bad input gets an error naming the path; nothing half-written.
#[test]
fn bad_input_is_named_and_nothing_is_half_written() {
    let tmp = tempdir("repo-it-");
    let missing = tmp.path().join("no-such-repo");
    let out = run_fail(rrepo(
        &missing,
        &["commit", "-b", "b", tmp.path().to_str().unwrap()],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-repo"));

    let r = tmp.path().join("r");
    run_ok(rrepo(&r, &["init", "--mode", "archive"]));

    let t1 = tmp.path().join("t-nonutf8");
    std::fs::create_dir_all(&t1).unwrap();
    std::fs::write(t1.join("ok"), b"fine").unwrap();
    std::fs::write(
        t1.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad-\xff-name")),
        b"x",
    )
    .unwrap();
    let out = rrepo(&r, &["commit", "-b", "b", t1.to_str().unwrap()])
        .output()
        .unwrap();
    assert_clean_failure(&r, &out, &["t-nonutf8", "Invalid UTF-8 in filename"]);

    let t2 = tmp.path().join("t-fifo");
    std::fs::create_dir_all(&t2).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        t2.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let out = rrepo(&r, &["commit", "-b", "b", t2.to_str().unwrap()])
        .output()
        .unwrap();
    assert_clean_failure(&r, &out, &["t-fifo/pipe", "FIFO"]);

    let t3 = tmp.path().join("t-socket");
    std::fs::create_dir_all(&t3).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(t3.join("sock")).unwrap();
    let out = rrepo(&r, &["commit", "-b", "b", t3.to_str().unwrap()])
        .output()
        .unwrap();
    assert_clean_failure(&r, &out, &["t-socket/sock", "socket"]);

    if is_root() {
        let t4 = tmp.path().join("t-dev");
        std::fs::create_dir_all(&t4).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t4.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        let out = rrepo(&r, &["commit", "-b", "b", t4.to_str().unwrap()])
            .output()
            .unwrap();
        assert_clean_failure(&r, &out, &["t-dev/null", "character device"]);
    }

    // An unreadable file: as root, run rost as nobody.
    let t5 = tmp.path().join("t-unreadable");
    std::fs::create_dir_all(&t5).unwrap();
    std::fs::write(t5.join("secret"), b"x").unwrap();
    std::fs::set_permissions(
        t5.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    if is_root() {
        if !require_tool("setpriv") {
            return;
        }
        let r2 = tmp.path().join("r-nobody");
        for p in [tmp.path(), t5.as_path()] {
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .unwrap();
        }
        let as_nobody = |args: &[&str]| {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            c.arg(crate::util::rost_bin());
            c.args(["repo", "--repo", r2.to_str().unwrap()]);
            c.args(args);
            c
        };
        run_ok(&mut as_nobody(&["init", "--mode", "bare-user"]));
        let out = as_nobody(&["commit", "-b", "b", t5.to_str().unwrap()])
            .output()
            .unwrap();
        assert_clean_failure(&r2, &out, &["t-unreadable/secret", "Permission denied"]);
    } else {
        let out = rrepo(&r, &["commit", "-b", "b", t5.to_str().unwrap()])
            .output()
            .unwrap();
        assert_clean_failure(&r, &out, &["t-unreadable/secret", "Permission denied"]);
    }
}

/// Checkout flags: hardlinks from bare-user in user mode, copies from archive,
/// --require-hardlinks, --subpath, --union.
#[test]
fn checkout_modes_and_options() {
    use std::os::unix::fs::MetadataExt;
    let (tmp, r, _) = commit_fixture("bare-user");
    let co = tmp.path().join("co-user");
    run_ok(rrepo(
        &r,
        &[
            "checkout",
            "-U",
            "--require-hardlinks",
            "b",
            co.to_str().unwrap(),
        ],
    ));
    assert!(
        std::fs::metadata(co.join("big.bin")).unwrap().nlink() > 1,
        "expected a hardlink"
    );
    assert_eq!(
        std::fs::metadata(co.join("empty")).unwrap().nlink(),
        1,
        "empty files are copied"
    );
    assert_eq!(std::fs::metadata(co.join("big.bin")).unwrap().mtime(), 0);

    let sub = tmp.path().join("co-sub");
    run_ok(rrepo(
        &r,
        &[
            "checkout",
            "-U",
            "--subpath",
            "/sub",
            "b",
            sub.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read(sub.join("file")).unwrap(), b"in sub\n");

    let err = run_fail(rrepo(&r, &["checkout", "-U", "b", co.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&err.stderr).contains("co-user"));
    // Replace (not write through) the hardlink, which would corrupt the object.
    std::fs::remove_file(co.join("regular")).unwrap();
    std::fs::write(co.join("regular"), b"local edit").unwrap();
    run_ok(rrepo(
        &r,
        &["checkout", "-U", "--union", "b", co.to_str().unwrap()],
    ));
    assert_eq!(std::fs::read(co.join("regular")).unwrap(), b"hello\n");

    let (tmp, r, _) = commit_fixture("archive");
    let out = run_fail(rrepo(
        &r,
        &[
            "checkout",
            "-U",
            "--require-hardlinks",
            "b",
            tmp.path().join("x").to_str().unwrap(),
        ],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("require-hardlinks"));
    let co = tmp.path().join("co-archive");
    run_ok(rrepo(&r, &["checkout", "-U", "b", co.to_str().unwrap()]));
    assert_eq!(std::fs::metadata(co.join("big.bin")).unwrap().nlink(), 1);
}

/// Two commits into one repo at the same time both land.
#[test]
fn interop_concurrent_commits_both_succeed() {
    let tmp = tempdir("repo-it-");
    let r = tmp.path().join("r");
    run_ok(rrepo(&r, &["init", "--mode", "archive"]));
    let mut children = Vec::new();
    for i in 0..2 {
        let tree = tmp.path().join(format!("tree{i}"));
        build_fixture(&tree, false);
        std::fs::write(tree.join("which"), format!("{i}")).unwrap();
        children.push(
            rrepo(
                &r,
                &[
                    "commit",
                    "-b",
                    &format!("branch{i}"),
                    tree.to_str().unwrap(),
                ],
            )
            .spawn()
            .unwrap(),
        );
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let refs = run_ok(rrepo(&r, &["refs"]));
    assert_eq!(refs, "branch0\nbranch1\n");
    run_ok(rrepo(&r, &["fsck"]));
    if require_tool("ostree") {
        run_ok(ostree(&r, &["fsck"]));
    }
    no_staging_left(&r);
}

/// prune keeps what refs reach and deletes the rest, like ostree's.
#[test]
fn interop_prune_matches_ostree() {
    if !require_tool("ostree") {
        return;
    }
    let tmp = tempdir("repo-it-");
    let tree = tmp.path().join("tree");
    build_fixture(&tree, false);
    let base = tmp.path().join("base");
    run_ok(ostree(&base, &["init", "--mode=archive"]));
    for year in 2019..2022 {
        std::fs::write(tree.join("gen"), format!("{year}")).unwrap();
        let ts = format!("--timestamp={year}-01-01T00:00:00Z");
        run_ok(ostree(
            &base,
            &["commit", "-b", "main", &ts, tree.to_str().unwrap()],
        ));
    }
    std::fs::write(tree.join("gen"), "side").unwrap();
    run_ok(ostree(
        &base,
        &["commit", "-b", "side", tree.to_str().unwrap()],
    ));
    run_ok(ostree(&base, &["refs", "--delete", "side"]));
    for args in [
        vec!["prune", "--refs-only"],
        vec!["prune", "--refs-only", "--depth=0"],
        vec!["prune"],
        vec!["prune", "--keep-younger-than=2020-06-01 00:00:00"],
    ] {
        let a = tmp.path().join(format!("a{}", args.join("_")));
        let b = tmp.path().join(format!("b{}", args.join("_")));
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
        run_ok(Command::new("cp").args(["-a", base.to_str().unwrap(), a.to_str().unwrap()]));
        run_ok(Command::new("cp").args(["-a", base.to_str().unwrap(), b.to_str().unwrap()]));
        let theirs = run_ok(ostree(&a, &args));
        let ours = run_ok(rrepo(&b, &args));
        assert_eq!(ours, theirs, "{args:?}: output");
        assert_eq!(object_files(&b), object_files(&a), "{args:?}");
        run_ok(ostree(&b, &["fsck"]));
    }
}
