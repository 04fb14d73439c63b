//! argv0 `ostree` mode.
use std::ffi::OsString;
use std::process::ExitCode;
/// Whether argv0 is `ostree`.
pub fn invoked_as_ostree(args: &[OsString]) -> bool {
    args.first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "ostree")
}
/// Runs ostree-compatible argument order.
pub fn run(_args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
