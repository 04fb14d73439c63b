//! `rost pkg …`: RPM plumbing (owned by the rost-rpm work).

use std::process::ExitCode;

use clap::Subcommand;

/// Subcommands of `rost pkg`.
#[derive(Debug, Subcommand)]
pub enum PkgCommand {}

/// Runs a `rost pkg` subcommand.
pub fn run(cmd: PkgCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
