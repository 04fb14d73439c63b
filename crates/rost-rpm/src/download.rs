//! Fetching: `file://` without network, `http(s)://` through reqwest on rustls
//! (ring provider, never openssl). Package downloads run in parallel (bounded
//! window), resume `.part` files with a Range request, are verified against the
//! metadata checksum before they get their final name, and are cached by checksum.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// Parallel downloads at once (libostree uses 8; mirrors dislike more).
pub const FETCH_WINDOW: usize = 4;

/// Progress events of a download batch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Progress {
    /// A file is complete (from network, resume or cache).
    Done {
        /// File name.
        name: String,
        /// Bytes.
        bytes: u64,
        /// Whether it came from the cache.
        cached: bool,
    },
}

/// Receives [`Progress`] events; must be cheap.
pub trait Reporter: Send + Sync {
    /// Called per event.
    fn report(&self, ev: Progress);
}

/// A reporter that ignores everything.
#[derive(Debug, Default)]
pub struct NoReporter;
impl Reporter for NoReporter {
    fn report(&self, _: Progress) {}
}

/// The local path of a `file://` URL, if it is one.
pub fn file_url_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("file://").map(PathBuf::from)
}

/// Joins a repo base URL and a relative href.
pub fn join_url(base: &str, href: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{href}")
    } else {
        format!("{base}/{href}")
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the HTTP runtime", "", e))
}

fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("rost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Http {
            url: String::new(),
            reason: e.to_string(),
        })
}

/// Fetches a whole (small) file into memory.
pub fn fetch_bytes(url: &str) -> Result<Vec<u8>> {
    if let Some(p) = file_url_path(url) {
        return std::fs::read(&p).map_err(|e| Error::io("reading", p, e));
    }
    let rt = runtime()?;
    rt.block_on(async {
        let c = client()?;
        let http = |e: reqwest::Error| Error::Http {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let resp = c.get(url).send().await.map_err(http)?;
        let resp = resp.error_for_status().map_err(http)?;
        Ok(resp.bytes().await.map_err(http)?.to_vec())
    })
}

/// One file to download.
#[derive(Debug, Clone)]
pub struct DownloadItem {
    /// Source URL.
    pub url: String,
    /// Final file name in the destination directory.
    pub name: String,
    /// Checksum type (`sha256`, …).
    pub checksum_type: String,
    /// Expected checksum (hex).
    pub checksum: String,
}

fn hash_file(kind: &str, path: &Path) -> Result<String> {
    let data = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    crate::repomd::checksum_hex(kind, &data).ok_or_else(|| Error::Parse {
        file: path.display().to_string(),
        line: 0,
        reason: format!("unsupported checksum type {kind:?}"),
    })
}

fn publish(tmp: &Path, dest: &Path, item: &DownloadItem) -> Result<()> {
    let actual = hash_file(&item.checksum_type, tmp)?;
    if !actual.eq_ignore_ascii_case(&item.checksum) {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::ChecksumMismatch {
            what: item.url.clone(),
            expected: item.checksum.clone(),
            actual,
        });
    }
    std::fs::rename(tmp, dest).map_err(|e| Error::io("renaming into place", dest, e))
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let tmp = to.with_extension("part");
    std::fs::copy(from, &tmp).map_err(|e| Error::io("copying", from, e))?;
    std::fs::rename(&tmp, to).map_err(|e| Error::io("renaming into place", to, e))
}

async fn fetch_one(client: &reqwest::Client, item: &DownloadItem, part: &Path) -> Result<()> {
    let http = |e: reqwest::Error| Error::Http {
        url: item.url.clone(),
        reason: e.to_string(),
    };
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = client.get(&item.url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut resp = req
        .send()
        .await
        .map_err(http)?
        .error_for_status()
        .map_err(http)?;
    let append = have > 0 && resp.status() == reqwest::StatusCode::PARTIAL_CONTENT;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(part)
        .map_err(|e| Error::io("opening", part, e))?;
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        f.write_all(&chunk)
            .map_err(|e| Error::io("writing", part, e))?;
    }
    f.sync_all().map_err(|e| Error::io("syncing", part, e))?;
    Ok(())
}

/// Downloads `items` into `dest`, using `cache` (a directory of `<checksum>` files)
/// when given. Returns the final paths in input order.
pub fn download_all(
    items: &[DownloadItem],
    dest: &Path,
    cache: Option<&Path>,
    reporter: &dyn Reporter,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io("creating directory", dest, e))?;
    if let Some(c) = cache {
        std::fs::create_dir_all(c).map_err(|e| Error::io("creating directory", c, e))?;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut remote: Vec<(usize, DownloadItem)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.name.contains('/') || item.name.starts_with('.') || item.name.is_empty() {
            return Err(Error::corrupt(&item.name, "unsafe package file name"));
        }
        let final_path = dest.join(&item.name);
        out.push(final_path.clone());
        if std::fs::symlink_metadata(&final_path).is_ok()
            && hash_file(&item.checksum_type, &final_path)
                .is_ok_and(|h| h.eq_ignore_ascii_case(&item.checksum))
        {
            reporter.report(Progress::Done {
                name: item.name.clone(),
                bytes: 0,
                cached: true,
            });
            continue;
        }
        let cached = cache.map(|c| c.join(item.checksum.to_ascii_lowercase()));
        if let Some(c) = &cached
            && c.is_file()
        {
            link_or_copy(c, &final_path)?;
            reporter.report(Progress::Done {
                name: item.name.clone(),
                bytes: 0,
                cached: true,
            });
            continue;
        }
        if let Some(src) = file_url_path(&item.url) {
            let part = dest.join(format!(".{}.part", item.name));
            std::fs::copy(&src, &part).map_err(|e| Error::io("copying", &src, e))?;
            publish(&part, &final_path, item)?;
            if let Some(c) = &cached {
                let _ = link_or_copy(&final_path, c);
            }
            reporter.report(Progress::Done {
                name: item.name.clone(),
                bytes: std::fs::metadata(&final_path).map(|m| m.len()).unwrap_or(0),
                cached: false,
            });
        } else {
            remote.push((i, item.clone()));
        }
    }
    if remote.is_empty() {
        return Ok(out);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let client = client()?;
        let sem = Arc::new(tokio::sync::Semaphore::new(FETCH_WINDOW));
        let mut set = tokio::task::JoinSet::new();
        for (_, item) in remote {
            let client = client.clone();
            let sem = sem.clone();
            let dest = dest.to_path_buf();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let part = dest.join(format!(".{}.part", item.name));
                fetch_one(&client, &item, &part).await?;
                let final_path = dest.join(&item.name);
                publish(&part, &final_path, &item)?;
                Ok::<_, Error>(item)
            });
        }
        while let Some(res) = set.join_next().await {
            let item = res.map_err(|e| Error::Http {
                url: String::new(),
                reason: e.to_string(),
            })??;
            let final_path = dest.join(&item.name);
            if let Some(c) = cache {
                let _ = link_or_copy(&final_path, &c.join(item.checksum.to_ascii_lowercase()));
            }
            reporter.report(Progress::Done {
                bytes: std::fs::metadata(&final_path).map(|m| m.len()).unwrap_or(0),
                name: item.name,
                cached: false,
            });
        }
        Ok::<_, Error>(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn url_helpers() {
        assert_eq!(join_url("file:///r", "a/b.rpm"), "file:///r/a/b.rpm");
        assert_eq!(join_url("http://h/r/", "x"), "http://h/r/x");
        assert_eq!(
            file_url_path("file:///tmp/x"),
            Some(PathBuf::from("/tmp/x"))
        );
        assert_eq!(file_url_path("http://h/x"), None);
    }

    #[test]
    fn file_downloads_verify_and_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src.rpm");
        std::fs::write(&src, b"package bytes").unwrap();
        let good = hex::encode(sha2::Sha256::digest(b"package bytes"));
        let item = |name: &str, sum: &str| DownloadItem {
            url: format!("file://{}", src.display()),
            name: name.into(),
            checksum_type: "sha256".into(),
            checksum: sum.into(),
        };
        let dest = tmp.path().join("dest");
        let cache = tmp.path().join("cache");
        let got = download_all(&[item("a.rpm", &good)], &dest, Some(&cache), &NoReporter).unwrap();
        assert_eq!(std::fs::read(&got[0]).unwrap(), b"package bytes");
        assert!(cache.join(&good).is_file());
        let err =
            download_all(&[item("b.rpm", &"0".repeat(64))], &dest, None, &NoReporter).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(
            !dest.join("b.rpm").exists(),
            "a bad file must never get its final name"
        );
        assert!(download_all(&[item("../x.rpm", &good)], &dest, None, &NoReporter).is_err());
    }
}
