//! `rost repo …`
use clap::Subcommand;
use std::process::ExitCode;
/// Subcommands of `rost repo`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {}
/// Runs a `rost repo` subcommand.
pub fn run(cmd: RepoCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
