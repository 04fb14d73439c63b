//! `rost db diff|list|version`: package-level queries on commits, from their
//! `rpmostree.rpmdb.pkglist` metadata (rpm-ostree's names and output).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use rost_host::packages::{Package, PackageDiff, commit_packages, rpmdb_version};
use rost_host::{Host, Roles};
use rost_store::{Checksum, Repo};
use serde_json::json;

/// `rost db …`.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// Root of the sysroot (default: /); its repository unless --repo is given.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,
    /// Repository to read commits from.
    #[arg(long, global = true, value_name = "REPO")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: DbCommand,
}

/// Output formats of `db diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Upgraded/Downgraded/Removed/Added blocks.
    Block,
    /// One line per change: `!old`, `=new`, `-removed`, `+added`.
    Diff,
    /// One JSON document.
    Json,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Package changes between two commits (default: booted → pending, or
    /// rollback → booted when nothing is pending).
    Diff {
        /// Output format.
        #[arg(short = 'F', long, value_enum, default_value = "block")]
        format: DiffFormat,
        /// FROM and TO revisions (only one: from the booted deployment to it).
        #[arg(num_args = 0..=2)]
        revs: Vec<String>,
    },
    /// Packages in commits, optionally filtered by glob patterns.
    List {
        /// Revisions, then patterns (an argument that is not a revision is a pattern).
        #[arg(required = true)]
        args: Vec<String>,
    },
    /// The package-set hash of commits.
    Version {
        /// Revisions.
        #[arg(required = true)]
        revs: Vec<String>,
    },
}

fn packages_of(repo: &Repo, csum: &Checksum) -> anyhow::Result<Vec<Package>> {
    let commit = repo.load_commit(csum)?;
    commit_packages(&commit, &csum.to_hex())?
        .with_context(|| format!("commit {csum} has no package list (rpmostree.rpmdb.pkglist)"))
}

/// Runs a `rost db` subcommand.
pub fn run(a: DbArgs) -> anyhow::Result<ExitCode> {
    let mut host = None;
    let repo = match &a.repo {
        Some(r) => Repo::open(r).with_context(|| format!("opening repository {}", r.display()))?,
        None => {
            let h = Host::new(super::admin::open(&a.sysroot)?);
            let r = Repo::open(h.sysroot().repo().path())?;
            host = Some(h);
            r
        }
    };
    let resolve = |rev: &str| -> anyhow::Result<Checksum> {
        repo.resolve_commit(rev)
            .with_context(|| format!("resolving {rev}"))
    };
    let mut out = std::io::stdout().lock();
    match a.command {
        DbCommand::Diff { format, revs } => {
            let (from_desc, from, to_desc, to) = match revs.as_slice() {
                [f, t] => (f.clone(), resolve(f)?, t.clone(), resolve(t)?),
                _ => {
                    let Some(h) = &host else {
                        bail!("db diff with --repo needs FROM and TO revisions");
                    };
                    let Roles {
                        booted,
                        pending,
                        rollback,
                        ..
                    } = h.roles(None);
                    let Some(booted) = booted else {
                        bail!("Not booted into any deployment");
                    };
                    match (revs.first(), pending, rollback) {
                        (Some(t), _, _) => (
                            "booted deployment".into(),
                            booted.csum,
                            t.clone(),
                            resolve(t)?,
                        ),
                        (None, Some(p), _) => (
                            "booted deployment".into(),
                            booted.csum,
                            "pending deployment".into(),
                            p.csum,
                        ),
                        (None, None, Some(r)) => (
                            "rollback deployment".into(),
                            r.csum,
                            "booted deployment".into(),
                            booted.csum,
                        ),
                        (None, None, None) => {
                            bail!("No pending or rollback deployment to diff against")
                        }
                    }
                }
            };
            let diff = PackageDiff::compute(&packages_of(&repo, &from)?, &packages_of(&repo, &to)?);
            match format {
                DiffFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &diff_json(&from, &to, &diff))?;
                    writeln!(out)?;
                }
                DiffFormat::Block | DiffFormat::Diff => {
                    let line = |desc: &str, c: &Checksum| {
                        if desc == c.to_hex() {
                            desc.to_owned()
                        } else {
                            format!("{desc} ({c})")
                        }
                    };
                    writeln!(out, "ostree diff commit from: {}", line(&from_desc, &from))?;
                    writeln!(out, "ostree diff commit to:   {}", line(&to_desc, &to))?;
                    if format == DiffFormat::Block {
                        super::host::print_diff_block(&mut out, &diff)?;
                    } else {
                        print_diff_lines(&mut out, &diff)?;
                    }
                }
            }
        }
        DbCommand::List { args } => {
            let mut revs = Vec::new();
            let mut patterns = Vec::new();
            for a in &args {
                match repo.resolve_rev_optional(a) {
                    Ok(Some(c)) => revs.push((a.clone(), c)),
                    _ => patterns
                        .push(glob::Pattern::new(a).with_context(|| format!("pattern {a:?}"))?),
                }
            }
            if revs.is_empty() {
                bail!("no revision among the arguments: {}", args.join(" "));
            }
            for (rev, c) in revs {
                writeln!(out, "ostree commit: {rev} ({c})")?;
                for p in packages_of(&repo, &c)? {
                    if patterns.is_empty() || patterns.iter().any(|pat| p.matches(pat)) {
                        writeln!(out, " {}", p.nevra())?;
                    }
                }
            }
        }
        DbCommand::Version { revs } => {
            for rev in revs {
                let c = resolve(&rev)?;
                writeln!(out, "ostree commit: {rev} ({c})")?;
                writeln!(
                    out,
                    "  rpmdb version: {}",
                    rpmdb_version(&packages_of(&repo, &c)?)
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// rpm-ostree's `diff` format, merged in name order.
fn print_diff_lines(out: &mut dyn Write, d: &PackageDiff) -> std::io::Result<()> {
    let mut lines: Vec<(&str, String)> = Vec::new();
    for (a, b) in d.upgraded.iter().chain(&d.downgraded) {
        lines.push((&a.name, format!("!{}\n={}", a.nevra(), b.nevra())));
    }
    lines.extend(
        d.removed
            .iter()
            .map(|p| (p.name.as_str(), format!("-{}", p.nevra()))),
    );
    lines.extend(
        d.added
            .iter()
            .map(|p| (p.name.as_str(), format!("+{}", p.nevra()))),
    );
    lines.sort_by(|a, b| a.0.cmp(b.0));
    for (_, l) in lines {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

/// rpm-ostree's JSON: `pkgdiff` entries `[name, type, {PreviousPackage, NewPackage}]`
/// with type 0 added, 1 removed, 2 upgraded, 3 downgraded.
fn diff_json(from: &Checksum, to: &Checksum, d: &PackageDiff) -> serde_json::Value {
    let triple = |p: &Package| json!([p.name, p.evr(), p.arch]);
    let mut entries = Vec::new();
    for p in &d.added {
        entries.push((
            p.name.clone(),
            json!([p.name, 0, {"NewPackage": triple(p)}]),
        ));
    }
    for p in &d.removed {
        entries.push((
            p.name.clone(),
            json!([p.name, 1, {"PreviousPackage": triple(p)}]),
        ));
    }
    for (ty, v) in [(2, &d.upgraded), (3, &d.downgraded)] {
        for (a, b) in v {
            entries.push((
                a.name.clone(),
                json!([a.name, ty, {"PreviousPackage": triple(a), "NewPackage": triple(b)}]),
            ));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    json!({
        "ostree-commit-from": from.to_hex(),
        "ostree-commit-to": to.to_hex(),
        "pkgdiff": entries.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "advisories": [],
    })
}
