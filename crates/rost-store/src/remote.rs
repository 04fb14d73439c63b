//! Remotes: `[remote "NAME"]` groups in the repo config, as ostree stores them.

use crate::{Error, Repo, Result};

/// A configured remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Remote name.
    pub name: String,
    /// Base URL (`http://`, `https://` or `file://`).
    pub url: String,
    /// Whether commits must carry a valid GPG signature (ostree's default: true).
    pub gpg_verify: bool,
    /// Whether the summary must be signed.
    pub gpg_verify_summary: bool,
    /// Whether commits must carry a valid ed25519 signature (`sign-verify`).
    pub sign_verify: bool,
    /// Every key of the group, in order.
    pub options: Vec<(String, String)>,
}

impl Remote {
    /// The value of one config key of this remote.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn group(name: &str) -> String {
    format!("remote \"{name}\"")
}

/// Checks a remote name: non-empty, no `/`, `:` or whitespace.
pub fn validate_remote_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', ':', '"']) || name.chars().any(char::is_whitespace) {
        return Err(Error::Other(format!("Invalid remote name {name}")));
    }
    Ok(())
}

/// Parent repositories (`core.parent`) are followed this deep at most.
const MAX_PARENT_DEPTH: usize = 8;

/// The repository named by `core.parent`, when set and openable.
fn parent_repo(repo: &Repo) -> Option<Repo> {
    let p = repo.config().get("core", "parent")?;
    Repo::open(std::path::Path::new(p)).ok()
}

/// Names of every remote, in config order, then those of the parent
/// repositories (`core.parent`) that this one does not define itself.
pub fn list_remotes(repo: &Repo) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<Repo> = None;
    for _ in 0..MAX_PARENT_DEPTH {
        let r = cur.as_ref().unwrap_or(repo);
        for name in r.config().groups().filter_map(|g| {
            g.strip_prefix("remote \"")
                .and_then(|r| r.strip_suffix('"'))
        }) {
            if !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
        }
        match parent_repo(r) {
            Some(p) => cur = Some(p),
            None => break,
        }
    }
    out
}

/// Loads one remote (from a parent repository when this one lacks it).
pub fn get_remote(repo: &Repo, name: &str) -> Result<Remote> {
    get_remote_depth(repo, name, 0)
}

fn get_remote_depth(repo: &Repo, name: &str, depth: usize) -> Result<Remote> {
    let g = group(name);
    let cfg = repo.config();
    if !cfg.has_group(&g) {
        if depth < MAX_PARENT_DEPTH
            && let Some(p) = parent_repo(repo)
        {
            return get_remote_depth(&p, name, depth + 1);
        }
        return Err(Error::NotFound(format!("Remote \"{name}\" not found")));
    }
    let url = cfg
        .get(&g, "url")
        .ok_or_else(|| Error::Config {
            path: repo.path().join("config"),
            reason: format!("{g}: missing url"),
        })?
        .to_owned();
    let options = cfg
        .keys(&g)
        .into_iter()
        .map(|k| (k.to_owned(), cfg.get(&g, k).unwrap_or("").to_owned()))
        .collect();
    Ok(Remote {
        name: name.to_owned(),
        url,
        gpg_verify: cfg.get_bool(&g, "gpg-verify").unwrap_or(true),
        gpg_verify_summary: cfg.get_bool(&g, "gpg-verify-summary").unwrap_or(false),
        sign_verify: cfg.get_bool(&g, "sign-verify").unwrap_or(false),
        options,
    })
}

/// What [`add_remote`] does when the remote is already configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// An error (ostree's default).
    Fail,
    /// Leave it as it is (`--if-not-exists`).
    Keep,
    /// Replace its settings (`--force`).
    Replace,
}

/// Adds a remote. `options` are extra `key=value` settings (`gpg-verify=false`, …).
pub fn add_remote(
    repo: &mut Repo,
    name: &str,
    url: &str,
    options: &[(String, String)],
    if_exists: IfExists,
) -> Result<()> {
    validate_remote_name(name)?;
    let g = group(name);
    if repo.config().has_group(&g) {
        match if_exists {
            IfExists::Keep => return Ok(()),
            IfExists::Replace => {
                let mut cfg = repo.config().clone();
                cfg.remove_group(&g);
                cfg.set(&g, "url", url);
                for (k, v) in options {
                    cfg.set(&g, k, v);
                }
                return repo.write_config(cfg);
            }
            IfExists::Fail => {}
        }
        return Err(Error::Other(format!(
            "Remote configuration for \"{name}\" already exists"
        )));
    }
    let mut cfg = repo.config().clone();
    cfg.set(&g, "url", url);
    for (k, v) in options {
        cfg.set(&g, k, v);
    }
    repo.write_config(cfg)
}

/// Deletes a remote and its refs.
pub fn delete_remote(repo: &mut Repo, name: &str, if_exists: bool) -> Result<()> {
    let g = group(name);
    if !repo.config().has_group(&g) {
        if if_exists {
            return Ok(());
        }
        return Err(Error::NotFound(format!("Remote \"{name}\" not found")));
    }
    let mut cfg = repo.config().clone();
    cfg.remove_group(&g);
    repo.write_config(cfg)?;
    let refs_dir = std::path::Path::new("refs/remotes").join(name);
    crate::fsutil::remove_all_at(repo.dfd(), &refs_dir).map_err(|e| Error::Io {
        op: "removing",
        path: refs_dir.clone(),
        source: e.into(),
    })?;
    Ok(())
}
