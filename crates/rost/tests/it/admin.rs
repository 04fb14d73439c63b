//! `rost admin` integration tests (sysroot work): the same sequences against
//! the real `ostree admin` and rost, compared; /etc merge; crash safety; bad input.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{is_root, require_tool, rost, run_fail, run_ok};

const OS: &str = "testos";

fn tempdir() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("admin-it-")
        .tempdir_in(base)
        .unwrap()
}

/// Clears the immutable bit ostree and rost set on deployment roots, so the
/// temp dir can be removed.
struct Unimmutable(PathBuf);

impl Drop for Unimmutable {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for d in {}/*/ostree/deploy/*/deploy/*/ {}/ostree/deploy/*/deploy/*/; do chattr -i \"$d\" 2>/dev/null; done; true",
                self.0.display(),
                self.0.display()
            ))
            .status();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Ostree,
    Rost,
}

fn admin(tool: Tool, sysroot: &Path, args: &[&str]) -> Command {
    let mut c = match tool {
        Tool::Ostree => {
            let mut c = Command::new("ostree");
            c.arg("admin");
            c
        }
        Tool::Rost => rost(&["admin"]),
    };
    c.args(args);
    c.arg(format!("--sysroot={}", sysroot.display()));
    c
}

fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A bootable tree: kernel + initramfs under usr/lib/modules, os-release, usr/etc.
fn make_tree(dir: &Path, kernel: &str, etc: &[(&str, &str)]) {
    let _ = std::fs::remove_dir_all(dir);
    write(&dir.join("usr/lib/modules/5.0.0-test/vmlinuz"), kernel);
    write(
        &dir.join("usr/lib/modules/5.0.0-test/initramfs.img"),
        "initramfs\n",
    );
    write(
        &dir.join("usr/lib/os-release"),
        "ID=testos\nPRETTY_NAME=\"Test OS\"\n",
    );
    write(&dir.join("usr/bin/tool"), "#!/bin/sh\n");
    write(&dir.join("usr/share/empty"), "");
    let _ = std::os::unix::fs::symlink("os-release", dir.join("usr/lib/link"));
    std::fs::create_dir_all(dir.join("usr/etc")).unwrap();
    for (p, c) in etc {
        write(&dir.join("usr/etc").join(p), c);
    }
}

/// Commits `tree` to `test/x` in the sysroot's repo with the real ostree (so
/// both sysroots hold byte-identical commits); returns the checksum.
fn commit(sysroot: &Path, tree: &Path, version: &str, ts: &str) -> String {
    let out = run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}/ostree/repo", sysroot.display()))
            .args(["commit", "-b", "test/x", "-s", version])
            .arg(format!("--timestamp={ts}"))
            .arg(format!("--add-metadata-string=version={version}"))
            .arg(tree),
    );
    out.trim().to_owned()
}

/// Commits with rost (for tests that must not need ostree).
fn rost_commit(sysroot: &Path, tree: &Path, version: &str, ts: &str) -> String {
    let repo = sysroot.join("ostree/repo");
    let out = run_ok(rost(&[
        "repo",
        "--repo",
        repo.to_str().unwrap(),
        "commit",
        "-b",
        "test/x",
        "-s",
        version,
        "--timestamp",
        ts,
        "--add-metadata-string",
        &format!("version={version}"),
        tree.to_str().unwrap(),
    ]));
    out.trim().to_owned()
}

fn init(tool: Tool, sysroot: &Path) {
    std::fs::create_dir_all(sysroot).unwrap();
    let mut c = match tool {
        Tool::Ostree => Command::new("ostree"),
        Tool::Rost => rost(&[]),
    };
    c.args(["admin", "init-fs"]).arg(sysroot);
    run_ok(c);
    run_ok(admin(tool, sysroot, &["os-init", OS]));
}

fn status(tool: Tool, sysroot: &Path) -> String {
    run_ok(admin(tool, sysroot, &["status"]))
}

fn readlink(p: &Path) -> Option<String> {
    std::fs::read_link(p)
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// Everything below `dir` as `path type mode uid gid content-or-target`, sorted.
fn manifest(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, rel: &Path, out: &mut Vec<String>) {
        let p = base.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            return;
        };
        let ft = md.file_type();
        let what = if ft.is_symlink() {
            format!("l -> {}", readlink(&p).unwrap())
        } else if ft.is_dir() {
            "d".to_owned()
        } else {
            format!(
                "f {:?}",
                String::from_utf8_lossy(&std::fs::read(&p).unwrap())
            )
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            md.permissions().mode() & 0o7777
        };
        out.push(format!(
            "{} {what} {mode:o} {}:{}",
            rel.display(),
            md.uid(),
            md.gid()
        ));
        if ft.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                walk(base, &rel.join(n), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out);
    out
}

/// The state both tools must agree on: status text, /boot (entries, kernels,
/// symlinks), the boot symlinks, the deployment refs, each deployment's /etc.
fn sysroot_state(tool: Tool, s: &Path) -> Vec<String> {
    let mut out = vec![status(tool, s)];
    out.extend(manifest(&s.join("boot")));
    for l in ["ostree/boot.0", "ostree/boot.1"] {
        out.push(format!("{l} -> {:?}", readlink(&s.join(l))));
    }
    let mut farms: Vec<_> = std::fs::read_dir(s.join("ostree"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("boot."))
        .collect();
    farms.sort();
    for f in farms {
        out.push(format!("farm {f}"));
        out.extend(manifest(&s.join("ostree").join(&f)));
    }
    let refs = run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}/ostree/repo", s.display()))
            .arg("refs"),
    );
    let mut refs: Vec<_> = refs.lines().map(str::to_owned).collect();
    refs.sort();
    out.extend(refs);
    let dd = s.join(format!("ostree/deploy/{OS}/deploy"));
    if let Ok(rd) = std::fs::read_dir(&dd) {
        let mut names: Vec<_> = rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            out.push(format!("deploy entry {n}"));
            if n.ends_with(".origin") {
                out.push(std::fs::read_to_string(dd.join(&n)).unwrap());
            } else {
                out.extend(manifest(&dd.join(&n)));
            }
        }
    }
    out
}

#[track_caller]
fn assert_same_state(step: &str, so: &Path, sr: &Path) {
    let a = sysroot_state(Tool::Ostree, so);
    let b = sysroot_state(Tool::Rost, sr);
    if a != b {
        let diff: Vec<String> = a
            .iter()
            .zip(b.iter())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| format!("ostree: {x}\nrost:   {y}"))
            .take(8)
            .collect();
        panic!(
            "after {step}: states differ ({} vs {} lines)\n{}\n--- ostree status\n{}\n--- rost status\n{}",
            a.len(),
            b.len(),
            diff.join("\n"),
            a[0],
            b[0]
        );
    }
    // Each tool reads the other's view of its sysroot identically.
    assert_eq!(
        status(Tool::Ostree, sr),
        status(Tool::Rost, sr),
        "{step}: status of rost sysroot"
    );
    assert_eq!(
        status(Tool::Rost, so),
        status(Tool::Ostree, so),
        "{step}: status of ostree sysroot"
    );
}

fn deploy_dir(s: &Path, index: usize) -> PathBuf {
    let st = run_ok(admin(Tool::Rost, s, &["status", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    let d = &v["deployments"][index];
    s.join(format!(
        "ostree/deploy/{}/deploy/{}.{}",
        d["osname"].as_str().unwrap(),
        d["checksum"].as_str().unwrap(),
        d["serial"]
    ))
}

/// Runs one admin command on both sysroots (both must succeed, or both fail).
fn both(so: &Path, sr: &Path, args: &[&str]) {
    let a = admin(Tool::Ostree, so, args).output().unwrap();
    let b = admin(Tool::Rost, sr, args).output().unwrap();
    assert_eq!(
        a.status.success(),
        b.status.success(),
        "{args:?}: ostree {:?} / rost {:?}\nostree stderr: {}\nrost stderr: {}",
        a.status,
        b.status,
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    if !a.status.success() {
        assert_eq!(
            String::from_utf8_lossy(&a.stderr).trim(),
            String::from_utf8_lossy(&b.stderr).trim(),
            "{args:?}: error text"
        );
    }
}

fn both_commit(so: &Path, sr: &Path, tree: &Path, version: &str, ts: &str) {
    let a = commit(so, tree, version, ts);
    let b = commit(sr, tree, version, ts);
    assert_eq!(a, b);
}

fn edit_etc(dir: &Path) {
    let etc = dir.join("etc");
    write(&etc.join("a.conf"), "local\n");
    write(&etc.join("local.conf"), "mine\n");
    std::fs::remove_file(etc.join("sub/s")).unwrap();
}

/// Acceptance 1 + 4: deploy, upgrade with /etc changes, pin, retention,
/// --retain, --not-as-default, undeploy and cleanup, run by both tools on
/// twin sysroots; state compared after every step.
#[test]
fn interop_admin_sequence_matches_ostree() {
    if !require_tool("ostree") || !is_root() {
        return;
    }
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    let (so, sr) = (t.path().join("o"), t.path().join("r"));
    init(Tool::Ostree, &so);
    init(Tool::Rost, &sr);
    let tree = t.path().join("tree");
    make_tree(
        &tree,
        "kernel-1\n",
        &[("a.conf", "conf=1\n"), ("sub/s", "s\n"), ("z.conf", "z\n")],
    );
    both_commit(&so, &sr, &tree, "1.0", "2020-01-01T00:00:00Z");
    both(
        &so,
        &sr,
        &[
            "deploy",
            "--os",
            OS,
            "--karg=root=LABEL=root",
            "--karg=quiet",
            "test/x",
        ],
    );
    assert_same_state("first deploy", &so, &sr);
    assert!(
        std::fs::read_to_string(sr.join("boot/loader/entries/ostree-1-testos.conf"))
            .unwrap()
            .contains("options root=LABEL=root quiet ostree=/ostree/boot.1/testos/")
    );

    for s in [&so, &sr] {
        edit_etc(&deploy_dir(s, 0));
    }
    make_tree(
        &tree,
        "kernel-1\n",
        &[
            ("a.conf", "conf=2\n"),
            ("sub/s", "s\n"),
            ("new.conf", "n\n"),
            ("z.conf", "z\n"),
        ],
    );
    both_commit(&so, &sr, &tree, "2.0", "2020-01-02T00:00:00Z");
    both(&so, &sr, &["deploy", "--os", OS, "test/x"]);
    assert_same_state("upgrade with /etc changes", &so, &sr);
    let etc = deploy_dir(&sr, 0).join("etc");
    assert_eq!(
        std::fs::read_to_string(etc.join("a.conf")).unwrap(),
        "local\n"
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("new.conf")).unwrap(),
        "n\n"
    );
    assert!(!etc.join("sub/s").exists());

    both(&so, &sr, &["pin", "1"]);
    assert_same_state("pin", &so, &sr);
    // New kernel: a new bootcsum directory.
    make_tree(
        &tree,
        "kernel-3\n",
        &[("a.conf", "conf=3\n"), ("sub/s", "s\n")],
    );
    both_commit(&so, &sr, &tree, "3.0", "2020-01-03T00:00:00Z");
    both(&so, &sr, &["deploy", "--os", OS, "test/x"]);
    assert_same_state("deploy keeps merge + pinned", &so, &sr);
    both(
        &so,
        &sr,
        &[
            "deploy",
            "--os",
            OS,
            "--retain",
            "--karg=console=ttyS0",
            "test/x",
        ],
    );
    assert_same_state("redeploy same commit, --retain, new karg", &so, &sr);
    both(
        &so,
        &sr,
        &[
            "deploy",
            "--os",
            OS,
            "--not-as-default",
            "--retain",
            "test/x^",
        ],
    );
    assert_same_state("--not-as-default", &so, &sr);
    both(&so, &sr, &["undeploy", "1"]);
    assert_same_state("undeploy 1", &so, &sr);
    both(&so, &sr, &["pin", "--unpin", "2"]);
    both(&so, &sr, &["undeploy", "9"]);
    both(&so, &sr, &["deploy", "--os", OS, "test/x"]);
    assert_same_state("deploy after unpin drops old", &so, &sr);
    both(&so, &sr, &["cleanup"]);
    assert_same_state("cleanup", &so, &sr);
    both(
        &so,
        &sr,
        &[
            "set-origin",
            "--index=1",
            "--set=gpg-verify=false",
            "foo",
            "http://example.com",
            "test/y",
        ],
    );
    assert_same_state("set-origin", &so, &sr);
    assert_eq!(
        std::fs::read_to_string(so.join("ostree/repo/config")).unwrap(),
        std::fs::read_to_string(sr.join("ostree/repo/config")).unwrap(),
        "repo config after set-origin"
    );
}

/// Acceptance 1: each tool deploys onto the other's sysroot; statuses agree.
#[test]
fn interop_tools_deploy_onto_each_others_sysroots() {
    if !require_tool("ostree") || !is_root() {
        return;
    }
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    for (first, second) in [(Tool::Rost, Tool::Ostree), (Tool::Ostree, Tool::Rost)] {
        let s = t.path().join(format!("{first:?}"));
        init(first, &s);
        let tree = t.path().join("tree");
        make_tree(&tree, "k1\n", &[("a.conf", "1\n")]);
        commit(&s, &tree, "1.0", "2020-01-01T00:00:00Z");
        run_ok(admin(
            first,
            &s,
            &["deploy", "--os", OS, "--karg=root=LABEL=root", "test/x"],
        ));
        make_tree(&tree, "k2\n", &[("a.conf", "2\n")]);
        commit(&s, &tree, "2.0", "2020-01-02T00:00:00Z");
        run_ok(admin(second, &s, &["deploy", "--os", OS, "test/x"]));
        let st = status(first, &s);
        assert_eq!(st, status(second, &s));
        assert!(
            st.contains("Version: 2.0") && st.contains("Version: 1.0"),
            "{st}"
        );
        run_ok(admin(first, &s, &["pin", "1"]));
        make_tree(&tree, "k3\n", &[("a.conf", "3\n")]);
        commit(&s, &tree, "3.0", "2020-01-03T00:00:00Z");
        run_ok(admin(second, &s, &["deploy", "--os", OS, "test/x"]));
        let st = status(second, &s);
        assert_eq!(st, status(first, &s));
        assert_eq!(st.matches("testos ").count(), 3, "pinned kept: {st}");
        run_ok(admin(first, &s, &["undeploy", "2"]));
        run_ok(admin(second, &s, &["cleanup"]));
        assert_eq!(status(first, &s), status(second, &s));
        // Nothing unreferenced remains.
        let n = std::fs::read_dir(s.join(format!("ostree/deploy/{OS}/deploy")))
            .unwrap()
            .count();
        assert_eq!(n, 4, "2 deployments + 2 origins");
        assert_eq!(std::fs::read_dir(s.join("boot/ostree")).unwrap().count(), 2);
    }
}

/// Local /etc change applied to a deployment before the upgrade.
type Edit = fn(&Path);

/// Acceptance 2: table-driven /etc merge, compared with ostree's result.
#[test]
fn interop_etc_merge_table_matches_ostree() {
    if !require_tool("ostree") || !is_root() {
        return;
    }
    use std::os::unix::fs::{chown, symlink};
    let cases: &[(&str, Edit)] = &[
        ("file modified", |e| write(&e.join("mod.conf"), "local\n")),
        ("file added", |e| write(&e.join("added.conf"), "added\n")),
        ("dir added with files", |e| {
            write(&e.join("newdir/x/y.conf"), "y\n")
        }),
        ("file deleted", |e| {
            std::fs::remove_file(e.join("del.conf")).unwrap()
        }),
        ("dir deleted", |e| {
            std::fs::remove_dir_all(e.join("deldir")).unwrap()
        }),
        ("file mode", |e| {
            std::fs::set_permissions(e.join("mode.conf"), std::fs::Permissions::from_mode(0o600))
                .unwrap()
        }),
        ("dir mode", |e| {
            std::fs::set_permissions(e.join("modedir"), std::fs::Permissions::from_mode(0o700))
                .unwrap()
        }),
        ("file owner", |e| {
            chown(e.join("owner.conf"), Some(42), Some(43)).unwrap()
        }),
        ("dir owner", |e| {
            chown(e.join("ownerdir"), Some(44), Some(45)).unwrap()
        }),
        ("symlink retargeted", |e| {
            std::fs::remove_file(e.join("link")).unwrap();
            symlink("mod.conf", e.join("link")).unwrap();
        }),
        ("symlink added", |e| {
            symlink("/nowhere", e.join("newlink")).unwrap()
        }),
        ("file became symlink", |e| {
            std::fs::remove_file(e.join("tolink.conf")).unwrap();
            symlink("mod.conf", e.join("tolink.conf")).unwrap();
        }),
        ("changed both sides: local wins", |e| {
            write(&e.join("both.conf"), "local\n")
        }),
        ("nested file modified", |e| {
            write(&e.join("deep/a/b.conf"), "local\n")
        }),
    ];
    let v1: &[(&str, &str)] = &[
        ("mod.conf", "1\n"),
        ("del.conf", "1\n"),
        ("deldir/f", "1\n"),
        ("mode.conf", "1\n"),
        ("modedir/f", "1\n"),
        ("owner.conf", "1\n"),
        ("ownerdir/f", "1\n"),
        ("tolink.conf", "1\n"),
        ("both.conf", "1\n"),
        ("deep/a/b.conf", "1\n"),
        ("untouched.conf", "1\n"),
    ];
    let mut v2: Vec<(&str, &str)> = v1
        .iter()
        .map(|&(p, c)| {
            if p == "both.conf" || p == "untouched.conf" {
                (p, "2\n")
            } else {
                (p, c)
            }
        })
        .collect();
    v2.push(("upstream-new.conf", "2\n"));
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    let (so, sr) = (t.path().join("o"), t.path().join("r"));
    init(Tool::Ostree, &so);
    init(Tool::Rost, &sr);
    let tree = t.path().join("tree");
    make_tree(&tree, "k\n", v1);
    std::os::unix::fs::symlink("untouched.conf", tree.join("usr/etc/link")).unwrap();
    both_commit(&so, &sr, &tree, "1.0", "2020-01-01T00:00:00Z");
    both(&so, &sr, &["deploy", "--os", OS, "test/x"]);
    for s in [&so, &sr] {
        let etc = deploy_dir(s, 0).join("etc");
        for (_, edit) in cases {
            edit(&etc);
        }
    }
    let diff_o = run_ok(admin(Tool::Ostree, &so, &["config-diff", "--os", OS]));
    let diff_r = run_ok(admin(Tool::Rost, &sr, &["config-diff", "--os", OS]));
    let sorted = |s: &str| {
        let mut v: Vec<_> = s.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&diff_o), sorted(&diff_r), "config-diff");
    make_tree(&tree, "k\n", &v2);
    std::os::unix::fs::symlink("untouched.conf", tree.join("usr/etc/link")).unwrap();
    both_commit(&so, &sr, &tree, "2.0", "2020-01-02T00:00:00Z");
    let out_o = run_ok(admin(Tool::Ostree, &so, &["deploy", "--os", OS, "test/x"]));
    let out_r = run_ok(admin(Tool::Rost, &sr, &["deploy", "--os", OS, "test/x"]));
    let copying = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Copying /etc"))
            .map(str::to_owned)
    };
    assert_eq!(copying(&out_o), copying(&out_r));
    let (eo, er) = (
        deploy_dir(&so, 0).join("etc"),
        deploy_dir(&sr, 0).join("etc"),
    );
    let (mo, mr) = (manifest(&eo), manifest(&er));
    assert_eq!(mo, mr, "merged /etc differs from ostree's");
    // Spot checks of the semantics (not only parity).
    assert_eq!(
        std::fs::read_to_string(er.join("both.conf")).unwrap(),
        "local\n"
    );
    assert_eq!(
        std::fs::read_to_string(er.join("untouched.conf")).unwrap(),
        "2\n"
    );
    assert_eq!(
        std::fs::read_to_string(er.join("upstream-new.conf")).unwrap(),
        "2\n"
    );
    assert!(!er.join("del.conf").exists() && !er.join("deldir").exists());
    assert_eq!(
        std::fs::metadata(er.join("mode.conf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(std::fs::metadata(er.join("owner.conf")).unwrap().uid(), 42);
    // As ostree: a directory the new tree also has keeps the new tree's owner
    // and mode; only a locally added directory carries its own.
    assert_eq!(std::fs::metadata(er.join("ownerdir")).unwrap().gid(), 0);
    assert_eq!(
        std::fs::metadata(er.join("modedir"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(readlink(&er.join("link")).as_deref(), Some("mod.conf"));
    assert_eq!(
        readlink(&er.join("tolink.conf")).as_deref(),
        Some("mod.conf")
    );
    assert_eq!(
        std::fs::read_to_string(er.join("newdir/x/y.conf")).unwrap(),
        "y\n"
    );
}

/// A tree big enough that a deploy takes a while (for kill timing).
fn big_tree(dir: &Path, kernel: &str, n: usize) {
    make_tree(dir, kernel, &[("a.conf", "1\n"), ("sub/s", "s\n")]);
    for i in 0..n {
        write(
            &dir.join(format!("usr/share/d{}/f{i}", i % 50)),
            &format!("{kernel}{i}\n"),
        );
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
struct BootSet {
    deployments: Vec<String>,
}

/// Reads the boot configuration the way a bootloader + initramfs would and
/// checks it is complete: every entry's kernel, initramfs and `ostree=`
/// target exist. Returns the deployments named, in order.
fn check_boot_config(s: &Path) -> BootSet {
    let loader = readlink(&s.join("boot/loader")).expect("boot/loader");
    let entries = s.join("boot").join(&loader).join("entries");
    let mut list: Vec<(u32, String)> = Vec::new();
    for e in std::fs::read_dir(&entries).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} ")))
                .unwrap_or_else(|| panic!("{}: no {k}:\n{text}", p.display()))
                .to_owned()
        };
        let linux = get("linux");
        let initrd = get("initrd");
        assert!(
            s.join("boot").join(&linux[1..]).is_file(),
            "{}: {linux} missing",
            p.display()
        );
        assert!(
            s.join("boot").join(&initrd[1..]).is_file(),
            "{}: {initrd} missing",
            p.display()
        );
        let opts = get("options");
        let ostree = opts
            .split(' ')
            .find_map(|a| a.strip_prefix("ostree="))
            .unwrap();
        let target = s.join(&ostree[1..]);
        assert!(
            target.join("usr/bin/tool").is_file(),
            "{}: ostree={ostree} incomplete",
            p.display()
        );
        assert!(
            target.join("etc/a.conf").is_file(),
            "{}: /etc missing",
            p.display()
        );
        let real = std::fs::canonicalize(&target).unwrap();
        let name = real.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            real.with_file_name(format!("{name}.origin")).is_file(),
            "{}: origin missing",
            p.display()
        );
        list.push((get("version").parse().unwrap(), name));
    }
    list.sort_by_key(|b| std::cmp::Reverse(b.0));
    BootSet {
        deployments: list.into_iter().map(|(_, n)| n).collect(),
    }
}

/// After cleanup: exactly the deployments named, one loader dir, no temp names.
fn assert_converged(s: &Path, set: &BootSet) {
    let dd = s.join(format!("ostree/deploy/{OS}/deploy"));
    let mut names: Vec<_> = std::fs::read_dir(&dd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".origin"))
        .collect();
    names.sort();
    let mut want = set.deployments.clone();
    want.sort();
    assert_eq!(names, want, "deployment dirs after cleanup");
    let loaders: Vec<_> = std::fs::read_dir(s.join("boot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("loader."))
        .collect();
    assert_eq!(loaders.len(), 1, "{loaders:?}");
}

/// Acceptance 3: SIGKILL `rost admin deploy` / `undeploy` / `cleanup` at 20
/// random moments each; the boot configuration always names complete
/// deployments, either the old set or the new one, and cleanup converges.
#[test]
fn crash_kill_deploy_at_random_moments_keeps_boot_config_consistent() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    let s = t.path().join("s");
    init(Tool::Rost, &s);
    let (ta, tb) = (t.path().join("ta"), t.path().join("tb"));
    big_tree(&ta, "kernel-a\n", 300);
    big_tree(&tb, "kernel-b\n", 300);
    let ca = rost_commit(&s, &ta, "1", "2020-01-01T00:00:00Z");
    let cb = rost_commit(&s, &tb, "2", "2020-01-02T00:00:00Z");
    for c in [&ca, &cb] {
        let refname = format!("keep/{}", &c[..8]);
        run_ok(
            rost(&[
                "repo",
                "--repo",
                s.join("ostree/repo").to_str().unwrap(),
                "refs",
                "--create",
                &refname,
                c,
            ])
            .stderr(std::process::Stdio::null()),
        );
    }
    run_ok(admin(Tool::Rost, &s, &["deploy", "--os", OS, &ca]));
    // Time a full deploy to spread the kills over it.
    let start = Instant::now();
    run_ok(admin(Tool::Rost, &s, &["deploy", "--os", OS, &cb]));
    let full = start.elapsed().as_micros() as u64;
    let mut seed: u64 = 0x9e3779b97f4a7c15 ^ u64::from(std::process::id());
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let ops: [&[&str]; 3] = [&["deploy", "--os", OS], &["undeploy", "1"], &["cleanup"]];
    for (k, op) in ops.iter().enumerate() {
        let mut landed = 0;
        let mut tries = 0;
        while landed < 20 {
            tries += 1;
            assert!(
                tries < 400,
                "{op:?}: only {landed} kills landed in {tries} tries"
            );
            let before = check_boot_config(&s);
            if k == 1 && before.deployments.len() < 2 {
                run_ok(admin(
                    Tool::Rost,
                    &s,
                    &["deploy", "--os", OS, "--retain", &ca],
                ));
                continue;
            }
            let target = if rand(2) == 0 { &ca } else { &cb };
            let mut args: Vec<&str> = op.to_vec();
            if k == 0 {
                args.push(target);
            }
            let mut child = admin(Tool::Rost, &s, &args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(rand(full)));
            let finished = child.try_wait().unwrap().is_some();
            child.kill().unwrap();
            let st = child.wait().unwrap();
            let after = check_boot_config(&s);
            if finished || st.success() {
                continue;
            }
            landed += 1;
            match k {
                0 => assert!(
                    after == before
                        || (after.deployments[0].starts_with(target.as_str())
                            && after.deployments[1..] == before.deployments[..1]),
                    "deploy killed: neither old nor new set\nbefore {before:?}\nafter {after:?}"
                ),
                1 => assert!(
                    after == before || after.deployments == [before.deployments[0].clone()],
                    "undeploy killed: neither old nor new set\nbefore {before:?}\nafter {after:?}"
                ),
                _ => assert_eq!(after, before, "cleanup changed the boot set"),
            }
            // A rerun (or cleanup) converges.
            if rand(2) == 0 {
                run_ok(admin(Tool::Rost, &s, &["cleanup"]));
            } else if k == 0 {
                run_ok(admin(Tool::Rost, &s, &["deploy", "--os", OS, target]));
            } else {
                run_ok(admin(Tool::Rost, &s, &["cleanup"]));
            }
            let now = check_boot_config(&s);
            assert_converged(&s, &now);
        }
    }
    if require_tool("ostree") {
        run_ok(admin(Tool::Ostree, &s, &["status"]));
        run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}/ostree/repo", s.display()))
                .arg("fsck"),
        );
    }
}

fn boot_snapshot(s: &Path) -> Vec<String> {
    let mut v = manifest(&s.join("boot"));
    v.push(status(Tool::Rost, s));
    v
}

/// Acceptance 5: unknown ref, a commit without a kernel, a full /boot and a
/// corrupt object each fail with a clear message; the boot config is untouched.
#[test]
fn bad_input_fails_clearly_and_keeps_boot_config() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    let s = t.path().join("s");
    init(Tool::Rost, &s);
    let tree = t.path().join("tree");
    make_tree(&tree, "k1\n", &[("a.conf", "1\n")]);
    rost_commit(&s, &tree, "1.0", "2020-01-01T00:00:00Z");
    run_ok(admin(Tool::Rost, &s, &["deploy", "--os", OS, "test/x"]));
    let snap = boot_snapshot(&s);
    let err = |out: std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    let e = err(run_fail(admin(
        Tool::Rost,
        &s,
        &["deploy", "--os", OS, "no/such-ref"],
    )));
    assert!(e.contains("Refspec 'no/such-ref' not found"), "{e}");
    assert_eq!(boot_snapshot(&s), snap);

    let nok = t.path().join("nokernel");
    make_tree(&nok, "k\n", &[]);
    std::fs::remove_dir_all(nok.join("usr/lib/modules")).unwrap();
    let c = rost_commit(&s, &nok, "nokernel", "2020-01-02T00:00:00Z");
    let e = err(run_fail(admin(Tool::Rost, &s, &["deploy", "--os", OS, &c])));
    assert!(e.contains(&format!("commit {c} has no kernel")), "{e}");
    assert_eq!(boot_snapshot(&s), snap);
    assert_eq!(
        std::fs::read_dir(s.join(format!("ostree/deploy/{OS}/deploy")))
            .unwrap()
            .count(),
        2
    );

    // Corrupt object: truncate the dirtree of usr/lib/modules of a new commit.
    make_tree(&tree, "k2\n", &[("a.conf", "2\n")]);
    let c = rost_commit(&s, &tree, "2.0", "2020-01-03T00:00:00Z");
    let ls = run_ok(rost(&[
        "repo",
        "--repo",
        s.join("ostree/repo").to_str().unwrap(),
        "ls",
        "-C",
        &c,
        "/usr/lib/modules",
    ]));
    let dt = ls
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(4))
        .map(str::to_owned);
    if let Some(dt) = dt.filter(|d| d.len() == 64) {
        let obj = s.join(format!(
            "ostree/repo/objects/{}/{}.dirtree",
            &dt[..2],
            &dt[2..]
        ));
        let bytes = std::fs::read(&obj).unwrap();
        std::fs::write(&obj, &bytes[..bytes.len() / 2]).unwrap();
        let e = err(run_fail(admin(Tool::Rost, &s, &["deploy", "--os", OS, &c])));
        assert!(
            e.contains(&dt),
            "error must name the corrupt object {dt}: {e}"
        );
        assert_eq!(boot_snapshot(&s), snap);
        std::fs::write(&obj, &bytes).unwrap();
    } else {
        panic!("could not find the dirtree of /usr/lib/modules in: {ls}");
    }

    // Full /boot: a 256 KiB tmpfs, a 1 MiB kernel.
    let boot = s.join("boot");
    let saved = t.path().join("boot-saved");
    run_ok(Command::new("cp").arg("-a").arg(&boot).arg(&saved));
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&boot),
    );
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(boot.clone());
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", saved.display()))
            .arg(&boot),
    );
    let snap = boot_snapshot(&s);
    let big: String = (0..(1 << 20) / 16).map(|i| format!("{i:015x}\n")).collect();
    make_tree(&tree, &big, &[("a.conf", "3\n")]);
    let c = rost_commit(&s, &tree, "3.0", "2020-01-04T00:00:00Z");
    let e = err(run_fail(admin(Tool::Rost, &s, &["deploy", "--os", OS, &c])));
    assert!(
        e.contains("No space left on device") && e.contains("boot/ostree/"),
        "{e}"
    );
    assert_eq!(
        boot_snapshot(&s),
        snap,
        "boot config changed by a failed deploy"
    );
    check_boot_config(&s);
}

/// Holds `ostree/lock` with a POSIX record lock (what rost takes) for `ms`
/// on a thread of this process; returns once the lock is held.
fn hold_lock(s: &Path, ms: u64) -> std::thread::JoinHandle<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(s.join("ostree/lock"))
        .unwrap();
    rustix::fs::fcntl_lock(&f, rustix::fs::FlockOperation::LockExclusive).unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        drop(f);
    })
}

/// The sysroot lock is libostree's: while rost's kind of lock is held, ostree
/// waits; while it is held, rost waits too.
#[test]
fn interop_lock_excludes_ostree() {
    if !require_tool("ostree") || !is_root() {
        return;
    }
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    let s = t.path().join("s");
    init(Tool::Rost, &s);
    for tool in [Tool::Ostree, Tool::Rost] {
        let h = hold_lock(&s, 1500);
        let start = Instant::now();
        run_ok(admin(tool, &s, &["cleanup"]));
        assert!(
            start.elapsed() > Duration::from_millis(1000),
            "{tool:?} did not wait for the sysroot lock"
        );
        h.join().unwrap();
    }
    // An ostree deploy and a rost deploy started together: the lock
    // serialises them and rost re-reads the sysroot once it holds it, so
    // both deployments land (either order keeps both).
    let tree = t.path().join("tree");
    make_tree(&tree, "k\n", &[("a.conf", "1\n")]);
    commit(&s, &tree, "1.0", "2020-01-01T00:00:00Z");
    let mut o = admin(Tool::Ostree, &s, &["deploy", "--os", OS, "test/x"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    run_ok(admin(
        Tool::Rost,
        &s,
        &["deploy", "--os", OS, "--retain", "test/x"],
    ));
    assert!(o.wait().unwrap().success());
    let st = status(Tool::Ostree, &s);
    assert_eq!(
        st.matches("testos ").count(),
        2,
        "both deploys landed: {st}"
    );
    assert_eq!(st, status(Tool::Rost, &s));
}

fn status_json(s: &Path, env: Option<&str>) -> serde_json::Value {
    let mut c = admin(Tool::Rost, s, &["status", "--json"]);
    if let Some(e) = env {
        c.env("ROST_ADMIN_BOOTED_ROOT", e);
    }
    serde_json::from_str(&run_ok(c)).unwrap()
}

/// A booted deployment simulated through the kernel command line: status
/// marks it, deploy keeps it (and drops the pending one), undeploy refuses it.
#[test]
fn booted_deployment_is_kept_and_marked() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    let s = t.path().join("s");
    init(Tool::Rost, &s);
    let tree = t.path().join("tree");
    let mut commits = Vec::new();
    for v in ["1", "2", "3"] {
        make_tree(&tree, &format!("k{v}\n"), &[("a.conf", v)]);
        commits.push(rost_commit(
            &s,
            &tree,
            v,
            &format!("2020-01-0{v}T00:00:00Z"),
        ));
        let r = format!("keep/{v}");
        run_ok(rost(&[
            "repo",
            "--repo",
            s.join("ostree/repo").to_str().unwrap(),
            "refs",
            "--create",
            &r,
            commits.last().unwrap(),
        ]));
    }
    run_ok(admin(Tool::Rost, &s, &["deploy", "--os", OS, &commits[0]]));
    run_ok(admin(Tool::Rost, &s, &["deploy", "--os", OS, &commits[1]]));
    // Booted into index 1 (commit 1); index 0 (commit 2) is pending.
    let v = status_json(&s, None);
    let booted = deploy_dir(&s, 1);
    let booted = booted.to_str().unwrap().to_owned();
    assert!(v["deployments"][1]["checksum"] == commits[0].as_str());
    let mut c = admin(Tool::Rost, &s, &["status"]);
    c.env("ROST_ADMIN_BOOTED_ROOT", &booted);
    let st = run_ok(c);
    let lines: Vec<&str> = st.lines().filter(|l| l.contains(" testos ")).collect();
    assert_eq!(lines.len(), 2, "{st}");
    assert!(
        lines[0].starts_with("  testos ") && lines[0].ends_with(" (pending)"),
        "{st}"
    );
    assert!(
        lines[1].starts_with("* testos ") && lines[1].contains(&commits[0]),
        "{st}"
    );
    // Undeploying the booted deployment is refused.
    let mut c = admin(Tool::Rost, &s, &["undeploy", "1"]);
    c.env("ROST_ADMIN_BOOTED_ROOT", &booted);
    let out = run_fail(c);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Cannot undeploy currently booted deployment 1")
    );
    // A deploy without --os takes the booted stateroot, keeps the booted
    // deployment (the new one is pending) and drops the old pending one.
    let mut c = admin(Tool::Rost, &s, &["deploy", &commits[2]]);
    c.env("ROST_ADMIN_BOOTED_ROOT", &booted);
    run_ok(c);
    let v = status_json(&s, Some(&booted));
    let ds = v["deployments"].as_array().unwrap();
    assert_eq!(ds.len(), 2, "{v}");
    assert_eq!(ds[0]["checksum"], commits[2].as_str());
    assert_eq!(ds[1]["checksum"], commits[0].as_str());
    assert_eq!(ds[1]["booted"], true, "{v}\n{booted}");
    assert_eq!(ds[0]["pending"], true);
    // config-diff without --os uses the booted deployment.
    let mut c = admin(Tool::Rost, &s, &["config-diff"]);
    c.env("ROST_ADMIN_BOOTED_ROOT", &booted);
    run_ok(c);
    // Without a booted deployment and without --os, deploy refuses.
    let out = run_fail(admin(Tool::Rost, &s, &["deploy", &commits[2]]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no --os= argument given"));
}

/// `deploy --stage` writes the deployment but not the boot configuration;
/// `finalize-staged` merges /etc as it is at that moment and switches.
#[test]
fn staged_deploy_finalizes_with_late_etc_changes() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    let _g = Unimmutable(t.path().to_owned());
    let s = t.path().join("s");
    init(Tool::Rost, &s);
    let tree = t.path().join("tree");
    make_tree(&tree, "k1\n", &[("a.conf", "1\n")]);
    rost_commit(&s, &tree, "1.0", "2020-01-01T00:00:00Z");
    run_ok(admin(Tool::Rost, &s, &["deploy", "--os", OS, "test/x"]));
    let d0 = deploy_dir(&s, 0);
    write(&d0.join("etc/a.conf"), "early\n");
    make_tree(&tree, "k2\n", &[("a.conf", "2\n"), ("b.conf", "2\n")]);
    let c2 = rost_commit(&s, &tree, "2.0", "2020-01-02T00:00:00Z");
    let snap = boot_snapshot(&s);
    let out = run_ok(admin(
        Tool::Rost,
        &s,
        &["deploy", "--os", OS, "--stage", "test/x"],
    ));
    assert!(
        out.starts_with(&format!("Staged deployment {c2}.0")),
        "{out}"
    );
    let st = status(Tool::Rost, &s);
    assert!(
        st.starts_with(&format!("  testos {c2}.0 (staged)\n")),
        "{st}"
    );
    // The boot configuration is untouched, and cleanup keeps the staged one.
    run_ok(admin(Tool::Rost, &s, &["cleanup"]));
    let mut now = boot_snapshot(&s);
    now.pop();
    let mut before = snap.clone();
    before.pop();
    assert_eq!(now, before);
    let staged_dir = s.join(format!("ostree/deploy/{OS}/deploy/{c2}.0"));
    assert!(staged_dir.join("usr/bin/tool").is_file());
    // /etc changed after staging still reaches the new deployment.
    write(&d0.join("etc/late.conf"), "late\n");
    let out = run_ok(admin(Tool::Rost, &s, &["finalize-staged"]));
    assert!(
        out.contains("Copying /etc changes: 1 modified, 0 removed, 1 added"),
        "{out}"
    );
    let v = status_json(&s, None);
    assert!(v["staged"].is_null());
    assert_eq!(v["deployments"][0]["checksum"], c2.as_str());
    assert_eq!(v["deployments"].as_array().unwrap().len(), 2);
    assert_eq!(
        std::fs::read_to_string(staged_dir.join("etc/a.conf")).unwrap(),
        "early\n"
    );
    assert_eq!(
        std::fs::read_to_string(staged_dir.join("etc/late.conf")).unwrap(),
        "late\n"
    );
    assert_eq!(
        std::fs::read_to_string(staged_dir.join("etc/b.conf")).unwrap(),
        "2\n"
    );
    check_boot_config(&s);
    assert!(!s.join("run/ostree/rost-staged-deployment").exists());
    assert_eq!(
        run_ok(admin(Tool::Rost, &s, &["finalize-staged"])).trim(),
        "No staged deployment"
    );
    if require_tool("ostree") {
        assert_eq!(status(Tool::Ostree, &s), status(Tool::Rost, &s));
    }
}
