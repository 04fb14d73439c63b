//! argv0 `ostree` mode: accept ostree's own argument order.
//!
//! `ostree [--repo=R] [--verbose] COMMAND ARGS…` is rewritten to
//! `rost repo [--repo=R] COMMAND ARGS…` for the repository commands, so scripts
//! written for ostree run unchanged against rost.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

/// Repository commands that map 1:1 onto `rost repo`.
const REPO_COMMANDS: &[&str] = &[
    "init",
    "commit",
    "checkout",
    "ls",
    "cat",
    "show",
    "log",
    "refs",
    "rev-parse",
    "reset",
    "config",
    "checksum",
    "diff",
    "fsck",
    "prune",
    "summary",
    "remote",
    "pull",
    "pull-local",
    "sign",
    "gpg-sign",
    "static-delta",
];

/// Whether argv0's file name is `ostree`.
pub fn invoked_as_ostree(args: &[OsString]) -> bool {
    args.first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "ostree")
}

/// Rewrites an ostree command line into rost's; `None` for `--version`.
///
/// As GOption parses ostree's: options may come before the command (they are
/// moved after it), and of several `--repo` the last one wins. `--` ends the
/// options; what follows is passed on untouched.
pub fn translate(args: &[OsString]) -> anyhow::Result<Option<Vec<OsString>>> {
    let mut repo: Option<Vec<OsString>> = None;
    let mut early: Vec<OsString> = Vec::new();
    let mut cmd: Option<String> = None;
    let mut rest: Vec<OsString> = Vec::new();
    let mut i = 1;
    let mut options_done = false;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        if options_done {
            rest.push(args[i].clone());
            i += 1;
            continue;
        }
        if a == "--" {
            options_done = true;
            rest.push(args[i].clone());
            i += 1;
            continue;
        }
        if a == "--version" {
            return Ok(None);
        }
        if a == "--repo" {
            let mut v = vec![args[i].clone()];
            if let Some(val) = args.get(i + 1) {
                v.push(val.clone());
            }
            repo = Some(v);
            i += 2;
            continue;
        }
        if a.starts_with("--repo=") {
            repo = Some(vec![args[i].clone()]);
            i += 1;
            continue;
        }
        // -v is ostree's --verbose (rost logs through RUST_LOG), except for
        // `summary`, whose own -v is --view.
        if a == "--verbose" || (a == "-v" && cmd.as_deref() != Some("summary")) {
            i += 1;
            continue;
        }
        match &cmd {
            None if a.starts_with('-') => early.push(args[i].clone()),
            None => cmd = Some(a),
            Some(_) => rest.push(args[i].clone()),
        }
        i += 1;
    }
    let Some(cmd) = cmd else {
        bail!("No command specified");
    };
    if cmd == "admin" {
        // `ostree admin …` maps onto `rost admin …` (its own --sysroot).
        let mut out: Vec<OsString> = vec!["rost".into(), "admin".into()];
        let rest: Vec<OsString> = early.into_iter().chain(rest).collect();
        // ostree reads the sysroot from $OSTREE_SYSROOT when --sysroot is absent.
        let has_sysroot = rest.iter().any(|a| {
            let a = a.to_string_lossy();
            a == "--sysroot" || a.starts_with("--sysroot=")
        });
        if let (false, Some(s)) = (has_sysroot, std::env::var_os("OSTREE_SYSROOT")) {
            let mut flag = OsString::from("--sysroot=");
            flag.push(s);
            out.push(flag);
        }
        out.extend(rest);
        return Ok(Some(out));
    }
    if !REPO_COMMANDS.contains(&cmd.as_str()) {
        bail!("Unknown command '{cmd}'");
    }
    let mut out: Vec<OsString> = vec!["rost".into(), "repo".into()];
    out.extend(repo.unwrap_or_default());
    out.push(cmd.into());
    out.extend(early);
    out.extend(rest);
    Ok(Some(out))
}

/// The libostree release whose command line and messages rost follows.
const OSTREE_VERSION: &str = "2022.7";

/// Features in `ostree --version`, by libostree's names, that rost has.
///
/// Scripts test for a feature before using it, so only what rost really
/// does is listed: `sign-ed25519` (commit and summary signatures), `gpgme`
/// (OpenPGP signing and verification of commits and summaries; rost drives
/// the GnuPG programs as libostree's gpgme does, see `rost_store::gpg`).
/// Not listed: HTTP library names (`libcurl`, `libsoup`), `libarchive`
/// (no tar import), `selinux`, `avahi`, `libmount`, `systemd`, `p2p`,
/// `ex-fsverity`, `composefs`.
const FEATURES: &[&str] = &["gpgme", "sign-ed25519"];

/// `ostree --version`: YAML, as libostree prints it.
fn version_yaml() -> String {
    let mut s = format!(
        "libostree:\n Version: '{OSTREE_VERSION}'\n Git: rost-{}\n Features:\n",
        env!("CARGO_PKG_VERSION")
    );
    for f in FEATURES {
        s.push_str(&format!("  - {f}\n"));
    }
    s
}

/// Runs an ostree-style command line.
pub fn run(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    match translate(&args)? {
        Some(rost_args) => super::run(rost_args),
        None => {
            print!("{}", version_yaml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(args: &[&str]) -> Vec<String> {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        translate(&v)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn moves_repo_before_command() {
        assert_eq!(
            t(&["ostree", "--repo=R", "commit", "-b", "B", "T"]),
            ["rost", "repo", "--repo=R", "commit", "-b", "B", "T"]
        );
        assert_eq!(
            t(&["/usr/bin/ostree", "--repo", "R", "refs"]),
            ["rost", "repo", "--repo", "R", "refs"]
        );
        assert_eq!(
            t(&["ostree", "fsck", "--repo=R"]),
            ["rost", "repo", "--repo=R", "fsck"]
        );
    }

    #[test]
    fn last_repo_wins_and_options_may_precede_the_command() {
        assert_eq!(
            t(&[
                "ostree",
                "--repo=A",
                "--repo=B",
                "config",
                "get",
                "core.mode"
            ]),
            ["rost", "repo", "--repo=B", "config", "get", "core.mode"]
        );
        assert_eq!(
            t(&["ostree", "--repo=R", "--print-metadata-key=k", "show", "x"]),
            [
                "rost",
                "repo",
                "--repo=R",
                "show",
                "--print-metadata-key=k",
                "x"
            ]
        );
        // After `--` nothing is an option, not even --repo.
        assert_eq!(
            t(&[
                "ostree", "config", "--repo=R", "--", "set", "k.v", "-1", "--repo=X"
            ]),
            [
                "rost", "repo", "--repo=R", "config", "--", "set", "k.v", "-1", "--repo=X"
            ]
        );
    }

    #[test]
    fn version_is_yaml_with_features() {
        let y = version_yaml();
        assert!(y.starts_with("libostree:\n Version: '2022.7'\n"), "{y}");
        assert!(
            y.contains("\n Features:\n  - gpgme\n  - sign-ed25519\n"),
            "{y}"
        );
    }

    #[test]
    fn unknown_commands_fail() {
        let v: Vec<OsString> = ["ostree", "frobnicate"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(translate(&v).is_err());
    }
}
