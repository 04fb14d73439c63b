//! Loading repositories: repomd → primary (→ filelists when a file dependency
//! needs them), with a local cache keyed by the repomd checksum.
//!
//! Cache layout:
//! ```text
//! <cachedir>/<repoid>/repomd.xml                        last fetched repomd (mtime = freshness; remote only)
//! <cachedir>/<repoid>/<repomd-sha256>/<file>            verified data files of that revision (remote only)
//! <cachedir>/<repoid>/<repomd-sha256>/primary.rostpkgs  parsed primary (see [`crate::poolcache`])
//! ```
//! repomd is refetched only when older than `metadata_expire`; data files are
//! fetched only when the revision directory lacks them. `file://` repos are
//! read in place (their repomd every time, it is small) but get the parsed
//! primary cache too, so a changed local repo is noticed by its repomd checksum.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::download::{fetch_bytes, file_url_path, join_url};
use crate::error::{Error, Result};
use crate::poolcache;
use crate::poolcache::RepoData;
use crate::repofile::RepoConfig;
use crate::repomd::{
    RepoPackage, Repomd, RepomdRecord, parse_filelists, parse_primary_into, parse_repomd,
    read_verified,
};
use crate::solve::{Pool, PoolRepo, PoolSource, SolveOptions};

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
    /// Where fetched data files of this revision live (remote repos).
    dir: Option<PathBuf>,
    /// `<cachedir>/<repoid>/<repomd-sha256>` when there is a cache directory.
    revision_dir: Option<PathBuf>,
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

    /// Every package of primary, unfiltered: from the package cache when it
    /// holds this revision, else parsed from the XML (and the cache written).
    pub fn load_primary_data(&self) -> Result<RepoData> {
        let rec = self
            .repomd
            .record("primary")
            .ok_or_else(|| Error::NotFound(format!("repo {}: no primary", self.config.id)))?;
        let cache = self.revision_dir.as_ref().map(|d| {
            (
                d.join(poolcache::FILE_NAME),
                poolcache::Key {
                    repomd_checksum: self.repomd_checksum.clone(),
                    primary_checksum: rec.checksum.to_ascii_lowercase(),
                },
            )
        });
        if let Some((path, key)) = &cache {
            let t = std::time::Instant::now();
            match poolcache::load(path, key) {
                Ok(data) => {
                    tracing::debug!(
                        "repo {}: {} packages from {} in {:?}",
                        self.config.id,
                        data.len(),
                        path.display(),
                        t.elapsed()
                    );
                    return Ok(data);
                }
                Err(e) => tracing::debug!(
                    "repo {}: package cache not used ({}); parsing primary",
                    self.config.id,
                    chain(&e)
                ),
            }
        }
        let t = std::time::Instant::now();
        let data = self.parse_primary_data(rec)?;
        tracing::debug!(
            "repo {}: primary parsed in {:?}",
            self.config.id,
            t.elapsed()
        );
        if let Some((path, key)) = &cache {
            let t = std::time::Instant::now();
            match poolcache::store(path, key, &data) {
                Ok(()) => tracing::debug!(
                    "repo {}: package cache written to {} in {:?}",
                    self.config.id,
                    path.display(),
                    t.elapsed()
                ),
                Err(e) => tracing::debug!(
                    "repo {}: package cache not written ({})",
                    self.config.id,
                    chain(&e)
                ),
            }
        }
        Ok(data)
    }

    /// Streams primary into packages tagged with `repo_index`, filtered by the
    /// repo's `exclude`/`includepkgs`.
    pub fn load_primary(&self, repo_index: usize) -> Result<Vec<RepoPackage>> {
        let data = self.load_primary_data()?;
        let cfg = &self.config;
        Ok((0..data.len())
            .filter(|&i| cfg.admits(data.name(i)))
            .map(|i| {
                let mut p = data.package(i);
                p.repo = repo_index;
                p
            })
            .collect())
    }

    /// Every package of primary, parsed from the XML straight into interned
    /// form (decompression runs on its own thread, see [`read_verified`]).
    fn parse_primary_data(&self, rec: &RepomdRecord) -> Result<RepoData> {
        let path = self.local_record(rec)?;
        let what = path.display().to_string();
        // Gzip'd primary holds roughly one package per 100 bytes.
        let guess = rec
            .size
            .map_or(1 << 14, |s| (s / 100).min(1 << 20) as usize);
        read_verified(&path, rec, |r| {
            let mut b = poolcache::Builder::with_capacity(guess);
            parse_primary_into(r, &what, &mut b)?;
            Ok(b.finish())
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

/// An error with its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
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
    let repomd_checksum = hex::encode(sha2::Sha256::digest(&bytes));
    let revision_dir = match &dir {
        Some(d) => Some(d.clone()),
        None => cachedir.map(|c| c.join(&config.id).join(&repomd_checksum)),
    };
    Ok(LoadedRepo {
        config: config.clone(),
        base,
        repomd_checksum,
        repomd,
        dir,
        revision_dir,
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
    let mut sources = Vec::new();
    for c in configs.iter().filter(|c| c.enabled) {
        let r = open_repo(c, cachedir)?;
        sources.push(PoolSource {
            repo: repos.len(),
            data: r.load_primary_data()?,
        });
        pool_repos.push(PoolRepo {
            id: c.id.clone(),
            priority: c.priority,
            cost: c.cost,
        });
        repos.push(r);
    }
    let t = std::time::Instant::now();
    let mut pool = Pool::from_sources(pool_repos, sources, opts, |r, name| {
        repos.get(r).is_none_or(|r| r.config.admits(name))
    });
    tracing::debug!(
        "pool of {} packages built in {:?}",
        pool.packages.len(),
        t.elapsed()
    );
    let t = std::time::Instant::now();
    let needed = pool
        .required_files()
        .iter()
        .chain(extra_files)
        .any(|f| !pool.knows_file(f));
    tracing::debug!("file dependency scan in {:?}", t.elapsed());
    if needed {
        tracing::debug!("file dependencies beyond primary: loading filelists");
        let mut all: HashMap<(usize, String), Vec<String>> = HashMap::new();
        for (i, r) in repos.iter().enumerate() {
            for (k, v) in r.load_filelists()? {
                all.insert((i, k), v);
            }
        }
        pool.set_files_by_checksum(|repo, sum| all.get(&(repo, sum.to_owned())).cloned());
    }
    Ok((pool, repos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repofile::{RepoVars, parse_repo_file};
    use std::io::Write;

    /// Writes a file:// repo whose primary has packages `names` (each requiring
    /// the next), and returns its config.
    fn write_repo(root: &Path, names: &[&str], extra: &str) -> RepoConfig {
        let mut xml = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm">"#,
        );
        for (i, n) in names.iter().enumerate() {
            let req = names
                .get(i + 1)
                .map(|next| format!(r#"<rpm:requires><rpm:entry name="{next}"/></rpm:requires>"#))
                .unwrap_or_default();
            xml.push_str(&format!(
                r#"<package type="rpm"><name>{n}</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/>
<checksum type="sha256" pkgid="YES">{i:064x}</checksum><location href="Packages/{n}.rpm"/>
<format><rpm:provides><rpm:entry name="{n}" flags="EQ" epoch="0" ver="1" rel="1"/></rpm:provides>{req}</format></package>"#
            ));
        }
        xml.push_str("</metadata>");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(xml.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let sum = hex::encode(sha2::Sha256::digest(&gz));
        let rd = root.join("repodata");
        std::fs::create_dir_all(&rd).unwrap();
        for e in std::fs::read_dir(&rd).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        std::fs::write(rd.join(format!("{sum}-primary.xml.gz")), &gz).unwrap();
        std::fs::write(
            rd.join("repomd.xml"),
            format!(
                r#"<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary">
<checksum type="sha256">{sum}</checksum><location href="repodata/{sum}-primary.xml.gz"/></data></repomd>"#
            ),
        )
        .unwrap();
        let text = format!(
            "[t]\nbaseurl=file://{}\ngpgcheck=0\n{extra}",
            root.display()
        );
        parse_repo_file(&text, "t.repo", &RepoVars::default())
            .unwrap()
            .remove(0)
    }

    fn load(cfg: &RepoConfig, cache: &Path) -> Vec<String> {
        let (pool, repos) = load_pool(
            std::slice::from_ref(cfg),
            Some(cache),
            &SolveOptions::default(),
            &[],
        )
        .unwrap();
        assert_eq!(repos.len(), 1);
        let mut v: Vec<String> = pool.packages.iter().map(|p| p.nevra()).collect();
        v.sort();
        v
    }

    fn cache_file(cache: &Path, repo: &LoadedRepo) -> PathBuf {
        cache
            .join("t")
            .join(&repo.repomd_checksum)
            .join(poolcache::FILE_NAME)
    }

    #[test]
    fn parsed_primary_is_cached_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cache) = (tmp.path().join("repo"), tmp.path().join("cache"));
        let cfg = write_repo(&root, &["a", "b"], "");
        assert_eq!(load(&cfg, &cache), ["a-1-1.noarch", "b-1-1.noarch"]);
        let repo = open_repo(&cfg, Some(&cache)).unwrap();
        let file = cache_file(&cache, &repo);
        let cached = poolcache::load(
            &file,
            &poolcache::Key {
                repomd_checksum: repo.repomd_checksum.clone(),
                primary_checksum: repo.repomd.record("primary").unwrap().checksum.clone(),
            },
        )
        .unwrap();
        assert_eq!(cached.len(), 2);
        // The second load reads the cache, not the XML: it still works with the
        // primary file gone.
        for e in std::fs::read_dir(root.join("repodata")).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with("primary.xml.gz") {
                std::fs::remove_file(p).unwrap();
            }
        }
        assert_eq!(load(&cfg, &cache), ["a-1-1.noarch", "b-1-1.noarch"]);
        // The cache holds primary unfiltered: an exclude applies on load.
        let mut excl = cfg.clone();
        excl.exclude = vec!["b".into()];
        assert_eq!(load(&excl, &cache), ["a-1-1.noarch"]);
    }

    #[test]
    fn corrupt_cache_falls_back_to_parsing() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cache) = (tmp.path().join("repo"), tmp.path().join("cache"));
        let cfg = write_repo(&root, &["a", "b"], "");
        load(&cfg, &cache);
        let repo = open_repo(&cfg, Some(&cache)).unwrap();
        let file = cache_file(&cache, &repo);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(load(&cfg, &cache), ["a-1-1.noarch", "b-1-1.noarch"]);
        // …and the parse rewrote a good cache.
        assert_ne!(std::fs::read(&file).unwrap(), bytes);
        std::fs::write(&file, b"\0\0\0").unwrap();
        assert_eq!(load(&cfg, &cache), ["a-1-1.noarch", "b-1-1.noarch"]);
    }

    #[test]
    fn damaged_cache_never_panics_and_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cache) = (tmp.path().join("repo"), tmp.path().join("cache"));
        let names: Vec<String> = (0..300).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let cfg = write_repo(&root, &refs, "");
        let want = load(&cfg, &cache);
        assert_eq!(want.len(), 300);
        let repo = open_repo(&cfg, Some(&cache)).unwrap();
        let file = cache_file(&cache, &repo);
        let good = std::fs::read(&file).unwrap();
        // Truncated anywhere, or with a byte changed anywhere: the pool is the
        // XML's, and the parse writes a good cache again.
        let step = good.len() / 40;
        for n in (0..good.len()).step_by(step) {
            std::fs::write(&file, &good[..n]).unwrap();
            assert_eq!(load(&cfg, &cache), want, "truncated at {n}");
            assert_eq!(std::fs::read(&file).unwrap(), good);
            let mut bad = good.clone();
            bad[n] ^= 0x10;
            std::fs::write(&file, &bad).unwrap();
            assert_eq!(load(&cfg, &cache), want, "byte {n} changed");
            assert_eq!(std::fs::read(&file).unwrap(), good);
        }
        // A directory where the file should be: not readable, not writable.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        assert_eq!(load(&cfg, &cache), want);
    }

    #[test]
    fn unwritable_cache_still_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        // A file where the cache directory should be: nothing can be written under it.
        let cache = tmp.path().join("cache");
        std::fs::write(&cache, b"").unwrap();
        let names: Vec<String> = (0..5000).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let cfg = write_repo(&root, &refs, "");
        let got = load(&cfg, &cache);
        assert_eq!(got.len(), 5000);
        assert!(got.contains(&"p4999-1-1.noarch".to_owned()));
        // Same packages, in the same order, whether the cache is written or not.
        let good = tmp.path().join("good");
        let with_cache = open_repo(&cfg, Some(&good))
            .unwrap()
            .load_primary(0)
            .unwrap();
        let without = open_repo(&cfg, None).unwrap().load_primary(0).unwrap();
        assert_eq!(with_cache, without);
        let from_cache = open_repo(&cfg, Some(&good))
            .unwrap()
            .load_primary(0)
            .unwrap();
        assert_eq!(from_cache, without);
    }

    #[test]
    fn changed_repomd_invalidates_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cache) = (tmp.path().join("repo"), tmp.path().join("cache"));
        let cfg = write_repo(&root, &["a", "b"], "");
        assert_eq!(load(&cfg, &cache), ["a-1-1.noarch", "b-1-1.noarch"]);
        let cfg = write_repo(&root, &["a", "c", "d"], "");
        assert_eq!(
            load(&cfg, &cache),
            ["a-1-1.noarch", "c-1-1.noarch", "d-1-1.noarch"]
        );
        // A cache file planted under the new revision but keyed to another one
        // is ignored too.
        let repo = open_repo(&cfg, Some(&cache)).unwrap();
        let stale = poolcache::Key {
            repomd_checksum: "0".repeat(64),
            primary_checksum: repo.repomd.record("primary").unwrap().checksum.clone(),
        };
        poolcache::store(&cache_file(&cache, &repo), &stale, &RepoData::default()).unwrap();
        assert_eq!(
            load(&cfg, &cache),
            ["a-1-1.noarch", "c-1-1.noarch", "d-1-1.noarch"]
        );
    }
}
