//! `rost admin …`: sysroot commands with `ostree admin`'s names (issue 6).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rost_store::keyfile::KeyFile;
use rost_sysroot::{DeployOptions, LoadOptions, Sysroot};

/// `rost admin [--sysroot DIR] COMMAND`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Root of the sysroot to operate on (default: /).
    #[arg(long, global = true, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Subcommands of `rost admin`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Initialize a root directory for OSTree deployments.
    InitFs {
        /// Only create /boot and /ostree.
        #[arg(long)]
        modern: bool,
        /// The directory (must exist).
        dir: PathBuf,
    },
    /// Initialize a stateroot (ostree/deploy/OS with its /var).
    OsInit {
        /// Stateroot name.
        os: String,
    },
    /// Check out a revision as a new deployment and make it bootable.
    Deploy(DeployArgs),
    /// List deployments.
    Status {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove the deployment at INDEX.
    Undeploy {
        /// Deployment index (0 = default).
        index: usize,
    },
    /// Remove what no boot entry, pin or ref reaches; prune the repo.
    Cleanup,
    /// Pin (or unpin) deployments so cleanup and deploy keep them.
    Pin {
        /// Unset the pin.
        #[arg(short, long)]
        unpin: bool,
        /// Deployment indices.
        #[arg(required = true)]
        index: Vec<usize>,
    },
    /// Change the remote and branch a deployment follows.
    SetOrigin {
        /// Options KEY=VALUE for the remote, if it is added.
        #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The deployment (default: the booted one).
        #[arg(long)]
        index: Option<usize>,
        /// Remote name.
        remote: String,
        /// Remote URL.
        url: String,
        /// Branch (default: the current origin's).
        branch: Option<String>,
    },
    /// Finish a `deploy --stage` (what the shutdown unit runs).
    FinalizeStaged,
    /// List /etc changes of the merge deployment against its defaults.
    ConfigDiff {
        /// Stateroot (default: the booted one's).
        #[arg(long = "os", value_name = "OSNAME")]
        os: Option<String>,
    },
}

/// `rost admin deploy` flags (ostree's).
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Stateroot (default: the booted deployment's).
    #[arg(long = "os", value_name = "OSNAME")]
    os: Option<String>,
    /// Origin file to use instead of `refspec=REV`.
    #[arg(long, value_name = "FILENAME")]
    origin_file: Option<PathBuf>,
    /// Replace (or add) a kernel argument NAME=VALUE.
    #[arg(long = "karg", value_name = "NAME=VALUE")]
    karg: Vec<String>,
    /// Append a kernel argument.
    #[arg(long = "karg-append", value_name = "NAME=VALUE")]
    karg_append: Vec<String>,
    /// Delete a kernel argument.
    #[arg(long = "karg-delete", value_name = "NAME=VALUE")]
    karg_delete: Vec<String>,
    /// Start from no kernel arguments.
    #[arg(long)]
    karg_none: bool,
    /// Start from the running kernel's /proc/cmdline.
    #[arg(long)]
    karg_proc_cmdline: bool,
    /// Keep every previous deployment.
    #[arg(long)]
    retain: bool,
    /// Keep pending deployments.
    #[arg(long)]
    retain_pending: bool,
    /// Keep rollback deployments.
    #[arg(long)]
    retain_rollback: bool,
    /// Add the new deployment after the booted one instead of first.
    #[arg(long)]
    not_as_default: bool,
    /// Do not take /etc and kernel arguments from the merge deployment.
    #[arg(long)]
    no_merge: bool,
    /// Write the deployment now; merge /etc and switch the boot configuration
    /// at `finalize-staged` (shutdown).
    #[arg(long)]
    stage: bool,
    /// Revision (ref, REMOTE:REF or checksum).
    rev: String,
}

fn load_opts(sysroot: &Path) -> LoadOptions {
    // Booted detection as libostree: the deployment that is `/` (same device
    // and inode) when operating on `/`. ROST_ADMIN_BOOTED_ROOT names another
    // directory to treat as the running root (tests, image builders).
    let booted_root = std::env::var_os("ROST_ADMIN_BOOTED_ROOT")
        .map(PathBuf::from)
        .or_else(|| (sysroot == Path::new("/")).then(|| PathBuf::from("/")));
    let cmdline = (sysroot == Path::new("/"))
        .then(|| std::fs::read_to_string("/proc/cmdline").ok())
        .flatten();
    LoadOptions {
        booted_root,
        cmdline,
    }
}

pub(crate) fn open(sysroot: &Path) -> anyhow::Result<Sysroot> {
    Sysroot::load(sysroot, &load_opts(sysroot))
        .with_context(|| format!("loading sysroot {}", sysroot.display()))
}

/// Runs a `rost admin` subcommand.
pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let root = args.sysroot.unwrap_or_else(|| PathBuf::from("/"));
    let mut out = std::io::stdout().lock();
    match args.command {
        AdminCommand::InitFs { modern, dir } => {
            rost_sysroot::init_fs(&dir, modern)
                .with_context(|| format!("initializing {}", dir.display()))?;
        }
        AdminCommand::OsInit { os } => {
            let mut s = open(&root)?;
            let lock = s.lock()?;
            s.os_init(&lock, &os)?;
            writeln!(out, "ostree/deploy/{os} initialized as OSTree root")?;
        }
        AdminCommand::Deploy(d) => {
            let mut s = open(&root)?;
            let lock = s.lock()?;
            let origin = match &d.origin_file {
                Some(p) => {
                    let t = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    Some(KeyFile::parse(&t).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?)
                }
                None => None,
            };
            let karg_cmdline = if d.karg_proc_cmdline {
                Some(std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?)
            } else {
                None
            };
            let opts = DeployOptions {
                osname: d.os,
                rev: d.rev.clone(),
                origin,
                karg_replace: d.karg,
                karg_append: d.karg_append,
                karg_delete: d.karg_delete,
                karg_none: d.karg_none,
                karg_cmdline,
                retain: d.retain,
                retain_pending: d.retain_pending,
                retain_rollback: d.retain_rollback,
                not_as_default: d.not_as_default,
                no_merge: d.no_merge,
            };
            if d.stage {
                let name = s
                    .stage(&lock, &opts)
                    .with_context(|| format!("staging {} in {}", d.rev, root.display()))?;
                writeln!(out, "Staged deployment {name}")?;
                return Ok(ExitCode::SUCCESS);
            }
            let r = s
                .deploy(&lock, &opts)
                .with_context(|| format!("deploying {} into {}", d.rev, root.display()))?;
            print_deploy_report(&mut out, &r)?;
        }
        AdminCommand::Status { json } => {
            let s = open(&root)?;
            if json {
                print_status_json(&s, &mut out)?;
            } else {
                print_status(&s, &mut out)?;
            }
        }
        AdminCommand::Undeploy { index } => {
            let mut s = open(&root)?;
            let lock = s.lock()?;
            let name = s.undeploy(&lock, index)?;
            writeln!(out, "Deleted deployment {name}")?;
        }
        AdminCommand::Cleanup => {
            let mut s = open(&root)?;
            let lock = s.lock()?;
            s.cleanup(&lock)?;
        }
        AdminCommand::Pin { unpin, index } => {
            let mut s = open(&root)?;
            let lock = s.lock()?;
            for i in index {
                s.set_pinned(&lock, i, !unpin)?;
                writeln!(
                    out,
                    "Deployment {i} is now {}",
                    if unpin { "unpinned" } else { "pinned" }
                )?;
            }
        }
        AdminCommand::SetOrigin {
            set,
            index,
            remote,
            url,
            branch,
        } => {
            let mut s = open(&root)?;
            let lock = s.lock()?;
            let mut options = Vec::new();
            for kv in set {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!("--set: expected KEY=VALUE, got {kv:?}");
                };
                options.push((k.to_owned(), v.to_owned()));
            }
            s.set_origin(&lock, index, &remote, &url, branch.as_deref(), &options)?;
        }
        AdminCommand::FinalizeStaged => {
            let mut s = open(&root)?;
            let lock = s.lock()?;
            match s
                .finalize_staged(&lock)
                .context("finalizing the staged deployment")?
            {
                None => writeln!(out, "No staged deployment")?,
                Some(r) => print_deploy_report(&mut out, &r)?,
            }
        }
        AdminCommand::ConfigDiff { os } => {
            let s = open(&root)?;
            let d = s.config_diff(os.as_deref())?;
            for p in &d.modified {
                writeln!(out, "M    {}", p.display())?;
            }
            for p in &d.removed {
                writeln!(out, "D    {}", p.display())?;
            }
            for p in &d.added {
                writeln!(out, "A    {}", p.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_suffix(s: &Sysroot, index: usize) -> &'static str {
    match s.booted() {
        Some(b) if index < b.index => " (pending)",
        Some(b) if index > b.index => " (rollback)",
        _ => "",
    }
}

/// The text of `ostree admin status` (2022.7).
fn print_status(s: &Sysroot, out: &mut impl Write) -> anyhow::Result<()> {
    if s.deployments().is_empty() && s.staged().is_none() {
        writeln!(out, "No deployments.")?;
        return Ok(());
    }
    if let Some(d) = s.staged() {
        writeln!(out, "  {} {} (staged)", d.osname, d.name())?;
        if let Some(v) = &d.version {
            writeln!(out, "    Version: {v}")?;
        }
        if let Some(r) = d.refspec() {
            writeln!(out, "    origin refspec: {r}")?;
        }
    }
    for d in s.deployments() {
        let booted = s.booted().is_some_and(|b| b.same_as(d));
        writeln!(
            out,
            "{} {} {}{}",
            if booted { '*' } else { ' ' },
            d.osname,
            d.name(),
            status_suffix(s, d.index)
        )?;
        if let Some(v) = &d.version {
            writeln!(out, "    Version: {v}")?;
        }
        if d.is_pinned() {
            writeln!(out, "    Pinned: yes")?;
        }
        match &d.origin {
            None => writeln!(out, "    origin: none")?,
            Some(_) => match d.refspec() {
                Some(r) => writeln!(out, "    origin refspec: {r}")?,
                None => writeln!(out, "    origin: <unknown origin type>")?,
            },
        }
    }
    Ok(())
}

fn print_status_json(s: &Sysroot, out: &mut impl Write) -> anyhow::Result<()> {
    let staged = s.staged().map(|d| {
        serde_json::json!({
            "osname": d.osname,
            "checksum": d.csum.to_string(),
            "serial": d.deployserial,
            "bootcsum": d.bootcsum,
            "version": d.version,
            "origin": d.refspec(),
            "options": d.bootconfig.get("options"),
        })
    });
    let deployments: Vec<_> = s
        .deployments()
        .iter()
        .map(|d| {
            let suffix = status_suffix(s, d.index);
            serde_json::json!({
                "index": d.index,
                "osname": d.osname,
                "checksum": d.csum.to_string(),
                "serial": d.deployserial,
                "bootcsum": d.bootcsum,
                "bootserial": d.bootserial,
                "booted": s.booted().is_some_and(|b| b.same_as(d)),
                "pending": suffix == " (pending)",
                "rollback": suffix == " (rollback)",
                "pinned": d.is_pinned(),
                "version": d.version,
                "origin": d.refspec(),
                "options": d.bootconfig.get("options"),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "format-version": 1,
        "bootversion": s.bootversion(),
        "subbootversion": s.subbootversion(),
        "deployments": deployments,
        "staged": staged,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

/// The lines ostree prints after a deployment is written (deploy or finalize).
fn print_deploy_report(out: &mut dyn Write, r: &rost_sysroot::DeployReport) -> anyhow::Result<()> {
    if let Some(e) = &r.etc {
        writeln!(
            out,
            "Copying /etc changes: {} modified, {} removed, {} added",
            e.modified.len(),
            e.removed.len(),
            e.added.len()
        )?;
    }
    writeln!(out, "{}", r.write)?;
    Ok(())
}
