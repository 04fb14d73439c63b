//! `rost pkg` integration tests (rost-rpm work).
//!
//! Fixtures are built at test time with the real `rpmbuild` and `createrepo_c`
//! from compact package descriptions, cached under `target/rost-fixtures/<hash>/`.
//! Every interop test compares rost with the real tool (`rpm`, `rpm2cpio | cpio`,
//! `dnf`) on the same files.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{SpecFile, require_tool, rost, rpm_fixture_repo, run_fail, run_ok};

/// A package to build: a compact description turned into a spec file.
#[derive(Clone, Copy)]
struct P {
    name: &'static str,
    /// `[E:]V-R`
    evr: &'static str,
    arch: &'static str,
    /// Extra preamble lines (`Requires: …`, `Provides: …`, …), `;`-separated.
    deps: &'static str,
    /// Files, `;`-separated: `f PATH MODE TEXT`, `c PATH TEXT` (config noreplace),
    /// `d PATH MODE`, `l PATH TARGET`, `h PATH EXISTING` (hardlink), `g PATH` (ghost),
    /// `doc PATH TEXT`, `cap PATH CAPS` (regular file with capabilities).
    files: &'static str,
    /// Payload compression macro (`w9.gzdio`, `w6.xzdio`, `w19.zstdio`, `w9.bzdio`), or "".
    payload: &'static str,
}

const fn p(name: &'static str, evr: &'static str, deps: &'static str) -> P {
    P {
        name,
        evr,
        arch: "noarch",
        deps,
        files: "",
        payload: "",
    }
}

impl P {
    fn spec(&self) -> String {
        let (epoch, vr) = match self.evr.split_once(':') {
            Some((e, vr)) => (Some(e), vr),
            None => (None, self.evr),
        };
        let (version, release) = vr.rsplit_once('-').expect("evr has a release");
        let mut s = String::new();
        s += "%define debug_package %{nil}\n%define __os_install_post %{nil}\n";
        s += "%define _build_id_links none\n";
        if !self.payload.is_empty() {
            s += &format!("%define _binary_payload {}\n", self.payload);
        }
        s += &format!(
            "Name: {}\nVersion: {version}\nRelease: {release}\n",
            self.name
        );
        if let Some(e) = epoch {
            s += &format!("Epoch: {e}\n");
        }
        s += &format!("Summary: fixture {}\nLicense: MIT\n", self.name);
        if self.arch == "noarch" {
            // Arch packages get `--target ARCH` instead (BuildArch breaks cross-arch).
            s += "BuildArch: noarch\n";
        }
        let (deps, scripts) = self.deps.split_once("%%").unwrap_or((self.deps, ""));
        for d in deps.split(';').map(str::trim).filter(|d| !d.is_empty()) {
            s += d;
            s += "\n";
        }
        s += &format!("%description\nFixture package {}.\n", self.name);
        let mut install = String::from("%install\nmkdir -p %{buildroot}\n");
        let mut files = String::from("%files\n");
        for f in self
            .files
            .split(';')
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            let parts: Vec<&str> = f.splitn(4, ' ').collect();
            let path = parts[1];
            let br = format!("%{{buildroot}}{path}");
            install += &format!("mkdir -p $(dirname {br})\n");
            match parts[0] {
                "f" => {
                    install += &format!("printf '%s\\n' '{}' > {br}\n", parts[3]);
                    install += &format!("chmod {} {br}\n", parts[2]);
                    files += &format!("{path}\n");
                }
                "cap" => {
                    install += &format!("printf 'bin\\n' > {br}\nchmod 0755 {br}\n");
                    files += &format!("%caps({}) {path}\n", parts[2..].join(" "));
                }
                "c" => {
                    install += &format!("printf '%s\\n' '{}' > {br}\n", parts[2..].join(" "));
                    files += &format!("%config(noreplace) {path}\n");
                }
                "doc" => {
                    install += &format!("printf '%s\\n' '{}' > {br}\n", parts[2..].join(" "));
                    files += &format!("%doc {path}\n");
                }
                "d" => {
                    install += &format!("mkdir -p {br}\nchmod {} {br}\n", parts[2]);
                    files += &format!("%dir {path}\n");
                }
                "l" => {
                    install += &format!("ln -s {} {br}\n", parts[2]);
                    files += &format!("{path}\n");
                }
                "h" => {
                    install += &format!("ln %{{buildroot}}{} {br}\n", parts[2]);
                    files += &format!("{path}\n");
                }
                "g" => {
                    files += &format!("%ghost {path}\n");
                }
                other => panic!("unknown file kind {other}"),
            }
        }
        s += &install;
        s += &files;
        s += scripts;
        s
    }
}

/// Builds (or reuses) a repository of `pkgs`; returns the directory holding
/// `repodata/` and the RPMs.
fn fixture_repo(pkgs: &[P]) -> PathBuf {
    let specs: Vec<SpecFile> = pkgs
        .iter()
        .map(|p| SpecFile {
            file: format!("{}-{}.spec", p.name, p.evr.replace(':', "_")),
            text: p.spec(),
            target: (p.arch != "noarch").then(|| p.arch.to_owned()),
        })
        .collect();
    rpm_fixture_repo("pkg", &specs)
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

fn have_rpm_tools() -> bool {
    require_tool("rpm") && require_tool("rpmbuild") && require_tool("createrepo_c")
}

/// Packages exercising header features and every payload compressor.
const HEADER_PKGS: &[P] = &[
    P {
        name: "hdr-gzip",
        evr: "3:1.2.3-4.fc40",
        arch: "x86_64",
        deps: "Requires: /bin/sh; Requires(pre): /usr/sbin/useradd; Requires(post): coreutils >= 8; \
               Provides: hdr-virtual = 1.0; Conflicts: hdr-bad < 2; Obsoletes: hdr-old <= 1.0; \
               Recommends: hdr-rec; Suggests: hdr-sug; Supplements: (hdr-gzip-base and langpacks-en); \
               Enhances: hdr-enh; Requires: (hdr-a or hdr-b)",
        files: "f /usr/bin/hdr 0755 hello; l /usr/bin/hdr-link hdr; h /usr/bin/hdr-hard /usr/bin/hdr; \
                c /etc/hdr.conf key=value; d /var/lib/hdr 0700; g /var/log/hdr.log; \
                doc /usr/share/doc/hdr/README read me; f /usr/share/hdr/data 0644 data; \
                cap /usr/bin/hdr-ping cap_net_raw=ep",
        payload: "w9.gzdio",
    },
    P {
        name: "hdr-xz",
        evr: "0.1-1",
        arch: "noarch",
        deps: "Requires: hdr-gzip = 3:1.2.3-4.fc40",
        files: "f /usr/share/hdr-xz/a 0644 a; f /usr/share/hdr-xz/b 0600 bbbb; l /usr/share/hdr-xz/abs /etc/hdr.conf",
        payload: "w6.xzdio",
    },
    P {
        name: "hdr-zstd",
        evr: "2.0~rc1-1",
        arch: "noarch",
        deps: "",
        files: "f /opt/hdr-zstd/x 0644 zstd payload; h /opt/hdr-zstd/y /opt/hdr-zstd/x; h /opt/hdr-zstd/z /opt/hdr-zstd/x",
        payload: "w19.zstdio",
    },
    P {
        name: "hdr-bzip2",
        evr: "1.0^git1-2",
        arch: "noarch",
        deps: "",
        files: "f /opt/hdr-bz/x 4755 setuid; d /opt/hdr-bz/dir 1777",
        payload: "w9.bzdio",
    },
];

fn rpm_q(file: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new("rpm")
            .arg("-qp")
            .args(args)
            .arg(file)
            .env("TZ", "UTC"),
    )
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn interop_pkg_info_matches_rpm() {
    if !have_rpm_tools() {
        return;
    }
    let repo = fixture_repo(HEADER_PKGS);
    let rpms = rpms_in(&repo);
    assert_eq!(rpms.len(), HEADER_PKGS.len());
    for rpm in &rpms {
        let out = run_ok(rost(&["pkg", "info", "--json"]).arg(rpm));
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        let qf = rpm_q(
            rpm,
            &[
                "--queryformat",
                "%{NAME}\n%{EPOCH}\n%{VERSION}\n%{RELEASE}\n%{ARCH}\n%{SUMMARY}\n%{LICENSE}\n%{SIZE}\n%{SOURCERPM}\n%{BUILDTIME}\n%{PAYLOADCOMPRESSOR}\n",
            ],
        );
        let f: Vec<&str> = qf.lines().collect();
        let name = rpm.display();
        assert_eq!(j["name"], f[0], "{name}");
        match f[1] {
            "(none)" => assert!(j["epoch"].is_null(), "{name}"),
            e => assert_eq!(j["epoch"], e.parse::<u64>().unwrap(), "{name}"),
        }
        assert_eq!(j["version"], f[2], "{name}");
        assert_eq!(j["release"], f[3], "{name}");
        assert_eq!(j["arch"], f[4], "{name}");
        assert_eq!(j["summary"], f[5], "{name}");
        assert_eq!(j["license"], f[6], "{name}");
        assert_eq!(j["size"], f[7].parse::<u64>().unwrap(), "{name}");
        assert_eq!(j["sourcerpm"], f[8], "{name}");
        assert_eq!(j["buildtime"], f[9].parse::<u64>().unwrap(), "{name}");
        assert_eq!(j["payload_compressor"], f[10], "{name}");
        for (key, flag) in [
            ("requires", "--requires"),
            ("provides", "--provides"),
            ("conflicts", "--conflicts"),
            ("obsoletes", "--obsoletes"),
            ("recommends", "--recommends"),
            ("suggests", "--suggests"),
            ("supplements", "--supplements"),
            ("enhances", "--enhances"),
        ] {
            let ours: Vec<String> = j[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            let mut ours_sorted = ours.clone();
            ours_sorted.sort();
            assert_eq!(
                ours_sorted,
                sorted_lines(&rpm_q(rpm, &[flag])),
                "{name} {key}"
            );
        }
        // Pre/post flags: compare with rpm's %{REQUIREFLAGS} bits.
        let flags = rpm_q(
            rpm,
            &["--queryformat", "[%{REQUIRENAME} %{REQUIREFLAGS}\n]"],
        );
        let mut want_pre = BTreeSet::new();
        let mut want_post = BTreeSet::new();
        for l in flags.lines() {
            let (n, fl) = l.rsplit_once(' ').unwrap();
            let fl: u32 = fl.parse().unwrap();
            if fl & ((1 << 9) | (1 << 6)) != 0 {
                want_pre.insert(n.to_owned());
            }
            if fl & (1 << 10) != 0 {
                want_post.insert(n.to_owned());
            }
        }
        let names = |k: &str| -> BTreeSet<String> {
            j[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().split(' ').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("requires_pre"), want_pre, "{name}");
        assert_eq!(names("requires_post"), want_post, "{name}");
        // File attributes: flags, digests, caps, link targets.
        let fq = rpm_q(
            rpm,
            &[
                "--queryformat",
                "[%{FILENAMES}|%{FILEFLAGS}|%{FILEDIGESTS}|%{FILECAPS}|%{FILELINKTOS}|%{FILEUSERNAME}|%{FILEGROUPNAME}\n]",
            ],
        );
        let mut want: Vec<String> = fq.lines().map(|l| l.replace("|(none)|", "||")).collect();
        want.sort();
        let mut got: Vec<String> = j["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}|{}|{}|{}|{}|{}|{}",
                    f["path"].as_str().unwrap(),
                    f["flags"],
                    f["digest"].as_str().unwrap_or(""),
                    f["caps"].as_str().unwrap_or(""),
                    f["linkto"].as_str().unwrap_or(""),
                    f["user"].as_str().unwrap(),
                    f["group"].as_str().unwrap(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(got, want, "{name} files");
    }
    // Scriptlets and interpreters of a dedicated package.
    let repo = fixture_repo(&[SCRIPT_PKG]);
    let rpm = &rpms_in(&repo)[0];
    let j: serde_json::Value =
        serde_json::from_str(&run_ok(rost(&["pkg", "info", "--json"]).arg(rpm))).unwrap();
    let qf = rpm_q(
        rpm,
        &[
            "--queryformat",
            "%{PREINPROG}|%{POSTINPROG}|%{POSTUNPROG}\n",
        ],
    );
    let progs: Vec<&str> = qf.trim_end().split('|').collect();
    let find = |k: &str| {
        j["scriptlets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("no {k} scriptlet"))
    };
    assert_eq!(find("pre")["interpreter"][0], progs[0]);
    assert!(find("pre")["body"].as_str().unwrap().contains("echo pre"));
    assert_eq!(find("post")["interpreter"][0], progs[1]);
    assert!(find("post")["body"].is_null());
    assert_eq!(find("postun")["interpreter"][0], progs[2]);
}

const SCRIPT_PKG: P = P {
    name: "scripts",
    evr: "1-1",
    arch: "noarch",
    deps: "%%%pre\necho pre\n%post -p /sbin/ldconfig\n%postun -p /usr/bin/lua\nprint(1)\n",
    files: "f /usr/share/scripts/x 0644 x",
    payload: "",
};

#[test]
fn interop_pkg_ls_matches_rpm_qplv() {
    if !have_rpm_tools() {
        return;
    }
    let repo = fixture_repo(HEADER_PKGS);
    for rpm in rpms_in(&repo) {
        let ours = run_ok(rost(&["pkg", "ls"]).arg(&rpm).env("TZ", "UTC"));
        let theirs = rpm_q(&rpm, &["-lv"]);
        assert_eq!(ours, theirs, "{}", rpm.display());
    }
}

/// One entry of a directory tree, as compared between extractions.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File(u32, Vec<u8>, u64),
    Link(PathBuf),
}

fn snapshot(root: &Path) -> (BTreeMap<PathBuf, Node>, BTreeSet<Vec<PathBuf>>) {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let node = if m.file_type().is_symlink() {
                Node::Link(std::fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                stack.push(p.clone());
                Node::Dir(m.mode() & 0o7777)
            } else {
                inodes.entry(m.ino()).or_default().push(rel.clone());
                Node::File(m.mode() & 0o7777, std::fs::read(&p).unwrap(), m.nlink())
            };
            out.insert(rel, node);
        }
    }
    let groups = inodes
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    (out, groups)
}

#[test]
fn interop_pkg_extract_matches_rpm2cpio() {
    if !have_rpm_tools() || !require_tool("rpm2cpio") || !require_tool("cpio") {
        return;
    }
    let repo = fixture_repo(HEADER_PKGS);
    for rpm in rpms_in(&repo) {
        let tmp = tempfile::tempdir().unwrap();
        let theirs = tmp.path().join("cpio");
        std::fs::create_dir(&theirs).unwrap();
        let sh = format!(
            "rpm2cpio '{}' | cpio -idm --quiet --no-absolute-filenames",
            rpm.display()
        );
        run_ok(Command::new("sh").arg("-c").arg(sh).current_dir(&theirs));
        let ours = tmp.path().join("rost");
        run_ok(rost(&["pkg", "extract"]).arg(&rpm).arg(&ours));
        let (a, ga) = snapshot(&theirs);
        let (b, gb) = snapshot(&ours);
        assert_eq!(b, a, "{}", rpm.display());
        assert_eq!(gb, ga, "{} hardlink groups", rpm.display());
    }
}

#[test]
fn interop_pkg_rejects_corrupt_and_truncated_files() {
    if !have_rpm_tools() {
        return;
    }
    let repo = fixture_repo(HEADER_PKGS);
    let rpm = &rpms_in(&repo)[0];
    let bytes = std::fs::read(rpm).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated-header.rpm", bytes[..200].to_vec()),
        ("truncated-payload.rpm", bytes[..bytes.len() - 100].to_vec()),
        ("flipped-payload.rpm", {
            let mut b = bytes.clone();
            let i = b.len() - 50;
            b[i] ^= 0xff;
            b
        }),
        ("empty.rpm", Vec::new()),
    ];
    for (name, data) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, data).unwrap();
        let out = run_fail(rost(&["pkg", "info"]).arg(&path));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name),
            "{name}: error must name the file: {err}"
        );
        let out = run_fail(
            rost(&["pkg", "extract"])
                .arg(&path)
                .arg(tmp.path().join("x")),
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(name));
    }
}

/// Repository exercising every dependency kind.
const SOLVE_PKGS: &[P] = &[
    p(
        "app",
        "1.0-1",
        "Requires: lib >= 2; Requires: webserver; Requires: /opt/data/payload.bin",
    ),
    p("lib", "1-1", ""),
    p("lib", "2-1", ""),
    p("lib", "3-1", ""),
    p("httpd-lite", "1-1", "Provides: webserver"),
    p("httpd-full", "1-1", "Provides: webserver"),
    P {
        files: "f /opt/data/payload.bin 0644 data",
        ..p("data", "1-1", "")
    },
    p(
        "rich-app",
        "1-1",
        "Requires: (pa or pb); Requires: (pc if pd); Requires: (pe and pf); Recommends: (pg if pc)",
    ),
    p("pb", "1-1", ""),
    p("pc", "1-1", ""),
    p("pd", "1-1", ""),
    p("pe", "1-1", ""),
    p("pf", "1-1", ""),
    p("pg", "1-1", ""),
    p("ph", "1-1", ""),
    p(
        "with-app",
        "1-1",
        "Requires: (wlib with wlib-feature); Requires: (xlib without xlib-bad)",
    ),
    p("wlib", "1-1", ""),
    p("wlib", "2-1", "Provides: wlib-feature"),
    p("xlib", "1-1", ""),
    p("xlib", "2-1", "Provides: xlib-bad"),
    p(
        "weak-app",
        "1-1",
        "Recommends: rec-pkg; Recommends: rec-missing; Suggests: sug-pkg",
    ),
    p("rec-pkg", "1-1", "Requires: rec-dep"),
    p("rec-dep", "1-1", ""),
    p("sug-pkg", "1-1", ""),
    p("langpack", "1-1", "Supplements: weak-app"),
    p("oldpkg", "1-1", ""),
    p(
        "newpkg",
        "2-1",
        "Obsoletes: oldpkg < 2; Provides: oldpkg = 2",
    ),
    p("cf-app", "1-1", "Requires: lib; Conflicts: lib >= 3"),
    p("epochpkg", "1:1.0-1", ""),
    p("epochpkg", "9.0-1", ""),
    p("tilde", "1.0~rc1-1", ""),
    p("tilde", "1.0-1", ""),
    p("broken", "1-1", "Requires: nonexistent-cap >= 2"),
    p("clash-a", "1-1", "Conflicts: clash-b"),
    p("clash-b", "1-1", ""),
    P {
        arch: "x86_64",
        ..p("archpkg", "1-1", "")
    },
    P {
        arch: "i686",
        ..p("archpkg", "1-1", "")
    },
    p("prio-pkg", "2.0-1", ""),
    // libsolv picks among the providers of `(A or B)` (and of a virtual
    // capability) by name, not by operand order or name length; Debian's
    // init-system-helpers has exactly this `(usrmerge or usr-is-merged)`.
    p("merged-app", "1-1", "Requires: (usrmerge or usr-is-merged)"),
    p(
        "usrmerge",
        "1-1",
        "Provides: usr-is-merged; Requires: merge-helper",
    ),
    p("usr-is-merged", "1-1", ""),
    p("merge-helper", "1-1", ""),
    p("virt-app", "1-1", "Requires: virt-cap"),
    p("zz", "1-1", "Provides: virt-cap"),
    p("aa-long-provider", "1-1", "Provides: virt-cap"),
];

/// The higher-priority second repository.
const PRIO_PKGS: &[P] = &[p("prio-pkg", "1.0-1", "")];

struct Repos {
    _tmp: tempfile::TempDir,
    reposdir: PathBuf,
    repofile: PathBuf,
}

fn solve_repos() -> Repos {
    let main = fixture_repo(SOLVE_PKGS);
    let prio = fixture_repo(PRIO_PKGS);
    let tmp = tempfile::tempdir().unwrap();
    let reposdir = tmp.path().join("repos.d");
    std::fs::create_dir(&reposdir).unwrap();
    let repofile = reposdir.join("fixture.repo");
    std::fs::write(
        &repofile,
        format!(
            "[fixture-main]\nname=main $releasever $basearch\nbaseurl=file://{}\ngpgcheck=0\nmetadata_expire=never\n\n\
             [fixture-prio]\nname=prio\nbaseurl=file://{}\ngpgcheck=0\npriority=10\n\n\
             [fixture-disabled]\nbaseurl=file:///nonexistent/$releasever\nenabled=0\n",
            main.display(),
            prio.display()
        ),
    )
    .unwrap();
    Repos {
        _tmp: tmp,
        reposdir,
        repofile,
    }
}

/// What dnf would install: parsed from `dnf install --assumeno`'s transaction table.
fn dnf_resolve(repos: &Repos, specs: &[&str], extra: &[&str]) -> Result<BTreeSet<String>, String> {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new("dnf")
        .arg(format!("--installroot={}", root.path().display()))
        .arg(format!("--setopt=reposdir={}", repos.reposdir.display()))
        .arg(format!("--setopt=cachedir={}/cache", root.path().display()))
        .args([
            "--releasever=40",
            "--disableplugin=*",
            "--nogpgcheck",
            "--setopt=tsflags=test",
        ])
        .args(extra)
        .arg("install")
        .arg("--assumeno")
        .args(specs)
        .output()
        .expect("spawn dnf");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !stdout.contains("Transaction Summary") {
        return Err(format!("{stdout}\n{stderr}"));
    }
    let mut set = BTreeSet::new();
    let mut in_table = false;
    for line in stdout.lines() {
        if line.starts_with("Installing") || line.starts_with("Upgrading") {
            in_table = true;
            continue;
        }
        if line.starts_with("Transaction Summary") {
            break;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        if in_table && line.starts_with(' ') && w.len() >= 5 {
            set.insert(format!("{}-{}.{}", w[0], w[2], w[1]));
        }
    }
    Ok(set)
}

fn rost_resolve(repos: &Repos, specs: &[&str], extra: &[&str]) -> Result<BTreeSet<String>, String> {
    let cache = tempfile::tempdir().unwrap();
    let out = rost(&[
        "pkg",
        "resolve",
        "--releasever",
        "40",
        "--basearch",
        "x86_64",
    ])
    .arg("--repofile")
    .arg(&repos.repofile)
    .arg("--cachedir")
    .arg(cache.path())
    .args(extra)
    .args(specs)
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "output must be sorted");
    Ok(lines.into_iter().collect())
}

#[test]
fn interop_pkg_resolve_matches_dnf() {
    if !have_rpm_tools() || !require_tool("dnf") {
        return;
    }
    let repos = solve_repos();
    // (specs, rost flags, dnf flags)
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (&["app"], &[], &[]),
        (
            &["app"],
            &["--exclude", "httpd-lite"],
            &["--exclude=httpd-lite"],
        ),
        (&["rich-app"], &[], &[]),
        (&["rich-app", "pd"], &[], &[]),
        (&["with-app"], &[], &[]),
        (&["weak-app"], &[], &[]),
        (
            &["weak-app"],
            &["--no-recommends"],
            &["--setopt=install_weak_deps=False"],
        ),
        (&["oldpkg"], &[], &[]),
        (&["cf-app"], &[], &[]),
        (&["epochpkg", "tilde"], &[], &[]),
        (&["archpkg"], &[], &[]),
        (&["prio-pkg"], &[], &[]),
        (&["lib < 3"], &[], &[]),
        (&["lib-1-1.noarch"], &[], &[]),
        (&["webserver"], &[], &[]),
        (&["/opt/data/payload.bin"], &[], &[]),
        (&["merged-app"], &[], &[]),
        (&["virt-app"], &[], &[]),
    ];
    for (specs, rflags, dflags) in cases {
        let want = dnf_resolve(&repos, specs, dflags)
            .unwrap_or_else(|e| panic!("dnf failed on {specs:?}: {e}"));
        assert!(!want.is_empty(), "{specs:?}: dnf resolved nothing");
        let got = rost_resolve(&repos, specs, rflags)
            .unwrap_or_else(|e| panic!("rost failed on {specs:?}: {e}"));
        assert_eq!(got, want, "{specs:?} {rflags:?}");
    }
}

#[test]
fn interop_pkg_resolve_unsatisfiable_like_dnf() {
    if !have_rpm_tools() || !require_tool("dnf") {
        return;
    }
    let repos = solve_repos();
    let cases: &[(&[&str], &[&str])] = &[
        (&["broken"], &["broken", "nonexistent-cap"]),
        (&["clash-a", "clash-b"], &["clash-a", "clash-b"]),
        (&["app"], &["app", "lib"]),
        (&["no-such-package"], &["no-such-package"]),
    ];
    for (specs, mentions) in cases {
        let extra: &[&str] = if specs == &["app"] {
            &["--exclude", "lib"]
        } else {
            &[]
        };
        let dnf_extra: Vec<String> = if specs == &["app"] {
            vec!["--exclude=lib".into()]
        } else {
            vec![]
        };
        let dnf_extra: Vec<&str> = dnf_extra.iter().map(String::as_str).collect();
        assert!(
            dnf_resolve(&repos, specs, &dnf_extra).is_err(),
            "dnf solved {specs:?}"
        );
        let err = rost_resolve(&repos, specs, extra).expect_err("rost must fail");
        for m in *mentions {
            assert!(
                err.contains(m),
                "{specs:?}: explanation must name {m}: {err}"
            );
        }
    }
}

#[test]
fn interop_pkg_download_verifies_and_caches() {
    if !have_rpm_tools() {
        return;
    }
    let repos = solve_repos();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let cache = tmp.path().join("cache");
    let out = run_ok(
        rost(&[
            "pkg",
            "download",
            "--releasever",
            "40",
            "--basearch",
            "x86_64",
        ])
        .arg("--repofile")
        .arg(&repos.repofile)
        .arg("--cachedir")
        .arg(&cache)
        .arg("--dest")
        .arg(&dest)
        .arg("app"),
    );
    let paths: Vec<&str> = out.lines().collect();
    assert_eq!(paths.len(), 4, "{out}");
    for p in &paths {
        // Each download is a valid package matching what rpm reads.
        let q = run_ok(Command::new("rpm").args(["-qp", "--qf", "%{NAME}"]).arg(p));
        let j: serde_json::Value =
            serde_json::from_str(&run_ok(rost(&["pkg", "info", "--json"]).arg(p))).unwrap();
        assert_eq!(j["name"], q);
    }
    // The package cache is keyed by checksum.
    let cached = std::fs::read_dir(cache.join("packages")).unwrap().count();
    assert_eq!(cached, 4);
}
