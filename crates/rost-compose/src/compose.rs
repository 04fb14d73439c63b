//! The `compose tree` pipeline: treefile → resolve → download → import →
//! assemble → scriptlets → postprocess → rpmdb → commit.
//!
//! The input hash is computed right after resolution (treefile JSON, external
//! inputs, and every package's NEVRA and repodata checksum); when it equals the
//! previous commit's `rpmostree.inputhash` nothing is downloaded or written.
//! Packages already imported in the cache (same ref, repodata checksum and
//! import options) are neither imported again nor, when their RPM is in the
//! download cache, downloaded.
//!
//! Assembly hardlinks the cache's objects into the rootfs (the package trees
//! merged in dependency order in memory, conflicts refused, then written out
//! in parallel: see `assemble`). `usr/etc` is copied
//! before scriptlets run, since scripts edit config files in place; any other
//! file a script writes through a hardlink is caught at commit time (cache
//! objects have mtime 0), committed with its new content, and its package's
//! cache entry is dropped so the next compose re-imports it. The final commit
//! reuses the cache's checksum for unchanged files (by device/inode): the
//! content of a file whose object the target repo lacks is stored without
//! hashing it again, and one it has is not read at all. rpm writes the rpmdb
//! in a thread of its own from the downloaded RPMs while the tree is
//! assembled and scripts run. Ownership comes from
//! the package headers (names resolved against the tree's passwd/group), which
//! makes a non-root compose byte-identical to a root one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rost_rpm::repomd::RepoPackage;
use rost_store::gvariant::{Type, Value};
use rost_store::objects::{Commit, DirMeta, FileHeader};
use rost_store::refs::RefSpec;
use rost_store::transaction::{ContentSource, Transaction};
use rost_store::{Checksum, ObjectType, Repo, RepoMode};
use serde::Serialize;
use sha2::Digest;

use crate::assemble::{self, CacheObject};
use crate::error::{Error, Result};
use crate::import::{self, ImportOptions, MemDir};
use crate::postprocess;
use crate::rpmdb;
use crate::scripts;
use crate::treefile::{self, Loaded};

/// What `compose tree` should do.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    /// The treefile.
    pub treefile: PathBuf,
    /// Target repository (must exist).
    pub repo: PathBuf,
    /// Cache directory (package cache repo, rpm-md, RPMs); a temporary one if unset.
    pub cachedir: Option<PathBuf>,
    /// Resolve and report the package set; write nothing.
    pub dry_run: bool,
    /// Print the flattened treefile only.
    pub print_only: bool,
    /// Compose even if the input hash is unchanged.
    pub force_nocache: bool,
    /// Write the commit id here instead of moving the ref.
    pub write_commitid_to: Option<PathBuf>,
    /// Touch this file when a new commit is written.
    pub touch_if_changed: Option<PathBuf>,
    /// Extra string metadata.
    pub add_metadata: Vec<(String, String)>,
    /// Parent commit (default: the ref's current commit).
    pub parent: Option<String>,
    /// `$basearch`.
    pub basearch: String,
    /// Commit timestamp and rpmdb install time (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<u64>,
}

/// Counters and identity of a compose.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ComposeResult {
    /// The ref.
    #[serde(rename = "ref")]
    pub ref_: String,
    /// The new (or unchanged) commit.
    #[serde(rename = "commit-id")]
    pub commit: String,
    /// Version metadata, if any.
    #[serde(rename = "commit-version", skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The input hash.
    #[serde(rename = "rpmostree.inputhash")]
    pub inputhash: String,
    /// Whether a commit was written.
    pub changed: bool,
    /// NEVRAs, sorted.
    pub packages: Vec<String>,
    /// RPMs fetched (not from the cache).
    pub downloaded: usize,
    /// Packages imported into the package cache.
    pub imported: usize,
    /// Packages whose cached import was reused.
    pub reused: usize,
}

/// The outcome of [`compose_tree`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// `--print-only`: the flattened treefile.
    PrintOnly(serde_json::Value),
    /// `--dry-run`: NEVRAs that would be composed, sorted.
    DryRun(Vec<String>),
    /// Unchanged input hash, or a new commit.
    Done(ComposeResult),
}

/// Loads the `.repo` files next to the treefile and picks the treefile's repos.
fn load_repos(loaded: &Loaded, basearch: &str) -> Result<Vec<rost_rpm::repofile::RepoConfig>> {
    let tf = &loaded.treefile;
    let top = loaded.files[0].display().to_string();
    let vars = rost_rpm::repofile::RepoVars {
        releasever: loaded
            .variables
            .get("releasever")
            .cloned()
            .unwrap_or_default(),
        basearch: basearch.to_owned(),
        arch: basearch.to_owned(),
    };
    let mut all = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&loaded.dir)
        .map_err(|e| Error::io("listing", &loaded.dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "repo"))
        .collect();
    files.sort();
    for f in files {
        all.extend(rost_rpm::repofile::load_repo_file(&f, &vars)?);
    }
    let mut out = Vec::new();
    for (i, id) in tf.repos.iter().flatten().enumerate() {
        let mut c = all
            .iter()
            .find(|c| &c.id == id)
            .cloned()
            .ok_or_else(|| Error::Treefile {
                file: top.clone(),
                msg: format!(
                    "repos[{i}]: unknown repo id {id:?} (no .repo file in {} defines it)",
                    loaded.dir.display()
                ),
            })?;
        c.enabled = true;
        out.push(c);
    }
    for (i, rp) in tf.repo_packages.iter().flatten().enumerate() {
        if !out.iter().any(|c| c.id == rp.repo) {
            return Err(Error::Treefile {
                file: top.clone(),
                msg: format!("repo-packages[{i}].repo: {:?} is not in repos", rp.repo),
            });
        }
        for c in out.iter_mut().filter(|c| c.id != rp.repo) {
            for p in &rp.packages {
                for spec in treefile::split_spec(p) {
                    let name = spec.split_whitespace().next().unwrap_or("").to_owned();
                    c.exclude.push(name);
                }
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Treefile {
            file: top,
            msg: "repos: no repositories given".into(),
        });
    }
    Ok(out)
}

/// Orders packages so that providers of a package's requirements come first
/// (pre-requirements win in a cycle); ties by name.
fn install_order(pkgs: &[&RepoPackage]) -> Vec<usize> {
    let n = pkgs.len();
    let mut provides: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        provides.entry(p.name.as_str()).or_default().push(i);
        for d in &p.provides {
            provides.entry(d.name.as_str()).or_default().push(i);
        }
        for f in &p.files {
            provides.entry(f.as_str()).or_default().push(i);
        }
    }
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for (i, p) in pkgs.iter().enumerate() {
        for r in p.requires.iter().filter(|r| !r.is_rpmlib()) {
            for &j in provides.get(r.name.as_str()).into_iter().flatten() {
                if j != i {
                    deps[i].insert(j);
                }
            }
        }
    }
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut by_name: Vec<usize> = (0..n).collect();
    by_name.sort_by(|&a, &b| pkgs[a].name.cmp(&pkgs[b].name));
    while order.len() < n {
        let ready = by_name
            .iter()
            .copied()
            .find(|&i| !done[i] && deps[i].iter().all(|&j| done[j]));
        // A cycle: take the first remaining package by name.
        let pick =
            ready.unwrap_or_else(|| by_name.iter().copied().find(|&i| !done[i]).unwrap_or(0));
        done[pick] = true;
        order.push(pick);
    }
    order
}

struct CountingReporter {
    fetched: AtomicUsize,
}

impl rost_rpm::download::Reporter for CountingReporter {
    fn report(&self, ev: rost_rpm::download::Progress) {
        let rost_rpm::download::Progress::Done { name, cached, .. } = ev else {
            return;
        };
        if !cached {
            self.fetched.fetch_add(1, Ordering::Relaxed);
            tracing::info!("downloaded {name}");
        }
    }
}

fn meta_str<'a>(c: &'a Commit, key: &str) -> Option<&'a str> {
    match c.metadata.lookup(key)? {
        Value::Variant(b) => b.as_str(),
        v => v.as_str(),
    }
}

/// Next version from `prefix` and the previous commit's version.
pub fn next_version(prefix: &str, previous: Option<&str>) -> String {
    match previous {
        Some(p) if p == prefix => format!("{prefix}.1"),
        Some(p) => match p
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) => format!("{prefix}.{}", n + 1),
            None => prefix.to_owned(),
        },
        None => prefix.to_owned(),
    }
}

fn expand_date(prefix: &str, epoch: u64) -> String {
    let Some(start) = prefix.find("<date:") else {
        return prefix.to_owned();
    };
    let Some(end) = prefix[start..].find('>') else {
        return prefix.to_owned();
    };
    let fmt = &prefix[start + 6..start + end];
    let t = chrono::DateTime::from_timestamp(epoch as i64, 0).unwrap_or_default();
    format!(
        "{}{}{}",
        &prefix[..start],
        t.format(fmt),
        &prefix[start + end + 1..]
    )
}

fn json_to_gvariant(v: &serde_json::Value) -> Option<Value> {
    Some(match v {
        serde_json::Value::String(s) => Value::str(s.clone()),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::I64(i),
            None => Value::Double(n.as_f64()?),
        },
        serde_json::Value::Array(a) if a.iter().all(|x| x.is_string()) => Value::Array(
            Type::Str,
            a.iter()
                .filter_map(|x| x.as_str().map(|s| Value::str(s.to_owned())))
                .collect(),
        ),
        serde_json::Value::Object(m) => Value::dict_sv(
            m.iter()
                .filter_map(|(k, v)| json_to_gvariant(v).map(|g| (k.clone(), g))),
        ),
        _ => return None,
    })
}

/// Runs `compose tree`.
pub fn compose_tree(opts: &ComposeOptions) -> Result<Outcome> {
    let t0 = std::time::Instant::now();
    let loaded = treefile::load_treefile(&opts.treefile, &opts.basearch)?;
    let tf = &loaded.treefile;
    let flat = serde_json::to_value(tf).map_err(|e| Error::Invalid { msg: e.to_string() })?;
    if opts.print_only {
        return Ok(Outcome::PrintOnly(flat));
    }
    let top = opts.treefile.display().to_string();
    let ref_ = tf.ref_.clone().ok_or_else(|| Error::Treefile {
        file: top.clone(),
        msg: "ref: missing (the branch to commit to)".into(),
    })?;
    RefSpec::parse(&ref_).map_err(|_| Error::Treefile {
        file: top.clone(),
        msg: format!("ref: {ref_:?} is not a valid ref name"),
    })?;
    let specs = tf.all_packages(&opts.basearch);
    if specs.is_empty() {
        return Err(Error::Treefile {
            file: top,
            msg: "packages: no packages to install".into(),
        });
    }
    let configs = load_repos(&loaded, &opts.basearch)?;

    // Cache directory: the given one, or a temporary one for this run.
    let tmp_cache;
    let cachedir = match &opts.cachedir {
        Some(c) => c.clone(),
        None => {
            tmp_cache = tempfile::tempdir().map_err(|e| Error::io("creating", "temp dir", e))?;
            tmp_cache.path().to_owned()
        }
    };
    std::fs::create_dir_all(&cachedir).map_err(|e| Error::io("creating", &cachedir, e))?;

    let solve_opts = rost_rpm::solve::SolveOptions {
        weak_deps: tf.recommends.unwrap_or(true),
        exclude: tf.exclude_packages.clone().unwrap_or_default(),
        basearch: opts.basearch.clone(),
    };
    let file_specs: Vec<String> = specs
        .iter()
        .filter(|s| s.starts_with('/'))
        .cloned()
        .collect();
    let (pool, repos) = rost_rpm::metadata::load_pool(
        &configs,
        Some(&cachedir.join("rpm-md")),
        &solve_opts,
        &file_specs,
    )?;
    let picked =
        rost_rpm::solve::resolve(&pool, &specs, &solve_opts).map_err(|e| Error::Treefile {
            file: opts.treefile.display().to_string(),
            msg: format!("packages: {e}"),
        })?;
    let pkgs: Vec<&RepoPackage> = picked.iter().map(|&i| &pool.packages[i as usize]).collect();
    let mut nevras: Vec<String> = pkgs.iter().map(|p| p.nevra()).collect();
    rost_rpm::solve::nevra_sort(&mut nevras);
    if opts.dry_run {
        return Ok(Outcome::DryRun(nevras));
    }

    tracing::info!("resolved after {:?}", t0.elapsed());
    let import_opts = ImportOptions {
        documentation: tf.documentation.unwrap_or(true),
        install_langs: tf.install_langs.clone().unwrap_or_default(),
    };
    // Input hash: treefile, external inputs, packages.
    let mut h = sha2::Sha256::new();
    h.update(b"rost-compose-inputhash-v1\0");
    h.update(serde_json::to_vec(&flat).unwrap_or_default());
    h.update(b"\0");
    if let Some(s) = &loaded.postprocess_script {
        h.update(b"postprocess-script\0");
        h.update(s);
    }
    for (_, dest, content) in &loaded.add_files {
        h.update(dest.as_bytes());
        h.update(b"\0");
        h.update(hex::encode(sha2::Sha256::digest(content)).as_bytes());
    }
    h.update(import_opts.key().as_bytes());
    for (k, v) in &opts.add_metadata {
        h.update(format!("meta {k}={v}\0").as_bytes());
    }
    let mut sorted: Vec<&&RepoPackage> = pkgs.iter().collect();
    sorted.sort_by_key(|p| p.nevra());
    for p in &sorted {
        h.update(format!("{} {}:{}\n", p.nevra(), p.checksum_type, p.checksum).as_bytes());
    }
    let inputhash = hex::encode(h.finalize());

    let repo = Repo::open(&opts.repo)?;
    let spec = RefSpec::parse(&ref_)?;
    let previous = repo.read_ref(&spec)?;
    let prev_commit = match &previous {
        Some(c) => Some(repo.load_commit(c)?),
        None => None,
    };
    if let (Some(pc), Some(prev), false) = (&prev_commit, &previous, opts.force_nocache)
        && meta_str(pc, "rpmostree.inputhash") == Some(inputhash.as_str())
    {
        tracing::info!("no apparent changes since previous commit {prev}");
        return Ok(Outcome::Done(ComposeResult {
            ref_,
            commit: prev.to_string(),
            version: meta_str(pc, "version").map(str::to_owned),
            inputhash,
            changed: false,
            packages: nevras,
            ..Default::default()
        }));
    }

    // Package cache.
    let pkgcache_path = cachedir.join("pkgcache-repo");
    let pkgcache = if pkgcache_path.join("config").is_file() {
        Repo::open(&pkgcache_path)?
    } else {
        Repo::init(&pkgcache_path, RepoMode::BareUser)?
    };
    let work = cachedir.join("tmp");
    std::fs::create_dir_all(&work).map_err(|e| Error::io("creating", &work, e))?;
    let workdir =
        tempfile::tempdir_in(&work).map_err(|e| Error::io("creating temp dir in", &work, e))?;

    let pkgrefs: Vec<String> = pkgs
        .iter()
        .map(|p| import::pkg_ref(&p.name, p.epoch, &p.version, &p.release, &p.arch))
        .collect();
    let repodata: Vec<String> = pkgs
        .iter()
        .map(|p| format!("{}:{}", p.checksum_type, p.checksum))
        .collect();
    let mut commits: Vec<Option<Checksum>> = Vec::with_capacity(pkgs.len());
    for (r, d) in pkgrefs.iter().zip(&repodata) {
        commits.push(import::cached_import(&pkgcache, r, d, &import_opts)?);
    }
    // Every RPM is needed for the rpmdb; cached ones come from the download cache.
    let items: Vec<rost_rpm::download::DownloadItem> = pkgs
        .iter()
        .map(|p| rost_rpm::download::DownloadItem {
            url: rost_rpm::download::join_url(&repos[p.repo].base, &p.href),
            name: p.href.rsplit('/').next().unwrap_or(&p.href).to_owned(),
            checksum_type: p.checksum_type.clone(),
            checksum: p.checksum.clone(),
        })
        .collect();
    let reporter = CountingReporter {
        fetched: AtomicUsize::new(0),
    };
    let rpm_dir = workdir.path().join("rpms");
    let paths = rost_rpm::download::download_all(
        &items,
        &rpm_dir,
        Some(&cachedir.join("packages")),
        &reporter,
    )?;
    tracing::info!("downloaded after {:?}", t0.elapsed());
    // The rpmdb needs only the RPMs: rpm writes it while the rest runs.
    let order = install_order(&pkgs);
    let nevra_of: Vec<String> = pkgs.iter().map(|p| p.nevra()).collect();
    let mut rpm_paths: Vec<PathBuf> = order.iter().map(|&i| paths[i].clone()).collect();
    rpm_paths.dedup();
    let rpmdb_staging = workdir.path().join("rpmdb");
    let rpmdb_job = Background::spawn({
        let staging = rpmdb_staging.clone();
        let sde = opts.source_date_epoch;
        move || rpmdb::build_rpmdb(&staging, &rpm_paths, sde)
    });
    let imported = commits.iter().filter(|c| c.is_none()).count();
    let reused = pkgs.len() - imported;
    let pkg_commits: Vec<Checksum> = if imported == 0 {
        commits.into_iter().flatten().collect()
    } else {
        use rayon::prelude::*;
        // One transaction for the batch; refs are set only if every import succeeds.
        let mut tx = pkgcache.begin()?;
        let done: Vec<(Option<RefSpec>, Checksum)> = commits
            .into_par_iter()
            .enumerate()
            .map(|(i, c)| match c {
                Some(c) => Ok((None, c)),
                None => {
                    tracing::info!("importing {}", pkgs[i].nevra());
                    import::import_rpm(&tx, &paths[i], &repodata[i], &import_opts)
                        .map(|(r, c)| (Some(r), c))
                }
            })
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(done.len());
        for (r, c) in done {
            if let Some(r) = r {
                tx.set_ref(r, Some(c));
            }
            out.push(c);
        }
        tx.commit()?;
        out
    };

    tracing::info!("imported after {:?}", t0.elapsed());
    // Headers (scriptlets, file lists) are read while the tree is assembled.
    let headers_job = Background::spawn({
        let paths = paths.clone();
        move || {
            use rayon::prelude::*;
            paths
                .par_iter()
                .map(|p| rost_rpm::load_package(p).map(|p| p.header))
                .collect::<std::result::Result<Vec<_>, _>>()
        }
    });
    // Assemble in dependency order; refuse conflicting files.
    let rootfs = workdir.path().join("rootfs");
    let reuse = cachedir.join("rootfs-reuse");
    let asm = assemble::assemble(
        &pkgcache,
        &order,
        &pkg_commits,
        &nevra_of,
        &rootfs,
        Some(&reuse),
    )?;
    let assemble::Assembly {
        owners,
        dirmetas,
        nonroot,
        by_devino: cache_by_devino,
        objects: cache_objects,
    } = asm;
    tracing::info!("checkout after {:?}", t0.elapsed());
    postprocess::break_hardlinks_under(&rootfs.join("usr/etc"))?;

    // Scriptlets, with etc/ where scripts expect it.
    let usr_etc = rootfs.join("usr/etc");
    let etc = rootfs.join("etc");
    let has_etc = std::fs::symlink_metadata(&usr_etc).is_ok();
    if has_etc {
        std::fs::rename(&usr_etc, &etc).map_err(|e| Error::io("renaming", &usr_etc, e))?;
    } else {
        std::fs::create_dir_all(&etc).map_err(|e| Error::io("creating", &etc, e))?;
    }
    let headers: Vec<rost_rpm::PackageHeader> = headers_job.join()??;
    for phase in ["pre", "post", "posttrans"] {
        for &i in &order {
            let h = &headers[i];
            for s in h.scriptlets.iter().filter(|s| s.kind == phase) {
                if s.body
                    .as_deref()
                    .is_some_and(|b| b.contains("rpm-ostree-skip"))
                {
                    continue;
                }
                let arg = if phase == "posttrans" { "0" } else { "1" };
                scripts::run_script(
                    &rootfs,
                    &s.interpreter,
                    s.body.as_deref(),
                    arg,
                    &h.nevra(),
                    phase,
                )?;
            }
        }
    }
    tracing::info!("scriptlets after {:?}", t0.elapsed());
    let pkg_files: BTreeMap<String, Vec<String>> = headers
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                h.files.iter().map(|f| f.path.clone()).collect(),
            )
        })
        .collect();
    postprocess::apply_files_and_units(&rootfs, &loaded, &pkg_files)?;
    let mut treefile_scripts: Vec<(String, String)> = tf
        .postprocess
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| (format!("postprocess[{i}]"), s.clone()))
        .collect();
    if let Some(s) = &loaded.postprocess_script {
        treefile_scripts.push((
            "postprocess-script".into(),
            String::from_utf8_lossy(s).into_owned(),
        ));
    }
    for (phase, body) in &treefile_scripts {
        let interp = if body.starts_with("#!") {
            body.lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("#!")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        } else {
            vec!["/bin/sh".to_owned(), "-e".to_owned()]
        };
        scripts::run_script(&rootfs, &interp, Some(body), "", "treefile", phase)?;
    }
    if std::fs::symlink_metadata(&etc).is_ok() {
        std::fs::rename(&etc, &usr_etc).map_err(|e| Error::io("renaming", &etc, e))?;
    }

    // Version, then the rest of postprocessing.
    let epoch = opts
        .source_date_epoch
        .unwrap_or_else(|| chrono::Utc::now().timestamp().max(0) as u64);
    let version = tf.automatic_version_prefix.as_ref().map(|p| {
        let p = expand_date(p, epoch);
        next_version(
            &p,
            prev_commit.as_ref().and_then(|c| meta_str(c, "version")),
        )
    });
    postprocess::split_passwd_group(&rootfs, tf.etc_group_members.as_deref().unwrap_or(&[]))?;
    if let (Some(base), Some(v)) = (&tf.mutate_os_release, &version) {
        postprocess::mutate_os_release(&rootfs, base, v)?;
    }
    postprocess::var_to_tmpfiles(&rootfs)?;
    postprocess::toplevel_layout(&rootfs, tf.tmp_is_dir.unwrap_or(false))?;
    let kver = postprocess::place_kernel(&rootfs, tf.boot_location.as_deref() == Some("new"))?;
    let tj = postprocess::treefile_json_path(&rootfs);
    if let Some(d) = tj.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io("creating", d, e))?;
    }
    std::fs::write(&tj, serde_json::to_vec_pretty(&flat).unwrap_or_default())
        .map_err(|e| Error::io("writing", &tj, e))?;
    tracing::info!("postprocess after {:?}", t0.elapsed());
    rpmdb_job.join()??;
    rpmdb::install_rpmdb(&rootfs, &rpmdb_staging)?;

    tracing::info!("rpmdb after {:?}", t0.elapsed());
    // Commit.
    let (users, groups) = postprocess::load_ids(&rootfs);
    let mut metadata: BTreeMap<String, Value> = BTreeMap::new();
    for m in [&tf.metadata, &tf.add_commit_metadata]
        .into_iter()
        .flatten()
    {
        for (k, v) in m {
            let g = json_to_gvariant(v).ok_or_else(|| Error::Treefile {
                file: opts.treefile.display().to_string(),
                msg: format!("metadata.{k}: unsupported value {v}"),
            })?;
            metadata.insert(k.clone(), g);
        }
    }
    for (k, v) in &opts.add_metadata {
        metadata.insert(k.clone(), Value::str(v.clone()));
    }
    if let Some(v) = &version {
        metadata.insert("version".into(), Value::str(v.clone()));
    }
    metadata.insert("rpmostree.inputhash".into(), Value::str(inputhash.clone()));
    let mut pkglist: Vec<&RepoPackage> = pkgs.clone();
    pkglist.sort_by(|a, b| {
        (a.name.as_str(), a.arch.as_str())
            .cmp(&(b.name.as_str(), b.arch.as_str()))
            .then_with(|| rost_rpm::solve::compare_packages(a, b))
    });
    let tuple = Type::parse("(sssss)").map_err(|e| Error::Invalid { msg: e.to_string() })?;
    metadata.insert(
        "rpmostree.rpmdb.pkglist".into(),
        Value::Array(
            tuple,
            pkglist
                .iter()
                .map(|p| {
                    Value::Tuple(vec![
                        Value::str(p.name.clone()),
                        Value::str(p.epoch.to_string()),
                        Value::str(p.version.clone()),
                        Value::str(p.release.clone()),
                        Value::str(p.arch.clone()),
                    ])
                })
                .collect(),
        ),
    );
    let repo_entries: Vec<Value> = repos
        .iter()
        .map(|r| {
            let ts = r.repomd.revision.parse::<u64>().unwrap_or(0);
            Value::dict_sv(vec![
                ("id".to_owned(), Value::str(r.config.id.clone())),
                ("timestamp".to_owned(), Value::U64(ts.to_be())),
            ])
        })
        .collect();
    metadata.insert(
        "rpmostree.rpmmd-repos".into(),
        Value::Array(
            Type::parse("a{sv}").map_err(|e| Error::Invalid { msg: e.to_string() })?,
            repo_entries,
        ),
    );
    metadata.insert("ostree.bootable".into(), Value::Bool(kver.is_some()));
    if let Some(k) = &kver {
        metadata.insert("ostree.linux".into(), Value::str(k.clone()));
    }
    metadata.insert(
        "ostree.ref-binding".into(),
        Value::Array(Type::Str, vec![Value::str(ref_.clone())]),
    );

    let parent = match &opts.parent {
        Some(p) => Some(repo.resolve_rev(p)?),
        None => previous,
    };
    let ctx = TreeCtx {
        root: rootfs.clone(),
        users,
        groups,
        nonroot,
        dirmetas,
        cache_by_devino,
        cache_objects,
        readonly_executables: tf.readonly_executables.unwrap_or(false),
        is_root: rustix::process::geteuid().is_root(),
        damaged: Default::default(),
    };
    let mut tx = repo.begin()?;
    let (root_tree, root_meta) = write_tree(&tx, &ctx)?;
    let commit = Commit {
        metadata: Value::dict_sv(metadata),
        parent,
        subject: String::new(),
        body: String::new(),
        timestamp: epoch,
        root_tree,
        root_meta,
    };
    tracing::info!("tree written after {:?}", t0.elapsed());
    let csum = tx.write_metadata(ObjectType::Commit, &commit.to_bytes())?;
    if opts.write_commitid_to.is_none() {
        tx.set_ref(spec, Some(csum));
    }
    tx.commit()?;
    tracing::info!("committed after {:?}", t0.elapsed());
    // Forget cache entries a script damaged, so the next compose re-imports them.
    let damaged = ctx.damaged.into_inner();
    if !damaged.is_empty() {
        let mut bad_pkgs: BTreeSet<usize> = BTreeSet::new();
        for (c, i) in owners.values() {
            if damaged.contains(c) {
                bad_pkgs.insert(*i);
            }
        }
        for i in bad_pkgs {
            pkgcache.write_ref(&RefSpec::parse(&pkgrefs[i])?, None)?;
            pkgcache.delete_object(ObjectType::Commit, &pkg_commits[i])?;
        }
        for c in &damaged {
            pkgcache.delete_object(ObjectType::File, c)?;
        }
    }
    if let Some(f) = &opts.write_commitid_to {
        std::fs::write(f, csum.to_string()).map_err(|e| Error::io("writing", f, e))?;
    }
    if let Some(f) = &opts.touch_if_changed {
        std::fs::write(f, b"").map_err(|e| Error::io("touching", f, e))?;
    }
    assemble::keep_for_reuse(&rootfs, &reuse)?;
    drop(workdir);
    tracing::info!("cleaned up after {:?}", t0.elapsed());
    Ok(Outcome::Done(ComposeResult {
        ref_,
        commit: csum.to_string(),
        version,
        inputhash,
        changed: true,
        packages: nevras,
        downloaded: reporter.fetched.load(Ordering::Relaxed),
        imported,
        reused,
    }))
}

/// A worker thread, joined when dropped: an early return waits for it, since
/// it may be writing into the work directory that is removed after it.
struct Background<T: Send + 'static>(Option<std::thread::JoinHandle<T>>);

impl<T: Send + 'static> Background<T> {
    fn spawn(f: impl FnOnce() -> T + Send + 'static) -> Self {
        Background(Some(std::thread::spawn(f)))
    }

    fn join(mut self) -> Result<T> {
        let h = self.0.take().ok_or_else(|| Error::Invalid {
            msg: "worker thread joined twice".into(),
        })?;
        h.join().map_err(|_| Error::Invalid {
            msg: "a worker thread panicked".into(),
        })
    }
}

impl<T: Send + 'static> Drop for Background<T> {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

struct TreeCtx {
    root: PathBuf,
    users: BTreeMap<String, u32>,
    groups: BTreeMap<String, u32>,
    nonroot: HashMap<String, (String, String)>,
    dirmetas: HashMap<String, DirMeta>,
    cache_by_devino: HashMap<(u64, u64), Checksum>,
    cache_objects: HashMap<Checksum, CacheObject>,
    readonly_executables: bool,
    is_root: bool,
    /// Cache objects a script wrote to in place (through the hardlink).
    damaged: std::cell::RefCell<std::collections::HashSet<Checksum>>,
}

impl TreeCtx {
    fn owner(&self, rel: &str, st_uid: u32, st_gid: u32, from_pkg: bool) -> (u32, u32) {
        if let Some((u, g)) = self.nonroot.get(rel) {
            let uid = self.users.get(u).copied().unwrap_or_else(|| {
                tracing::warn!("/{rel}: user {u} not in the tree's passwd, using root");
                0
            });
            let gid = self.groups.get(g).copied().unwrap_or_else(|| {
                tracing::warn!("/{rel}: group {g} not in the tree's group, using root");
                0
            });
            return (uid, gid);
        }
        if from_pkg || !self.is_root {
            (0, 0)
        } else {
            (st_uid, st_gid)
        }
    }
}

/// A file or symlink to store, found by the scan.
struct Job {
    path: PathBuf,
    size: u64,
    kind: JobKind,
}

enum JobKind {
    /// Metadata known from the tree.
    Fresh(FileHeader),
    /// An unchanged hardlink to this package-cache object; its header comes
    /// from the cache (only read when the target repo lacks the object or the
    /// header changes), with the owner set from the package header.
    Cached {
        object: Checksum,
        owner: (u32, u32),
        readonly: bool,
    },
}

/// The scanned tree: directories with metadata, files as indexes into the jobs.
#[derive(Default)]
struct ScanDir {
    meta: Option<DirMeta>,
    dirs: BTreeMap<String, ScanDir>,
    files: BTreeMap<String, usize>,
}

impl ScanDir {
    fn into_memdir(self, sums: &[Checksum]) -> MemDir {
        MemDir {
            meta: self.meta,
            dirs: self
                .dirs
                .into_iter()
                .map(|(k, d)| (k, d.into_memdir(sums)))
                .collect(),
            files: self.files.into_iter().map(|(k, i)| (k, sums[i])).collect(),
        }
    }
}

/// Scans the tree (one thread), then stores file contents in parallel.
fn write_tree(tx: &Transaction<'_>, ctx: &TreeCtx) -> Result<(Checksum, Checksum)> {
    use rayon::prelude::*;
    let mut root = ScanDir::default();
    let mut jobs = Vec::new();
    scan(ctx, &ctx.root, "", &mut root, &mut jobs)?;
    let objects = &ctx.cache_objects;
    let sums: Vec<Checksum> = jobs
        .par_iter()
        .map(|j| store(tx, objects, j))
        .collect::<Result<_>>()?;
    root.into_memdir(&sums).write(tx)
}

fn store(
    tx: &Transaction<'_>,
    objects: &HashMap<Checksum, CacheObject>,
    j: &Job,
) -> Result<Checksum> {
    let header = match &j.kind {
        JobKind::Fresh(h) if h.is_symlink() => {
            return Ok(tx.write_content(h, ContentSource::Bytes(&[]))?);
        }
        JobKind::Fresh(h) => h.clone(),
        JobKind::Cached {
            object,
            owner,
            readonly,
        } => {
            let orig = &objects
                .get(object)
                .ok_or_else(|| Error::Invalid {
                    msg: format!(
                        "{}: package cache object {object} was not assembled",
                        j.path.display()
                    ),
                })?
                .header;
            let mut h = orig.clone();
            (h.uid, h.gid) = *owner;
            if *readonly && h.mode & 0o111 != 0 {
                h.mode &= !0o222;
            }
            if h == *orig {
                // Same header, same content: the cache's checksum is the
                // object's, so the content is stored without hashing it again.
                if !tx.repo().has_object(ObjectType::File, object)? {
                    let f = std::fs::File::open(&j.path)
                        .map_err(|e| Error::io("opening", &j.path, e))?;
                    tx.write_content_known(&h, object, ContentSource::File(f, j.size))?;
                }
                return Ok(*object);
            }
            h
        }
    };
    let f = std::fs::File::open(&j.path).map_err(|e| Error::io("opening", &j.path, e))?;
    Ok(tx.write_content(&header, ContentSource::File(f, j.size))?)
}

fn scan(
    ctx: &TreeCtx,
    dir: &Path,
    rel: &str,
    node: &mut ScanDir,
    jobs: &mut Vec<Job>,
) -> Result<()> {
    let st = std::fs::symlink_metadata(dir).map_err(|e| Error::io("stat", dir, e))?;
    let (uid, gid) = ctx.owner(rel, st.uid(), st.gid(), ctx.dirmetas.contains_key(rel));
    let mode = match ctx.dirmetas.get(rel) {
        Some(m) => m.mode,
        None => st.mode(),
    };
    node.meta = Some(DirMeta {
        uid,
        gid,
        mode,
        xattrs: Vec::new(),
    });
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("listing", dir, e))?
        .map(|e| {
            e.map_err(|e| Error::io("listing", dir, e)).and_then(|e| {
                let name = e.file_name().into_string().map_err(|_| Error::Invalid {
                    msg: format!("{}: file name is not UTF-8", e.path().display()),
                })?;
                Ok((name, e.path()))
            })
        })
        .collect::<Result<_>>()?;
    entries.sort();
    for (name, path) in entries {
        let crel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let st = std::fs::symlink_metadata(&path).map_err(|e| Error::io("stat", &path, e))?;
        let ft = st.file_type();
        if ft.is_dir() {
            let sub = node.dirs.entry(name).or_default();
            scan(ctx, &path, &crel, sub, jobs)?;
            continue;
        }
        let kind = if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| Error::io("readlink", &path, e))?;
            let (uid, gid) = ctx.owner(&crel, st.uid(), st.gid(), false);
            JobKind::Fresh(FileHeader {
                uid,
                gid,
                mode: 0o120777,
                symlink_target: target.to_string_lossy().into_owned(),
                xattrs: Vec::new(),
            })
        } else if ft.is_file() {
            let mut cached = ctx.cache_by_devino.get(&(st.dev(), st.ino())).copied();
            // Objects are stored with mtime 0: a later mtime means a script
            // wrote through the hardlink into the package cache.
            if let Some(c) = cached
                && st.mtime() != 0
            {
                tracing::warn!("/{crel} was modified in place; dropping it from the package cache");
                ctx.damaged.borrow_mut().insert(c);
                cached = None;
            }
            match cached {
                Some(object) => JobKind::Cached {
                    object,
                    owner: ctx.owner(&crel, 0, 0, true),
                    readonly: ctx.readonly_executables,
                },
                None => {
                    let (uid, gid) = ctx.owner(&crel, st.uid(), st.gid(), false);
                    let mut mode = st.mode();
                    if ctx.readonly_executables && mode & 0o111 != 0 {
                        mode &= !0o222;
                    }
                    JobKind::Fresh(FileHeader {
                        uid,
                        gid,
                        mode,
                        symlink_target: String::new(),
                        xattrs: Vec::new(),
                    })
                }
            }
        } else {
            return Err(Error::Invalid {
                msg: format!("/{crel}: special files cannot be committed"),
            });
        };
        let job = Job {
            path,
            size: st.len(),
            kind,
        };
        jobs.push(job);
        node.files.insert(name, jobs.len() - 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_order_puts_providers_first() {
        use rost_rpm::Dependency;
        let p = |name: &str, req: &[&str], prov: &[&str]| RepoPackage {
            name: name.into(),
            requires: req.iter().map(|r| Dependency::any(r)).collect(),
            provides: prov.iter().map(|r| Dependency::any(r)).collect(),
            ..Default::default()
        };
        // app -> libfoo.so (provided by lib) -> filesystem; a and b form a cycle.
        let pkgs = [
            p("app", &["libfoo.so"], &[]),
            p("filesystem", &[], &[]),
            p("lib", &["filesystem"], &["libfoo.so"]),
            p("a", &["b"], &[]),
            p("b", &["a"], &[]),
        ];
        let refs: Vec<&RepoPackage> = pkgs.iter().collect();
        let order: Vec<&str> = install_order(&refs)
            .into_iter()
            .map(|i| pkgs[i].name.as_str())
            .collect();
        assert_eq!(order, ["filesystem", "lib", "app", "a", "b"]);
    }

    #[test]
    fn versions() {
        assert_eq!(next_version("42", None), "42");
        assert_eq!(next_version("42", Some("42")), "42.1");
        assert_eq!(next_version("42", Some("42.7")), "42.8");
        assert_eq!(next_version("43", Some("42.7")), "43");
        assert_eq!(expand_date("x.<date:%Y%m%d>", 0), "x.19700101");
    }
}
