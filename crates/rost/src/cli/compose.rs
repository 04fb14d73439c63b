//! `rost compose …`: server-side composes (issue 4).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use rost_compose::{ComposeOptions, Outcome};

/// Subcommands of `rost compose`.
#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Compose a treefile's package set into an OSTree commit.
    Tree(TreeArgs),
}

/// `rost compose tree` (rpm-ostree's flags).
#[derive(Debug, Args)]
pub struct TreeArgs {
    /// Target OSTree repository (must exist).
    #[arg(long)]
    repo: PathBuf,
    /// Cache directory: package cache repo, rpm-md, downloaded RPMs.
    #[arg(long)]
    cachedir: Option<PathBuf>,
    /// Resolve and print the package set; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the flattened treefile as JSON and exit.
    #[arg(long)]
    print_only: bool,
    /// Compose even if the inputs are unchanged.
    #[arg(long)]
    force_nocache: bool,
    /// Write the commit id to this file instead of moving the ref.
    #[arg(long, value_name = "FILE")]
    write_commitid_to: Option<PathBuf>,
    /// Touch this file when a new commit was written.
    #[arg(long, value_name = "FILE")]
    touch_if_changed: Option<PathBuf>,
    /// Write a JSON summary of the compose to this file.
    #[arg(long, value_name = "FILE")]
    write_composejson_to: Option<PathBuf>,
    /// Extra commit metadata (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    add_metadata_string: Vec<String>,
    /// Parent commit (default: the ref's current commit).
    #[arg(long)]
    parent: Option<String>,
    /// Accepted for compatibility: unified core is the only mode.
    #[arg(long)]
    unified_core: bool,
    /// Print the compose summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// The treefile (YAML or JSON).
    treefile: PathBuf,
}

/// Runs a `rost compose` subcommand.
pub fn run(cmd: ComposeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ComposeCommand::Tree(args) => tree(args),
    }
}

fn basearch() -> String {
    match std::env::consts::ARCH {
        "x86" => "i686".to_owned(),
        "powerpc64" => "ppc64le".to_owned(),
        a => a.to_owned(),
    }
}

fn tree(args: TreeArgs) -> anyhow::Result<ExitCode> {
    let _ = args.unified_core;
    let mut add_metadata = Vec::new();
    for kv in &args.add_metadata_string {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--add-metadata-string {kv:?}: expected KEY=VALUE"))?;
        add_metadata.push((k.to_owned(), v.to_owned()));
    }
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => Some(
            s.trim()
                .parse::<u64>()
                .with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is not a number"))?,
        ),
        Err(_) => None,
    };
    let opts = ComposeOptions {
        treefile: args.treefile.clone(),
        repo: args.repo.clone(),
        cachedir: args.cachedir.clone(),
        dry_run: args.dry_run,
        print_only: args.print_only,
        force_nocache: args.force_nocache,
        write_commitid_to: args.write_commitid_to.clone(),
        touch_if_changed: args.touch_if_changed.clone(),
        add_metadata,
        parent: args.parent.clone(),
        basearch: basearch(),
        source_date_epoch,
    };
    let outcome = rost_compose::compose_tree(&opts)
        .with_context(|| format!("composing {}", args.treefile.display()))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match outcome {
        Outcome::PrintOnly(v) => {
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        Outcome::DryRun(nevras) => {
            for n in nevras {
                writeln!(out, "{n}")?;
            }
        }
        Outcome::Done(r) => {
            if let Some(f) = &args.write_composejson_to {
                std::fs::write(f, serde_json::to_vec_pretty(&r)?)
                    .with_context(|| format!("writing {}", f.display()))?;
            }
            if args.json {
                serde_json::to_writer_pretty(&mut out, &r)?;
                writeln!(out)?;
            } else if r.changed {
                writeln!(
                    out,
                    "Downloaded {} packages, imported {}, reused {}",
                    r.downloaded, r.imported, r.reused
                )?;
                if let Some(v) = &r.version {
                    writeln!(out, "Version: {v}")?;
                }
                writeln!(out, "Wrote commit: {}", r.commit)?;
            } else {
                writeln!(
                    out,
                    "No apparent changes since previous commit; use --force-nocache to override"
                )?;
                writeln!(out, "Commit: {} (ref {} unchanged)", r.commit, r.ref_)?;
            }
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}
