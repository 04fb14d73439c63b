//! `rost pkg …`: RPM plumbing (headers, payloads, resolution, downloads).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use rost_rpm::header::{FileInfo, PackageHeader};

/// Subcommands of `rost pkg`.
#[derive(Debug, Subcommand)]
pub enum PkgCommand {
    /// Show a package's header summary (like `rpm -qpi`).
    Info {
        /// The RPM file.
        file: PathBuf,
        /// Print one JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// List a package's files with mode, owner and size (like `rpm -qplv`).
    Ls {
        /// The RPM file.
        file: PathBuf,
    },
    /// Extract a package's payload into a new directory (like `rpm2cpio | cpio -idm`).
    Extract {
        /// The RPM file.
        file: PathBuf,
        /// Destination directory (must not exist).
        dest: PathBuf,
    },
    /// Resolve package specs against repositories; print one NEVRA a line, sorted.
    Resolve(ResolveArgs),
    /// Resolve, then download the packages into a directory.
    Download {
        #[command(flatten)]
        resolve: ResolveArgs,
        /// Destination directory.
        #[arg(long)]
        dest: PathBuf,
    },
}

/// Options shared by `resolve` and `download`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// A dnf-style .repo file (repeatable).
    #[arg(long = "repofile", required = true)]
    repofiles: Vec<PathBuf>,
    /// Value of $releasever.
    #[arg(long, default_value = "")]
    releasever: String,
    /// Value of $basearch and the machine arch.
    #[arg(long, default_value = std::env::consts::ARCH)]
    basearch: String,
    /// Do not install weak dependencies (Recommends, Supplements).
    #[arg(long)]
    no_recommends: bool,
    /// Exclude packages by name glob (repeatable).
    #[arg(long)]
    exclude: Vec<String>,
    /// Metadata and package cache directory.
    #[arg(long)]
    cachedir: Option<PathBuf>,
    /// Package specs: names, 'name >= ver', NEVRAs, provides, file paths.
    #[arg(required = true)]
    specs: Vec<String>,
}

fn default_cachedir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rost")
}

struct Resolved {
    pool: rost_rpm::solve::Pool,
    repos: Vec<rost_rpm::metadata::LoadedRepo>,
    picked: Vec<u32>,
    cachedir: PathBuf,
}

fn resolve(args: &ResolveArgs) -> anyhow::Result<Resolved> {
    let vars = rost_rpm::repofile::RepoVars {
        releasever: args.releasever.clone(),
        basearch: args.basearch.clone(),
        arch: args.basearch.clone(),
    };
    let mut configs = Vec::new();
    for f in &args.repofiles {
        configs.extend(rost_rpm::repofile::load_repo_file(f, &vars)?);
    }
    let opts = rost_rpm::solve::SolveOptions {
        weak_deps: !args.no_recommends,
        exclude: args.exclude.clone(),
        basearch: args.basearch.clone(),
    };
    let cachedir = args.cachedir.clone().unwrap_or_else(default_cachedir);
    let files: Vec<String> = args
        .specs
        .iter()
        .filter(|s| s.starts_with('/'))
        .cloned()
        .collect();
    let (pool, repos) =
        rost_rpm::metadata::load_pool(&configs, Some(&cachedir.join("rpm-md")), &opts, &files)
            .context("loading repository metadata")?;
    let picked = rost_rpm::solve::resolve(&pool, &args.specs, &opts)?;
    Ok(Resolved {
        pool,
        repos,
        picked,
        cachedir,
    })
}

struct StderrReporter;
impl rost_rpm::download::Reporter for StderrReporter {
    fn report(&self, ev: rost_rpm::download::Progress) {
        let rost_rpm::download::Progress::Done {
            name,
            bytes,
            cached,
        } = ev
        else {
            return;
        };
        let how = if cached { " (cached)" } else { "" };
        let _ = writeln!(std::io::stderr(), "downloaded {name} {bytes} bytes{how}");
    }
}

/// Runs a `rost pkg` subcommand.
pub fn run(cmd: PkgCommand) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        PkgCommand::Info { file, json } => {
            let pkg = rost_rpm::load_package(&file)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &info_json(&pkg.header))?;
                writeln!(out)?;
            } else {
                render_info(&mut out, &pkg.header)?;
            }
        }
        PkgCommand::Ls { file } => {
            let pkg = rost_rpm::load_package(&file)?;
            let now = chrono::Utc::now().timestamp();
            let mut files: Vec<&FileInfo> = pkg.header.files.iter().collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            for f in files {
                writeln!(out, "{}", ls_line(f, now))?;
            }
        }
        PkgCommand::Extract { file, dest } => {
            let pkg = rost_rpm::load_package(&file)?;
            let report = rost_rpm::payload::extract_payload(&pkg, &dest)
                .with_context(|| format!("extracting {}", file.display()))?;
            for s in &report.skipped_special {
                tracing::warn!("special file not created: {s}");
            }
        }
        PkgCommand::Resolve(args) => {
            let r = resolve(&args)?;
            let mut lines: Vec<String> = r
                .picked
                .iter()
                .map(|&i| r.pool.packages[i as usize].nevra())
                .collect();
            lines.sort();
            for l in lines {
                writeln!(out, "{l}")?;
            }
            // The process exits next: skip tearing down the pool and the
            // packages it materialized.
            std::mem::forget(r);
        }
        PkgCommand::Download {
            resolve: args,
            dest,
        } => {
            let r = resolve(&args)?;
            let items: Vec<rost_rpm::download::DownloadItem> = r
                .picked
                .iter()
                .map(|&i| {
                    let p = &r.pool.packages[i as usize];
                    let base = &r.repos[p.repo].base;
                    rost_rpm::download::DownloadItem {
                        url: rost_rpm::download::join_url(base, &p.href),
                        name: p.href.rsplit('/').next().unwrap_or(&p.href).to_owned(),
                        checksum_type: p.checksum_type.clone(),
                        checksum: p.checksum.clone(),
                    }
                })
                .collect();
            let paths = rost_rpm::download::download_all(
                &items,
                &dest,
                Some(&r.cachedir.join("packages")),
                &StderrReporter,
            )?;
            for p in paths {
                writeln!(out, "{}", p.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn deps_json(deps: &[rost_rpm::Dependency]) -> Vec<String> {
    deps.iter().map(ToString::to_string).collect()
}

fn info_json(h: &PackageHeader) -> serde_json::Value {
    serde_json::json!({
        "name": h.name,
        "epoch": h.epoch,
        "version": h.version,
        "release": h.release,
        "arch": h.arch,
        "nevra": h.nevra(),
        "summary": h.summary,
        "description": h.description,
        "license": h.license,
        "group": h.group,
        "url": h.url,
        "vendor": h.vendor,
        "packager": h.packager,
        "buildhost": h.buildhost,
        "buildtime": h.buildtime,
        "sourcerpm": h.sourcerpm,
        "size": h.size,
        "payload_compressor": h.payload_compressor,
        "requires": deps_json(&h.requires),
        "requires_pre": deps_json(&h.requires.iter().filter(|d| d.is_pre()).cloned().collect::<Vec<_>>()),
        "requires_post": deps_json(&h.requires.iter().filter(|d| d.is_post()).cloned().collect::<Vec<_>>()),
        "provides": deps_json(&h.provides),
        "conflicts": deps_json(&h.conflicts),
        "obsoletes": deps_json(&h.obsoletes),
        "recommends": deps_json(&h.recommends),
        "suggests": deps_json(&h.suggests),
        "supplements": deps_json(&h.supplements),
        "enhances": deps_json(&h.enhances),
        "files": h.files,
        "scriptlets": h.scriptlets,
    })
}

fn fmt_time_c(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%a %b %e %H:%M:%S %Y")
                .to_string()
        })
        .unwrap_or_default()
}

fn render_info(out: &mut impl Write, h: &PackageHeader) -> std::io::Result<()> {
    let or_none = |s: &str| {
        if s.is_empty() {
            "(none)".to_owned()
        } else {
            s.to_owned()
        }
    };
    writeln!(out, "Name        : {}", h.name)?;
    if let Some(e) = h.epoch {
        writeln!(out, "Epoch       : {e}")?;
    }
    writeln!(out, "Version     : {}", h.version)?;
    writeln!(out, "Release     : {}", h.release)?;
    writeln!(out, "Architecture: {}", h.arch)?;
    writeln!(out, "Install Date: (not installed)")?;
    writeln!(out, "Group       : {}", or_none(&h.group))?;
    writeln!(out, "Size        : {}", h.size)?;
    writeln!(out, "License     : {}", h.license)?;
    writeln!(out, "Signature   : (none)")?;
    writeln!(out, "Source RPM  : {}", or_none(&h.sourcerpm))?;
    writeln!(
        out,
        "Build Date  : {}",
        fmt_time_c(i64::try_from(h.buildtime).unwrap_or(0))
    )?;
    writeln!(out, "Build Host  : {}", h.buildhost)?;
    if !h.packager.is_empty() {
        writeln!(out, "Packager    : {}", h.packager)?;
    }
    if !h.vendor.is_empty() {
        writeln!(out, "Vendor      : {}", h.vendor)?;
    }
    if !h.url.is_empty() {
        writeln!(out, "URL         : {}", h.url)?;
    }
    writeln!(out, "Summary     : {}", h.summary)?;
    writeln!(out, "Description :\n{}", h.description)?;
    Ok(())
}

/// `rwxr-xr-x`-style permission string with the type letter, as rpm prints it.
fn perms_string(mode: u32) -> String {
    use rost_rpm::header::mode::*;
    let t = match mode & S_IFMT {
        S_IFDIR => 'd',
        S_IFLNK => 'l',
        S_IFCHR => 'c',
        S_IFBLK => 'b',
        S_IFIFO => 'p',
        S_IFSOCK => 's',
        S_IFREG => '-',
        _ => '?',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let exec =
        |x: u32, special: u32, set: char, unset: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(exec(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(exec(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(exec(0o001, 0o1000, 't', 'T'));
    s
}

/// One line of `rpm -qplv` output.
fn ls_line(f: &FileInfo, now: i64) -> String {
    use rost_rpm::header::mode::*;
    let when = i64::from(f.mtime);
    let fmt = if now > when + 6 * 30 * 24 * 60 * 60 || now < when - 60 * 60 {
        "%b %e  %Y"
    } else {
        "%b %e %H:%M"
    };
    let time = chrono::DateTime::from_timestamp(when, 0)
        .map(|t| t.with_timezone(&chrono::Local).format(fmt).to_string())
        .unwrap_or_default();
    let size = match f.mode & S_IFMT {
        S_IFCHR | S_IFBLK => format!("{:3}, {:3}", (f.rdev >> 8) & 0xff, f.rdev & 0xff),
        _ => format!("{:20}", f.size),
    };
    let name = match (&f.linkto, f.is_symlink()) {
        (Some(l), true) => format!("{} -> {l}", f.path),
        _ => f.path.clone(),
    };
    let trunc8 = |s: &str| s.chars().take(8).collect::<String>();
    // rpm's query code counts a directory's "." as one more link.
    let nlink = if f.is_dir() { f.nlink + 1 } else { f.nlink };
    format!(
        "{} {:4} {:<8} {:<8} {:>10} {} {}",
        perms_string(f.mode),
        nlink,
        trunc8(&f.user),
        trunc8(&f.group),
        size,
        time,
        name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_strings() {
        let cases: &[(u32, &str)] = &[
            (0o100644, "-rw-r--r--"),
            (0o100755, "-rwxr-xr-x"),
            (0o040755, "drwxr-xr-x"),
            (0o120777, "lrwxrwxrwx"),
            (0o104755, "-rwsr-xr-x"),
            (0o102644, "-rw-r-Sr--"),
            (0o041777, "drwxrwxrwt"),
            (0o100000, "----------"),
        ];
        for &(m, want) in cases {
            assert_eq!(perms_string(m), want, "{m:o}");
        }
    }
}
