//! The `rost` binary: command-line parsing, rendering and exit codes.
//!
//! All business logic lives in the library crates (`rost-store`, `rost-rpm`, …);
//! this crate turns flags into library options, calls them, and renders the
//! result for humans or as JSON. When invoked through a symlink named `ostree`
//! it accepts ostree's own argument order (see [`cli::ostree_compat`]).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::init_logging();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = if cli::ostree_compat::invoked_as_ostree(&args) {
        cli::ostree_compat::run(args)
    } else {
        cli::run(args)
    };
    match result {
        Ok(code) => code,
        Err(err) => cli::report_error(&err),
    }
}
