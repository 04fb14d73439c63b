//! `rost compose …`: server-side composes (issue 4).

use std::process::ExitCode;

use clap::Subcommand;

/// Subcommands of `rost compose`.
#[derive(Debug, Subcommand)]
pub enum ComposeCommand {}

/// Runs a `rost compose` subcommand.
pub fn run(cmd: ComposeCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
