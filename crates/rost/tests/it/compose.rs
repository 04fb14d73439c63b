//! `rost compose tree` integration tests.
//!
//! A tiny "OS" is built at test time with the real `rpmbuild` + `createrepo_c`
//! (cached under `target/rost-fixtures/compose-<hash>/`): a filesystem package
//! with passwd/group and the usrmerge symlinks, a shell (the host's `dash` and
//! the libraries it loads, so scriptlets really run in the tree), a library and
//! an application depending on it (a %post that writes a file, a non-root
//! owned file, a config file, a /var directory), and a kernel package. The
//! composed commit is checked with the real `ostree` and `rpm`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{SpecFile, is_root, require_tool, rost, rpm_fixture_repo, run_fail, run_ok};

/// A fixture package.
struct Pkg {
    name: &'static str,
    version: &'static str,
    release: &'static str,
    /// Preamble lines (Requires, …).
    deps: &'static [&'static str],
    /// `%install` shell lines (`$B` is the buildroot).
    install: Vec<String>,
    /// `%files` lines.
    files: Vec<String>,
    /// Scriptlet sections, verbatim.
    scripts: &'static str,
}

impl Pkg {
    fn spec(&self) -> String {
        let mut s = String::new();
        s += "%define debug_package %{nil}\n%define __os_install_post %{nil}\n";
        s += "%define _build_id_links none\n%define _binaries_in_noarch_packages_terminate_build 0\n";
        s += &format!(
            "Name: {}\nVersion: {}\nRelease: {}\nSummary: fixture\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n",
            self.name, self.version, self.release
        );
        for d in self.deps {
            s += d;
            s += "\n";
        }
        s += &format!(
            "%description\nfixture {}\n%install\nB=%{{buildroot}}\n",
            self.name
        );
        for l in &self.install {
            s += l;
            s += "\n";
        }
        s += "%files\n";
        for f in &self.files {
            s += f;
            s += "\n";
        }
        s += self.scripts;
        s
    }
}

/// The host's shell and the shared objects it loads, as (host path, path under /usr).
fn shell_files() -> Vec<(PathBuf, String)> {
    let ldd = run_ok(Command::new("ldd").arg("/bin/dash"));
    let mut out = vec![(PathBuf::from("/bin/dash"), "/usr/bin/sh".to_owned())];
    for l in ldd.lines() {
        let p = l
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(p) = p {
            let s = p.to_string_lossy().into_owned();
            let dest = if s.starts_with("/usr/") {
                s.clone()
            } else {
                format!("/usr{s}")
            };
            out.push((p, dest));
        }
    }
    out
}

fn file(path: &str, mode: &str, content: &str) -> (String, String) {
    (
        format!(
            "mkdir -p $B$(dirname {path}) && printf '%s\\n' '{content}' > $B{path} && chmod {mode} $B{path}"
        ),
        path.to_owned(),
    )
}

fn pkg(
    name: &'static str,
    version: &'static str,
    release: &'static str,
    deps: &'static [&'static str],
    entries: Vec<(String, String)>,
    scripts: &'static str,
) -> Pkg {
    let (install, files) = entries.into_iter().unzip();
    Pkg {
        name,
        version,
        release,
        deps,
        install,
        files,
        scripts,
    }
}

fn libapp(release: &'static str) -> Pkg {
    pkg(
        "fixture-libapp",
        "1",
        release,
        &["Requires: fixture-filesystem", "Provides: libapp.so.1"],
        vec![file(
            "/usr/lib/libapp.so.1",
            "0755",
            if release == "1" {
                "libapp one"
            } else {
                "libapp two"
            },
        )],
        "",
    )
}

fn os_packages() -> Vec<Pkg> {
    let mut shell_entries = Vec::new();
    for (host, dest) in shell_files() {
        shell_entries.push((
            format!(
                "mkdir -p $B$(dirname {dest}) && cp -L {} $B{dest} && chmod 0755 $B{dest}",
                host.display()
            ),
            dest,
        ));
    }
    shell_entries.push((
        "ln -s sh $B/usr/bin/dash".to_owned(),
        "/usr/bin/dash".to_owned(),
    ));
    vec![
        pkg(
            "fixture-filesystem",
            "1",
            "1",
            &[],
            vec![
                ("mkdir -p $B/usr/bin $B/usr/sbin $B/usr/lib $B/usr/lib64 $B/home $B/var/lib/fixture $B/etc".into(), "%dir /usr/bin\n%dir /usr/sbin\n%dir /usr/lib\n%dir /usr/lib64\n%dir /home\n%dir /var/lib/fixture\n%dir /etc".into()),
                ("ln -s usr/bin $B/bin && ln -s usr/sbin $B/sbin && ln -s usr/lib $B/lib && ln -s usr/lib64 $B/lib64".into(), "/bin\n/sbin\n/lib\n/lib64".into()),
                file("/etc/passwd", "0644", "root:x:0:0:root:/root:/bin/sh\nsvc:x:990:991:service:/:/sbin/nologin"),
                file("/etc/group", "0644", "root:x:0:\nwheel:x:10:\nsvc:x:991:"),
                file("/etc/nsswitch.conf", "0644", "passwd: files\ngroup: files"),
                file("/usr/lib/os-release", "0644", "NAME=Fixture\nVERSION=\"1 (Fixture)\"\nID=fixture\nPRETTY_NAME=\"Fixture 1\""),
            ],
            "",
        ),
        pkg(
            "fixture-shell",
            "1",
            "1",
            &["Requires: fixture-filesystem", "Provides: /bin/sh"],
            shell_entries,
            "",
        ),
        libapp("1"),
        pkg(
            "fixture-app",
            "1",
            "1",
            &["Requires: libapp.so.1", "Requires(post): fixture-shell"],
            vec![
                file("/usr/bin/app", "0755", "#!/bin/sh\necho app"),
                {
                    let (i, _) = file("/etc/app.conf", "0644", "setting=1");
                    (i, "%config(noreplace) /etc/app.conf".into())
                },
                {
                    let (i, _) = file("/usr/share/app/data", "0640", "secret");
                    (i, "%attr(0640,svc,svc) /usr/share/app/data".into())
                },
                file("/usr/share/app/unwanted", "0644", "remove me"),
                ("mkdir -p $B/var/lib/app".into(), "%dir /var/lib/app".into()),
                ("mkdir -p $B/usr/bin && ln -s app $B/usr/bin/app-link".into(), "/usr/bin/app-link".into()),
            ],
            "%post\necho \"app post $1\" > /etc/app-post.txt\n",
        ),
        pkg(
            "fixture-kernel",
            "6.1.0",
            "1",
            &["Requires: fixture-filesystem"],
            vec![
                file("/usr/lib/modules/6.1.0-1.fixture/vmlinuz", "0755", "fake kernel"),
                file("/usr/lib/modules/6.1.0-1.fixture/initramfs.img", "0644", "fake initramfs"),
            ],
            "",
        ),
    ]
}

/// Builds (or reuses) a repo of `pkgs`; returns the directory with `repodata/`.
fn fixture_repo(pkgs: &[Pkg]) -> PathBuf {
    let specs: Vec<SpecFile> = pkgs
        .iter()
        .map(|p| SpecFile {
            file: format!("{}.spec", p.name),
            text: p.spec(),
            target: None,
        })
        .collect();
    rpm_fixture_repo("compose", &specs)
}

fn have_tools() -> bool {
    ["rpm", "rpmbuild", "createrepo_c", "ostree", "bwrap", "ldd"]
        .iter()
        .all(|t| require_tool(t))
}

const TREEFILE: &str = r#"
ref: fixture/${basearch}/os
releasever: 1
repos: [fixture]
packages:
  - fixture-app fixture-kernel
automatic-version-prefix: "1"
mutate-os-release: "1"
add-commit-metadata:
  fixture.key: hello
postprocess:
  - |
    echo pp > /usr/share/pp-ran
remove-files:
  - usr/share/app/unwanted
selinux: false
"#;

/// A work dir with a treefile and a `.repo` file pointing at `repo`.
fn setup(repo: &Path, treefile: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("fixture.repo"),
        format!(
            "[fixture]\nname=fixture\nbaseurl=file://{}\ngpgcheck=0\n",
            repo.display()
        ),
    )
    .unwrap();
    let tf = d.path().join("os.yaml");
    std::fs::write(&tf, treefile).unwrap();
    (d, tf)
}

fn init_repo(path: &Path) {
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", path.display()))
            .args(["init", "--mode=archive"]),
    );
}

fn compose(tf: &Path, repo: &Path, cache: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "compose".to_owned(),
        "tree".to_owned(),
        "--unified-core".to_owned(),
        format!("--repo={}", repo.display()),
        format!("--cachedir={}", cache.display()),
        "--json".to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(tf.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(rost(&argv).env("SOURCE_DATE_EPOCH", "1700000000"));
    serde_json::from_str(&out).unwrap()
}

fn ostree(repo: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(args),
    )
}

fn rpms_in(repo: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    v.sort();
    v
}

/// Where a package path lands in the commit (the path rules).
fn rule(path: &str) -> Option<String> {
    let rel = path.trim_start_matches('/');
    let (first, rest) = rel.split_once('/').unwrap_or((rel, ""));
    match first {
        "etc" if rest.is_empty() => Some("usr/etc".into()),
        "etc" => Some(format!("usr/etc/{rest}")),
        "usr" => Some(rel.to_owned()),
        "bin" | "sbin" | "lib" | "lib64" if rest.is_empty() => Some(rel.to_owned()),
        _ => None,
    }
}

#[test]
fn interop_compose_tree_end_to_end() {
    if !have_tools() {
        return;
    }
    let fixture = fixture_repo(&os_packages());
    let (work, tf) = setup(&fixture, TREEFILE);
    let repo = work.path().join("repo");
    let cache = work.path().join("cache");
    init_repo(&repo);

    // --dry-run prints the resolved set and writes nothing.
    let dry = run_ok(rost(&[
        "compose",
        "tree",
        "--dry-run",
        &format!("--repo={}", repo.display()),
        &format!("--cachedir={}", cache.display()),
        tf.to_str().unwrap(),
    ]));
    let want_nevras = vec![
        "fixture-app-1-1.noarch",
        "fixture-filesystem-1-1.noarch",
        "fixture-kernel-6.1.0-1.noarch",
        "fixture-libapp-1-1.noarch",
        "fixture-shell-1-1.noarch",
    ];
    assert_eq!(dry.lines().collect::<Vec<_>>(), want_nevras);
    assert!(ostree(&repo, &["refs"]).trim().is_empty());

    // --print-only prints the flattened treefile.
    let po = run_ok(rost(&[
        "compose",
        "tree",
        "--print-only",
        &format!("--repo={}", repo.display()),
        tf.to_str().unwrap(),
    ]));
    let po: serde_json::Value = serde_json::from_str(&po).unwrap();
    let arch = po["ref"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(po["ref"], format!("fixture/{arch}/os"));
    assert_eq!(po["packages"][0], "fixture-app fixture-kernel");

    let r = compose(&tf, &repo, &cache, &[]);
    assert_eq!(r["changed"], true);
    assert_eq!(r["downloaded"], 5);
    assert_eq!(r["imported"], 5);
    assert_eq!(r["commit-version"], "1");
    let commit = r["commit-id"].as_str().unwrap().to_owned();
    let refname = format!("fixture/{arch}/os");
    assert_eq!(ostree(&repo, &["rev-parse", &refname]).trim(), commit);
    ostree(&repo, &["fsck"]);

    // Metadata.
    let pkglist = ostree(
        &repo,
        &[
            "show",
            "--print-metadata-key=rpmostree.rpmdb.pkglist",
            &commit,
        ],
    );
    assert_eq!(
        pkglist.trim(),
        "[('fixture-app', '0', '1', '1', 'noarch'), ('fixture-filesystem', '0', '1', '1', 'noarch'), ('fixture-kernel', '0', '6.1.0', '1', 'noarch'), ('fixture-libapp', '0', '1', '1', 'noarch'), ('fixture-shell', '0', '1', '1', 'noarch')]"
    );
    let key = |k: &str| {
        ostree(
            &repo,
            &["show", &format!("--print-metadata-key={k}"), &commit],
        )
        .trim()
        .to_owned()
    };
    assert_eq!(key("version"), "'1'");
    assert_eq!(key("ostree.linux"), "'6.1.0-1.fixture'");
    assert_eq!(key("ostree.bootable"), "true");
    assert_eq!(key("fixture.key"), "'hello'");
    assert_eq!(
        key("rpmostree.inputhash"),
        format!("'{}'", r["rpmostree.inputhash"].as_str().unwrap())
    );
    assert!(
        key("rpmostree.rpmmd-repos").contains("'id': <'fixture'>"),
        "{}",
        key("rpmostree.rpmmd-repos")
    );

    // Checkout and compare with the packages, file by file.
    let co = work.path().join("co");
    ostree(&repo, &["checkout", &commit, co.to_str().unwrap()]);
    let mut from_pkgs: BTreeSet<String> = BTreeSet::new();
    for rpm in rpms_in(&fixture) {
        let dump = run_ok(Command::new("rpm").arg("-qp").arg("--dump").arg(&rpm));
        for line in dump.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (path, digest, mode, user, group, link) = (
                f[0],
                f[3],
                u32::from_str_radix(f[4], 8).unwrap(),
                f[5],
                f[6],
                f[10],
            );
            if path == "/usr/share/app/unwanted" {
                assert!(std::fs::symlink_metadata(co.join("usr/share/app/unwanted")).is_err());
                continue;
            }
            let Some(rel) = rule(path) else { continue };
            from_pkgs.insert(rel.clone());
            let p = co.join(&rel);
            let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert_eq!(m.mode() & 0o170000, mode & 0o170000, "{rel}: file type");
            if m.file_type().is_symlink() {
                assert_eq!(
                    std::fs::read_link(&p).unwrap().to_str().unwrap(),
                    link,
                    "{rel}"
                );
            } else {
                assert_eq!(m.mode() & 0o7777, mode & 0o7777, "{rel}: mode");
            }
            // Config files and os-release are edited by the compose.
            if m.is_file() && !rel.starts_with("usr/etc/") && rel != "usr/lib/os-release" {
                use sha2::Digest;
                let d = hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()));
                assert_eq!(d, digest, "{rel}: content");
            }
            if is_root() {
                let uid = if user == "svc" { 990 } else { 0 };
                let gid = if group == "svc" { 991 } else { 0 };
                assert_eq!((m.uid(), m.gid()), (uid, gid), "{rel}: owner");
            }
        }
    }
    // Scriptlet and postprocess effects, path rules, layout.
    assert_eq!(
        std::fs::read_to_string(co.join("usr/etc/app-post.txt")).unwrap(),
        "app post 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(co.join("usr/share/pp-ran")).unwrap(),
        "pp\n"
    );
    assert!(
        std::fs::read_to_string(co.join("usr/lib/tmpfiles.d/pkg-fixture-app.conf"))
            .unwrap()
            .contains("d /var/lib/app 0755 root root - -")
    );
    assert_eq!(
        std::fs::read_dir(co.join("var")).unwrap().count(),
        0,
        "/var is empty"
    );
    assert_eq!(
        std::fs::read_link(co.join("home")).unwrap(),
        Path::new("var/home")
    );
    assert_eq!(
        std::fs::read_to_string(co.join("usr/etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    assert!(
        std::fs::read_to_string(co.join("usr/lib/passwd"))
            .unwrap()
            .contains("svc:x:990")
    );
    assert!(
        std::fs::read_to_string(co.join("usr/etc/nsswitch.conf"))
            .unwrap()
            .contains("files altfiles")
    );
    let osr = std::fs::read_to_string(co.join("usr/lib/os-release")).unwrap();
    assert!(osr.contains("OSTREE_VERSION='1'"), "{osr}");
    assert!(co.join("usr/lib/modules/6.1.0-1.fixture/vmlinuz").is_file());
    assert!(
        co.join("usr/lib/modules/6.1.0-1.fixture/initramfs.img")
            .is_file()
    );
    // Nothing but known compose outputs besides the packages' files.
    let mut extra = Vec::new();
    let mut stack = vec![co.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(&co).unwrap().to_str().unwrap().to_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if !from_pkgs.contains(&rel) {
                extra.push(rel);
            }
        }
    }
    extra.sort();
    let allowed = [
        "home",
        "media",
        "mnt",
        "opt",
        "ostree",
        "root",
        "srv",
        "tmp",
        "usr/local",
        "usr/etc/app-post.txt",
        "usr/etc/machine-id",
        "usr/lib/group",
        "usr/lib/passwd",
        "usr/lib/rpm/macros.d/macros.rost",
        "usr/share/pp-ran",
        "usr/share/rpm",
        "usr/share/rpm-ostree/treefile.json",
    ];
    for e in &extra {
        assert!(
            allowed.contains(&e.as_str())
                || e.starts_with("usr/lib/tmpfiles.d/")
                || e.starts_with("usr/lib/sysimage/rpm/"),
            "unexpected file in the commit: {e}"
        );
    }

    // The real rpm reads the rpmdb.
    let qa = run_ok(Command::new("rpm").arg("--root").arg(&co).args([
        "--dbpath",
        "/usr/lib/sysimage/rpm",
        "-qa",
        "--qf",
        "%{NEVRA}\\n",
    ]));
    let mut qa: Vec<&str> = qa.lines().collect();
    qa.sort();
    assert_eq!(qa, want_nevras);

    // Unchanged inputs: no commit, ref untouched.
    let r2 = compose(&tf, &repo, &cache, &[]);
    assert_eq!(r2["changed"], false);
    assert_eq!(r2["commit-id"], commit.as_str());
    assert_eq!(ostree(&repo, &["rev-parse", &refname]).trim(), commit);
    let human = run_ok(rost(&[
        "compose",
        "tree",
        &format!("--repo={}", repo.display()),
        &format!("--cachedir={}", cache.display()),
        tf.to_str().unwrap(),
    ]));
    assert!(human.contains("No apparent changes"), "{human}");

    // --force-nocache composes again; automatic version increments.
    let r3 = compose(&tf, &repo, &cache, &["--force-nocache"]);
    assert_eq!(r3["changed"], true);
    assert_eq!(r3["commit-version"], "1.1");
    assert_eq!(r3["downloaded"], 0);
    assert_eq!(r3["imported"], 0);
    ostree(&repo, &["fsck"]);
}

#[test]
fn interop_compose_reproducible_and_incremental() {
    if !have_tools() {
        return;
    }
    let v1 = fixture_repo(&os_packages());
    // v2: an updates repo with a rebuilt fixture-libapp.
    let updates = fixture_repo(&[libapp("2")]);
    let (work, tf) = setup(&v1, TREEFILE);
    let mut commits = Vec::new();
    for i in 0..2 {
        let repo = work.path().join(format!("repo{i}"));
        init_repo(&repo);
        let r = compose(&tf, &repo, &work.path().join(format!("cache{i}")), &[]);
        commits.push(r["commit-id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        commits[0], commits[1],
        "same inputs, fresh repos and caches: same commit"
    );

    // v2: only fixture-libapp changed (an updates repo carries 1-2).
    std::fs::write(
        work.path().join("updates.repo"),
        format!(
            "[updates]\nname=updates\nbaseurl=file://{}\ngpgcheck=0\n",
            updates.display()
        ),
    )
    .unwrap();
    std::fs::write(
        &tf,
        TREEFILE.replace("repos: [fixture]", "repos: [fixture, updates]"),
    )
    .unwrap();
    let repo = work.path().join("repo0");
    let r = compose(&tf, &repo, &work.path().join("cache0"), &[]);
    assert_eq!(r["changed"], true);
    assert_eq!(r["downloaded"], 1, "{r}");
    assert_eq!(r["imported"], 1, "{r}");
    assert_eq!(r["reused"], 4, "{r}");
    let c = r["commit-id"].as_str().unwrap();
    let parent = ostree(&repo, &["rev-parse", &format!("{c}^")]);
    assert_eq!(parent.trim(), commits[0]);
    let co = work.path().join("co");
    ostree(&repo, &["checkout", c, co.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(co.join("usr/lib/libapp.so.1")).unwrap(),
        "libapp two\n"
    );
    ostree(&repo, &["fsck"]);

    // That compose started from the tree the first one kept in cache0; a
    // fresh compose of v2 gives the same tree (but os-release, which carries
    // the version, and so the dirtree checksums above it: directories are
    // compared by metadata, every entry by content).
    let fresh = work.path().join("repo2");
    init_repo(&fresh);
    let f = compose(&tf, &fresh, &work.path().join("cache2"), &[]);
    let list = |repo: &Path, c: &str| -> Vec<String> {
        ostree(repo, &["ls", "-R", "-C", c])
            .lines()
            .filter(|l| !l.contains("os-release"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if l.starts_with('d') && f.len() >= 7 {
                    format!("{} {} {} {} {}", f[0], f[1], f[2], f[5], f[6..].join(" "))
                } else {
                    l.to_owned()
                }
            })
            .collect()
    };
    let (inc, new) = (
        list(&repo, c),
        list(&fresh, f["commit-id"].as_str().unwrap()),
    );
    assert!(inc.len() > 20, "{inc:?}");
    assert_eq!(inc, new, "incremental tree differs from a fresh compose");
}

#[test]
fn compose_bad_input_names_file_and_key() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    run_ok(rost(&[
        "repo",
        "init",
        "--repo",
        repo.to_str().unwrap(),
        "--mode=archive",
    ]));
    let cases: &[(&str, &[&str])] = &[
        ("ref: a\npackagez: [x]\n", &["os.yaml", "packagez"]),
        ("ref: a\npackages: [a, [b]]\n", &["os.yaml", "packages[1]"]),
        ("ref: a\nrecommends: maybe\n", &["os.yaml", "recommends"]),
        (
            "include: nothere.yaml\n",
            &["os.yaml", "include", "nothere.yaml"],
        ),
        (
            "ref: a\nrepos: [nosuch]\npackages: [x]\n",
            &["os.yaml", "repos[0]", "nosuch"],
        ),
        (
            "ref: a\nselinux: true\n",
            &["os.yaml", "selinux", "not supported yet"],
        ),
    ];
    for (text, want) in cases {
        let tf = d.path().join("os.yaml");
        std::fs::write(&tf, text).unwrap();
        let out = run_fail(rost(&[
            "compose",
            "tree",
            &format!("--repo={}", repo.display()),
            tf.to_str().unwrap(),
        ]));
        let err = String::from_utf8_lossy(&out.stderr);
        for w in *want {
            assert!(err.contains(w), "{text:?}: {err:?} lacks {w:?}");
        }
    }
}

#[test]
fn interop_compose_unresolvable_and_failing_scriptlet_leave_ref_alone() {
    if !have_tools() {
        return;
    }
    let fixture = fixture_repo(&os_packages());
    let (work, tf) = setup(&fixture, TREEFILE);
    let repo = work.path().join("repo");
    init_repo(&repo);
    let cache = work.path().join("cache");
    let first = compose(&tf, &repo, &cache, &[]);
    let refs = ostree(&repo, &["refs"]);

    std::fs::write(
        &tf,
        TREEFILE.replace("fixture-app fixture-kernel", "fixture-app no-such-package"),
    )
    .unwrap();
    let out = run_fail(rost(&[
        "compose",
        "tree",
        &format!("--repo={}", repo.display()),
        &format!("--cachedir={}", cache.display()),
        tf.to_str().unwrap(),
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("os.yaml") && err.contains("packages") && err.contains("no-such-package"),
        "{err}"
    );

    std::fs::write(
        &tf,
        TREEFILE.replace("echo pp > /usr/share/pp-ran", "exit 3"),
    )
    .unwrap();
    let out = run_fail(rost(&[
        "compose",
        "tree",
        &format!("--repo={}", repo.display()),
        &format!("--cachedir={}", cache.display()),
        tf.to_str().unwrap(),
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("postprocess[0]") && err.contains("failed"),
        "{err}"
    );
    assert_eq!(ostree(&repo, &["refs"]), refs);
    let arch = first["ref"].as_str().unwrap();
    assert_eq!(
        ostree(&repo, &["rev-parse", arch]).trim(),
        first["commit-id"].as_str().unwrap()
    );
}

/// Packages for feature and failure cases.
fn extra_packages() -> Vec<Pkg> {
    vec![
        pkg(
            "fixture-lua",
            "1",
            "1",
            &["Requires: fixture-filesystem"],
            vec![file("/usr/share/lua-pkg", "0644", "x")],
            "%post -p <lua>\nprint(\"hi\")\n",
        ),
        pkg(
            "fixture-conflict-a",
            "1",
            "1",
            &[],
            vec![file("/usr/share/conflict", "0644", "a")],
            "",
        ),
        pkg(
            "fixture-conflict-b",
            "1",
            "1",
            &[],
            vec![file("/usr/share/conflict", "0644", "b")],
            "",
        ),
        pkg(
            "fixture-srv",
            "1",
            "1",
            &[],
            vec![file("/srv/data", "0644", "x")],
            "",
        ),
        pkg(
            "fixture-inplace",
            "1",
            "1",
            &["Requires(post): fixture-shell"],
            vec![file("/usr/share/inplace", "0644", "orig")],
            "%post\necho more >> /usr/share/inplace\n",
        ),
        pkg(
            "fixture-units",
            "1",
            "1",
            &["Requires: fixture-filesystem"],
            vec![file(
                "/usr/lib/systemd/system/foo.service",
                "0644",
                "[Unit]\nDescription=foo\n[Service]\nExecStart=/usr/bin/app\n[Install]\nWantedBy=multi-user.target",
            )],
            "",
        ),
    ]
}

const FEATURES: &str = r#"
ref: fixture/features
repos: [fixture, extra]
packages: [fixture-app, fixture-inplace, fixture-units]
units: [foo.service]
default-target: multi-user.target
add-files:
  - [added.txt, /usr/share/added.txt]
remove-from-packages:
  - [fixture-app, "^/usr/bin/app-link$"]
etc-group-members: [wheel]
readonly-executables: true
tmp-is-dir: true
machineid-compat: false
"#;

#[test]
fn interop_compose_features_and_package_errors() {
    if !have_tools() {
        return;
    }
    let fixture = fixture_repo(&os_packages());
    let extra = fixture_repo(&extra_packages());
    let (work, tf) = setup(&fixture, FEATURES);
    std::fs::write(
        work.path().join("extra.repo"),
        format!(
            "[extra]\nname=extra\nbaseurl=file://{}\ngpgcheck=0\n",
            extra.display()
        ),
    )
    .unwrap();
    std::fs::write(work.path().join("added.txt"), "added\n").unwrap();
    let repo = work.path().join("repo");
    let cache = work.path().join("cache");
    init_repo(&repo);
    let idfile = work.path().join("commitid");
    let touched = work.path().join("changed");
    let r = compose(
        &tf,
        &repo,
        &cache,
        &[
            &format!("--write-commitid-to={}", idfile.display()),
            &format!("--touch-if-changed={}", touched.display()),
            "--add-metadata-string=build.id=42",
        ],
    );
    let commit = r["commit-id"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(&idfile).unwrap().trim(), commit);
    assert!(touched.exists());
    assert!(
        ostree(&repo, &["refs"]).trim().is_empty(),
        "--write-commitid-to does not move the ref"
    );
    assert_eq!(
        ostree(&repo, &["show", "--print-metadata-key=build.id", commit]).trim(),
        "'42'"
    );
    assert_eq!(
        ostree(
            &repo,
            &["show", "--print-metadata-key=ostree.bootable", commit]
        )
        .trim(),
        "false"
    );
    let co = work.path().join("co");
    ostree(&repo, &["checkout", commit, co.to_str().unwrap()]);
    let etc = co.join("usr/etc");
    assert_eq!(
        std::fs::read_link(etc.join("systemd/system/multi-user.target.wants/foo.service")).unwrap(),
        Path::new("/usr/lib/systemd/system/foo.service")
    );
    assert_eq!(
        std::fs::read_link(etc.join("systemd/system/default.target")).unwrap(),
        Path::new("/usr/lib/systemd/system/multi-user.target")
    );
    assert_eq!(
        std::fs::read_to_string(co.join("usr/share/added.txt")).unwrap(),
        "added\n"
    );
    assert!(std::fs::symlink_metadata(co.join("usr/bin/app-link")).is_err());
    assert_eq!(
        std::fs::read_to_string(etc.join("group")).unwrap(),
        "root:x:0:\nwheel:x:10:\n"
    );
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&co.join("usr/bin/app")), 0o555);
    assert_eq!(mode(&co.join("usr/lib/libapp.so.1")), 0o555);
    assert_eq!(mode(&co.join("usr/share/app/data")), 0o640);
    assert!(co.join("tmp").is_dir() && mode(&co.join("tmp")) == 0o1777);
    assert!(std::fs::symlink_metadata(etc.join("machine-id")).is_err());
    // A %post appending to a hardlinked file: the tree has the result, the
    // package cache is not corrupted, and the package is imported again next time.
    assert_eq!(
        std::fs::read_to_string(co.join("usr/share/inplace")).unwrap(),
        "orig\nmore\n"
    );
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", cache.join("pkgcache-repo").display()))
            .arg("fsck"),
    );
    let r2 = compose(&tf, &repo, &cache, &["--force-nocache"]);
    assert_eq!(r2["imported"], 1, "{r2}");

    // Package-level failures name package, path or phase; nothing is committed.
    let cases: &[(&str, &[&str])] = &[
        ("fixture-lua", &["fixture-lua-1-1.noarch", "post", "Lua"]),
        (
            "fixture-conflict-a fixture-conflict-b",
            &[
                "/usr/share/conflict",
                "fixture-conflict-a-1-1.noarch",
                "fixture-conflict-b-1-1.noarch",
            ],
        ),
        (
            "fixture-srv",
            &["fixture-srv-1-1.noarch", "unsupported path /srv/data"],
        ),
    ];
    for (pkgs, want) in cases {
        std::fs::write(
            &tf,
            format!("ref: fixture/bad\nrepos: [fixture, extra]\npackages: [{pkgs}]\n"),
        )
        .unwrap();
        let out = run_fail(rost(&[
            "compose",
            "tree",
            &format!("--repo={}", repo.display()),
            &format!("--cachedir={}", cache.display()),
            tf.to_str().unwrap(),
        ]));
        let err = String::from_utf8_lossy(&out.stderr);
        for w in *want {
            assert!(err.contains(w), "{pkgs}: {err:?} lacks {w:?}");
        }
        assert!(!ostree(&repo, &["refs"]).contains("fixture/bad"));
    }
}

/// As non-root (scriptlets in a user namespace), the same inputs give the same
/// commit as a root compose: ownership comes from the package headers.
#[test]
fn interop_compose_as_non_root_matches_root() {
    if !have_tools() || !require_tool("setpriv") {
        return;
    }
    if !is_root() {
        eprintln!("SKIP: needs root to drop to an unprivileged user");
        return;
    }
    let fixture = fixture_repo(&os_packages());
    let (work, tf) = setup(&fixture, TREEFILE);
    let nobody = work.path().join("nobody");
    std::fs::create_dir(&nobody).unwrap();
    std::os::unix::fs::chown(&nobody, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .env("HOME", &nobody)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(args);
        c
    };
    let repo = nobody.join("repo");
    run_ok(as_nobody(&[
        "ostree",
        &format!("--repo={}", repo.display()),
        "init",
        "--mode=archive",
    ]));
    let rost_bin = crate::util::rost_bin();
    let out = run_ok(as_nobody(&[
        rost_bin.to_str().unwrap(),
        "compose",
        "tree",
        "--json",
        &format!("--repo={}", repo.display()),
        &format!("--cachedir={}", nobody.join("cache").display()),
        tf.to_str().unwrap(),
    ]));
    let unpriv: serde_json::Value = serde_json::from_str(&out).unwrap();
    let root_repo = work.path().join("root-repo");
    init_repo(&root_repo);
    let r = compose(&tf, &root_repo, &work.path().join("root-cache"), &[]);
    assert_eq!(unpriv["commit-id"], r["commit-id"]);
}
