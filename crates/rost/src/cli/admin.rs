//! `rost admin …`: sysroot commands with `ostree admin`'s names (issue 6).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

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
pub enum AdminCommand {}

/// Runs a `rost admin` subcommand.
pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    match args.command {}
}
