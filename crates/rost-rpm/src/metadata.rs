//! Loading repositories: repomd → primary (→ filelists when a file dependency
//! needs them), with a local cache keyed by the repomd checksum.
//!
//! Cache layout (remote repos only; `file://` repos are read in place):
//! ```text
//! <cachedir>/<repoid>/repomd.xml              last fetched repomd (mtime = freshness)
//! <cachedir>/<repoid>/<repomd-sha256>/<file>  verified data files of that revision
//! ```
//! repomd is refetched only when older than `metadata_expire`; data files are
//! fetched only when the revision directory lacks them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::download::{fetch_bytes, file_url_path, join_url};
use crate::error::{Error, Result};
use crate::repofile::RepoConfig;
use crate::repomd::{
    RepoPackage, Repomd, RepomdRecord, parse_filelists, parse_primary, parse_repomd, read_verified,
};
use crate::solve::{Pool, PoolRepo, SolveOptions};

/// A repository whose metadata is available locally.
#[derive(Debug)]
pub struct LoadedRepo {
    /// Its configuration.
    pub config: RepoConfig,
    /// Base URL used (trailing `/`).
    pub base: String,
    /// Parsed repomd.
    pub repomd: Repomd,
    /// SHA-256 of repomd.xml.
    pub repomd_checksum: String,
    dir: Option<PathBuf>,
}

impl LoadedRepo {
    /// Local path of a metadata record (fetched and verified if remote).
    fn local_record(&self, rec: &RepomdRecord) -> Result<PathBuf> {
        if let Some(root) = file_url_path(&self.base) {
            return Ok(root.join(&rec.href));
        }
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| Error::NotFound("no cache directory for a remote repo".into()))?;
        let name = rec.href.rsplit('/').next().unwrap_or(&rec.href);
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
        let data = fetch_bytes(&join_url(&self.base, &rec.href))?;
        crate::repomd::verify_record(rec, &data, &join_url(&self.base, &rec.href))?;
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &data).map_err(|e| Error::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming into place", &path, e))?;
        Ok(path)
    }

    /// Streams primary into packages tagged with `repo_index`.
    pub fn load_primary(&self, repo_index: usize) -> Result<Vec<RepoPackage>> {
        let rec = self
            .repomd
            .record("primary")
            .ok_or_else(|| Error::NotFound(format!("repo {}: no primary", self.config.id)))?;
        let path = self.local_record(rec)?;
        let what = path.display().to_string();
        let cfg = &self.config;
        read_verified(&path, rec, |r| {
            let mut out = Vec::new();
            parse_primary(r, &what, |mut p| {
                if cfg.admits(&p.name) {
                    p.repo = repo_index;
                    out.push(p);
                }
            })?;
            Ok(out)
        })
    }

    /// Streams filelists into a map pkgid → files.
    pub fn load_filelists(&self) -> Result<HashMap<String, Vec<String>>> {
        let Some(rec) = self.repomd.record("filelists") else {
            return Ok(HashMap::new());
        };
        let path = self.local_record(rec)?;
        let what = path.display().to_string();
        read_verified(&path, rec, |r| {
            let mut out = HashMap::new();
            parse_filelists(r, &what, |id, files| {
                out.insert(id.to_owned(), files);
            })?;
            Ok(out)
        })
    }
}

fn fresh(path: &Path, expire: Option<u64>) -> bool {
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let Some(expire) = expire else { return true };
    m.modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() < expire)
}

/// Opens a repo: reads (or fetches, honouring the cache) its repomd.
pub fn open_repo(config: &RepoConfig, cachedir: Option<&Path>) -> Result<LoadedRepo> {
    let Some(base) = config.baseurl.first() else {
        return Err(Error::NotFound(format!(
            "repo {}: only baseurl is supported; metalink/mirrorlist resolution is not implemented",
            config.id
        )));
    };
    let base = if base.ends_with('/') {
        base.clone()
    } else {
        format!("{base}/")
    };
    let url = join_url(&base, "repodata/repomd.xml");
    let (bytes, dir) = if file_url_path(&base).is_some() {
        (fetch_bytes(&url)?, None)
    } else {
        let cache = cachedir.ok_or_else(|| {
            Error::NotFound(format!(
                "repo {}: remote repos need a cache directory",
                config.id
            ))
        })?;
        let rdir = cache.join(&config.id);
        std::fs::create_dir_all(&rdir).map_err(|e| Error::io("creating directory", &rdir, e))?;
        let cached = rdir.join("repomd.xml");
        let bytes = if fresh(&cached, config.metadata_expire) {
            std::fs::read(&cached).map_err(|e| Error::io("reading", &cached, e))?
        } else {
            let b = fetch_bytes(&url)?;
            let tmp = rdir.join(".repomd.xml.tmp");
            std::fs::write(&tmp, &b).map_err(|e| Error::io("writing", &tmp, e))?;
            std::fs::rename(&tmp, &cached).map_err(|e| Error::io("renaming", &cached, e))?;
            b
        };
        let sum = hex::encode(sha2::Sha256::digest(&bytes));
        let d = rdir.join(&sum);
        std::fs::create_dir_all(&d).map_err(|e| Error::io("creating directory", &d, e))?;
        (bytes, Some(d))
    };
    let repomd = parse_repomd(&bytes, &url)?;
    Ok(LoadedRepo {
        config: config.clone(),
        base,
        repomd_checksum: hex::encode(sha2::Sha256::digest(&bytes)),
        repomd,
        dir,
    })
}

/// Loads enabled repos into a solver pool; loads filelists only if some file
/// dependency is not covered by primary's file subset.
pub fn load_pool(
    configs: &[RepoConfig],
    cachedir: Option<&Path>,
    opts: &SolveOptions,
    extra_files: &[String],
) -> Result<(Pool, Vec<LoadedRepo>)> {
    let mut repos = Vec::new();
    let mut pool_repos = Vec::new();
    let mut packages = Vec::new();
    for c in configs.iter().filter(|c| c.enabled) {
        let r = open_repo(c, cachedir)?;
        let idx = repos.len();
        let t = std::time::Instant::now();
        packages.extend(r.load_primary(idx)?);
        tracing::debug!("repo {}: primary parsed in {:?}", c.id, t.elapsed());
        pool_repos.push(PoolRepo {
            id: c.id.clone(),
            priority: c.priority,
            cost: c.cost,
        });
        repos.push(r);
    }
    let t = std::time::Instant::now();
    let mut pool = Pool::new(pool_repos, packages, opts);
    tracing::debug!(
        "pool of {} packages built in {:?}",
        pool.packages.len(),
        t.elapsed()
    );
    let t = std::time::Instant::now();
    let needed = pool
        .required_files()
        .into_iter()
        .chain(extra_files.iter().cloned())
        .any(|f| !pool.knows_file(&f));
    tracing::debug!("file dependency scan in {:?}", t.elapsed());
    if needed {
        tracing::debug!("file dependencies beyond primary: loading filelists");
        let mut all: HashMap<(usize, String), Vec<String>> = HashMap::new();
        for (i, r) in repos.iter().enumerate() {
            for (k, v) in r.load_filelists()? {
                all.insert((i, k), v);
            }
        }
        pool.set_files(|p| all.get(&(p.repo, p.checksum.clone())).cloned());
    }
    Ok((pool, repos))
}
