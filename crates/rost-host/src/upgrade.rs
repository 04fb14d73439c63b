//! Moving a stateroot to another commit: `upgrade`, `deploy VERSION|CHECKSUM`
//! and `rebase [REMOTE:]REF` — one shape, three ways to pick the target.
//!
//! Order of work: take the sysroot lock; pull (commit object first, so a
//! refused downgrade or an unchanged ref costs one request); verify what the
//! remote requires (the pull checks signatures before anything is stored
//! under its name); deploy with the `/etc` merge through `rost-sysroot`, whose
//! boot-configuration swap is the single commit point. A crash before that
//! swap leaves the old default booting and only garbage that the next run
//! cleans; the booted and rollback deployments are never written to.

use rost_store::keyfile::KeyFile;
use rost_store::pull::{ProgressSink, PullOptions, PullReport};
use rost_store::refs::RefSpec;
use rost_store::{Checksum, ObjectType};
use rost_sysroot::{DeployOptions, Deployment, ORIGIN_TRANSIENT_GROUP, SysrootLock};
use serde::Serialize;

use crate::host::{CommitInfo, Host, ORIGIN_GROUP, ORIGIN_OVERRIDE_COMMIT, ORIGIN_REFSPEC};
use crate::packages::PackageDiff;
use crate::{Error, Result};

/// How far a workflow goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Depth {
    /// Fetch only the commit object and report (`--check`, `--preview`).
    Check,
    /// Fetch everything, deploy nothing (`--download-only`).
    Download,
    /// Fetch and deploy.
    #[default]
    Deploy,
}

/// Options shared by `upgrade`, `deploy` and `rebase`.
#[derive(Debug, Clone, Default)]
pub struct MoveOptions {
    /// Stateroot (default: the booted one's).
    pub osname: Option<String>,
    /// How far to go.
    pub depth: Depth,
    /// Use only what is in the local repo (`-C`, `--cache-only`).
    pub cache_only: bool,
    /// Accept a target older than the current commit (`upgrade` only).
    pub allow_downgrade: bool,
    /// Stage the deployment; the boot configuration changes at finalization.
    pub stage: bool,
    /// Pull progress.
    pub progress: Option<ProgressSink>,
}

/// What a workflow did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The target is what is already deployed (or pending).
    Unchanged,
    /// `Depth::Check`: an update is available.
    Available,
    /// `Depth::Download`: the update is in the repo.
    Downloaded,
    /// A new deployment is the default (or staged).
    Deployed,
}

/// The result of `upgrade`, `deploy` or `rebase`.
#[derive(Debug, Clone)]
pub struct MoveReport {
    /// What happened.
    pub outcome: Outcome,
    /// The booted (or default) deployment's commit: the diff starts here.
    pub from: CommitInfo,
    /// The target commit.
    pub to: CommitInfo,
    /// Package changes from `from` to `to` (None when either commit has no
    /// package list).
    pub diff: Option<PackageDiff>,
    /// The new deployment's `CSUM.SERIAL`.
    pub deployment: Option<String>,
    /// Whether it was staged.
    pub staged: bool,
    /// What the pull fetched.
    pub pull: Option<PullReport>,
}

/// Where the target comes from.
enum Target {
    /// The newest commit of the origin's refspec.
    Follow,
    /// A commit in the refspec's history with this version or checksum.
    Pick(String),
    /// Another refspec (`rebase`).
    Rebase(RefSpec),
}

impl Host {
    /// `rost upgrade`: the newest commit of the origin's refspec.
    pub fn upgrade(&mut self, opts: &MoveOptions) -> Result<MoveReport> {
        self.move_to(Target::Follow, opts, false)
    }

    /// `rost deploy VERSION|CHECKSUM`: a commit from the branch's history.
    pub fn deploy_revision(&mut self, revision: &str, opts: &MoveOptions) -> Result<MoveReport> {
        self.move_to(Target::Pick(revision.to_owned()), opts, false)
    }

    /// `rost rebase [REMOTE:]REF`: follow another branch from now on. With
    /// no remote the current one is kept; `skip_purge` keeps the old ref.
    pub fn rebase(
        &mut self,
        refspec: &str,
        opts: &MoveOptions,
        skip_purge: bool,
    ) -> Result<MoveReport> {
        let base = self.source_deployment(opts.osname.as_deref())?;
        let current = origin_refspec(&base)?;
        let spec = match refspec.split_once(':') {
            Some((remote, "")) => RefSpec {
                remote: Some(remote.to_owned()),
                name: current.name.clone(),
            },
            Some(_) => RefSpec::parse(refspec)?,
            None => RefSpec {
                remote: current.remote.clone(),
                name: RefSpec::parse(refspec)?.name,
            },
        };
        let report = self.move_to(Target::Rebase(spec.clone()), opts, true)?;
        if !skip_purge && report.outcome == Outcome::Deployed && spec != current {
            // The old branch's ref goes; the deployment refs keep its commits.
            self.sysroot.repo().write_ref(&current, None)?;
        }
        Ok(report)
    }

    /// The deployment an update starts from: the pending one if there is one
    /// (a second upgrade replaces it), else the booted (or default) one.
    fn source_deployment(&self, osname: Option<&str>) -> Result<Deployment> {
        Ok(self.source_and_running(osname)?.0)
    }

    /// The source deployment (see [`Host::source_deployment`]) and the
    /// running (or default) one, from one look at the roles.
    fn source_and_running(&self, osname: Option<&str>) -> Result<(Deployment, Deployment)> {
        let roles = self.roles(osname);
        let running = roles.booted.ok_or_else(|| Error::NoDeployment {
            sysroot: self.sysroot.path().display().to_string(),
        })?;
        Ok((roles.pending.unwrap_or_else(|| running.clone()), running))
    }

    fn move_to(&mut self, target: Target, opts: &MoveOptions, rebase: bool) -> Result<MoveReport> {
        let lock = self.sysroot.lock()?;
        // `running`: what runs now (or boots by default); the diff users see
        // starts there, even when a pending deployment is what gets replaced.
        let (base, running) = self.source_and_running(opts.osname.as_deref())?;
        let spec = match &target {
            Target::Rebase(s) => s.clone(),
            _ => origin_refspec(&base)?,
        };
        let from = CommitInfo::load(self.sysroot.repo(), &running.csum)?;
        let source_time = self.sysroot.repo().load_commit(&base.csum)?.timestamp;
        let (csum, pull) = self.fetch_target(&target, &spec, opts)?;
        let repo = self.sysroot.repo();
        let to = if repo.has_object(ObjectType::Commit, &csum)? {
            CommitInfo::load(repo, &csum)?
        } else {
            return Err(Error::Refused(format!(
                "commit {csum} of {} is not in the local repository (run without --cache-only)",
                spec_text(&spec)
            )));
        };
        let diff = match (&from.packages, &to.packages) {
            (Some(a), Some(b)) => Some(PackageDiff::compute(a, b)),
            _ => None,
        };
        let mut report = MoveReport {
            outcome: Outcome::Unchanged,
            from,
            to,
            diff,
            deployment: None,
            staged: false,
            pull,
        };
        let same_origin = !rebase || origin_refspec(&base).is_ok_and(|s| s == spec);
        if csum == base.csum && same_origin {
            return Ok(report);
        }
        if matches!(target, Target::Follow)
            && !opts.allow_downgrade
            && report.to.timestamp < source_time
        {
            return Err(Error::Downgrade {
                target: csum.to_hex(),
                target_time: iso8601(report.to.timestamp),
                current: base.csum.to_hex(),
                current_time: iso8601(source_time),
            });
        }
        match opts.depth {
            Depth::Check => {
                report.outcome = Outcome::Available;
                return Ok(report);
            }
            Depth::Download => {
                report.outcome = Outcome::Downloaded;
                return Ok(report);
            }
            Depth::Deploy => {}
        }
        let origin = new_origin(
            &base,
            &spec,
            matches!(target, Target::Pick(_)).then_some(&csum),
        );
        let dopts = DeployOptions {
            osname: Some(base.osname.clone()),
            rev: csum.to_hex(),
            origin: Some(origin),
            ..Default::default()
        };
        let name = self.deploy_locked(&lock, &dopts, opts.stage)?;
        report.outcome = Outcome::Deployed;
        report.deployment = Some(name);
        report.staged = opts.stage;
        Ok(report)
    }

    fn deploy_locked(
        &mut self,
        lock: &SysrootLock,
        dopts: &DeployOptions,
        stage: bool,
    ) -> Result<String> {
        if stage {
            return Ok(self.sysroot.stage(lock, dopts)?);
        }
        // Replacing a staged deployment with a direct one: drop the record so
        // finalization cannot resurrect it.
        self.sysroot.unstage(lock)?;
        Ok(self.sysroot.deploy(lock, dopts)?.name)
    }

    /// Resolves (and unless cache-only, pulls) the target commit.
    fn fetch_target(
        &self,
        target: &Target,
        spec: &RefSpec,
        opts: &MoveOptions,
    ) -> Result<(Checksum, Option<PullReport>)> {
        let repo = self.sysroot.repo();
        let metadata_only = opts.depth == Depth::Check;
        let Some(remote) = spec.remote.as_deref().filter(|_| !opts.cache_only) else {
            // A local branch, or --cache-only: what the repo has.
            let csum = match target {
                Target::Pick(rev) => self.find_in_history(spec, rev)?,
                _ => repo.resolve_commit(&spec_text(spec))?,
            };
            return Ok((csum, None));
        };
        let pull_opts = |metadata: bool, depth: i64| PullOptions {
            commit_metadata_only: metadata,
            depth,
            progress: opts.progress.clone(),
            ..Default::default()
        };
        match target {
            Target::Follow | Target::Rebase(_) => {
                let rep = rost_store::pull::pull(
                    repo,
                    remote,
                    std::slice::from_ref(&spec.name),
                    &pull_opts(metadata_only, 0),
                )?;
                let csum = rep.refs.first().map(|(_, c)| *c).ok_or_else(|| {
                    Error::Refused(format!("pull of {} gave no commit", spec_text(spec)))
                })?;
                Ok((csum, Some(rep)))
            }
            Target::Pick(rev) => {
                // The branch's history, commit objects only, then the one commit.
                let mut rep = rost_store::pull::pull(
                    repo,
                    remote,
                    std::slice::from_ref(&spec.name),
                    &pull_opts(true, -1),
                )?;
                let csum = self.find_in_history(spec, rev)?;
                if !metadata_only {
                    let full = rost_store::pull::pull(
                        repo,
                        remote,
                        &[csum.to_hex()],
                        &pull_opts(false, 0),
                    )?;
                    rep.metadata_fetched += full.metadata_fetched;
                    rep.content_fetched += full.content_fetched;
                    rep.bytes_fetched += full.bytes_fetched;
                    rep.deltas_applied += full.deltas_applied;
                }
                Ok((csum, Some(rep)))
            }
        }
    }

    /// Walks the local history of `spec` for a commit whose checksum (or
    /// `version` metadata) is `rev`.
    fn find_in_history(&self, spec: &RefSpec, rev: &str) -> Result<Checksum> {
        let repo = self.sysroot.repo();
        let head = repo.resolve_commit(&spec_text(spec))?;
        let by_csum = Checksum::is_valid_hex(rev);
        let mut cur = Some(head);
        while let Some(c) = cur {
            if by_csum && c.to_hex() == rev {
                return Ok(c);
            }
            if !repo.has_object(ObjectType::Commit, &c)? {
                break;
            }
            let commit = repo.load_commit(&c)?;
            if !by_csum && commit.version() == Some(rev) {
                return Ok(c);
            }
            cur = commit.parent;
        }
        Err(Error::NotInHistory {
            what: if by_csum {
                format!("commit {rev}")
            } else {
                format!("version {rev}")
            },
            refspec: spec_text(spec),
        })
    }
}

/// The refspec a deployment follows.
fn origin_refspec(d: &Deployment) -> Result<RefSpec> {
    let s = d
        .origin
        .as_ref()
        .and_then(|o| {
            o.get(ORIGIN_GROUP, ORIGIN_REFSPEC)
                .or_else(|| o.get(ORIGIN_GROUP, "baserefspec"))
        })
        .ok_or_else(|| Error::NoRefspec {
            deployment: d.name(),
        })?;
    Ok(RefSpec::parse(s)?)
}

fn spec_text(s: &RefSpec) -> String {
    match &s.remote {
        Some(r) => format!("{r}:{}", s.name),
        None => s.name.clone(),
    }
}

/// The base's origin, following `spec`, with `override-commit` set for an
/// explicit `deploy` and cleared otherwise, and without the transient pin.
fn new_origin(base: &Deployment, spec: &RefSpec, pin: Option<&Checksum>) -> KeyFile {
    let mut o = base.origin.clone().unwrap_or_default();
    o.remove_group(ORIGIN_TRANSIENT_GROUP);
    o.set(ORIGIN_GROUP, ORIGIN_REFSPEC, &spec_text(spec));
    match pin {
        Some(c) => o.set(ORIGIN_GROUP, ORIGIN_OVERRIDE_COMMIT, &c.to_hex()),
        None => {
            o.remove_key(ORIGIN_GROUP, ORIGIN_OVERRIDE_COMMIT);
        }
    }
    o
}

/// `2024-05-01T12:00:00Z`, as rpm-ostree prints commit times.
pub fn iso8601(ts: u64) -> String {
    i64::try_from(ts)
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "(invalid timestamp)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(iso8601(u64::MAX), "(invalid timestamp)");
    }
}
