//! Pulling commits from an archive-mode remote (HTTP(S) or `file://`).
//!
//! Order of work, chosen so a pull killed at any instant leaves a repo that
//! fscks clean and a rerun fetches only what is missing:
//! 1. resolve refs (summary, else `refs/heads/REF`), mark `state/CSUM.commitpartial`;
//! 2. fetch the commit (and detached metadata) and keep it in memory;
//! 3. walk dirtrees breadth-first, fetching missing metadata, then content in
//!    batches; every object is verified against its name before it is staged,
//!    and each batch is published (syncfs + rename) on its own — orphan
//!    dirtrees and files are harmless, fsck walks only commits;
//! 4. write the commit object and the ref in a last transaction, then drop the
//!    commitpartial marker.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;

use crate::error::IoContext;
use crate::fetch::{Fetcher, MAX_FETCH_SIZE};
use crate::gvariant::Value;
use crate::objects::{Commit, DirMeta, DirTree, FileHeader, MAX_METADATA_SIZE};
use crate::refs::RefSpec;
use crate::summary::Summary;
use crate::transaction::ContentSource;
use crate::{Checksum, Error, ObjectType, Repo, Result, fsutil};

/// Content objects fetched per request batch.
const CONTENT_BATCH: usize = 1024;
/// Objects written between two publishes of a pull's content.
const PUBLISH_OBJECTS: usize = 16_384;
/// Bytes fetched between two publishes of a pull's content.
const PUBLISH_BYTES: u64 = 512 * 1024 * 1024;
/// Longest time between two publishes, so a killed pull loses little.
const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// A progress report from a running pull.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullProgress {
    /// `"metadata"`, `"content"` or `"delta"`.
    pub phase: &'static str,
    /// Objects (or delta parts) done in this phase.
    pub done: u64,
    /// Objects (or delta parts) this phase will fetch, when known.
    pub total: u64,
    /// Bytes fetched so far in the whole pull.
    pub bytes: u64,
}

/// A callback receiving [`PullProgress`]; the binary draws it.
#[derive(Clone)]
pub struct ProgressSink(pub std::sync::Arc<dyn Fn(&PullProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// Pull options (ostree's flag names).
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Parents to fetch behind each commit: 0 = none, -1 = all.
    pub depth: i64,
    /// Fetch only commit objects.
    pub commit_metadata_only: bool,
    /// Write refs under `refs/heads` instead of `refs/remotes/REMOTE`.
    pub mirror: bool,
    /// Only report what would be fetched.
    pub dry_run: bool,
    /// Trusted ed25519 public keys (base64); when set, every pulled commit must
    /// carry a valid signature from one of them.
    pub ed25519_keys: Option<Vec<String>>,
    /// Keyring every pulled commit must carry a good OpenPGP signature for.
    pub gpg_keyring: Option<std::path::PathBuf>,
    /// Also require a good OpenPGP signature on the summary.
    pub gpg_verify_summary: bool,
    /// Fetch objects even when the remote offers a static delta.
    pub disable_static_deltas: bool,
    /// Progress reports.
    pub progress: Option<ProgressSink>,
    /// Fetch only these paths of the tree (the commit stays marked partial).
    pub subpaths: Vec<String>,
    /// [`pull_local`]: verify each object before hardlinking it (copies
    /// between modes are always checked as they are re-encoded).
    pub untrusted: bool,
    /// Fetch from this URL instead of the remote's configured one
    /// (the remote's other settings still apply).
    pub url: Option<String>,
    /// Fail unless every ref comes through a static delta.
    pub require_static_deltas: bool,
    /// Refuse regular files with mode bits outside 0775 (setuid, setgid,
    /// sticky, world-writable), as a bare-user-only repo would store them
    /// (static deltas are not used then: each object is checked as fetched).
    pub bareuseronly_files: bool,
}

/// What a pull did.
#[derive(Debug, Default, Clone)]
pub struct PullReport {
    /// (ref, commit) pairs pulled.
    pub refs: Vec<(String, Checksum)>,
    /// Metadata objects fetched.
    pub metadata_fetched: u64,
    /// Content objects fetched.
    pub content_fetched: u64,
    /// Bytes transferred.
    pub bytes_fetched: u64,
    /// Static deltas used.
    pub deltas_applied: u64,
    /// Content bytes newly written into the repository (uncompressed).
    pub content_bytes_written: u64,
    /// With `dry_run`: content objects the pull would fetch.
    pub would_fetch_content: u64,
    /// With `dry_run` and a delta on offer: bytes of its parts and fallbacks.
    pub would_fetch_delta_bytes: Option<u64>,
}

fn object_rel(ty: ObjectType, c: &Checksum) -> String {
    let hex = c.to_hex();
    let ext = if ty == ObjectType::File {
        "filez"
    } else {
        ty.extension()
    };
    format!("objects/{}/{}.{ext}", &hex[..2], &hex[2..])
}

fn commitpartial_path(c: &Checksum) -> String {
    format!("state/{c}.commitpartial")
}

/// Decodes and verifies an archive `.filez` body: returns header and content.
pub fn verify_filez(c: &Checksum, bytes: &[u8]) -> Result<(FileHeader, Vec<u8>)> {
    let bad = |reason: String| Error::Corrupt {
        object: format!("{c}.filez"),
        reason,
    };
    let (hdr, payload) = crate::objects::split_prefixed(bytes).map_err(|e| bad(e.to_string()))?;
    let (header, size) = FileHeader::parse_archive(hdr).map_err(bad)?;
    let mut content = Vec::new();
    if !header.is_symlink() {
        if size > MAX_FETCH_SIZE {
            return Err(bad(format!("declared size {size} exceeds the limit")));
        }
        // Read one byte past the declared size to catch a lying header (or a bomb).
        let mut d = flate2::read::DeflateDecoder::new(payload).take(size + 1);
        content.reserve(size.min(64 * 1024 * 1024) as usize);
        d.read_to_end(&mut content)
            .map_err(|e| bad(format!("inflating: {e}")))?;
        if content.len() as u64 != size {
            return Err(bad(format!(
                "content is {} bytes, header says {size}",
                content.len()
            )));
        }
    }
    let actual = header.checksum(&content);
    if actual != *c {
        return Err(Error::ChecksumMismatch {
            object: format!("{c}.file"),
            expected: c.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok((header, content))
}

fn verify_metadata(ty: ObjectType, c: &Checksum, bytes: &[u8]) -> Result<()> {
    let actual = Checksum::of(bytes);
    if actual != *c {
        return Err(Error::ChecksumMismatch {
            object: format!("{c}.{ty}"),
            expected: c.to_string(),
            actual: actual.to_string(),
        });
    }
    match ty {
        ObjectType::DirTree => DirTree::parse(bytes, &c.to_hex()).map(|_| ()),
        ObjectType::DirMeta => DirMeta::parse(bytes, &c.to_hex()).map(|_| ()),
        ObjectType::Commit => Commit::parse(bytes, &c.to_hex()).map(|_| ()),
        _ => Ok(()),
    }
}

struct Puller<'a> {
    repo: &'a Repo,
    fetcher: &'a dyn Fetcher,
    report: PullReport,
    dry_run: bool,
    progress: Option<ProgressSink>,
    subpaths: Vec<String>,
    bareuseronly_files: bool,
}

impl Puller<'_> {
    fn tell(&self, phase: &'static str, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            (p.0)(&PullProgress {
                phase,
                done,
                total,
                bytes: self.report.bytes_fetched,
            });
        }
    }

    fn fetch_required(&mut self, rel: &str, limit: u64) -> Result<Vec<u8>> {
        let b = self.fetcher.fetch(rel, limit)?.ok_or_else(|| {
            Error::NotFound(format!(
                "{}: not found on the server",
                self.fetcher.url_of(rel)
            ))
        })?;
        self.report.bytes_fetched += b.len() as u64;
        Ok(b)
    }

    /// Fetches missing metadata objects, verified; returns (csum, type, bytes).
    fn fetch_metadata(
        &mut self,
        want: Vec<(Checksum, ObjectType)>,
    ) -> Result<Vec<(Checksum, ObjectType, Vec<u8>)>> {
        let paths: Vec<String> = want.iter().map(|(c, t)| object_rel(*t, c)).collect();
        let results = self.fetcher.fetch_many(&paths, MAX_METADATA_SIZE);
        let mut out = Vec::with_capacity(want.len());
        for ((c, t), (res, rel)) in want.into_iter().zip(results.into_iter().zip(paths.iter())) {
            let b = res?.ok_or_else(|| {
                Error::NotFound(format!(
                    "{}: not found on the server",
                    self.fetcher.url_of(rel)
                ))
            })?;
            verify_metadata(t, &c, &b)
                .map_err(|e| Error::Other(format!("{}: {e}", self.fetcher.url_of(rel))))?;
            self.report.bytes_fetched += b.len() as u64;
            self.report.metadata_fetched += 1;
            out.push((c, t, b));
        }
        Ok(out)
    }

    /// Fetches content in batches on a helper thread while the previous batch
    /// is verified and written here; each batch is published on its own.
    fn pull_content(&mut self, files: Vec<Checksum>) -> Result<()> {
        type Batch = Vec<(Checksum, Result<Option<Vec<u8>>>, String)>;
        let fetcher = self.fetcher;
        let repo = self.repo;
        let (tx_batches, rx_batches) = std::sync::mpsc::sync_channel::<Batch>(1);
        std::thread::scope(|scope| -> Result<()> {
            let files = &files;
            scope.spawn(move || {
                for chunk in files.chunks(CONTENT_BATCH) {
                    let paths: Vec<String> = chunk
                        .iter()
                        .map(|c| object_rel(ObjectType::File, c))
                        .collect();
                    let results = fetcher.fetch_many(&paths, MAX_FETCH_SIZE);
                    let batch: Batch = chunk
                        .iter()
                        .copied()
                        .zip(results)
                        .zip(paths)
                        .map(|((c, r), p)| (c, r, p))
                        .collect();
                    if tx_batches.send(batch).is_err() {
                        return;
                    }
                }
            });
            // Published (syncfs + rename) every PUBLISH_OBJECTS objects or
            // PUBLISH_BYTES bytes: the resume granularity. syncfs flushes the
            // whole filesystem, so doing it per fetch batch costs too much.
            let mut tx = Some(repo.begin()?);
            let (mut pending_objects, mut pending_bytes) = (0usize, 0u64);
            let mut last_publish = std::time::Instant::now();
            for batch in rx_batches {
                let mut bodies = Vec::with_capacity(batch.len());
                for (c, res, rel) in batch {
                    let b = res?.ok_or_else(|| {
                        Error::NotFound(format!(
                            "{}: not found on the server",
                            fetcher.url_of(&rel)
                        ))
                    })?;
                    self.report.bytes_fetched += b.len() as u64;
                    self.report.content_fetched += 1;
                    pending_bytes += b.len() as u64;
                    bodies.push((c, b, rel));
                }
                pending_objects += bodies.len();
                let cur = tx
                    .as_ref()
                    .ok_or_else(|| Error::Other("no open transaction".into()))?;
                let bareuseronly = self.bareuseronly_files;
                bodies
                    .par_iter()
                    .map(|(c, b, rel)| {
                        let (header, content) = verify_filez(c, b)
                            .map_err(|e| Error::Other(format!("{}: {e}", fetcher.url_of(rel))))?;
                        if bareuseronly {
                            check_bareuseronly(c, header.mode)?;
                        }
                        cur.write_content(&header, ContentSource::Bytes(&content))?;
                        Ok(())
                    })
                    .collect::<Result<Vec<()>>>()?;
                self.tell("content", self.report.content_fetched, files.len() as u64);
                if pending_objects >= PUBLISH_OBJECTS
                    || pending_bytes >= PUBLISH_BYTES
                    || last_publish.elapsed() >= PUBLISH_INTERVAL
                {
                    last_publish = std::time::Instant::now();
                    if let Some(t) = tx.take() {
                        self.report.content_bytes_written += t.commit()?.content_bytes_written;
                    }
                    tx = Some(repo.begin()?);
                    (pending_objects, pending_bytes) = (0, 0);
                }
            }
            if let Some(t) = tx.take() {
                self.report.content_bytes_written += t.commit()?.content_bytes_written;
            }
            Ok(())
        })
    }

    /// Fetches and applies a static delta (superblock verified against the summary).
    fn pull_delta(
        &mut self,
        opts: &PullOptions,
        from: Option<&Checksum>,
        to: &Checksum,
        sb_sum: &Checksum,
    ) -> Result<()> {
        let dir = crate::delta::delta_dir(from, to);
        let rel = format!("{dir}/superblock");
        let b = self.fetch_required(&rel, MAX_METADATA_SIZE)?;
        let actual = Checksum::of(&b);
        if actual != *sb_sum {
            return Err(Error::ChecksumMismatch {
                object: self.fetcher.url_of(&rel),
                expected: sb_sum.to_string(),
                actual: actual.to_string(),
            });
        }
        let sb = crate::delta::Superblock::parse(&b)?;
        if sb.to != *to || sb.from.as_ref() != from {
            return Err(Error::Corrupt {
                object: self.fetcher.url_of(&rel),
                reason: "superblock names other commits".into(),
            });
        }
        if Checksum::of(&sb.commit) != *to {
            return Err(Error::Corrupt {
                object: self.fetcher.url_of(&rel),
                reason: "embedded commit does not match".into(),
            });
        }
        // The signature policy applies to the commit the delta carries.
        let dm = sb
            .metadata
            .lookup(&crate::delta::detached_metadata_key(from, to))
            .map(Value::to_bytes);
        verify_commit_signatures(self.repo, opts, to, &sb.commit, dm.as_deref())?;
        let fetcher = self.fetcher;
        let bytes = std::cell::Cell::new(0u64);
        let read = |part: &str| -> Result<Vec<u8>> {
            let rel = format!("{dir}/{part}");
            let b = fetcher
                .fetch(&rel, crate::delta::MAX_PART_SIZE)?
                .ok_or_else(|| {
                    Error::NotFound(format!("{}: not found on the server", fetcher.url_of(&rel)))
                })?;
            bytes.set(bytes.get() + b.len() as u64);
            Ok(b)
        };
        let fallback = |c: &Checksum| -> Result<Vec<u8>> {
            let rel = object_rel(ObjectType::File, c);
            let b = fetcher.fetch(&rel, MAX_FETCH_SIZE)?.ok_or_else(|| {
                Error::NotFound(format!("{}: not found on the server", fetcher.url_of(&rel)))
            })?;
            bytes.set(bytes.get() + b.len() as u64);
            Ok(b)
        };
        crate::delta::apply(self.repo, &sb, &read, &fallback)?;
        self.report.bytes_fetched += bytes.get();
        self.report.deltas_applied += 1;
        Ok(())
    }

    /// Fetches every object under `commit`'s tree that the repo lacks.
    fn pull_tree(&mut self, commit: &Commit) -> Result<()> {
        let subpaths: Vec<String> = self.subpaths.iter().map(|p| normalize_path(p)).collect();
        // (descend into this directory, take its files)
        let scope = |dir: &str| -> (bool, bool) {
            if subpaths.is_empty() {
                return (true, true);
            }
            let mut out = (false, false);
            for sp in &subpaths {
                let dir_slash = if dir == "/" {
                    "/".to_owned()
                } else {
                    format!("{dir}/")
                };
                if sp == "/" || dir == sp || dir.starts_with(&format!("{sp}/")) {
                    out = (true, true);
                } else if sp.starts_with(&dir_slash) {
                    out.0 = true;
                }
            }
            out
        };
        let join = |dir: &str, name: &str| {
            if dir == "/" {
                format!("/{name}")
            } else {
                format!("{dir}/{name}")
            }
        };
        // Frontier entries carry the directory path, for --subpath.
        let mut frontier: Vec<(Checksum, ObjectType, String)> = vec![
            (commit.root_tree, ObjectType::DirTree, "/".to_owned()),
            (commit.root_meta, ObjectType::DirMeta, "/".to_owned()),
        ];
        let mut seen: HashSet<(Checksum, ObjectType, bool)> = HashSet::new();
        let mut files: Vec<Checksum> = Vec::new();
        let mut seen_files: HashSet<Checksum> = HashSet::new();
        // All of the tree's metadata is published together, before any content.
        let meta_tx = if self.dry_run {
            None
        } else {
            Some(self.repo.begin()?)
        };
        while !frontier.is_empty() {
            let mut missing = Vec::new();
            let mut tree_paths: std::collections::HashMap<Checksum, Vec<String>> =
                std::collections::HashMap::new();
            let mut present_trees = Vec::new();
            for (c, t, path) in frontier.drain(..) {
                if t == ObjectType::DirTree {
                    tree_paths.entry(c).or_default().push(path);
                }
                if self.repo.has_object(t, &c)? {
                    if t == ObjectType::DirTree {
                        present_trees.push(c);
                    }
                } else if !missing.contains(&(c, t)) {
                    missing.push((c, t));
                }
            }
            let fetched = self.fetch_metadata(missing)?;
            self.tell("metadata", self.report.metadata_fetched, 0);
            let mut trees: Vec<(Checksum, DirTree)> = Vec::new();
            for (c, t, b) in &fetched {
                if let Some(tx) = &meta_tx {
                    tx.write_metadata(*t, b)?;
                }
                if *t == ObjectType::DirTree {
                    trees.push((*c, DirTree::parse(b, &c.to_hex())?));
                }
            }
            for c in present_trees {
                // Present trees may still have missing children from an earlier, killed pull.
                trees.push((c, self.repo.load_dirtree(&c)?));
            }
            for (c, tree) in trees {
                for dir in tree_paths.get(&c).cloned().unwrap_or_default() {
                    let (_, take_files) = scope(&dir);
                    for f in &tree.files {
                        let wanted = take_files || subpaths.contains(&join(&dir, &f.name));
                        if wanted
                            && seen_files.insert(f.checksum)
                            && !self.repo.has_object(ObjectType::File, &f.checksum)?
                        {
                            files.push(f.checksum);
                        }
                    }
                    for d in &tree.dirs {
                        let sub = join(&dir, &d.name);
                        let (descend, inside) = scope(&sub);
                        if !descend {
                            continue;
                        }
                        for key in [(d.tree, ObjectType::DirTree), (d.meta, ObjectType::DirMeta)] {
                            if seen.insert((key.0, key.1, inside)) {
                                frontier.push((key.0, key.1, sub.clone()));
                            }
                        }
                    }
                }
            }
        }
        if let Some(tx) = meta_tx {
            self.report.content_bytes_written += tx.commit()?.content_bytes_written;
        }
        if self.dry_run {
            self.report.would_fetch_content += files.len() as u64;
            return Ok(());
        }
        self.pull_content(files)
    }
}

/// Refs resolved to commits, and the remote's summary if it has one.
pub type ResolvedRefs = (Vec<(String, Checksum)>, Option<Summary>);

/// Resolves `refs` against the remote (summary first, then `refs/heads/REF`);
/// returns the summary too when the remote has one.
/// A 64-hex "ref" is taken as a commit.
pub fn resolve_remote_refs(
    fetcher: &dyn Fetcher,
    refs: &[String],
    summary_keyring: Option<&Path>,
) -> Result<ResolvedRefs> {
    let summary = match fetcher.fetch("summary", MAX_METADATA_SIZE)? {
        Some(b) if summary_keyring.is_some() => {
            let sig = fetcher.fetch("summary.sig", MAX_METADATA_SIZE)?;
            let meta = match sig {
                Some(sb) => Some(
                    Value::from_bytes(crate::objects::ty(crate::objects::METADATA_TYPE), &sb)
                        .map_err(|e| Error::Corrupt {
                            object: "summary.sig".into(),
                            reason: e.to_string(),
                        })?,
                ),
                None => None,
            };
            if let Some(keyring) = summary_keyring {
                crate::gpg::verify(&b, meta.as_ref(), keyring, "summary")?;
            }
            Some(
                Summary::parse(&b)
                    .map_err(|e| Error::Other(format!("{}: {e}", fetcher.url_of("summary"))))?,
            )
        }
        Some(b) => Some(
            Summary::parse(&b)
                .map_err(|e| Error::Other(format!("{}: {e}", fetcher.url_of("summary"))))?,
        ),
        None if summary_keyring.is_some() => {
            return Err(Error::Other(crate::msg::GPG_NO_SUMMARY.to_owned()));
        }
        None => None,
    };
    let mut out = Vec::new();
    for r in refs {
        if Checksum::is_valid_hex(r) {
            out.push((r.clone(), r.parse()?));
            continue;
        }
        // `REF@COMMIT`: that commit, recorded under REF (ostree's override syntax).
        if let Some((name, c)) = r.split_once('@')
            && Checksum::is_valid_hex(c)
        {
            out.push((name.to_owned(), c.parse()?));
            continue;
        }
        if let Some(s) = &summary {
            match s.lookup(r) {
                Some(e) => out.push((r.clone(), e.commit)),
                None => {
                    return Err(Error::NotFound(format!(
                        "No such branch '{r}' in repository summary"
                    )));
                }
            }
            continue;
        }
        let rel = format!("refs/heads/{r}");
        let b = fetcher.fetch(&rel, 4096)?.ok_or_else(|| {
            Error::NotFound(format!("{}: ref '{r}' not found", fetcher.url_of(&rel)))
        })?;
        let s = String::from_utf8_lossy(&b);
        let c: Checksum = s.trim().parse().map_err(|_| {
            Error::Other(format!(
                "{}: not a checksum: {:?}",
                fetcher.url_of(&rel),
                s.trim()
            ))
        })?;
        out.push((r.clone(), c));
    }
    Ok((out, summary))
}

/// All refs the remote's summary lists (for a pull with no refs named).
pub fn remote_summary_refs(fetcher: &dyn Fetcher) -> Result<Vec<String>> {
    let b = fetcher
        .fetch("summary", MAX_METADATA_SIZE)?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{}: no summary; name the refs to pull",
                fetcher.url_of("summary")
            ))
        })?;
    Ok(Summary::parse(&b)?
        .refs
        .into_iter()
        .map(|r| r.name)
        .collect())
}

/// `ostree.static-deltas` of a summary: name → superblock sha256.
fn summary_deltas(s: &Summary) -> std::collections::HashMap<String, Checksum> {
    let mut out = std::collections::HashMap::new();
    if let Some(Value::Array(_, items)) = s.metadata.lookup("ostree.static-deltas") {
        for it in items {
            if let Value::DictEntry(k, v) = it
                && let (Some(k), Value::Variant(v)) = (k.as_str(), v.as_ref())
                && let Value::Bytes(b) = v.as_ref()
                && let Some(c) = Checksum::from_slice(b)
            {
                out.insert(k.to_owned(), c);
            }
        }
    }
    out
}

/// The delta to use for reaching `to`: FROM-TO from the commit we have, else
/// from scratch when we have nothing.
fn pick_delta(
    repo: &Repo,
    deltas: &std::collections::HashMap<String, Checksum>,
    local: Option<Checksum>,
    to: &Checksum,
) -> Result<Option<(Option<Checksum>, Checksum)>> {
    if repo.has_object(ObjectType::Commit, to)? {
        return Ok(None);
    }
    if let Some(l) = local
        && repo.has_object(ObjectType::Commit, &l)?
    {
        return Ok(deltas.get(&format!("{l}-{to}")).map(|sb| (Some(l), *sb)));
    }
    Ok(deltas.get(&to.to_string()).map(|sb| (None, *sb)))
}

fn normalize_path(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn parse_detached(c: &Checksum, m: &[u8]) -> Result<Value> {
    Value::from_bytes(crate::objects::ty(crate::objects::METADATA_TYPE), m).map_err(|e| {
        Error::Corrupt {
            object: format!("{c}.commitmeta"),
            reason: e.to_string(),
        }
    })
}

/// Applies the remote's signature policy to a fetched commit.
fn verify_commit_signatures(
    repo: &Repo,
    opts: &PullOptions,
    c: &Checksum,
    raw: &[u8],
    fetched_meta: Option<&[u8]>,
) -> Result<()> {
    if opts.ed25519_keys.is_none() && opts.gpg_keyring.is_none() {
        return Ok(());
    }
    let meta = match fetched_meta {
        Some(m) => Some(parse_detached(c, m)?),
        None => repo.load_detached_metadata(c)?,
    };
    if let Some(keys) = &opts.ed25519_keys {
        crate::sign::verify_signatures(raw, meta.as_ref(), keys, &format!("commit {c}"))?;
    }
    if let Some(keyring) = &opts.gpg_keyring {
        crate::gpg::verify(raw, meta.as_ref(), keyring, &format!("commit {c}"))?;
    }
    Ok(())
}

fn check_ref_binding(commit: &Commit, c: &Checksum, r: &str) -> Result<()> {
    if Checksum::is_valid_hex(r) {
        return Ok(());
    }
    if let Some(Value::Array(_, names)) = commit.metadata.lookup("ostree.ref-binding")
        && !names.iter().any(|n| n.as_str() == Some(r))
    {
        return Err(Error::Other(format!(
            "Commit {c}: Commit has no requested ref ‘{r}’ in ref binding metadata"
        )));
    }
    Ok(())
}

/// Pulls `refs` from `fetcher` into `repo`, recording them under `remote`.
pub fn pull_from(
    repo: &Repo,
    fetcher: &dyn Fetcher,
    remote: Option<&str>,
    refs: &[String],
    opts: &PullOptions,
) -> Result<PullReport> {
    let summary_keyring = if opts.gpg_verify_summary {
        opts.gpg_keyring.as_deref()
    } else {
        None
    };
    let (targets, summary) = resolve_remote_refs(fetcher, refs, summary_keyring)?;
    let deltas = summary.as_ref().map(summary_deltas).unwrap_or_default();
    let mut p = Puller {
        repo,
        fetcher,
        report: PullReport::default(),
        dry_run: opts.dry_run,
        progress: opts.progress.clone(),
        subpaths: opts.subpaths.clone(),
        bareuseronly_files: opts.bareuseronly_files,
    };
    if opts.require_static_deltas && repo.mode() == crate::RepoMode::Archive {
        return Err(Error::Other(crate::msg::NO_DELTAS_IN_ARCHIVE.to_owned()));
    }
    for (r, c) in &targets {
        if !opts.disable_static_deltas
            && !opts.bareuseronly_files
            && opts.subpaths.is_empty()
            && !opts.dry_run
            && !opts.commit_metadata_only
            && repo.mode() != crate::RepoMode::Archive
            && !Checksum::is_valid_hex(r)
        {
            let local = match remote {
                Some(rm) => repo.read_ref(&RefSpec {
                    remote: Some(rm.to_owned()),
                    name: r.clone(),
                })?,
                None => repo.read_ref(&RefSpec {
                    remote: None,
                    name: r.clone(),
                })?,
            };
            match pick_delta(repo, &deltas, local, c)? {
                Some((from, sb_sum)) => p.pull_delta(opts, from.as_ref(), c, &sb_sum)?,
                None if opts.require_static_deltas && local != Some(*c) => {
                    return Err(Error::NotFound(crate::msg::deltas_required(
                        crate::delta::delta_name(local.as_ref(), c),
                    )));
                }
                None => {}
            }
        } else if opts.dry_run
            && repo.mode() != crate::RepoMode::Archive
            && !Checksum::is_valid_hex(r)
        {
            let local = repo.read_ref(&RefSpec {
                remote: remote.map(str::to_owned),
                name: r.clone(),
            })?;
            if let Some((from, _)) = pick_delta(repo, &deltas, local, c)? {
                let rel = format!("{}/superblock", crate::delta::delta_dir(from.as_ref(), c));
                let sb =
                    crate::delta::Superblock::parse(&p.fetch_required(&rel, MAX_METADATA_SIZE)?)?;
                let parts: u64 = sb.parts.iter().map(|x| x.compressed_size).sum();
                let fallbacks: u64 = sb.fallbacks.iter().map(|x| x.compressed_size).sum();
                p.report.would_fetch_delta_bytes = Some(parts + fallbacks);
            }
        }
        fsutil::ensure_dir_at(repo.dfd(), Path::new("state"), 0o755).ctx("creating", "state")?;
        if !opts.dry_run {
            fsutil::replace_file_at(
                repo.dfd(),
                Path::new(&commitpartial_path(c)),
                b"",
                0o644,
                fsutil::Durability::Batched,
            )?;
        }
        let mut cur = Some(*c);
        let mut depth = opts.depth;
        let mut commits: Vec<(Checksum, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let mut first = true;
        while let Some(cc) = cur {
            let (raw, meta) = if repo.has_object(ObjectType::Commit, &cc)? && !first {
                (repo.load_metadata_raw(ObjectType::Commit, &cc)?, None)
            } else {
                let meta =
                    fetcher.fetch(&object_rel(ObjectType::CommitMeta, &cc), MAX_METADATA_SIZE)?;
                let raw = p
                    .fetch_required(&object_rel(ObjectType::Commit, &cc), MAX_METADATA_SIZE)
                    .map_err(|e| Error::Other(format!("commit {cc}: {e}")))?;
                verify_metadata(ObjectType::Commit, &cc, &raw).map_err(|e| {
                    Error::Other(format!(
                        "{}: {e}",
                        fetcher.url_of(&object_rel(ObjectType::Commit, &cc))
                    ))
                })?;
                p.report.metadata_fetched += 1;
                (raw, meta)
            };
            let commit = Commit::parse(&raw, &cc.to_hex())?;
            if first {
                check_ref_binding(&commit, &cc, r)?;
                verify_commit_signatures(repo, opts, &cc, &raw, meta.as_deref())?;
            }
            if !opts.commit_metadata_only {
                p.pull_tree(&commit)?;
            }
            commits.push((cc, raw, meta));
            first = false;
            if depth == 0 {
                break;
            }
            if depth > 0 {
                depth -= 1;
            }
            cur = commit.parent;
            if let Some(parent) = cur {
                let rel = object_rel(ObjectType::Commit, &parent);
                if !repo.has_object(ObjectType::Commit, &parent)?
                    && fetcher.fetch(&rel, MAX_METADATA_SIZE)?.is_none()
                {
                    break;
                }
            }
        }
        if opts.dry_run {
            p.report.refs.push((r.clone(), *c));
            continue;
        }
        let mut tx = repo.begin()?;
        for (cc, raw, meta) in &commits {
            let got = tx.write_metadata(ObjectType::Commit, raw)?;
            debug_assert_eq!(got, *cc);
            if let Some(m) = meta {
                Value::from_bytes(crate::objects::ty(crate::objects::METADATA_TYPE), m).map_err(
                    |e| Error::Corrupt {
                        object: format!("{cc}.commitmeta"),
                        reason: e.to_string(),
                    },
                )?;
            }
        }
        if !Checksum::is_valid_hex(r) {
            let spec = if opts.mirror {
                RefSpec::parse(r)?
            } else {
                RefSpec {
                    remote: remote.map(str::to_owned),
                    name: r.clone(),
                }
            };
            tx.set_ref(spec, Some(*c));
        }
        p.report.content_bytes_written += tx.commit()?.content_bytes_written;
        for (cc, _, meta) in &commits {
            if let Some(m) = meta {
                let v = Value::from_bytes(crate::objects::ty(crate::objects::METADATA_TYPE), m)
                    .map_err(|e| Error::Corrupt {
                        object: format!("{cc}.commitmeta"),
                        reason: e.to_string(),
                    })?;
                repo.write_detached_metadata(cc, Some(&v))?;
            }
        }
        if !opts.commit_metadata_only && opts.subpaths.is_empty() {
            let _ = rustix::fs::unlinkat(
                repo.dfd(),
                commitpartial_path(c).as_str(),
                rustix::fs::AtFlags::empty(),
            );
        }
        p.report.refs.push((r.clone(), *c));
    }
    Ok(p.report)
}

/// Pulls from a configured remote.
pub fn pull(repo: &Repo, remote: &str, refs: &[String], opts: &PullOptions) -> Result<PullReport> {
    let r = crate::remote::get_remote(repo, remote)?;
    let mut opts = opts.clone();
    if r.gpg_verify {
        opts.gpg_keyring = Some(crate::gpg::remote_keyring(repo, remote));
    }
    opts.gpg_verify_summary = r.gpg_verify_summary;
    if r.sign_verify {
        let mut keys = Vec::new();
        if let Some(k) = r.option("verification-ed25519-key") {
            keys.extend(k.split(';').filter(|s| !s.is_empty()).map(str::to_owned));
        }
        if let Some(f) = r.option("verification-ed25519-file") {
            keys.extend(crate::sign::read_keys_file(Path::new(f))?);
        }
        if keys.is_empty() {
            return Err(Error::Other(format!(
                "remote \"{remote}\" has sign-verify=true but no verification-ed25519-key or -file"
            )));
        }
        opts.ed25519_keys = Some(keys);
    }
    let opts = &opts;
    let fetcher = crate::fetch::fetcher_for(opts.url.as_deref().unwrap_or(&r.url))?;
    let all = refs.is_empty();
    let refs = if all {
        remote_summary_refs(fetcher.as_ref())?
    } else {
        refs.to_vec()
    };
    let report = pull_from(repo, fetcher.as_ref(), Some(remote), &refs, opts)?;
    // As libostree: a mirror of every ref also takes the remote's summary
    // (and its signature), so the mirror can be served as it is.
    if all && opts.mirror && !opts.dry_run {
        for name in [crate::summary::SUMMARY_SIG_FILE, "summary"] {
            match fetcher.fetch(name, MAX_METADATA_SIZE)? {
                Some(b) => fsutil::replace_file_at(
                    repo.dfd(),
                    Path::new(name),
                    &b,
                    0o644,
                    fsutil::Durability::Now,
                )?,
                None => {
                    match rustix::fs::unlinkat(repo.dfd(), name, rustix::fs::AtFlags::empty()) {
                        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                        Err(e) => return Err(e).ctx("removing", name),
                    }
                }
            }
        }
    }
    Ok(report)
}

/// `--bareuseronly-files`: a regular file may carry no mode bits beyond 0775.
fn check_bareuseronly(c: &Checksum, mode: u32) -> Result<()> {
    use crate::objects::{S_IFMT, S_IFREG};
    let bad = mode & !(S_IFMT | 0o775);
    if mode & S_IFMT == S_IFREG && bad != 0 {
        return Err(Error::Other(crate::msg::bareuseronly_bad_mode(
            c, mode, bad,
        )));
    }
    Ok(())
}

/// Copies `refs` (and everything they reach) from another local repo of any mode.
///
/// Refs land under `refs/remotes/REMOTE/` when `remote` is given, else as
/// local branches. `opts` applies as for [`pull`] (`depth`,
/// `commit_metadata_only`, the signature policy).
pub fn pull_local(
    repo: &Repo,
    src: &Repo,
    refs: &[String],
    remote: Option<&str>,
    opts: &PullOptions,
) -> Result<PullReport> {
    let depth = opts.depth;
    // Between repos of one mode objects are hardlinked (below); an archive
    // source in another mode, or a pull that needs the summary or partial
    // commits, goes through the fetch path.
    let same_mode =
        src.mode() == repo.mode() && !opts.commit_metadata_only && !opts.gpg_verify_summary;
    if src.mode() == crate::RepoMode::Archive && !same_mode && !opts.bareuseronly_files {
        let fetcher = crate::fetch::FileFetcher::new(src.path());
        let o = PullOptions {
            mirror: remote.is_none(),
            progress: None,
            ..opts.clone()
        };
        return pull_from(repo, &fetcher, remote, refs, &o);
    }
    if opts.commit_metadata_only {
        return Err(Error::Other(format!(
            "--commit-metadata-only from a {} repository is not supported; use an archive source",
            src.mode().as_config_str()
        )));
    }
    let mut report = PullReport::default();
    for r in refs {
        let c = src.resolve_commit(r)?;
        let raw = src.load_metadata_raw(ObjectType::Commit, &c)?;
        verify_commit_signatures(src, opts, &c, &raw, None)?;
        let mut want = HashSet::new();
        crate::walk::reachable_objects(
            src,
            &c,
            crate::walk::ReachOptions {
                depth,
                ignore_missing: true,
            },
            &mut want,
        )?;
        let mut want: Vec<(Checksum, ObjectType)> = want.into_iter().collect();
        // Commits last, so a crash never leaves a commit without its tree.
        want.sort_by_key(|(_, t)| (*t == ObjectType::Commit, *t == ObjectType::CommitMeta));
        let mut tx = repo.begin()?;
        let mut commitmeta = Vec::new();
        for (oc, t) in &want {
            if repo.has_object(*t, oc)? {
                continue;
            }
            if *t == ObjectType::File && opts.bareuseronly_files {
                check_bareuseronly(oc, src.load_file(oc)?.header.mode)?;
            }
            if *t != ObjectType::CommitMeta {
                // As libostree: a local source is trusted unless --untrusted;
                // a hardlink shares the object as it is.
                if opts.untrusted {
                    crate::fsck::verify_object(src, oc, *t).map_err(|reason| Error::Corrupt {
                        object: format!("{oc}.{t}"),
                        reason,
                    })?;
                }
                if tx.link_object_from(src, *t, oc)? {
                    if *t == ObjectType::File {
                        report.content_fetched += 1;
                    } else {
                        report.metadata_fetched += 1;
                    }
                    continue;
                }
            }
            match t {
                ObjectType::File => {
                    let mut obj = src.load_file(oc)?;
                    let mut content = Vec::with_capacity(obj.size as usize);
                    obj.reader
                        .read_to_end(&mut content)
                        .ctx("reading", src.object_path(*t, oc))?;
                    let got = tx.write_content(&obj.header, ContentSource::Bytes(&content))?;
                    if got != *oc {
                        return Err(Error::ChecksumMismatch {
                            object: format!("{oc}.file"),
                            expected: oc.to_string(),
                            actual: got.to_string(),
                        });
                    }
                    report.content_fetched += 1;
                }
                ObjectType::CommitMeta => commitmeta.push(*oc),
                _ => {
                    let b = src.load_metadata_raw(*t, oc)?;
                    verify_metadata(*t, oc, &b)?;
                    tx.write_metadata(*t, &b)?;
                    report.metadata_fetched += 1;
                }
            }
        }
        if !Checksum::is_valid_hex(r) {
            let spec = RefSpec::parse(r)?;
            tx.set_ref(
                RefSpec {
                    remote: remote.map(str::to_owned),
                    name: spec.name,
                },
                Some(c),
            );
        }
        report.content_bytes_written += tx.commit()?.content_bytes_written;
        // Everything the commit reaches is here now (an earlier pull or fsck
        // may have marked it partial).
        match rustix::fs::unlinkat(
            repo.dfd(),
            commitpartial_path(&c).as_str(),
            rustix::fs::AtFlags::empty(),
        ) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).ctx("removing", commitpartial_path(&c)),
        }
        for oc in commitmeta {
            if let Some(v) = src.load_detached_metadata(&oc)? {
                repo.write_detached_metadata(&oc, Some(&v))?;
            }
        }
        report.refs.push((r.clone(), c));
    }
    Ok(report)
}
