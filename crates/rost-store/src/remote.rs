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

/// Names of every remote, in config order.
pub fn list_remotes(repo: &Repo) -> Vec<String> {
    repo.config()
        .groups()
        .filter_map(|g| {
            g.strip_prefix("remote \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .map(str::to_owned)
        .collect()
}

/// Loads one remote.
pub fn get_remote(repo: &Repo, name: &str) -> Result<Remote> {
    let g = group(name);
    let cfg = repo.config();
    if !cfg.has_group(&g) {
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

/// Adds a remote. `options` are extra `key=value` settings (`gpg-verify=false`, …).
pub fn add_remote(
    repo: &mut Repo,
    name: &str,
    url: &str,
    options: &[(String, String)],
    if_not_exists: bool,
) -> Result<()> {
    validate_remote_name(name)?;
    let g = group(name);
    if repo.config().has_group(&g) {
        if if_not_exists {
            return Ok(());
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
