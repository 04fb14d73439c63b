//! Client workflows end to end with real parts: the sample OS (rpmbuild +
//! createrepo_c) composed by rost, served by nginx, pulled and deployed into a
//! sysroot that the real `ostree admin` reads too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::http::Nginx;
use crate::util::{require_tool, rost, run_fail, run_ok, target_dir, tempdir};

/// The sample packages and treefiles of `scripts/sample-packages.sh`, built once
/// per script version under `target/rost-fixtures/` (built aside, renamed in).
fn samples() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sample-packages.sh");
    let text = std::fs::read(&script).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let root = target_dir().join("rost-fixtures");
    std::fs::create_dir_all(&root).unwrap();
    // Canonical: the .repo files hold absolute paths the script resolved.
    let root = std::fs::canonicalize(&root).unwrap();
    let dir = root.join(format!("samples-{:016x}", h.finish()));
    if dir.join("v2.yaml").is_file() {
        return dir;
    }
    let tmp = tempfile::tempdir_in(&root).unwrap();
    let out = tmp.path().join("out");
    run_ok(Command::new("bash").arg(&script).arg(&out));
    // The .repo files name absolute paths: point them at the final place.
    for r in ["base", "v1", "v2"] {
        let f = out.join(format!("demo-{r}.repo"));
        let t = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, t.replace(out.to_str().unwrap(), dir.to_str().unwrap())).unwrap();
    }
    match std::fs::rename(&out, &dir) {
        Ok(()) => {}
        Err(_) if dir.join("v2.yaml").is_file() => {}
        Err(e) => panic!("renaming samples into place: {e}"),
    }
    dir
}

fn have_tools() -> bool {
    [
        "ostree",
        "rpm",
        "rpmbuild",
        "createrepo_c",
        "bwrap",
        "nginx",
    ]
    .iter()
    .all(|t| require_tool(t))
}

const REF_PREFIX: &str = "demo/";

fn demo_ref() -> String {
    format!("{REF_PREFIX}{}/os", std::env::consts::ARCH)
}

/// A compose server (archive repo behind nginx) and a client sysroot with
/// release 1 deployed from it.
struct World {
    tmp: tempfile::TempDir,
    samples: PathBuf,
    server: PathBuf,
    sysroot: PathBuf,
    nginx: Nginx,
}

impl World {
    fn new() -> World {
        let tmp = tempdir("host-it-");
        let samples = samples();
        let server = tmp.path().join("server");
        run_ok(rost(&[
            "repo",
            "init",
            "--repo",
            s(&server),
            "--mode",
            "archive",
        ]));
        let nginx = Nginx::start(&server, tmp.path());
        let sysroot = tmp.path().join("sysroot");
        std::fs::create_dir_all(&sysroot).unwrap();
        let w = World {
            tmp,
            samples,
            server,
            sysroot,
            nginx,
        };
        w.compose(1);
        run_ok(rost(&["admin", "init-fs", s(&w.sysroot)]));
        run_ok(w.admin(&["os-init", "demo"]));
        let repo = w.sysroot.join("ostree/repo");
        run_ok(rost(&[
            "repo",
            "remote",
            "--repo",
            s(&repo),
            "add",
            "--no-gpg-verify",
            "demo",
            &w.nginx.url,
        ]));
        run_ok(rost(&[
            "repo",
            "pull",
            "--repo",
            s(&repo),
            "demo",
            &demo_ref(),
        ]));
        run_ok(w.admin(&["deploy", "--os", "demo", &format!("demo:{}", demo_ref())]));
        w
    }

    fn compose(&self, release: u32) -> String {
        let tf = self.samples.join(format!("v{release}.yaml"));
        let cache = self.tmp.path().join("cache");
        let mut c = rost(&[
            "compose",
            "tree",
            "--repo",
            s(&self.server),
            "--cachedir",
            s(&cache),
        ]);
        c.arg(&tf);
        run_ok(c);
        self.server_rev(&demo_ref())
    }

    fn server_rev(&self, rev: &str) -> String {
        run_ok(rost(&["repo", "rev-parse", "--repo", s(&self.server), rev]))
            .trim()
            .to_owned()
    }

    fn admin(&self, args: &[&str]) -> Command {
        let mut c = rost(&["admin"]);
        c.args(args).arg("--sysroot").arg(&self.sysroot);
        c
    }

    /// `rost VERB --sysroot S ARGS…`.
    fn host(&self, verb: &str, args: &[&str]) -> Command {
        let mut c = rost(&[verb, "--sysroot", s(&self.sysroot)]);
        c.args(args);
        c
    }

    fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&run_ok(self.host("status", &["--json"]))).unwrap()
    }

    /// (checksum, serial) in boot order, from rost's JSON.
    fn rost_order(&self) -> Vec<String> {
        self.status_json()["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{}.{}",
                    d["checksum"].as_str().unwrap(),
                    d["serial"].as_u64().unwrap()
                )
            })
            .collect()
    }

    /// The same from the real `ostree admin status`.
    fn ostree_order(&self) -> Vec<String> {
        let out = run_ok(
            Command::new("ostree")
                .args(["admin", "status"])
                .arg(format!("--sysroot={}", self.sysroot.display())),
        );
        out.lines()
            .filter_map(|l| {
                let l = l.trim_start_matches(['*', ' ']);
                l.strip_prefix("demo ")
                    .map(|r| r.split_whitespace().next().unwrap().to_owned())
            })
            .collect()
    }

    #[track_caller]
    fn assert_status_agrees(&self) -> Vec<String> {
        let r = self.rost_order();
        assert_eq!(r, self.ostree_order(), "rost status vs ostree admin status");
        r
    }

    fn deploy_dir(&self, name: &str) -> PathBuf {
        self.sysroot.join("ostree/deploy/demo/deploy").join(name)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Deployment roots are immutable (as ostree makes them).
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "chattr -i {}/ostree/deploy/*/deploy/*/ 2>/dev/null; true",
                self.sysroot.display()
            ))
            .status();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Files under `root` (relative path → type, mode, content or link target).
fn manifest(root: &Path) -> BTreeSet<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.insert(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.insert(format!("{rel}/ {mode:o}"));
                stack.push(p);
            } else {
                let h = sha256_hex(&std::fs::read(&p).unwrap());
                out.insert(format!("{rel} {mode:o} {h}"));
            }
        }
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn rpm_qa(root: &Path) -> BTreeSet<String> {
    let out = run_ok(Command::new("rpm").arg("--root").arg(root).args([
        "--dbpath",
        "/usr/share/rpm",
        "-qa",
        "--qf",
        "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n",
    ]));
    out.lines().map(str::to_owned).collect()
}

/// The dbpath the composed tree's rpm macros name.
fn rpm_qa_tree(root: &Path) -> BTreeSet<String> {
    for db in ["usr/lib/sysimage/rpm", "usr/share/rpm"] {
        if root.join(db).is_dir() {
            let out = run_ok(Command::new("rpm").arg("--root").arg(root).args([
                "--dbpath",
                &format!("/{db}"),
                "-qa",
                "--qf",
                "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n",
            ]));
            return out.lines().map(str::to_owned).collect();
        }
    }
    rpm_qa(root)
}

const DIFF_BLOCK: &str = "Upgraded:\n  demo-hello 1-1 -> 2-1\nRemoved:\n  demo-legacy-1-1.noarch\nAdded:\n  demo-motd-1-1.noarch\n";

/// Acceptance 1–3: compose → nginx → upgrade → deployed tree equals v2 with the
/// local /etc edit; db diff and --check/--preview report exactly the fixture's
/// changes (and agree with `rpm -qa` of the two trees); rollback; ostree admin
/// status agrees with rost status at every step; exit codes and JSON fields.
#[test]
fn interop_upgrade_rollback_end_to_end() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let v1 = w.server_rev(&demo_ref());
    let order = w.assert_status_agrees();
    assert_eq!(order, [format!("{v1}.0")]);
    let st = w.status_json();
    let d0 = &st["deployments"][0];
    for key in [
        "id",
        "osname",
        "serial",
        "checksum",
        "version",
        "timestamp",
        "origin",
        "booted",
        "staged",
        "pinned",
    ] {
        assert!(d0.get(key).is_some(), "status --json lacks {key}: {d0}");
    }
    assert_eq!(d0["origin"], format!("demo:{}", demo_ref()));
    assert_eq!(d0["version"], "1");
    assert_eq!(d0["id"], format!("demo-{v1}.0"));
    assert!(st["transaction"].is_null());

    // Nothing new yet: 0, or 77 when asked.
    assert_eq!(run_ok(w.host("upgrade", &[])), "No upgrade available.\n");
    let o = w
        .host("upgrade", &["--unchanged-exit-77"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(77));
    let o = w
        .host("upgrade", &["--check", "--unchanged-exit-77"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(77));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "No updates available.\n"
    );

    // A local /etc edit before the upgrade.
    std::fs::write(
        w.deploy_dir(&format!("{v1}.0")).join("etc/site.conf"),
        "site=local\n",
    )
    .unwrap();

    let v2 = w.compose(2);
    assert_ne!(v1, v2);
    let check = run_ok(w.host("upgrade", &["--check"]));
    assert!(check.contains(&format!("Commit: {v2}")), "{check}");
    assert!(check.contains("Version: 2 ("), "{check}");
    assert!(
        check.contains("Diff: 1 upgraded, 1 removed, 1 added"),
        "{check}"
    );
    let preview = run_ok(w.host("upgrade", &["--preview"]));
    assert!(
        preview.contains("Upgraded: demo-hello 1-1 -> 2-1"),
        "{preview}"
    );
    assert!(
        preview.contains("Removed: demo-legacy-1-1.noarch"),
        "{preview}"
    );
    assert!(preview.contains("Added: demo-motd-1-1.noarch"), "{preview}");
    // --check deployed nothing.
    assert_eq!(w.assert_status_agrees(), [format!("{v1}.0")]);

    // --download-only fetches and deploys nothing; -C then deploys offline.
    let dl = run_ok(w.host("upgrade", &["--download-only"]));
    assert_eq!(dl, format!("Update downloaded: {v2} (version 2)\n"));
    assert_eq!(w.assert_status_agrees(), [format!("{v1}.0")]);
    let fetched = w.nginx.requests().len();
    let up = run_ok(w.host("upgrade", &["-C"]));
    assert_eq!(up, DIFF_BLOCK);
    assert_eq!(
        w.nginx.requests().len(),
        fetched,
        "-C fetched from the server"
    );
    let order = w.assert_status_agrees();
    assert_eq!(order, [format!("{v2}.0"), format!("{v1}.0")]);

    // The deployed tree is the v2 commit (usr), /etc carries the local edit.
    let co = w.tmp.path().join("v2-checkout");
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", w.server.display()))
            .args(["checkout", "-U", &v2])
            .arg(&co),
    );
    let dep = w.deploy_dir(&format!("{v2}.0"));
    assert_eq!(manifest(&dep.join("usr")), manifest(&co.join("usr")));
    assert_eq!(
        std::fs::read_to_string(dep.join("etc/site.conf")).unwrap(),
        "site=local\n"
    );
    assert_eq!(
        std::fs::read_to_string(dep.join("etc/hello.conf")).unwrap(),
        "greeting=hello 2\n"
    );

    // db diff (default: rollback → booted on a sysroot that is not running)
    // equals the fixture's changes and the rpm -qa difference of the trees.
    let diff = run_ok(w.host("db", &["diff"]));
    assert!(diff.ends_with(DIFF_BLOCK), "{diff}");
    assert!(
        diff.contains(&format!("from: rollback deployment ({v1})")),
        "{diff}"
    );
    let old = rpm_qa_tree(&w.deploy_dir(&format!("{v1}.0")));
    let new = rpm_qa_tree(&dep);
    let removed: Vec<_> = old.difference(&new).cloned().collect();
    let added: Vec<_> = new.difference(&old).cloned().collect();
    assert_eq!(removed, ["demo-hello-1-1.noarch", "demo-legacy-1-1.noarch"]);
    assert_eq!(added, ["demo-hello-2-1.noarch", "demo-motd-1-1.noarch"]);
    let lines = run_ok(w.host("db", &["diff", "-F", "diff", &v1, &v2]));
    assert!(lines.ends_with("!demo-hello-1-1.noarch\n=demo-hello-2-1.noarch\n-demo-legacy-1-1.noarch\n+demo-motd-1-1.noarch\n"), "{lines}");
    let j: serde_json::Value =
        serde_json::from_str(&run_ok(w.host("db", &["diff", "-F", "json", &v1, &v2]))).unwrap();
    assert_eq!(j["ostree-commit-from"], v1);
    assert_eq!(j["ostree-commit-to"], v2);
    let kinds: Vec<(String, u64)> = j["pkgdiff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().to_owned(), e[1].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("demo-hello".into(), 2),
            ("demo-legacy".into(), 1),
            ("demo-motd".into(), 0)
        ]
    );
    // db diff with --repo on the server's repository.
    let mut c = rost(&["db", "diff", "--repo", s(&w.server), &v1, &v2]);
    assert!(run_ok(&mut c).ends_with(DIFF_BLOCK));
    let list = run_ok(w.host("db", &["list", &v2, "demo-h*"]));
    assert_eq!(
        list,
        format!("ostree commit: {v2} ({v2})\n demo-hello-2-1.noarch\n")
    );
    let ver = run_ok(w.host("db", &["version", &v1, &v2]));
    assert_eq!(ver.matches("rpmdb version: 5:").count(), 2, "{ver}");

    // Rollback: v1 is the default again, and back.
    let rb = run_ok(w.host("rollback", &[]));
    assert!(
        rb.starts_with(&format!("Moving '{v1}.0' to be first deployment\n")),
        "{rb}"
    );
    assert!(
        rb.contains("Downgraded:\n  demo-hello 2-1 -> 1-1\n"),
        "{rb}"
    );
    assert_eq!(
        w.assert_status_agrees(),
        [format!("{v1}.0"), format!("{v2}.0")]
    );
    run_ok(w.host("rollback", &[]));
    assert_eq!(
        w.assert_status_agrees(),
        [format!("{v2}.0"), format!("{v1}.0")]
    );

    // deploy VERSION walks the branch history; the origin pins the commit.
    let out = run_ok(w.host("deploy", &["1"]));
    assert!(out.contains("Downgraded:"), "{out}");
    let st = w.status_json();
    assert_eq!(st["deployments"][0]["checksum"], v1);
    assert_eq!(st["deployments"][0]["override-commit"], v1);
    w.assert_status_agrees();
    let e = run_fail(w.host("deploy", &["9.9"]));
    assert!(
        String::from_utf8_lossy(&e.stderr)
            .contains("version 9.9 not found in the history of demo:"),
        "{e:?}"
    );
    // upgrade leaves the pinned commit for the branch head.
    run_ok(w.host("upgrade", &[]));
    let st = w.status_json();
    assert_eq!(st["deployments"][0]["checksum"], v2);
    assert!(st["deployments"][0]["override-commit"].is_null());

    // cleanup -r drops the rollback deployment.
    let out = run_ok(w.host("cleanup", &["-r"]));
    assert!(out.starts_with("Removed deployment "), "{out}");
    assert_eq!(w.assert_status_agrees().len(), 1);
    let e = run_fail(w.host("cleanup", &[]));
    assert!(String::from_utf8_lossy(&e.stderr).contains("At least one cleanup option"));
    let e = run_fail(w.host("rollback", &[]));
    assert!(String::from_utf8_lossy(&e.stderr).contains("No rollback deployment found"));
}

/// A downgrade is refused unless allowed; rebase follows another branch; a
/// booted sysroot reports its pending deployment (`--pending-exit-77`).
#[test]
fn interop_downgrade_rebase_pending() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let v1 = w.server_rev(&demo_ref());
    // Commit times have one-second resolution, and an equal time is no
    // downgrade (as libostree): make v2 strictly newer.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v2 = w.compose(2);
    run_ok(w.host("upgrade", &[]));
    // The server moves the branch back to v1 (an older commit).
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", w.server.display()))
            .args(["reset", &demo_ref(), &v1]),
    );
    let e = run_fail(w.host("upgrade", &[]));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("chronologically older") && err.contains("--allow-downgrade"),
        "{err}"
    );
    assert_eq!(w.assert_status_agrees()[0], format!("{v2}.0"));
    let out = run_ok(w.host("upgrade", &["--allow-downgrade"]));
    assert!(out.contains("Downgraded:"), "{out}");
    assert_eq!(w.assert_status_agrees()[0], format!("{v1}.1"));

    // Rebase onto another branch of the same remote.
    // (Composed commits carry a ref binding, so the other branch gets its own compose.)
    let tfdir = w.tmp.path().join("stable");
    std::fs::create_dir_all(&tfdir).unwrap();
    for f in ["demo-base.repo", "demo-v2.repo"] {
        std::fs::copy(w.samples.join(f), tfdir.join(f)).unwrap();
    }
    let tf = std::fs::read_to_string(w.samples.join("v2.yaml")).unwrap();
    let tf = tf.replace("ref: demo/${basearch}/os", "ref: demo/stable");
    std::fs::write(tfdir.join("stable.yaml"), tf).unwrap();
    let mut c = rost(&["compose", "tree", "--repo", s(&w.server), "--cachedir"]);
    c.arg(w.tmp.path().join("cache"))
        .arg(tfdir.join("stable.yaml"));
    run_ok(c);
    let stable = w.server_rev("demo/stable");
    let out = run_ok(w.host("rebase", &["demo/stable"]));
    assert!(out.contains("Upgraded:"), "{out}");
    let st = w.status_json();
    assert_eq!(st["deployments"][0]["origin"], "demo:demo/stable");
    assert_eq!(st["deployments"][0]["checksum"], stable);
    // The old branch's ref was purged from the client repo.
    let refs = run_ok(rost(&[
        "repo",
        "refs",
        "--repo",
        s(&w.sysroot.join("ostree/repo")),
    ]));
    assert!(refs.contains("demo:demo/stable"), "{refs}");
    assert!(!refs.contains(&format!("demo:{}", demo_ref())), "{refs}");

    // Booted on the second deployment: the first is pending.
    let order = w.assert_status_agrees();
    let booted = w.deploy_dir(&order[1]);
    let mut c = w.host("status", &["--pending-exit-77"]);
    c.env("ROST_ADMIN_BOOTED_ROOT", &booted);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(77), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains('●'));
    let mut c = w.host("status", &["--pending-exit-77"]);
    c.env("ROST_ADMIN_BOOTED_ROOT", w.deploy_dir(&order[0]));
    assert_eq!(c.output().unwrap().status.code(), Some(0));
}

/// A remote that requires ed25519 signatures: an unsigned commit is refused
/// by upgrade and nothing is deployed; signed, it goes through.
#[test]
fn interop_upgrade_requires_signature() {
    if !have_tools() {
        return;
    }
    // RFC 8032 §7.1 test key 1, base64 as ostree stores it.
    const SECRET: &str =
        "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==";
    const PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    let w = World::new();
    let v1 = w.server_rev(&demo_ref());
    let repo = w.sysroot.join("ostree/repo");
    run_ok(rost(&[
        "repo",
        "remote",
        "--repo",
        s(&repo),
        "delete",
        "demo",
    ]));
    run_ok(rost(&[
        "repo",
        "remote",
        "--repo",
        s(&repo),
        "add",
        "--no-gpg-verify",
        "--sign-verify",
        &format!("ed25519=inline:{PUBLIC}"),
        "demo",
        &w.nginx.url,
    ]));
    let v2 = w.compose(2);
    let e = run_fail(w.host("upgrade", &[]));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains("ed25519"), "{err}");
    assert_eq!(w.assert_status_agrees(), [format!("{v1}.0")]);
    let e = run_fail(w.host("upgrade", &["--check"]));
    assert!(String::from_utf8_lossy(&e.stderr).contains("ed25519"));
    run_ok(rost(&["repo", "sign", "--repo", s(&w.server), &v2, SECRET]));
    assert_eq!(run_ok(w.host("upgrade", &[])), DIFF_BLOCK);
    assert_eq!(w.assert_status_agrees()[0], format!("{v2}.0"));
}

/// Acceptance 4: `rost upgrade` killed at random moments (pull and deploy);
/// after each kill the old default is intact and a rerun completes.
#[test]
fn interop_killed_upgrades_recover() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let v1 = w.server_rev(&demo_ref());
    let v2 = w.compose(2);
    let mut landed = 0;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    // Kill delays spread over the time one full upgrade takes.
    let t = std::time::Instant::now();
    run_ok(w.host("upgrade", &[]));
    let span_ms = (t.elapsed().as_millis() as u64).max(50);
    run_ok(w.host("deploy", &[&v1]));
    run_ok(w.host("cleanup", &["-r", "-b"]));
    for round in 0..24 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = std::time::Duration::from_millis(5 + rng % span_ms);
        let mut child = w
            .host("upgrade", &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            let _ = child.kill();
            landed += 1;
        }
        let _ = child.wait();
        let order = w.assert_status_agrees();
        // The default is v1 (kill before the swap) or v2 (after); never broken.
        assert!(
            order[0].starts_with(&v1) || order[0].starts_with(&v2),
            "round {round}: default is {order:?}"
        );
        let dep = w.deploy_dir(&order[0]);
        assert!(
            dep.join("usr/bin/hello").is_file(),
            "round {round}: default deployment incomplete"
        );
        // Rerun completes; then go back to v1 for the next round.
        run_ok(w.host("upgrade", &[]));
        assert!(w.assert_status_agrees()[0].starts_with(&v2));
        run_ok(w.host("cleanup", &["-p", "-r", "-b"]));
        // Back to release 1 as the only deployment.
        run_ok(w.host("deploy", &[&v1]));
        run_ok(w.host("cleanup", &["-r"]));
        let mut clean = rost(&["repo", "fsck", "--repo"]);
        clean.arg(w.sysroot.join("ostree/repo"));
        run_ok(clean);
        if landed >= 8 {
            break;
        }
    }
    eprintln!("{landed} kills landed mid-upgrade");
    assert!(landed >= 3, "only {landed} kills landed mid-upgrade");
}

/// Runs `scripts/demo.sh` (as root, or as nobody through setpriv) and checks
/// that it shows the package diff and the status tables.
fn run_demo(as_nobody: bool) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir("demo-it-");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo.sh");
    let mut c = if as_nobody {
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
            .env("HOME", tmp.path());
        c
    } else {
        Command::new("bash")
    };
    c.arg(&script)
        .env("ROST", crate::util::rost_bin())
        .env("TMPDIR", tmp.path());
    let out = run_ok(c);
    let _unimmutable = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "chattr -i {}/*/sysroot/ostree/deploy/*/deploy/*/ 2>/dev/null; true",
            tmp.path().display()
        ))
        .status();
    let upgrade = out
        .split("$ rost upgrade --sysroot sysroot\n")
        .nth(1)
        .expect("the demo runs rost upgrade");
    assert!(upgrade.starts_with(DIFF_BLOCK), "{upgrade}");
    assert_eq!(
        out.matches("$ rost status --sysroot sysroot\nState: idle\nDeployments:\n")
            .count(),
        3,
        "{out}"
    );
    let after_rollback = out
        .split("$ rost rollback --sysroot sysroot\n")
        .nth(1)
        .unwrap();
    assert!(after_rollback.contains("Version: 1 ("), "{after_rollback}");
    assert!(out.contains("Demo complete in "), "{out}");
}

/// Acceptance 5: the README's main job runs and shows the package diff and
/// both status tables (after the upgrade and after the rollback).
#[test]
fn interop_demo_script() {
    if !have_tools() || !crate::util::is_root() {
        return;
    }
    run_demo(false);
}

/// The demo as an unprivileged user: the sysroot keeps a bare-user repository
/// and deployments are checked out in user mode.
#[test]
fn interop_demo_script_as_non_root() {
    if !have_tools() || !require_tool("setpriv") {
        return;
    }
    if !crate::util::is_root() {
        // Already unprivileged: run it as we are.
        run_demo(false);
        return;
    }
    run_demo(true);
}

/// `upgrade --stage`: the deployment is staged (listed first, `staged: true`),
/// the boot order is untouched until finalization; `cleanup -p` drops a staged
/// deployment; rollback refuses while one is staged.
#[test]
fn interop_staged_upgrade() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let v1 = w.server_rev(&demo_ref());
    let v2 = w.compose(2);
    let out = run_ok(w.host("upgrade", &["--stage"]));
    assert!(out.starts_with(DIFF_BLOCK), "{out}");
    assert!(out.contains("Staged deployment"), "{out}");
    let st = w.status_json();
    assert_eq!(st["deployments"][0]["checksum"], v2);
    assert_eq!(st["deployments"][0]["staged"], true);
    assert_eq!(st["deployments"][1]["checksum"], v1);
    // The boot configuration still names only release 1.
    assert_eq!(w.ostree_order(), [format!("{v1}.0")]);
    let e = run_fail(w.host("rollback", &[]));
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("Staged deployment (remove with cleanup -p)")
    );
    // A second upgrade finds the staged commit already pending.
    assert_eq!(run_ok(w.host("upgrade", &[])), "No upgrade available.\n");
    let out = run_ok(w.host("cleanup", &["-p"]));
    assert!(
        out.starts_with(&format!("Removed deployment {v2}.")),
        "{out}"
    );
    assert_eq!(w.assert_status_agrees(), [format!("{v1}.0")]);
    assert_eq!(w.status_json()["deployments"].as_array().unwrap().len(), 1);
    // Staged again, then finalized: now the default.
    run_ok(w.host("upgrade", &["--stage"]));
    run_ok(w.admin(&["finalize-staged"]));
    let order = w.assert_status_agrees();
    assert!(order[0].starts_with(&v2), "{order:?}");
    assert_eq!(order[1], format!("{v1}.0"));
}
