//! Command tree of `rost`: one module per verb family.

pub mod admin;
pub mod compose;
pub mod db;
pub mod host;
pub mod ostree_compat;
pub mod pkg;
pub mod repo;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Top-level command line of `rost`.
#[derive(Debug, Parser)]
#[command(
    name = "rost",
    version,
    about = "Compose RPM package sets into OSTree commits and deploy them atomically"
)]
pub struct Cli {
    /// Raise log verbosity (repeat for more).
    #[arg(long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Operate on an OSTree-format repository.
    Repo(repo::RepoArgs),
    /// Inspect, resolve and download RPM packages.
    #[command(subcommand)]
    Pkg(pkg::PkgCommand),
    /// Compose RPM package sets into commits (server side).
    #[command(subcommand)]
    Compose(compose::ComposeCommand),
    /// Manage deployments in a sysroot (client side, `ostree admin`).
    Admin(admin::AdminArgs),
    /// Serve an archive repository over HTTP (quick setups and tests).
    Serve(ServeArgs),
    /// Show the deployments (rpm-ostree status).
    Status(host::StatusArgs),
    /// Pull the newest commit of the origin's branch and deploy it.
    #[command(visible_alias = "update")]
    Upgrade(host::UpgradeArgs),
    /// Deploy a version or commit from the branch's history.
    Deploy(host::DeployArgs),
    /// Switch to another branch (and remote).
    Rebase(host::RebaseArgs),
    /// Make the previous deployment the default again.
    Rollback(host::RollbackArgs),
    /// Remove pending/rollback deployments, temporary files, caches.
    Cleanup(host::CleanupArgs),
    /// Package-level queries on commits.
    Db(db::DbArgs),
}

/// `rost serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Repository to serve.
    #[arg(long, default_value = ".")]
    repo: std::path::PathBuf,
    /// Address to listen on (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: String,
}

/// Parses `args` as rost's own command line and runs it.
pub fn run(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Repo(cmd) => repo::run(cmd),
        Command::Pkg(cmd) => pkg::run(cmd),
        Command::Compose(cmd) => compose::run(cmd),
        Command::Admin(args) => admin::run(args),
        Command::Status(a) => host::status(a),
        Command::Upgrade(a) => host::upgrade(a),
        Command::Deploy(a) => host::deploy(a),
        Command::Rebase(a) => host::rebase(a),
        Command::Rollback(a) => host::rollback(a),
        Command::Cleanup(a) => host::cleanup(a),
        Command::Db(a) => db::run(a),
        Command::Serve(a) => {
            let repo = rost_store::Repo::open(&a.repo)?;
            if repo.mode() != rost_store::RepoMode::Archive {
                anyhow::bail!(
                    "{}: is a {} repository; only archive repositories can be served",
                    a.repo.display(),
                    repo.mode().as_config_str()
                );
            }
            rost_store::serve::serve(&a.repo, &a.addr, &|addr| {
                let _ = writeln!(
                    std::io::stderr(),
                    "Serving {} on http://{addr}",
                    a.repo.display()
                );
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Sets up `tracing` on stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Prints an error chain once and picks the exit code.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    // A closed stdout (`rost … | head`) is not a failure.
    let broken_pipe = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(std::io::stderr(), "error: {err:#}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
