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
pub fn translate(args: &[OsString]) -> anyhow::Result<Option<Vec<OsString>>> {
    let mut globals: Vec<OsString> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--version" {
            return Ok(None);
        }
        if a == "--repo" {
            globals.push(args[i].clone());
            if let Some(v) = args.get(i + 1) {
                globals.push(v.clone());
            }
            i += 2;
            continue;
        }
        if a.starts_with("--repo=") {
            globals.push(args[i].clone());
            i += 1;
            continue;
        }
        if a == "-v" || a == "--verbose" {
            i += 1;
            continue;
        }
        break;
    }
    let Some(cmd) = args.get(i).map(|c| c.to_string_lossy().into_owned()) else {
        bail!("No command specified");
    };
    if cmd == "admin" {
        // `ostree admin …` maps onto `rost admin …` (its own --sysroot).
        let mut out: Vec<OsString> = vec!["rost".into(), "admin".into()];
        out.extend(args[i + 1..].iter().cloned());
        return Ok(Some(out));
    }
    if !REPO_COMMANDS.contains(&cmd.as_str()) {
        bail!("Unknown command '{cmd}'");
    }
    let mut out: Vec<OsString> = vec!["rost".into(), "repo".into()];
    out.extend(globals);
    out.push(cmd.into());
    out.extend(args[i + 1..].iter().cloned());
    Ok(Some(out))
}

/// Runs an ostree-style command line.
pub fn run(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    match translate(&args)? {
        Some(rost_args) => super::run(rost_args),
        None => {
            println!(
                "libostree:\n Version: '2022.7'\n Git: rost-{}\n Features:",
                env!("CARGO_PKG_VERSION")
            );
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
            ["rost", "repo", "fsck", "--repo=R"]
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
