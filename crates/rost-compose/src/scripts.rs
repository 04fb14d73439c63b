//! Running scriptlets and treefile scripts inside the new tree with bubblewrap.
//!
//! The tree is bound as `/` (writable), with a private `/dev`, `/proc`, and
//! tmpfs `/tmp`, `/run` and `/var` (what a script writes into `/var` is not kept:
//! the commit ships an empty `/var`). All namespaces are unshared, so there is
//! no network. As root the sandbox runs as the real root; otherwise in a user
//! namespace mapped to uid 0, where `chown` to other users fails (a clear
//! scriptlet error). Lua scriptlets are an error naming package and phase.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// The `bwrap` binary.
pub const BWRAP: &str = "bwrap";

const SCRIPT_IN_SANDBOX: &str = "/tmp/.rost-script";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs `body` (if any) with `interpreter` inside `root`, as rpm does:
/// `interpreter [args…] SCRIPTFILE ARG`.
pub fn run_script(
    root: &Path,
    interpreter: &[String],
    body: Option<&str>,
    arg: &str,
    package: &str,
    phase: &str,
) -> Result<()> {
    let err = |msg: String| Error::Script {
        package: package.to_owned(),
        phase: phase.to_owned(),
        msg,
    };
    let Some(interp) = interpreter.first() else {
        return Err(err("no interpreter".into()));
    };
    if interp == "<lua>" {
        return Err(err("Lua scriptlets are not supported".into()));
    }
    let interp_rel = interp.trim_start_matches('/');
    if std::fs::symlink_metadata(root.join(interp_rel)).is_err() {
        return Err(err(format!("interpreter {interp} is not in the tree")));
    }
    for d in ["dev", "proc", "tmp", "run", "var"] {
        let p = root.join(d);
        if std::fs::symlink_metadata(&p).is_err() {
            std::fs::create_dir(&p).map_err(|e| Error::io("creating", &p, e))?;
        }
    }
    let script =
        tempfile::NamedTempFile::new().map_err(|e| Error::io("creating", "temp script", e))?;
    if let Some(b) = body {
        std::fs::write(script.path(), b).map_err(|e| Error::io("writing", script.path(), e))?;
    }
    let mut cmd = Command::new(BWRAP);
    cmd.arg("--bind").arg(root).arg("/");
    cmd.args([
        "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
    ]);
    cmd.args([
        "--tmpfs",
        "/var",
        "--unshare-all",
        "--die-with-parent",
        "--chdir",
        "/",
    ]);
    if !is_root() {
        cmd.args(["--unshare-user", "--uid", "0", "--gid", "0"]);
    }
    cmd.args([
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/sbin:/usr/bin:/sbin:/bin",
    ]);
    cmd.args(["--setenv", "HOME", "/root", "--setenv", "LANG", "C.UTF-8"]);
    cmd.args(["--setenv", "RPM_INSTALL_PREFIX", "/usr"]);
    if body.is_some() {
        cmd.arg("--ro-bind")
            .arg(script.path())
            .arg(SCRIPT_IN_SANDBOX);
    }
    cmd.arg("--").args(interpreter);
    if body.is_some() {
        cmd.arg(SCRIPT_IN_SANDBOX);
    }
    cmd.arg(arg);
    cmd.stdin(std::process::Stdio::null());
    tracing::info!("running {phase} of {package}");
    let out = cmd
        .output()
        .map_err(|e| err(format!("cannot run {BWRAP}: {e}")))?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        tracing::info!("{package}.{phase}: {line}");
    }
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut msg = format!("failed ({})", out.status);
        if !stderr.trim().is_empty() {
            msg += &format!(": {}", stderr.trim());
        }
        if !is_root() {
            msg += " (not running as root: scriptlets needing real root privileges fail)";
        }
        return Err(err(msg));
    }
    Ok(())
}
