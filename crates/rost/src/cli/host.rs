//! Client verbs with rpm-ostree's names: `status`, `upgrade`, `deploy`,
//! `rebase`, `rollback`, `cleanup`. Rendering and exit codes only; the
//! workflows are `rost-host`'s.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rost_host::packages::PackageDiff;
use rost_host::{
    CleanupOptions, CommitInfo, DeploymentStatus, Depth, Host, MoveOptions, MoveReport, Outcome,
    iso8601,
};

/// rpm-ostree's exit code for "nothing changed" / "a deployment is pending".
pub const EXIT_UNCHANGED: u8 = 77;

/// Flags every client verb takes.
#[derive(Debug, Args, Clone)]
pub struct SysrootArgs {
    /// Root of the sysroot to operate on (default: /).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub sysroot: PathBuf,
    /// Operate on this stateroot (default: the booted one's).
    #[arg(long = "os", visible_alias = "stateroot", value_name = "OSNAME")]
    pub os: Option<String>,
}

/// `rost status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    common: SysrootArgs,
    /// Print more fields (`--verbose` is the global log-level flag).
    #[arg(short = 'v', id = "status_verbose")]
    verbose: bool,
    /// Only the booted deployment (the default one where nothing is booted).
    #[arg(short, long)]
    booted: bool,
    /// One JSON document with rpm-ostree's field names.
    #[arg(long)]
    json: bool,
    /// Exit 77 when a deployment is pending (would boot next instead of the booted one).
    #[arg(long)]
    pending_exit_77: bool,
}

/// Flags shared by `upgrade`, `deploy` and `rebase`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    #[command(flatten)]
    common: SysrootArgs,
    /// Fetch only the commit object and print the update, deploy nothing.
    #[arg(long, conflicts_with_all = ["preview", "download_only"])]
    check: bool,
    /// As --check, listing every package change.
    #[arg(long, conflicts_with = "download_only")]
    preview: bool,
    /// Pull the update but do not deploy it.
    #[arg(long)]
    download_only: bool,
    /// Do not fetch: deploy what the local repository already has.
    #[arg(short = 'C', long)]
    cache_only: bool,
    /// Stage the deployment; the boot configuration changes at shutdown.
    #[arg(long)]
    stage: bool,
    /// Exit 77 when there is nothing new.
    #[arg(long)]
    unchanged_exit_77: bool,
    /// Reboot afterwards (only on a system booted by ostree, sysroot /).
    #[arg(short, long)]
    reboot: bool,
}

/// `rost upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    m: MoveArgs,
    /// Accept a commit older than the current one.
    #[arg(long)]
    allow_downgrade: bool,
}

/// `rost deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    m: MoveArgs,
    /// A version (commit `version` metadata) or commit checksum from the branch's history.
    revision: String,
}

/// `rost rebase`.
#[derive(Debug, Args)]
pub struct RebaseArgs {
    #[command(flatten)]
    m: MoveArgs,
    /// Keep the previous branch's ref in the repository.
    #[arg(long)]
    skip_purge: bool,
    /// New branch: REMOTE:REF, REF (same remote) or REMOTE: (same ref).
    refspec: String,
}

/// `rost rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    common: SysrootArgs,
    /// Reboot afterwards (only on a system booted by ostree, sysroot /).
    #[arg(short, long)]
    reboot: bool,
}

/// `rost cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    common: SysrootArgs,
    /// Remove the pending deployment.
    #[arg(short, long)]
    pending: bool,
    /// Remove the rollback deployment.
    #[arg(short, long)]
    rollback: bool,
    /// Remove temporary files and unreferenced objects.
    #[arg(short, long)]
    base: bool,
    /// Remove cached rpm-md metadata.
    #[arg(short = 'm', long)]
    repomd: bool,
}

fn open_host(sysroot: &Path) -> anyhow::Result<Host> {
    Ok(Host::new(super::admin::open(sysroot)?))
}

/// `rost status`.
pub fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let host = open_host(&a.common.sysroot)?;
    let mut st = host.status();
    if a.booted {
        let roles = host.roles(a.common.os.as_deref());
        st.deployments.retain(|d| {
            roles
                .booted
                .as_ref()
                .is_some_and(|b| d.checksum == b.csum.to_hex() && d.serial == b.deployserial)
                && !d.staged
        });
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &st)?;
        writeln!(out)?;
    } else {
        writeln!(out, "State: idle")?;
        writeln!(out, "Deployments:")?;
        let multi_os = st
            .deployments
            .iter()
            .any(|d| d.osname != st.deployments[0].osname);
        for (i, d) in st.deployments.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            print_deployment(&mut out, d, multi_os, a.verbose)?;
        }
    }
    if a.pending_exit_77 && host.has_pending() {
        return Ok(ExitCode::from(EXIT_UNCHANGED));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_deployment(
    out: &mut dyn Write,
    d: &DeploymentStatus,
    multi_os: bool,
    verbose: bool,
) -> std::io::Result<()> {
    let mark = if d.booted { '●' } else { ' ' };
    let origin = d.origin.as_deref().unwrap_or("(no origin)");
    if multi_os {
        writeln!(out, "{mark} {}: {origin}", d.osname)?;
    } else {
        writeln!(out, "{mark} {origin}")?;
    }
    let mut rows: Vec<(&str, String)> = Vec::new();
    let time = iso8601(d.timestamp);
    match &d.version {
        Some(v) => rows.push(("Version", format!("{v} ({time})"))),
        None => rows.push(("Timestamp", time)),
    }
    rows.push(("Commit", d.checksum.clone()));
    if verbose {
        rows.push(("StateRoot", d.osname.clone()));
        rows.push(("Deployment", format!("{}.{}", d.checksum, d.serial)));
        if let Some(n) = d.package_count {
            rows.push(("Packages", n.to_string()));
        }
    }
    if let Some(c) = &d.override_commit {
        rows.push(("OverrideCommit", c.clone()));
    }
    if d.staged {
        rows.push(("Staged", "yes".into()));
    }
    if d.pinned {
        rows.push(("Pinned", "yes".into()));
    }
    for (k, v) in rows {
        writeln!(out, "{k:>16}: {v}")?;
    }
    Ok(())
}

/// Prints a package diff as rpm-ostree's multi-line block.
pub fn print_diff_block(out: &mut dyn Write, diff: &PackageDiff) -> std::io::Result<()> {
    let changed = |out: &mut dyn Write, title: &str, v: &[(_, _)]| -> std::io::Result<()> {
        let v: &[(rost_host::packages::Package, rost_host::packages::Package)] = v;
        if !v.is_empty() {
            writeln!(out, "{title}:")?;
        }
        for (a, b) in v {
            writeln!(out, "  {} {} -> {}", a.name, a.evr(), b.evr())?;
        }
        Ok(())
    };
    changed(out, "Upgraded", &diff.upgraded)?;
    changed(out, "Downgraded", &diff.downgraded)?;
    for (title, v) in [("Removed", &diff.removed), ("Added", &diff.added)] {
        if !v.is_empty() {
            writeln!(out, "{title}:")?;
        }
        for p in v {
            writeln!(out, "  {}", p.nevra())?;
        }
    }
    Ok(())
}

/// rpm-ostree's aligned `AvailableUpdate:` block (`--check`, `--preview`).
fn print_available(
    out: &mut dyn Write,
    to: &CommitInfo,
    diff: Option<&PackageDiff>,
    full: bool,
) -> std::io::Result<()> {
    const W: usize = 16;
    writeln!(out, "AvailableUpdate:")?;
    let time = iso8601(to.timestamp);
    match &to.version {
        Some(v) => writeln!(out, "{:>W$}: {v} ({time})", "Version")?,
        None => writeln!(out, "{:>W$}: {time}", "Timestamp")?,
    }
    writeln!(out, "{:>W$}: {}", "Commit", to.checksum)?;
    let Some(diff) = diff else {
        return Ok(());
    };
    if !full {
        let s = diff.summary();
        if !s.is_empty() {
            writeln!(out, "{:>W$}: {s}", "Diff")?;
        }
        return Ok(());
    }
    let pairs = |out: &mut dyn Write, title: &str, v: &[(_, _)]| -> std::io::Result<()> {
        let v: &[(rost_host::packages::Package, rost_host::packages::Package)] = v;
        for (i, (a, b)) in v.iter().enumerate() {
            let (k, c) = if i == 0 { (title, ':') } else { ("", ' ') };
            writeln!(out, "{k:>W$}{c} {} {} -> {}", a.name, a.evr(), b.evr())?;
        }
        Ok(())
    };
    pairs(out, "Upgraded", &diff.upgraded)?;
    pairs(out, "Downgraded", &diff.downgraded)?;
    for (title, v) in [("Removed", &diff.removed), ("Added", &diff.added)] {
        for (i, p) in v.iter().enumerate() {
            let (k, c) = if i == 0 { (title, ':') } else { ("", ' ') };
            writeln!(out, "{k:>W$}{c} {}", p.nevra())?;
        }
    }
    Ok(())
}

/// Which verb a [`MoveArgs`] belongs to.
enum Verb {
    Upgrade { allow_downgrade: bool },
    Deploy(String),
    Rebase { refspec: String, skip_purge: bool },
}

/// `rost upgrade`.
pub fn upgrade(a: UpgradeArgs) -> anyhow::Result<ExitCode> {
    run_move(
        a.m,
        Verb::Upgrade {
            allow_downgrade: a.allow_downgrade,
        },
    )
}

/// `rost deploy`.
pub fn deploy(a: DeployArgs) -> anyhow::Result<ExitCode> {
    run_move(a.m, Verb::Deploy(a.revision))
}

/// `rost rebase`.
pub fn rebase(a: RebaseArgs) -> anyhow::Result<ExitCode> {
    run_move(
        a.m,
        Verb::Rebase {
            refspec: a.refspec,
            skip_purge: a.skip_purge,
        },
    )
}

fn run_move(m: MoveArgs, verb: Verb) -> anyhow::Result<ExitCode> {
    let mut host = open_host(&m.common.sysroot)?;
    let depth = if m.check || m.preview {
        Depth::Check
    } else if m.download_only {
        Depth::Download
    } else {
        Depth::Deploy
    };
    let opts = MoveOptions {
        osname: m.common.os.clone(),
        depth,
        cache_only: m.cache_only,
        allow_downgrade: matches!(
            verb,
            Verb::Upgrade {
                allow_downgrade: true
            }
        ),
        stage: m.stage,
        progress: super::repo::terminal_progress(),
    };
    let started = std::time::Instant::now();
    let res = match &verb {
        Verb::Upgrade { .. } => host.upgrade(&opts).context("upgrading"),
        Verb::Deploy(rev) => host
            .deploy_revision(rev, &opts)
            .with_context(|| format!("deploying {rev}")),
        Verb::Rebase {
            refspec,
            skip_purge,
        } => host
            .rebase(refspec, &opts, *skip_purge)
            .with_context(|| format!("rebasing onto {refspec}")),
    };
    if opts.progress.is_some() {
        let _ = writeln!(std::io::stderr());
    }
    let report = res?;
    report_pull(&report, started);
    let mut out = std::io::stdout().lock();
    let unchanged = || {
        if m.unchanged_exit_77 {
            ExitCode::from(EXIT_UNCHANGED)
        } else {
            ExitCode::SUCCESS
        }
    };
    match report.outcome {
        Outcome::Unchanged => {
            if depth == Depth::Check {
                writeln!(out, "No updates available.")?;
            } else {
                writeln!(out, "No upgrade available.")?;
            }
            return Ok(unchanged());
        }
        Outcome::Available => {
            print_available(&mut out, &report.to, report.diff.as_ref(), m.preview)?;
        }
        Outcome::Downloaded => {
            writeln!(
                out,
                "Update downloaded: {}{}",
                report.to.checksum,
                report
                    .to
                    .version
                    .as_deref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            )?;
        }
        Outcome::Deployed => {
            if let Some(d) = &report.diff {
                print_diff_block(&mut out, d)?;
            }
            if report.staged {
                writeln!(
                    out,
                    "Staged deployment {}; it becomes the default at shutdown (rost admin finalize-staged)",
                    report.deployment.as_deref().unwrap_or("")
                )?;
            }
            maybe_reboot(&m.common.sysroot, m.reboot, &mut out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report_pull(report: &MoveReport, started: std::time::Instant) {
    if let Some(p) = &report.pull {
        let _ = writeln!(
            std::io::stderr(),
            "{} metadata, {} content objects fetched; {} transferred in {:.1} s",
            p.metadata_fetched,
            p.content_fetched,
            super::repo::human_size(p.bytes_fetched),
            started.elapsed().as_secs_f64()
        );
    }
}

/// `-r`: reboot only a real, ostree-booted `/`; otherwise say how to proceed.
fn maybe_reboot(sysroot: &Path, reboot: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let booted_by_ostree = sysroot == Path::new("/") && Path::new("/run/ostree-booted").is_file();
    if reboot && booted_by_ostree {
        let st = std::process::Command::new("systemctl")
            .arg("reboot")
            .status()
            .context("running systemctl reboot")?;
        anyhow::ensure!(st.success(), "systemctl reboot failed: {st}");
    } else if reboot {
        writeln!(
            out,
            "Not rebooting: {} is not a system booted by ostree",
            sysroot.display()
        )?;
    } else if booted_by_ostree {
        writeln!(out, "Run \"systemctl reboot\" to start a reboot")?;
    }
    Ok(())
}

/// `rost rollback`.
pub fn rollback(a: RollbackArgs) -> anyhow::Result<ExitCode> {
    let mut host = open_host(&a.common.sysroot)?;
    let before = host.roles(a.common.os.as_deref()).booted.map(|d| d.csum);
    let name = host
        .rollback(a.common.os.as_deref())
        .context("rolling back")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Moving '{name}' to be first deployment")?;
    let repo = host.sysroot().repo();
    let new_default = host.sysroot().deployments().first().map(|d| d.csum);
    if let (Some(a), Some(b)) = (before, new_default) {
        let (ca, cb) = (CommitInfo::load(repo, &a)?, CommitInfo::load(repo, &b)?);
        if let (Some(pa), Some(pb)) = (&ca.packages, &cb.packages) {
            print_diff_block(&mut out, &PackageDiff::compute(pa, pb))?;
        }
    }
    maybe_reboot(&a.common.sysroot, a.reboot, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// `rost cleanup`.
pub fn cleanup(a: CleanupArgs) -> anyhow::Result<ExitCode> {
    let mut host = open_host(&a.common.sysroot)?;
    let rep = host
        .cleanup(
            a.common.os.as_deref(),
            &CleanupOptions {
                pending: a.pending,
                rollback: a.rollback,
                base: a.base,
                repomd: a.repomd,
            },
        )
        .context("cleaning up")?;
    let mut out = std::io::stdout().lock();
    for r in &rep.removed {
        writeln!(out, "Removed deployment {r}")?;
    }
    if rep.removed.is_empty() && (a.pending || a.rollback) {
        writeln!(out, "Deployments unchanged.")?;
    }
    if rep.pruned {
        writeln!(out, "Removed temporary files and unreferenced objects.")?;
    }
    Ok(ExitCode::SUCCESS)
}
