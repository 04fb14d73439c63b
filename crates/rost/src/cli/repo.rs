//! `rost repo …`: the OSTree repository commands, with ostree's flag names.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use rost_store::checkout::{CheckoutOptions, checkout};
use rost_store::commit::CommitOptions;
use rost_store::fsck::{FsckOptions, fsck};
use rost_store::gvariant::Value;
use rost_store::objects::{Commit, S_IFDIR, S_IFLNK, S_IFMT};
use rost_store::overlay::{Layer, commit_layers};
use rost_store::prune::{PruneOptions, prune};
use rost_store::refs::RefSpec;
use rost_store::walk::{TreeNode, lookup_path};
use rost_store::{Checksum, Repo, RepoMode, msg};

/// `rost repo [--repo R] COMMAND`.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Path to the repository (default: $OSTREE_REPO, else /ostree/repo).
    #[arg(long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RepoCommand,
}

/// Subcommands of `rost repo`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository.
    Init(InitArgs),
    /// Commit a directory tree to a branch.
    Commit(Box<CommitArgs>),
    /// Check a commit out into a directory.
    Checkout(CheckoutArgs),
    /// List files in a commit.
    Ls(LsArgs),
    /// Print a file from a commit.
    Cat(CatArgs),
    /// Show a commit.
    Show(ShowArgs),
    /// Show the history of a ref.
    Log(LogArgs),
    /// List, create or delete refs.
    Refs(RefsArgs),
    /// Print the commit a revision resolves to.
    RevParse(RevParseArgs),
    /// Point a ref at another commit (history need not be linear).
    Reset(ResetArgs),
    /// Read or change a setting of the repository config.
    Config(ConfigArgs),
    /// Print the object checksum a file (or directory's metadata) would have.
    Checksum(ChecksumArgs),
    /// Show the files that differ between two revisions.
    Diff(DiffArgs),
    /// Check the integrity of every object.
    Fsck(FsckArgs),
    /// Delete unreachable objects.
    Prune(PruneArgs),
    /// Generate or show the summary file clients read first.
    Summary(SummaryArgs),
    /// Manage remotes.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Download commits from a remote.
    Pull(PullArgs),
    /// Copy commits from another local repository.
    PullLocal(PullLocalArgs),
    /// Sign a commit (ed25519), or verify its signatures.
    Sign(SignArgs),
    /// Sign a commit with GPG (OpenPGP).
    GpgSign(GpgSignArgs),
    /// Generate, list, show, delete and apply static deltas.
    #[command(subcommand)]
    StaticDelta(StaticDeltaCommand),
}

/// `static-delta …`
#[derive(Debug, Subcommand)]
pub enum StaticDeltaCommand {
    /// List deltas.
    List,
    /// Describe a delta (FROM-TO or TO).
    Show {
        /// Delta name.
        delta: String,
    },
    /// Delete a delta.
    Delete {
        /// Delta name.
        delta: String,
    },
    /// Generate a delta.
    Generate {
        /// Source revision (default: the target's parent).
        #[arg(long)]
        from: Option<String>,
        /// Target revision (also as the one positional argument).
        #[arg(long, required_unless_present = "rev")]
        to: Option<String>,
        /// Target revision, as `ostree static-delta generate REV`.
        #[arg(conflicts_with = "to")]
        rev: Option<String>,
        /// From scratch (no source).
        #[arg(long)]
        empty: bool,
        /// Accepted for compatibility (parts are always separate files).
        #[arg(long)]
        inline: bool,
        /// Objects of at least this many MB go as fallbacks (default 4).
        #[arg(long, value_name = "MB")]
        min_fallback_size: Option<u64>,
        /// Maximum part size in MB (default 32).
        #[arg(long, value_name = "MB")]
        max_chunk_size: Option<u64>,
        /// Never use bsdiff.
        #[arg(long)]
        disable_bsdiff: bool,
        /// Do nothing (and say so) when the delta is already there.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Apply a delta from a local directory (or its superblock file).
    ApplyOffline {
        /// Delta directory or superblock path.
        path: PathBuf,
    },
}

/// `gpg-sign`
#[derive(Debug, Args)]
pub struct GpgSignArgs {
    /// GnuPG home directory holding the secret keys.
    #[arg(long)]
    gpg_homedir: Option<PathBuf>,
    /// Commit to sign.
    commit: String,
    /// Key ids to sign with.
    #[arg(required = true)]
    key_ids: Vec<String>,
}

/// `sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Signature type (only ed25519).
    #[arg(long, short = 's', default_value = "ed25519")]
    sign_type: String,
    /// Read keys (base64, one a line) from this file.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// Verify with public keys instead of signing with secret ones.
    #[arg(long)]
    verify: bool,
    /// Commit to sign or verify.
    commit: String,
    /// Keys (base64): secret keys to sign, public keys to verify.
    keys: Vec<String>,
}

/// `summary`
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Regenerate the summary.
    #[arg(short = 'u', long)]
    update: bool,
    /// Print the summary.
    #[arg(short = 'v', long)]
    view: bool,
    /// Print the raw summary variant.
    #[arg(long)]
    raw: bool,
    /// Sign the summary with this secret key (base64).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<String>,
    /// Signature type (only ed25519).
    #[arg(long, default_value = "ed25519")]
    sign_type: String,
    /// Sign the summary with this GPG key id.
    #[arg(long = "gpg-sign", value_name = "KEY-ID")]
    gpg_sign: Vec<String>,
    /// GnuPG home directory for --gpg-sign.
    #[arg(long)]
    gpg_homedir: Option<PathBuf>,
}

/// `remote …`
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote.
    Add {
        /// Do not require GPG signatures.
        #[arg(long)]
        no_gpg_verify: bool,
        /// Do not require any signatures (`gpg-verify=false`,
        /// `sign-verify=false`).
        #[arg(long)]
        no_sign_verify: bool,
        /// Do nothing if it exists.
        #[arg(long, conflicts_with = "force")]
        if_not_exists: bool,
        /// Replace it if it exists.
        #[arg(long)]
        force: bool,
        /// Extra settings (KEY=VALUE).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Import trusted GPG keys from this file into REPO/NAME.trustedkeys.gpg.
        #[arg(long)]
        gpg_import: Option<PathBuf>,
        /// Require signatures: ed25519=inline:KEY or ed25519=file:PATH.
        #[arg(long, value_name = "TYPE=inline:KEY|TYPE=file:PATH")]
        sign_verify: Vec<String>,
        /// Remote name.
        name: String,
        /// URL.
        url: String,
        /// Branches (stored as `branches=`).
        branches: Vec<String>,
    },
    /// Delete a remote.
    Delete {
        /// Do nothing if it does not exist.
        #[arg(long)]
        if_exists: bool,
        /// Remote name.
        name: String,
    },
    /// List remotes.
    List {
        /// Show URLs too.
        #[arg(short = 'u', long)]
        show_urls: bool,
    },
    /// Print a remote's URL.
    ShowUrl {
        /// Remote name.
        name: String,
    },
    /// List a remote's refs (from its summary).
    Refs {
        /// Remote name.
        name: String,
    },
}

/// `pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Parents to fetch (-1 = all).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    depth: i64,
    /// Fetch only commit objects.
    #[arg(long)]
    commit_metadata_only: bool,
    /// Write refs as local branches.
    #[arg(long)]
    mirror: bool,
    /// Resolve and walk, but write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Fetch objects even when the remote offers a static delta.
    #[arg(long)]
    disable_static_deltas: bool,
    /// Fetch only this path of the tree (repeatable); the commit stays partial.
    #[arg(long)]
    subpath: Vec<String>,
    /// Accepted for compatibility: rost publishes fetched objects in
    /// batches with one syncfs each, never stalling on per-file fsyncs.
    #[arg(long)]
    per_object_fsync: bool,
    /// Accepted for compatibility: one syncfs per published batch, always.
    #[arg(long)]
    disable_fsync: bool,
    /// Fail unless each ref comes through a static delta.
    #[arg(long)]
    require_static_deltas: bool,
    /// Fetch from this URL instead of the remote's.
    #[arg(long)]
    url: Option<String>,
    /// Refuse regular files with mode bits beyond 0775 (setuid, world-writable, …).
    #[arg(long)]
    bareuseronly_files: bool,
    /// Accepted for compatibility: rost verifies every fetched object
    /// against its checksum, trusted server or not.
    #[arg(long)]
    http_trusted: bool,
    /// Remote name (or REMOTE:REF).
    remote: String,
    /// Refs to pull (default: all refs in the remote summary).
    refs: Vec<String>,
}

/// `pull-local`
#[derive(Debug, Args)]
pub struct PullLocalArgs {
    /// Parents to copy (-1 = all).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    depth: i64,
    /// Copy only commit objects (the commits stay partial).
    #[arg(long)]
    commit_metadata_only: bool,
    /// Record the refs as REMOTE's (`refs/remotes/REMOTE/`) and apply its
    /// signature keys for --gpg-verify.
    #[arg(long)]
    remote: Option<String>,
    /// Require a good OpenPGP signature from the remote's keyring on each commit.
    #[arg(long, requires = "remote")]
    gpg_verify: bool,
    /// Require a good OpenPGP signature on the source's summary.
    #[arg(long, requires = "remote")]
    gpg_verify_summary: bool,
    /// Verify each object of the source before hardlinking it (objects
    /// copied between repo modes are always checked).
    #[arg(long)]
    untrusted: bool,
    /// Refuse regular files with mode bits beyond 0775 (setuid, world-writable, …).
    #[arg(long)]
    bareuseronly_files: bool,
    /// Accepted for compatibility: one syncfs per transaction, always.
    #[arg(long)]
    disable_fsync: bool,
    /// Source repository.
    src: PathBuf,
    /// Refs (default: all of the source's local refs).
    refs: Vec<String>,
}

/// `init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Storage mode: archive (= archive-z2), bare, bare-user, bare-user-only.
    #[arg(long, default_value = "bare")]
    mode: String,
    /// Collection id for the repository.
    #[arg(long)]
    collection_id: Option<String>,
    /// Ignored, as ostree ignores arguments after `init`.
    #[arg(hide = true)]
    ignored: Vec<String>,
}

/// `commit`
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Branch to commit to.
    #[arg(short = 'b', long)]
    branch: Option<String>,
    /// One-line subject.
    #[arg(short = 's', long)]
    subject: Option<String>,
    /// Full description.
    #[arg(short = 'm', long)]
    body: Option<String>,
    /// Take the description from this file.
    #[arg(short = 'F', long, conflicts_with = "body")]
    body_file: Option<PathBuf>,
    /// Add a string metadata key (KEY=VALUE).
    #[arg(long = "add-metadata-string", value_name = "KEY=VALUE")]
    metadata_string: Vec<String>,
    /// Add a string key to the detached metadata (KEY=VALUE).
    #[arg(long = "add-detached-metadata-string", value_name = "KEY=VALUE")]
    detached_metadata_string: Vec<String>,
    /// Commit time (RFC 3339, "YYYY-MM-DD HH:MM:SS" UTC, or @SECONDS).
    #[arg(long)]
    timestamp: Option<String>,
    /// Set every file's uid.
    #[arg(long)]
    owner_uid: Option<u32>,
    /// Set every file's gid.
    #[arg(long)]
    owner_gid: Option<u32>,
    /// uid/gid 0 and modes masked to 0755 style.
    #[arg(long)]
    canonical_permissions: bool,
    /// Parent commit (default: the branch's current commit).
    #[arg(long)]
    parent: Option<String>,
    /// Create a commit without a parent.
    #[arg(long)]
    orphan: bool,
    /// Do not write ref-binding metadata.
    #[arg(long)]
    no_bindings: bool,
    /// Do not import extended attributes.
    #[arg(long)]
    no_xattrs: bool,
    /// Overlay a tree: dir=PATH or ref=COMMIT (repeatable, later ones win).
    #[arg(long, value_name = "dir=PATH|ref=COMMIT")]
    tree: Vec<String>,
    /// Clear the write bits of executable files.
    #[arg(long)]
    mode_ro_executables: bool,
    /// Change permissions: lines `MODE PATH` / `+MODE PATH` (add bits) or
    /// `=MODE PATH` (set them), MODE in decimal.
    #[arg(long, value_name = "FILE")]
    statoverride: Option<PathBuf>,
    /// Leave out the paths listed (one absolute tree path a line).
    #[arg(long, value_name = "FILE")]
    skip_list: Option<PathBuf>,
    /// Sign the commit with this GPG key id (repeatable).
    #[arg(long = "gpg-sign", value_name = "KEY-ID")]
    gpg_sign: Vec<String>,
    /// GnuPG home directory for --gpg-sign.
    #[arg(long)]
    gpg_homedir: Option<PathBuf>,
    /// Sign the commit with this secret key (base64; repeatable).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<String>,
    /// Signature type for --sign (only ed25519).
    #[arg(long, default_value = "ed25519")]
    sign_type: String,
    /// Also bind the commit to this ref (`ostree.ref-binding`; repeatable).
    #[arg(long = "bind-ref", value_name = "REF")]
    bind_ref: Vec<String>,
    /// Start from this commit's tree (its entries keep their owners).
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Mark the commit bootable: `ostree.bootable` and `ostree.linux` (the
    /// kernel version under /usr/lib/modules).
    #[arg(long)]
    bootable: bool,
    /// Delete the source directory once it is committed.
    #[arg(long)]
    consume: bool,
    /// Accepted for compatibility (an optimization in ostree; rost hashes
    /// every file).
    #[arg(long)]
    link_checkout_speedup: bool,
    /// Do nothing when the tree equals the branch's current commit's.
    #[arg(long)]
    skip_if_unchanged: bool,
    /// Accepted for compatibility: writes are always made durable once per
    /// transaction (`syncfs`), whatever the policy.
    #[arg(long, value_name = "POLICY")]
    fsync: Option<String>,
    /// Directory to commit (default: the current directory).
    path: Option<PathBuf>,
}

/// `checkout`
#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// Ignore ownership and xattrs (non-root checkout).
    #[arg(short = 'U', long)]
    user_mode: bool,
    /// Fail rather than copy when hardlinking is impossible.
    #[arg(short = 'H', long)]
    require_hardlinks: bool,
    /// Check out only this subpath.
    #[arg(long)]
    subpath: Option<String>,
    /// Overwrite existing files.
    #[arg(long)]
    union: bool,
    /// Never hardlink.
    #[arg(short = 'C', long)]
    force_copy: bool,
    /// Revision to check out.
    rev: String,
    /// Destination (default: the revision name).
    dest: Option<PathBuf>,
}

/// `ls`
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Recurse into directories.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// List a directory itself, not its contents.
    #[arg(short = 'd', long)]
    dironly: bool,
    /// Show object checksums.
    #[arg(short = 'C', long)]
    checksum: bool,
    /// Show extended attributes.
    #[arg(short = 'X', long)]
    xattrs: bool,
    /// Revision.
    rev: String,
    /// Paths (default: /).
    paths: Vec<String>,
}

/// `cat`
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Revision.
    rev: String,
    /// Files to print.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// `show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Print one metadata key's value.
    #[arg(long)]
    print_metadata_key: Option<String>,
    /// Print one detached metadata key's value.
    #[arg(long)]
    print_detached_metadata_key: Option<String>,
    /// Print the raw commit variant.
    #[arg(long)]
    raw: bool,
    /// Revision.
    rev: String,
}

/// `log`
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Ref or commit.
    rev: String,
}

/// `refs`
#[derive(Debug, Args)]
pub struct RefsArgs {
    /// Delete the given refs (or every ref under PREFIX).
    #[arg(long)]
    delete: bool,
    /// Create a ref NEW pointing at the revision given as argument.
    #[arg(long, value_name = "NEW")]
    create: Option<String>,
    /// Print full ref names even under a PREFIX.
    #[arg(long)]
    list: bool,
    /// List aliases only; with --create, make NEW an alias of the given ref.
    #[arg(short = 'A', long)]
    alias: bool,
    /// With --create, replace an existing ref.
    #[arg(long)]
    force: bool,
    /// Prefix filter, or the revision for --create.
    args: Vec<String>,
}

/// `reset`
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Ref to move.
    r#ref: String,
    /// Commit to point it at.
    rev: String,
}

/// `checksum`
#[derive(Debug, Args)]
pub struct ChecksumArgs {
    /// Leave extended attributes out.
    #[arg(long)]
    ignore_xattrs: bool,
    /// File, symlink or directory.
    path: PathBuf,
}

/// `config`
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Group of the key (KEY is then the bare key name).
    #[arg(long)]
    group: Option<String>,
    /// get KEY | set KEY VALUE | unset KEY (KEY is GROUP.NAME without --group).
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
}

/// `rev-parse`
#[derive(Debug, Args)]
pub struct RevParseArgs {
    /// Print the repository's only commit (an error if it has none or several).
    #[arg(short = 'S', long)]
    single: bool,
    /// Revision.
    #[arg(required_unless_present = "single")]
    rev: Option<String>,
}

/// `diff`
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// For a directory side: take every file's uid as this.
    #[arg(long)]
    owner_uid: Option<u32>,
    /// For a directory side: take every file's gid as this.
    #[arg(long)]
    owner_gid: Option<u32>,
    /// Old revision, or a directory (a path starting with `/` or `./`).
    from: String,
    /// New revision, or a directory.
    to: String,
}

/// `fsck`
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Delete corrupt objects.
    #[arg(long)]
    delete: bool,
    /// Print less.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Report every problem (rost always does; accepted for ostree).
    #[arg(short = 'a', long)]
    all: bool,
}

/// `prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only consider objects reachable from refs.
    #[arg(long)]
    refs_only: bool,
    /// Delete commits older than DATE (except ref tips), then prune from refs.
    #[arg(long, value_name = "DATE")]
    keep_younger_than: Option<String>,
    /// History depth to keep behind each root (-1 = all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    depth: i64,
    /// Only report what would be deleted.
    #[arg(long)]
    no_prune: bool,
}

/// `--repo`, else `$OSTREE_REPO`, else the current directory when it is a
/// repository (as ostree), else the system repository.
fn repo_path(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("OSTREE_REPO").map(PathBuf::from))
        .unwrap_or_else(|| {
            if Path::new("config").is_file() && Path::new("objects").is_dir() {
                PathBuf::from(".")
            } else {
                PathBuf::from("/ostree/repo")
            }
        })
}

fn open(path: &Path) -> Result<Repo> {
    Repo::open(path).with_context(|| format!("opening repository {}", path.display()))
}

/// Parses ostree-style timestamps: RFC 3339, `YYYY-MM-DD[ HH:MM:SS]` (UTC), `@SECONDS`.
pub fn parse_timestamp(s: &str) -> Result<u64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let t = s.trim();
    if let Some(secs) = t.strip_prefix('@') {
        return secs.parse().map_err(|_| anyhow!("invalid timestamp {s:?}"));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return u64::try_from(dt.timestamp())
            .map_err(|_| anyhow!("timestamp {s:?} is before 1970"));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return u64::try_from(dt.timestamp())
                .map_err(|_| anyhow!("timestamp {s:?} is before 1970"));
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return u64::try_from(dt.and_utc().timestamp())
                .map_err(|_| anyhow!("timestamp {s:?} is before 1970"));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let dt = d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| anyhow!("invalid timestamp {s:?}"))?;
        return u64::try_from(dt.and_utc().timestamp())
            .map_err(|_| anyhow!("timestamp {s:?} is before 1970"));
    }
    bail!("invalid timestamp {s:?}: expected RFC 3339, \"YYYY-MM-DD HH:MM:SS\" or @SECONDS")
}

fn parse_kv(s: &str, flag: &str) -> Result<(String, Value)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("{flag}: expected KEY=VALUE, got {s:?}"))?;
    Ok((k.to_owned(), Value::str(v)))
}

/// Runs a `rost repo` subcommand.
pub fn run(args: RepoArgs) -> Result<ExitCode> {
    let path = repo_path(args.repo);
    let mut out = std::io::stdout().lock();
    // Which refs-changing command ran, for core.*-update-summary.
    let changed = match &args.command {
        RepoCommand::Commit(_) => Some(true),
        RepoCommand::Reset(_)
        | RepoCommand::Refs(_)
        | RepoCommand::Pull(_)
        | RepoCommand::PullLocal(_) => Some(false),
        _ => None,
    };
    run_command(&path, args.command, &mut out)?;
    if let Some(commit) = changed {
        auto_update_summary(&path, commit)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// As libostree: `core.auto-update-summary` regenerates the summary after
/// any ref change, `core.commit-update-summary` after a commit.
fn auto_update_summary(path: &Path, commit: bool) -> Result<()> {
    let mut repo = open(path)?;
    let cfg = repo.config();
    let on = |k: &str| cfg.get_bool("core", k).unwrap_or(false);
    if on("auto-update-summary") || (commit && on("commit-update-summary")) {
        update_summary_files(&mut repo)?;
    }
    Ok(())
}

/// `summary --update`: the summary and the delta indexes.
fn update_summary_files(repo: &mut Repo) -> Result<()> {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    rost_store::summary::update_summary(repo, now)
        .with_context(|| format!("updating the summary of {}", repo.path().display()))?;
    rost_store::delta::write_indexes(repo)?;
    Ok(())
}

fn run_command(path: &Path, command: RepoCommand, out: &mut dyn Write) -> Result<()> {
    let path = path.to_owned();
    let mut out = out;
    match command {
        RepoCommand::Init(a) => {
            let mode = RepoMode::parse(&a.mode).ok_or_else(|| {
                anyhow!(
                    "--mode: invalid mode {:?} (archive, bare, bare-user, bare-user-only)",
                    a.mode
                )
            })?;
            let mut repo = Repo::init(&path, mode)
                .with_context(|| format!("creating repository {}", path.display()))?;
            if let Some(cid) = a.collection_id {
                let mut cfg = repo.config().clone();
                cfg.set("core", "collection-id", &cid);
                repo.write_config(cfg)?;
            }
        }
        RepoCommand::Commit(a) => {
            let repo = open(&path)?;
            // Layers in order: --base, then each --tree, then PATH; as ostree,
            // no PATH and no --tree commits the current directory.
            let mut layers: Vec<Layer> = Vec::new();
            if let Some(b) = &a.base {
                layers.push(Layer::Base(
                    repo.resolve_commit(b)
                        .with_context(|| format!("--base {b}"))?,
                ));
            }
            for t in &a.tree {
                match t.split_once('=') {
                    Some(("dir", p)) => layers.push(Layer::Dir(PathBuf::from(p))),
                    Some(("ref", r)) => layers.push(Layer::Commit(
                        repo.resolve_commit(r)
                            .with_context(|| format!("--tree={t}"))?,
                    )),
                    Some(("tar", _)) => bail!("--tree={t}: tar import is not supported"),
                    _ => bail!(
                        "Invalid --tree argument {t}: expected dir=PATH, ref=COMMIT or tar=FILE"
                    ),
                }
            }
            if let Some(p) = &a.path {
                layers.push(Layer::Dir(p.clone()));
            } else if a.tree.is_empty() {
                layers.push(Layer::Dir(PathBuf::from(".")));
            }
            let dirs: Vec<PathBuf> = layers
                .iter()
                .filter_map(|l| match l {
                    Layer::Dir(p) => Some(p.clone()),
                    _ => None,
                })
                .collect();
            let parent = match &a.parent {
                Some(p) if p == "none" => None,
                Some(p) => Some(
                    repo.resolve_commit(p)
                        .with_context(|| format!("--parent {p}"))?,
                ),
                None => None,
            };
            let mut metadata: Vec<(String, Value)> = a
                .metadata_string
                .iter()
                .map(|s| parse_kv(s, "--add-metadata-string"))
                .collect::<Result<_>>()?;
            if a.bootable {
                let Some(top) = dirs.last() else {
                    bail!("--bootable needs a directory to find the kernel in");
                };
                metadata.extend(bootable_metadata(top)?);
            }
            let timestamp = match &a.timestamp {
                Some(t) => Some(parse_timestamp(t)?),
                None => match std::env::var("SOURCE_DATE_EPOCH") {
                    Ok(v) => Some(parse_source_date_epoch(&v)?),
                    Err(_) => None,
                },
            };
            let opts = CommitOptions {
                branch: a.branch.clone(),
                subject: a.subject.unwrap_or_default(),
                body: match &a.body_file {
                    Some(f) => std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?,
                    None => a.body.clone().unwrap_or_default(),
                },
                metadata,
                detached_metadata: a
                    .detached_metadata_string
                    .iter()
                    .map(|s| parse_kv(s, "--add-detached-metadata-string"))
                    .collect::<Result<_>>()?,
                timestamp,
                owner_uid: a.owner_uid,
                owner_gid: a.owner_gid,
                canonical_permissions: a.canonical_permissions,
                parent,
                orphan: a.orphan || a.parent.as_deref() == Some("none"),
                no_bindings: a.no_bindings,
                no_xattrs: a.no_xattrs,
                skip_if_unchanged: a.skip_if_unchanged,
                mode_ro_executables: a.mode_ro_executables,
                mode_overrides: match &a.statoverride {
                    Some(f) => parse_statoverride(f)?,
                    None => Default::default(),
                },
                skip: match &a.skip_list {
                    Some(f) => std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    None => Default::default(),
                },
                bind_refs: a.bind_ref.clone(),
            };
            if opts.branch.is_none() && !a.orphan {
                bail!("A branch must be specified with --branch, or use --orphan");
            }
            if !a.sign.is_empty() && a.sign_type != "ed25519" {
                bail!("Requested signature type is not implemented");
            }
            let res = commit_layers(&repo, &layers, &opts)
                .with_context(|| format!("committing to {}", path.display()))?;
            if !a.gpg_sign.is_empty() {
                rost_store::gpg::sign_commit(
                    &repo,
                    &res.commit,
                    &a.gpg_sign,
                    a.gpg_homedir.as_deref(),
                )
                .with_context(|| format!("signing commit {}", res.commit))?;
            }
            if !a.sign.is_empty() {
                rost_store::sign::sign_commit(&repo, &res.commit, &a.sign)
                    .with_context(|| format!("signing commit {}", res.commit))?;
            }
            if a.consume {
                for d in &dirs {
                    std::fs::remove_dir_all(d)
                        .with_context(|| format!("--consume: removing {}", d.display()))?;
                }
            }
            writeln!(out, "{}", res.commit)?;
        }
        RepoCommand::Checkout(a) => {
            let repo = open(&path)?;
            let c = repo.resolve_commit(&a.rev)?;
            let mut dest = a.dest.unwrap_or_else(|| PathBuf::from(&a.rev));
            // As ostree: a file subpath lands, under its own name, in the
            // destination directory (created if missing).
            if let Some(sub) = &a.subpath {
                let commit = repo.load_commit(&c)?;
                if let TreeNode::File(_) =
                    lookup_path(&repo, commit.root_tree, commit.root_meta, sub)?
                {
                    std::fs::create_dir_all(&dest)
                        .with_context(|| format!("creating {}", dest.display()))?;
                    let name = Path::new(sub)
                        .file_name()
                        .ok_or_else(|| anyhow!("invalid subpath {sub}"))?;
                    dest = dest.join(name);
                }
            }
            let opts = CheckoutOptions {
                user_mode: a.user_mode,
                union: a.union,
                require_hardlinks: a.require_hardlinks,
                subpath: a.subpath,
                force_copy: a.force_copy,
            };
            checkout(&repo, &c, &dest, &opts)
                .with_context(|| format!("checking out {} to {}", a.rev, dest.display()))?;
        }
        RepoCommand::Ls(a) => {
            let repo = open(&path)?;
            let c = repo.resolve_commit(&a.rev)?;
            let commit = repo.load_commit(&c)?;
            let paths = if a.paths.is_empty() {
                vec!["/".to_owned()]
            } else {
                a.paths.clone()
            };
            for p in &paths {
                let node = lookup_path(&repo, commit.root_tree, commit.root_meta, p)?;
                let abs = normalize(p);
                print_ls(&repo, &mut out, &a, &abs, node, true)?;
            }
        }
        RepoCommand::Cat(a) => {
            let repo = open(&path)?;
            let c = repo.resolve_commit(&a.rev)?;
            let commit = repo.load_commit(&c)?;
            for p in &a.paths {
                // As ostree: symlinks inside the commit are followed.
                let mut cur = normalize(p);
                let mut hops = 0;
                loop {
                    match lookup_path(&repo, commit.root_tree, commit.root_meta, &cur)? {
                        TreeNode::File(f) => {
                            let mut obj = repo.load_file(&f)?;
                            if !obj.header.is_symlink() {
                                std::io::copy(&mut obj.reader, &mut out)?;
                                break;
                            }
                            hops += 1;
                            if hops > MAX_SYMLINK_HOPS {
                                bail!("{p}: Too many levels of symbolic links");
                            }
                            cur = resolve_link(&cur, &obj.header.symlink_target);
                        }
                        TreeNode::Dir(..) => bail!("{p}: {}", msg::CANT_OPEN_DIRECTORY),
                    }
                }
            }
        }
        RepoCommand::Show(a) => {
            let repo = open(&path)?;
            let c = repo.resolve_commit(&a.rev)?;
            let commit = repo.load_commit(&c)?;
            if let Some(k) = &a.print_metadata_key {
                let v = commit
                    .metadata
                    .lookup(k)
                    .ok_or_else(|| anyhow!("No such metadata key '{k}'"))?;
                writeln!(out, "{}", v.byteswapped().print())?;
            } else if let Some(k) = &a.print_detached_metadata_key {
                let meta = repo
                    .load_detached_metadata(&c)?
                    .ok_or_else(|| anyhow!("No detached metadata for {c}"))?;
                let v = meta
                    .lookup(k)
                    .ok_or_else(|| anyhow!("No such detached metadata key '{k}'"))?;
                writeln!(out, "{}", v.byteswapped().print())?;
            } else if a.raw {
                let raw = repo.load_metadata_raw(rost_store::ObjectType::Commit, &c)?;
                let v = Value::from_bytes(
                    &rost_store::gvariant::Type::parse(rost_store::objects::COMMIT_TYPE)?,
                    &raw,
                )?;
                writeln!(out, "{}", v.print())?;
            } else {
                print_commit(&mut out, &c, &commit)?;
            }
        }
        RepoCommand::Log(a) => {
            let repo = open(&path)?;
            let mut cur = Some(repo.resolve_commit(&a.rev)?);
            while let Some(c) = cur {
                match repo.load_commit(&c) {
                    Ok(commit) => {
                        print_commit(&mut out, &c, &commit)?;
                        cur = commit.parent;
                    }
                    Err(rost_store::Error::NotFound(_)) => {
                        writeln!(out, "<< History beyond this commit not fetched >>")?;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        RepoCommand::Refs(a) => {
            let repo = open(&path)?;
            refs(&repo, a, &mut out)?;
        }
        RepoCommand::Reset(a) => {
            let repo = open(&path)?;
            let spec = RefSpec::parse(&a.r#ref)?;
            if repo.read_ref(&spec)?.is_none() {
                bail!("{}", msg::refspec_not_found(&a.r#ref));
            }
            let c = repo.resolve_commit(&a.rev)?;
            repo.write_ref(&spec, Some(&c))?;
        }
        RepoCommand::Config(a) => {
            let mut repo = open(&path)?;
            config(&mut repo, a, &mut out)?;
        }
        RepoCommand::Checksum(a) => {
            writeln!(out, "{}", checksum_path(&a.path, a.ignore_xattrs)?)?;
        }
        RepoCommand::RevParse(a) => {
            let repo = open(&path)?;
            if a.single {
                let commits: Vec<Checksum> = repo
                    .list_objects()?
                    .into_iter()
                    .filter(|(_, t)| *t == rost_store::ObjectType::Commit)
                    .map(|(c, _)| c)
                    .collect();
                match commits.as_slice() {
                    [] => bail!("No commit objects found"),
                    [c] => writeln!(out, "{c}")?,
                    _ => bail!("Multiple commit objects found"),
                }
            } else if let Some(rev) = &a.rev {
                writeln!(out, "{}", repo.resolve_rev(rev)?)?;
            }
        }
        RepoCommand::Diff(a) => {
            let repo = open(&path)?;
            // As ostree: a side spelled as a path is a directory on disk,
            // staged (never published) with the ownership modifiers.
            let is_dir = |s: &str| s.starts_with('/') || s.starts_with("./") || s == ".";
            // A transaction only when a directory must be staged: diffing two
            // revisions works on a read-only repository.
            let tx = if is_dir(&a.from) || is_dir(&a.to) {
                Some(repo.begin()?)
            } else {
                None
            };
            let dir_opts = CommitOptions {
                owner_uid: a.owner_uid,
                owner_gid: a.owner_gid,
                ..Default::default()
            };
            let root = |side: &str| -> Result<(Checksum, Checksum)> {
                if let (true, Some(tx)) = (is_dir(side), &tx) {
                    Ok(rost_store::commit::write_directory(
                        tx,
                        Path::new(side),
                        &dir_opts,
                    )?)
                } else {
                    let c = repo.load_commit(&repo.resolve_commit(side)?)?;
                    Ok((c.root_tree, c.root_meta))
                }
            };
            let (from, to) = (root(&a.from)?, root(&a.to)?);
            let load = |c: &Checksum| match &tx {
                Some(tx) => rost_store::objects::DirTree::parse(
                    &tx.load_metadata_raw(rost_store::ObjectType::DirTree, c)?,
                    &c.to_hex(),
                ),
                None => repo.load_dirtree(c),
            };
            let d = rost_store::diff::diff_trees(&load, from, to)?;
            drop(tx);
            // As ostree: paths on a directory side print relative to it.
            let show = |p: &str, dir_side: bool| {
                if dir_side {
                    p.trim_start_matches('/').to_owned()
                } else {
                    p.to_owned()
                }
            };
            let (from_dir, to_dir) = (is_dir(&a.from), is_dir(&a.to));
            for p in &d.modified {
                writeln!(out, "M    {}", show(p, from_dir))?;
            }
            for p in &d.removed {
                writeln!(out, "D    {}", show(p, from_dir))?;
            }
            for p in &d.added {
                writeln!(out, "A    {}", show(p, to_dir))?;
            }
        }
        RepoCommand::Fsck(a) => {
            let repo = open(&path)?;
            fsck_command(&repo, &a, &mut out)?;
        }
        RepoCommand::Summary(a) => {
            let mut repo = open(&path)?;
            if a.update {
                update_summary_files(&mut repo)?;
                if !a.gpg_sign.is_empty() {
                    let summary = std::fs::read(path.join("summary"))?;
                    let sig = rost_store::gpg::sign_summary(
                        &summary,
                        &a.gpg_sign,
                        a.gpg_homedir.as_deref(),
                    )?;
                    std::fs::write(path.join("summary.sig"), sig).with_context(|| {
                        format!("writing {}", path.join("summary.sig").display())
                    })?;
                }
                if !a.sign.is_empty() {
                    if a.sign_type != "ed25519" {
                        bail!("--sign-type={}: only ed25519 is supported", a.sign_type);
                    }
                    let summary = std::fs::read(path.join("summary"))?;
                    let sig = rost_store::sign::sign_summary(&summary, &a.sign)?;
                    std::fs::write(path.join("summary.sig"), sig).with_context(|| {
                        format!("writing {}", path.join("summary.sig").display())
                    })?;
                }
            }
            if a.view || a.raw {
                let b = std::fs::read(path.join("summary"))
                    .with_context(|| format!("reading {}", path.join("summary").display()))?;
                let s = rost_store::summary::Summary::parse(&b)?;
                if a.raw {
                    let ty = rost_store::gvariant::Type::parse(rost_store::summary::SUMMARY_TYPE)?;
                    writeln!(out, "{}", Value::from_bytes(&ty, &b)?.print())?;
                } else {
                    print_summary(&mut out, &s)?;
                }
            } else if !a.update {
                bail!("give --update or --view");
            }
        }
        RepoCommand::Remote(cmd) => {
            let mut repo = open(&path)?;
            match cmd {
                RemoteCommand::Add {
                    no_gpg_verify,
                    no_sign_verify,
                    if_not_exists,
                    force,
                    set,
                    gpg_import,
                    sign_verify,
                    name,
                    url,
                    branches,
                } => {
                    let mut opts = Vec::new();
                    for sv in &sign_verify {
                        match sv.split_once('=') {
                            Some(("ed25519", spec)) => {
                                opts.push(("sign-verify".to_owned(), "true".to_owned()));
                                match spec.split_once(':') {
                                    Some(("inline", k)) => opts.push((
                                        "verification-ed25519-key".to_owned(),
                                        k.to_owned(),
                                    )),
                                    Some(("file", f)) => opts.push((
                                        "verification-ed25519-file".to_owned(),
                                        f.to_owned(),
                                    )),
                                    _ => bail!(
                                        "--sign-verify={sv}: expected ed25519=inline:KEY or ed25519=file:PATH"
                                    ),
                                }
                            }
                            _ => bail!("--sign-verify={sv}: only ed25519 is supported"),
                        }
                    }
                    if !branches.is_empty() {
                        opts.push(("branches".to_owned(), format!("{};", branches.join(";"))));
                    }
                    // As ostree: --no-sign-verify turns off every signature check.
                    if no_gpg_verify || no_sign_verify {
                        opts.push(("gpg-verify".to_owned(), "false".to_owned()));
                    }
                    if no_sign_verify {
                        opts.push(("sign-verify".to_owned(), "false".to_owned()));
                    }
                    for kv in &set {
                        let (k, v) = kv
                            .split_once('=')
                            .ok_or_else(|| anyhow!("--set: expected KEY=VALUE, got {kv:?}"))?;
                        opts.push((k.to_owned(), v.to_owned()));
                    }
                    let if_exists = match (if_not_exists, force) {
                        (true, _) => rost_store::remote::IfExists::Keep,
                        (_, true) => rost_store::remote::IfExists::Replace,
                        _ => rost_store::remote::IfExists::Fail,
                    };
                    rost_store::remote::add_remote(&mut repo, &name, &url, &opts, if_exists)?;
                    if let Some(f) = &gpg_import {
                        rost_store::gpg::import_keys(&repo, &name, f)?;
                    }
                }
                RemoteCommand::Delete { if_exists, name } => {
                    rost_store::remote::delete_remote(&mut repo, &name, if_exists)?;
                }
                RemoteCommand::List { show_urls } => {
                    let mut names = rost_store::remote::list_remotes(&repo);
                    names.sort();
                    let width = names.iter().map(String::len).max().unwrap_or(0);
                    for n in names {
                        if show_urls {
                            let r = rost_store::remote::get_remote(&repo, &n)?;
                            writeln!(out, "{n:width$}  {}", r.url)?;
                        } else {
                            writeln!(out, "{n}")?;
                        }
                    }
                }
                RemoteCommand::ShowUrl { name } => {
                    writeln!(out, "{}", rost_store::remote::get_remote(&repo, &name)?.url)?;
                }
                RemoteCommand::Refs { name } => {
                    let r = rost_store::remote::get_remote(&repo, &name)?;
                    let f = rost_store::fetch::fetcher_for(&r.url)?;
                    for n in rost_store::pull::remote_summary_refs(f.as_ref())? {
                        writeln!(out, "{name}:{n}")?;
                    }
                }
            }
        }
        RepoCommand::Pull(a) => {
            let repo = open(&path)?;
            let (remote, mut refs) = match a.remote.split_once(':') {
                Some((r, first)) => (r.to_owned(), vec![first.to_owned()]),
                None => (a.remote.clone(), Vec::new()),
            };
            refs.extend(a.refs.iter().cloned());
            if refs.is_empty() {
                // As ostree: no refs named pulls the remote's configured branches.
                let r = rost_store::remote::get_remote(&repo, &remote)?;
                if let Some(b) = r.option("branches") {
                    refs = b
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
            }
            let opts = rost_store::pull::PullOptions {
                depth: a.depth,
                commit_metadata_only: a.commit_metadata_only,
                mirror: a.mirror,
                dry_run: a.dry_run,
                disable_static_deltas: a.disable_static_deltas,
                progress: terminal_progress(),
                subpaths: a.subpath.clone(),
                require_static_deltas: a.require_static_deltas,
                url: a.url.clone(),
                bareuseronly_files: a.bareuseronly_files,
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let rep = rost_store::pull::pull(&repo, &remote, &refs, &opts);
            if opts.progress.is_some() {
                // End the progress line before anything else is printed.
                let _ = writeln!(std::io::stderr());
            }
            let rep = rep.with_context(|| format!("pulling from remote {remote}"))?;
            if a.dry_run {
                for (r, c) in &rep.refs {
                    writeln!(out, "{r}: {c}")?;
                }
                writeln!(
                    out,
                    "would fetch {} content objects ({} metadata objects were fetched to walk the tree)",
                    rep.would_fetch_content, rep.metadata_fetched
                )?;
                if let Some(b) = rep.would_fetch_delta_bytes {
                    writeln!(
                        out,
                        "a static delta is offered: {} ({b} bytes)",
                        human_size(b)
                    )?;
                }
            } else {
                writeln!(out, "{}", pull_summary_line(&rep, started.elapsed()))?;
            }
        }
        RepoCommand::PullLocal(a) => {
            let repo = open(&path)?;
            let src = open(&a.src)?;
            let refs: Vec<String> = if a.refs.is_empty() {
                src.list_refs()?
                    .keys()
                    .filter(|r| r.remote.is_none())
                    .map(|r| r.name.clone())
                    .collect()
            } else {
                a.refs.clone()
            };
            let keyring = a
                .remote
                .as_deref()
                .filter(|_| a.gpg_verify || a.gpg_verify_summary)
                .map(|r| rost_store::gpg::remote_keyring(&repo, r));
            let opts = rost_store::pull::PullOptions {
                depth: a.depth,
                commit_metadata_only: a.commit_metadata_only,
                gpg_keyring: keyring.filter(|_| a.gpg_verify || a.gpg_verify_summary),
                gpg_verify_summary: a.gpg_verify_summary,
                bareuseronly_files: a.bareuseronly_files,
                untrusted: a.untrusted,
                ..Default::default()
            };
            let report =
                rost_store::pull::pull_local(&repo, &src, &refs, a.remote.as_deref(), &opts)
                    .with_context(|| format!("pulling from {}", a.src.display()))?;
            writeln!(
                out,
                "{} metadata, {} content objects imported; {} content written",
                report.metadata_fetched,
                report.content_fetched,
                human_size(report.bytes_fetched)
            )?;
        }
        RepoCommand::Sign(a) => {
            if a.sign_type != "ed25519" {
                bail!("--sign-type={}: only ed25519 is supported", a.sign_type);
            }
            let repo = open(&path)?;
            let c = repo.resolve_commit(&a.commit)?;
            let mut keys = a.keys.clone();
            if let Some(f) = &a.keys_file {
                keys.extend(rost_store::sign::read_keys_file(f)?);
            }
            if keys.is_empty() {
                bail!("no keys given: pass KEY arguments or --keys-file");
            }
            if a.verify {
                rost_store::sign::verify_commit(&repo, &c, &keys)?;
                writeln!(out, "Signature verified successfully for commit {c}")?;
            } else {
                rost_store::sign::sign_commit(&repo, &c, &keys)
                    .with_context(|| format!("signing commit {c}"))?;
            }
        }
        RepoCommand::StaticDelta(cmd) => static_delta(&path, cmd, &mut out)?,
        RepoCommand::GpgSign(a) => {
            let repo = open(&path)?;
            let c = repo.resolve_commit(&a.commit)?;
            rost_store::gpg::sign_commit(&repo, &c, &a.key_ids, a.gpg_homedir.as_deref())
                .with_context(|| format!("signing commit {c}"))?;
        }
        RepoCommand::Prune(a) => {
            let repo = open(&path)?;
            let keep = a
                .keep_younger_than
                .as_deref()
                .map(parse_timestamp)
                .transpose()?;
            let opts = PruneOptions {
                refs_only: a.refs_only || keep.is_some(),
                depth: a.depth,
                keep_younger_than: keep,
                no_prune: a.no_prune,
            };
            let r = prune(&repo, opts)?;
            writeln!(out, "Total objects: {}", r.total)?;
            if r.deleted == 0 {
                writeln!(out, "No unreachable objects")?;
            } else if a.no_prune {
                writeln!(
                    out,
                    "Would delete: {} objects, freeing {}",
                    r.deleted,
                    human_size(r.freed_bytes)
                )?;
            } else {
                writeln!(
                    out,
                    "Deleted {} objects, {} freed",
                    r.deleted,
                    human_size(r.freed_bytes)
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The checksum `path` gets as an object: a content object for files and
/// symlinks (header, then content), the dirmeta for a directory.
fn checksum_path(path: &Path, ignore_xattrs: bool) -> Result<Checksum> {
    use rost_store::objects::{DirMeta, FileHeader};
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path).with_context(|| format!("stat {}", path.display()))?;
    let xattrs = if ignore_xattrs {
        Vec::new()
    } else {
        rost_store::fsutil::read_xattrs_path(path)
            .with_context(|| format!("reading xattrs of {}", path.display()))?
    };
    let ft = md.file_type();
    if ft.is_dir() {
        let m = DirMeta {
            uid: md.uid(),
            gid: md.gid(),
            mode: md.mode(),
            xattrs,
        };
        return Ok(Checksum::of(&m.to_bytes()));
    }
    let symlink_target = if ft.is_symlink() {
        std::fs::read_link(path)
            .with_context(|| format!("readlink {}", path.display()))?
            .to_str()
            .ok_or_else(|| anyhow!("{}: symlink target is not UTF-8", path.display()))?
            .to_owned()
    } else if ft.is_file() {
        String::new()
    } else {
        bail!(
            "{}: not a regular file, symlink or directory",
            path.display()
        );
    };
    let header = FileHeader {
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode(),
        symlink_target,
        xattrs,
    };
    let mut h = header.hasher();
    if ft.is_file() {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(Checksum(sha2::Digest::finalize(h).into()))
}

/// The line ostree prints when a pull ends (scripts match on it).
fn pull_summary_line(rep: &rost_store::pull::PullReport, took: std::time::Duration) -> String {
    let mut s = if rep.deltas_applied > 0 {
        format!(
            "{} delta parts, {} loose fetched",
            rep.deltas_applied,
            rep.metadata_fetched + rep.content_fetched
        )
    } else {
        format!(
            "{} metadata, {} content objects fetched",
            rep.metadata_fetched, rep.content_fetched
        )
    };
    s += &format!(
        "; {} transferred in {} seconds",
        human_size(rep.bytes_fetched),
        took.as_secs()
    );
    if rep.content_bytes_written > 0 {
        s += &format!(
            "; {} content written",
            human_size(rep.content_bytes_written)
        );
    }
    s
}

/// The metadata `--bootable` adds: `ostree.bootable`, and `ostree.linux`
/// naming the kernel version (the directory of `usr/lib/modules/*/vmlinuz`).
fn bootable_metadata(root: &Path) -> Result<Vec<(String, Value)>> {
    for rel in ["usr", "usr/lib", "usr/lib/modules"] {
        if !root.join(rel).is_dir() {
            bail!("No such file or directory: /{rel}");
        }
    }
    let modules = root.join("usr/lib/modules");
    let mut kvers: Vec<String> = std::fs::read_dir(&modules)
        .with_context(|| format!("listing {}", modules.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("vmlinuz").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    kvers.sort();
    let Some(kver) = kvers.into_iter().next() else {
        bail!("{}", msg::NO_KERNEL_IN_MODULES);
    };
    Ok(vec![
        ("ostree.linux".to_owned(), Value::str(kver)),
        ("ostree.bootable".to_owned(), Value::Bool(true)),
    ])
}

/// A `--statoverride` file: `[+|=]MODE PATH` lines, MODE in decimal.
fn parse_statoverride(
    f: &Path,
) -> Result<std::collections::HashMap<String, rost_store::commit::ModeOverride>> {
    use rost_store::commit::ModeOverride;
    let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
    let mut out = std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (m, path) = line
            .split_once(' ')
            .ok_or_else(|| anyhow!("Malformed statoverride file (no mode) at line {}", n + 1))?;
        let (set, digits) = match m.as_bytes().first() {
            Some(b'=') => (true, &m[1..]),
            Some(b'+') => (false, &m[1..]),
            _ => (false, m),
        };
        let bits: u32 = digits.parse().map_err(|_| {
            anyhow!(
                "Malformed statoverride file (bad mode {m:?}) at line {}",
                n + 1
            )
        })?;
        let o = if set {
            ModeOverride::Set(bits)
        } else {
            ModeOverride::Add(bits)
        };
        out.insert(path.to_owned(), o);
    }
    Ok(out)
}

/// `SOURCE_DATE_EPOCH` as ostree reads it: whole seconds that fit an `i64`.
fn parse_source_date_epoch(v: &str) -> Result<u64> {
    use std::num::IntErrorKind;
    match v.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as u64),
        Ok(_) => bail!("{}", msg::SOURCE_DATE_EPOCH_INVALID),
        Err(e)
            if matches!(
                e.kind(),
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
            ) =>
        {
            bail!("{}", msg::SOURCE_DATE_EPOCH_RANGE)
        }
        Err(_) => bail!("{}", msg::SOURCE_DATE_EPOCH_INVALID),
    }
}

/// `fsck`, reporting as ostree does: progress lines on stdout; each problem
/// as `In commits C…: fsck OBJECT: WHY` on stderr (as the error itself
/// unless `--delete`); commits lacking objects are marked partial.
fn fsck_command(repo: &Repo, a: &FsckArgs, out: &mut dyn Write) -> Result<()> {
    if !a.quiet {
        writeln!(out, "Validating refs...")?;
        writeln!(out, "Validating refs in collections...")?;
        writeln!(out, "Enumerating commits...")?;
    }
    let report = fsck(repo, FsckOptions { delete: a.delete })?;
    if !a.quiet {
        writeln!(
            out,
            "Verifying content integrity of {} commit objects...",
            report.commits_checked - report.partial_commits
        )?;
    }
    let mut err = std::io::stderr().lock();
    let mut lines = Vec::new();
    for p in &report.problems {
        let what = match &p.corrupt {
            Some((c, rost_store::ObjectType::File)) => format!("fsck content object {c}: "),
            Some((c, t)) => format!("fsck metadata object {c}.{t}: "),
            None => String::new(),
        };
        let line = if p.commits.is_empty() {
            format!("{what}{}", p.message)
        } else {
            let cs: Vec<String> = p.commits.iter().map(|c| c.to_string()).collect();
            format!("In commits {}: {what}{}", cs.join(", "), p.message)
        };
        lines.push(line);
    }
    for c in &report.marked_partial {
        writeln!(err, "Marking commit as partial: {c}")?;
    }
    if report.partial_commits > 0 {
        writeln!(
            out,
            "{} partial commits not verified",
            report.partial_commits
        )?;
    }
    if let Some((last, rest)) = lines.split_last() {
        // Without --delete each problem is an error; libostree stops at the
        // first, rost reports them all (as `ostree fsck --all`).
        let prefix = if a.delete { "" } else { "error: " };
        for l in rest {
            writeln!(err, "{prefix}{l}")?;
        }
        if a.delete {
            writeln!(err, "{last}")?;
            bail!("Repository corruption encountered");
        }
        bail!("{last}");
    }
    if report.fsck_partial_commits > 0 {
        bail!(
            "{} partial commits from fsck-detected corruption",
            report.fsck_partial_commits
        );
    }
    writeln!(
        out,
        "object fsck of {} commits completed successfully - no errors found.",
        report.commits_checked - report.partial_commits
    )?;
    Ok(())
}

/// `refs`: list (under prefixes), `--create` (plain or `--alias`), `--delete`.
fn refs(repo: &Repo, a: RefsArgs, out: &mut dyn Write) -> Result<()> {
    let aliases = repo.list_ref_aliases()?;
    if let Some(new) = &a.create {
        let [rev] = a.args.as_slice() else {
            if a.args.is_empty() {
                bail!("{}", msg::CREATE_NEEDS_REVISION);
            }
            bail!("{}", msg::TOO_MANY_ARGS);
        };
        let spec = RefSpec::parse(new)?;
        if a.alias {
            if let Some(r) = &spec.remote {
                bail!("{}", msg::alias_to_remote(r));
            }
            let target = RefSpec::parse(rev)?;
            if target.remote.is_some() || repo.read_ref(&target)?.is_none() {
                bail!("{}", msg::alias_to_missing(rev));
            }
            repo.write_ref_alias(&spec.name, &target.name)?;
            return Ok(());
        }
        let c = repo.resolve_commit(rev)?;
        if !a.force && repo.read_ref(&spec)?.is_some() {
            bail!("{}", msg::ref_exists(new));
        }
        repo.write_ref(&spec, Some(&c))?;
        return Ok(());
    }
    let all = repo.list_refs()?;
    if a.delete {
        if a.args.is_empty() {
            bail!("--delete: give at least one ref or prefix");
        }
        let matched: Vec<&RefSpec> = all
            .keys()
            .filter(|r| a.args.iter().any(|p| ref_matches(r, p)))
            .collect();
        for r in &matched {
            if r.remote.is_some() {
                continue;
            }
            let deleted = |n: &str| matched.iter().any(|m| m.remote.is_none() && m.name == n);
            if let Some((alias, _)) = aliases.iter().find(|(al, t)| **t == r.name && !deleted(al)) {
                bail!("{}", msg::ref_has_alias(&r.name, alias));
            }
        }
        for r in matched {
            repo.write_ref(r, None)?;
        }
        return Ok(());
    }
    if a.alias {
        for (al, t) in &aliases {
            if a.args.is_empty() || a.args.iter().any(|p| name_under(al, p)) {
                writeln!(out, "{al} -> {t}")?;
            }
        }
        return Ok(());
    }
    for r in all.keys() {
        if a.args.is_empty() {
            writeln!(out, "{r}")?;
            continue;
        }
        for p in &a.args {
            if !ref_matches(r, p) {
                continue;
            }
            let full = r.to_string();
            // As ostree: under a PREFIX, names print relative to it unless --list.
            let shown = match (a.list, full.strip_prefix(p.trim_end_matches('/'))) {
                (false, Some(rest)) if rest.starts_with('/') => &rest[1..],
                _ => full.as_str(),
            };
            writeln!(out, "{shown}")?;
        }
    }
    Ok(())
}

/// Whether the local ref name `n` is `prefix` or lies under it.
fn name_under(n: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    n == p || n.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
}

/// `config get|set|unset`, keys as `GROUP.NAME` or `--group=GROUP NAME`.
fn config(repo: &mut Repo, a: ConfigArgs, out: &mut dyn Write) -> Result<()> {
    let Some((action, rest)) = a.args.split_first() else {
        bail!("At least one argument required");
    };
    let want = match action.as_str() {
        "get" | "unset" => 1,
        "set" => 2,
        other => bail!("Unknown operation {other}"),
    };
    if rest.is_empty() {
        bail!("KEY must be specified");
    }
    if rest.len() > want {
        bail!("{}", msg::TOO_MANY_ARGS);
    }
    if rest.len() < want {
        bail!("VALUE must be specified");
    }
    let (group, key) = match &a.group {
        Some(g) => (g.clone(), rest[0].clone()),
        None => match rest[0].split_once('.') {
            Some((g, k)) => (g.to_owned(), k.to_owned()),
            None => bail!("{}", msg::CONFIG_KEY_FORM),
        },
    };
    let mut cfg = repo.config().clone();
    match action.as_str() {
        "get" => {
            if !cfg.has_group(&group) {
                bail!("{}", msg::keyfile_no_group(&group));
            }
            let v = cfg
                .get(&group, &key)
                .ok_or_else(|| anyhow!("{}", msg::keyfile_no_key(&group, &key)))?;
            writeln!(out, "{v}")?;
        }
        "set" => {
            cfg.set(&group, &key, &rest[1]);
            repo.write_config(cfg)?;
        }
        _ => {
            if cfg.remove_key(&group, &key) {
                repo.write_config(cfg)?;
            }
        }
    }
    Ok(())
}

fn ref_matches(r: &RefSpec, prefix: &str) -> bool {
    // `REMOTE:.` is flatpak's spelling of `REMOTE:`.
    let prefix = prefix
        .strip_suffix(":.")
        .map_or(prefix.to_owned(), |r| format!("{r}:"));
    let prefix = prefix.as_str();
    let s = r.to_string();
    s == prefix
        || s.starts_with(&format!("{prefix}/"))
        || (prefix.ends_with(':') && s.starts_with(prefix))
}

pub(crate) fn human_size(b: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if b < 1000 {
        return format!("{b} bytes");
    }
    let mut v = b as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    // g_format_size puts a no-break space between number and unit.
    format!("{v:.1}\u{a0}{unit}")
}

/// Symlinks followed at most this many times (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Where the symlink at tree path `link` (normalized) points, normalized;
/// `..` stops at the root.
fn resolve_link(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut v: Vec<&str> = link.split('/').filter(|c| !c.is_empty()).collect();
        v.pop();
        v
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn normalize(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn format_date(ts: u64) -> String {
    chrono::DateTime::from_timestamp(ts as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S +0000").to_string())
        .unwrap_or_else(|| ts.to_string())
}

fn static_delta(path: &Path, cmd: StaticDeltaCommand, out: &mut dyn Write) -> Result<()> {
    use rost_store::delta;
    let repo = open(path)?;
    match cmd {
        StaticDeltaCommand::List => {
            let deltas = rost_store::summary::list_static_deltas(&repo)?;
            if deltas.is_empty() {
                writeln!(out, "(No static deltas)")?;
            }
            for name in deltas.keys() {
                writeln!(out, "{name}")?;
            }
        }
        StaticDeltaCommand::Show { delta: name } => {
            let (from, to) = delta::parse_delta_name(&name)?;
            let sb = delta::load_superblock(&repo, from.as_ref(), &to)?;
            show_delta(&repo, &name, &sb, out)?;
        }
        StaticDeltaCommand::Delete { delta: name } => {
            let (from, to) = delta::parse_delta_name(&name)?;
            delta::delete(&repo, from.as_ref(), &to)?;
        }
        StaticDeltaCommand::Generate {
            from,
            to,
            rev,
            empty,
            inline,
            min_fallback_size,
            max_chunk_size,
            disable_bsdiff,
            if_not_exists,
        } => {
            let _ = inline;
            let Some(to) = to.or(rev) else {
                bail!("--to=REV is required");
            };
            let to_c = repo.resolve_commit(&to)?;
            let from_c = match (&from, empty) {
                (_, true) => None,
                (Some(f), false) => Some(repo.resolve_commit(f)?),
                (None, false) => Some(repo.load_commit(&to_c)?.parent.ok_or_else(|| {
                    anyhow!("commit {to_c} has no parent; use --empty or --from")
                })?),
            };
            if if_not_exists {
                let sb = format!("{}/superblock", delta::delta_dir(from_c.as_ref(), &to_c));
                if repo.path().join(sb).is_file() {
                    let name = match &from_c {
                        Some(f) => format!("{f}-{to_c}"),
                        None => to_c.to_string(),
                    };
                    writeln!(out, "Delta {name} already exists")?;
                    return Ok(());
                }
            }
            let mut opts = delta::GenerateOptions::default();
            if let Some(mb) = min_fallback_size {
                opts.min_fallback_size = mb * 1024 * 1024;
            }
            if let Some(mb) = max_chunk_size {
                opts.max_chunk_size = mb * 1024 * 1024;
            }
            opts.bsdiff = !disable_bsdiff;
            writeln!(out, "Generating static delta:")?;
            writeln!(
                out,
                "  From: {}",
                from_c
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "empty".into())
            )?;
            writeln!(out, "  To:   {to_c}")?;
            let now = chrono::Utc::now().timestamp().max(0) as u64;
            delta::generate(&repo, from_c.as_ref(), &to_c, opts, now).with_context(|| {
                format!(
                    "generating delta {}",
                    delta::delta_name(from_c.as_ref(), &to_c)
                )
            })?;
        }
        StaticDeltaCommand::ApplyOffline { path: p } => {
            delta::apply_offline(&repo, &p).with_context(|| format!("applying {}", p.display()))?;
        }
    }
    Ok(())
}

fn show_delta(
    repo: &Repo,
    name: &str,
    sb: &rost_store::delta::Superblock,
    out: &mut dyn Write,
) -> Result<()> {
    let dir = rost_store::delta::delta_dir(sb.from.as_ref(), &sb.to);
    writeln!(out, "Delta: {name}")?;
    writeln!(out, "Signed: no")?;
    match &sb.from {
        Some(f) => writeln!(out, "From: {f}")?,
        None => writeln!(out, "From <scratch>")?,
    }
    writeln!(out, "To: {}", sb.to)?;
    let endian = match sb.metadata.lookup("ostree.endianness") {
        Some(Value::Byte(b'B')) => "big",
        _ => "little",
    };
    writeln!(out, "Endianness: {endian}")?;
    writeln!(out, "Timestamp: {}", sb.timestamp)?;
    writeln!(out, "Number of parents: 0")?;
    writeln!(out, "Number of fallback entries: {}", sb.fallbacks.len())?;
    let fsize: u64 = sb.fallbacks.iter().map(|f| f.compressed_size).sum();
    let fusize: u64 = sb.fallbacks.iter().map(|f| f.uncompressed_size).sum();
    writeln!(out, "Total Fallback Size: {fsize} ({})", human_size(fsize))?;
    writeln!(
        out,
        "Total Fallback Uncompressed Size: {fusize} ({})",
        human_size(fusize)
    )?;
    writeln!(out, "Number of parts: {}", sb.parts.len())?;
    let (mut total, mut utotal) = (0u64, 0u64);
    for (i, p) in sb.parts.iter().enumerate() {
        writeln!(
            out,
            "PartMeta{i}: nobjects={} size={} usize={}",
            p.objects.len(),
            p.compressed_size,
            p.uncompressed_size
        )?;
        total += p.compressed_size;
        utotal += p.uncompressed_size;
        let rel = format!("{dir}/{i}");
        if let Ok(file) = std::fs::read(repo.path().join(&rel)) {
            let payload = rost_store::delta::decode_part(p, &file)?;
            let ty = rost_store::gvariant::Type::parse(rost_store::delta::PART_PAYLOAD_TYPE)?;
            if let Value::Tuple(m) = Value::from_bytes(&ty, &payload)? {
                let n = |v: &Value| match v {
                    Value::Array(_, items) => items.len(),
                    Value::Bytes(b) => b.len(),
                    _ => 0,
                };
                writeln!(
                    out,
                    "PartPayload{i}: nmodes={} nxattrs={} blobsize={} opsize={}",
                    n(&m[0]),
                    n(&m[1]),
                    n(&m[2]),
                    n(&m[3])
                )?;
            }
        }
    }
    writeln!(out, "Total Part Size: {total} ({})", human_size(total))?;
    writeln!(
        out,
        "Total Part Uncompressed Size: {utotal} ({})",
        human_size(utotal)
    )?;
    writeln!(
        out,
        "Total Size: {} ({})",
        total + fsize,
        human_size(total + fsize)
    )?;
    writeln!(
        out,
        "Total Uncompressed Size: {} ({})",
        utotal + fusize,
        human_size(utotal + fusize)
    )?;
    Ok(())
}

/// A progress line on stderr when it is a terminal (nothing otherwise, so
/// logs and scripts stay clean): objects, bytes, rate and ETA.
pub(crate) fn terminal_progress() -> Option<rost_store::pull::ProgressSink> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let start = std::time::Instant::now();
    Some(rost_store::pull::ProgressSink(std::sync::Arc::new(
        move |p: &rost_store::pull::PullProgress| {
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let rate = p.bytes as f64 / secs;
            let line = if p.total > 0 {
                let eta = if p.done > 0 {
                    secs * (p.total - p.done.min(p.total)) as f64 / p.done as f64
                } else {
                    0.0
                };
                format!(
                    "Receiving {}: {}/{} ({}%), {}, {}/s, ETA {:.0}s",
                    p.phase,
                    p.done,
                    p.total,
                    p.done * 100 / p.total,
                    human_size(p.bytes),
                    human_size(rate as u64),
                    eta
                )
            } else {
                format!(
                    "Receiving {}: {} objects, {}, {}/s",
                    p.phase,
                    p.done,
                    human_size(p.bytes),
                    human_size(rate as u64)
                )
            };
            let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
        },
    )))
}

fn format_iso(ts: u64) -> String {
    chrono::DateTime::from_timestamp(ts as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S+00").to_string())
        .unwrap_or_else(|| ts.to_string())
}

fn be_u64(v: &Value) -> Option<u64> {
    match v {
        Value::U64(x) => Some(u64::from_be(*x)),
        _ => None,
    }
}

fn print_summary(out: &mut dyn Write, s: &rost_store::summary::Summary) -> Result<()> {
    for r in &s.refs {
        writeln!(out, "* {}", r.name)?;
        writeln!(out, "    Latest Commit ({} bytes):", r.commit_size)?;
        writeln!(out, "      {}", r.commit)?;
        if let Some(v) = r
            .metadata
            .lookup("ostree.commit.version")
            .and_then(Value::as_str)
        {
            writeln!(out, "    Version (ostree.commit.version): {v}")?;
        }
        if let Some(t) = r
            .metadata
            .lookup("ostree.commit.timestamp")
            .and_then(be_u64)
        {
            writeln!(
                out,
                "    Timestamp (ostree.commit.timestamp): {}",
                format_iso(t)
            )?;
        }
        writeln!(out)?;
    }
    if let Value::Array(_, items) = &s.metadata {
        for it in items {
            let Value::DictEntry(k, v) = it else { continue };
            let (Some(k), Value::Variant(v)) = (k.as_str(), v.as_ref()) else {
                continue;
            };
            match k {
                "ostree.summary.mode" => writeln!(
                    out,
                    "Repository Mode (ostree.summary.mode): {}",
                    v.as_str().unwrap_or("")
                )?,
                "ostree.summary.last-modified" => writeln!(
                    out,
                    "Last-Modified (ostree.summary.last-modified): {}",
                    be_u64(v).map(format_iso).unwrap_or_default()
                )?,
                "ostree.summary.tombstone-commits" => writeln!(
                    out,
                    "Has Tombstone Commits (ostree.summary.tombstone-commits): {}",
                    if matches!(v.as_ref(), Value::Bool(true)) {
                        "Yes"
                    } else {
                        "No"
                    }
                )?,
                "ostree.static-deltas" => writeln!(
                    out,
                    "Static Deltas (ostree.static-deltas): {}",
                    v.print_annotated()
                )?,
                other => writeln!(out, "{other}: {}", v.byteswapped().print())?,
            }
        }
    }
    Ok(())
}

fn print_commit(out: &mut dyn Write, c: &Checksum, commit: &Commit) -> Result<()> {
    writeln!(out, "commit {c}")?;
    if let Some(p) = commit.parent {
        writeln!(out, "Parent:  {p}")?;
    }
    writeln!(out, "ContentChecksum:  {}", commit.content_checksum())?;
    writeln!(out, "Date:  {}", format_date(commit.timestamp))?;
    if let Some(v) = commit.version() {
        writeln!(out, "Version: {v}")?;
    }
    if commit.subject.is_empty() {
        // As ostree: no blank line before the placeholder.
        writeln!(out, "(no subject)")?;
    } else {
        writeln!(out)?;
        writeln!(out, "    {}", commit.subject)?;
    }
    writeln!(out)?;
    if !commit.body.is_empty() {
        for line in commit.body.lines() {
            writeln!(out, "    {line}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn ls_line(repo: &Repo, out: &mut dyn Write, a: &LsArgs, path: &str, node: TreeNode) -> Result<()> {
    let (ty, mode, uid, gid, size, csum, xattrs, target) = match node {
        TreeNode::Dir(t, m) => {
            let dm = repo.load_dirmeta(&m)?;
            (
                'd',
                dm.mode,
                dm.uid,
                dm.gid,
                0u64,
                format!("{t} {m}"),
                dm.xattrs,
                None,
            )
        }
        TreeNode::File(f) => {
            let obj = repo.load_file(&f)?;
            let h = obj.header;
            let ty = match h.mode & S_IFMT {
                S_IFLNK => 'l',
                S_IFDIR => 'd',
                _ => '-',
            };
            let target = if h.is_symlink() {
                Some(h.symlink_target.clone())
            } else {
                None
            };
            (
                ty,
                h.mode,
                h.uid,
                h.gid,
                obj.size,
                f.to_string(),
                h.xattrs,
                target,
            )
        }
    };
    write!(out, "{ty}{:05o} {uid} {gid} {size:6} ", mode & 0o7777)?;
    if a.checksum {
        write!(out, "{csum} ")?;
    }
    if a.xattrs {
        let v = Value::Array(
            rost_store::gvariant::Type::parse("(ayay)")?,
            xattrs
                .iter()
                .map(|(n, v)| {
                    let mut n = n.clone();
                    n.push(0);
                    Value::Tuple(vec![Value::Bytes(n), Value::Bytes(v.clone())])
                })
                .collect(),
        );
        write!(out, "{{ {} }} ", v.print_annotated())?;
    }
    write!(out, "{path}")?;
    if let Some(t) = target {
        write!(out, " -> {t}")?;
    }
    writeln!(out)?;
    Ok(())
}

fn print_ls(
    repo: &Repo,
    out: &mut dyn Write,
    a: &LsArgs,
    path: &str,
    node: TreeNode,
    top: bool,
) -> Result<()> {
    ls_line(repo, out, a, path, node)?;
    let TreeNode::Dir(t, _) = node else {
        return Ok(());
    };
    if a.dironly || (!top && !a.recursive) {
        return Ok(());
    }
    let tree = repo.load_dirtree(&t)?;
    let join = |n: &str| {
        if path == "/" {
            format!("/{n}")
        } else {
            format!("{path}/{n}")
        }
    };
    for f in &tree.files {
        ls_line(repo, out, a, &join(&f.name), TreeNode::File(f.checksum))?;
    }
    for d in &tree.dirs {
        let node = TreeNode::Dir(d.tree, d.meta);
        if a.recursive {
            print_ls(repo, out, a, &join(&d.name), node, false)?;
        } else {
            ls_line(repo, out, a, &join(&d.name), node)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_resolve_inside_the_tree() {
        assert_eq!(resolve_link("/cow-link", "baz/cow"), "/baz/cow");
        assert_eq!(resolve_link("/a/b/l", "../c"), "/a/c");
        assert_eq!(resolve_link("/a/l", "/etc/x"), "/etc/x");
        assert_eq!(resolve_link("/l", "../../x"), "/x");
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2020-01-01T00:00:00Z").unwrap(),
            1_577_836_800
        );
        assert_eq!(
            parse_timestamp("2020-01-01 00:00:00").unwrap(),
            1_577_836_800
        );
        assert_eq!(parse_timestamp("2020-01-01").unwrap(), 1_577_836_800);
        assert_eq!(parse_timestamp("@42").unwrap(), 42);
        // With a UTC offset, as libostree's tests write it.
        assert_eq!(
            parse_timestamp("2005-10-29 12:43:29 +0000").unwrap(),
            1_130_589_809
        );
        assert_eq!(
            parse_timestamp("2005-10-29 14:43:29 +0200").unwrap(),
            1_130_589_809
        );
        assert!(parse_timestamp("yesterday-ish").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(12), "12 bytes");
        assert_eq!(human_size(1500), "1.5\u{a0}kB");
    }
}
