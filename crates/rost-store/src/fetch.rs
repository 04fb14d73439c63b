//! Fetching repository files from a remote: HTTP(S) or `file://`.
//!
//! The pull logic is synchronous (like the rest of the store) and asks for
//! batches of paths; the HTTP fetcher runs them on its own small tokio runtime
//! with a bounded number in flight (libostree keeps 8; we allow
//! [`MAX_IN_FLIGHT`]) over one keep-alive connection pool (rustls, HTTP/2 when
//! the server offers it). Transient failures — connection errors, resets, 5xx,
//! truncated bodies — are retried with exponential backoff; 404 is an answer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, Result};

/// Requests in flight at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// Attempts per file before giving up.
pub const MAX_ATTEMPTS: u32 = 5;
/// Largest file accepted from a remote (a bound against hostile servers).
pub const MAX_FETCH_SIZE: u64 = 4 * 1024 * 1024 * 1024;

/// Per-read stall limit: 60 s, or `ROST_HTTP_TIMEOUT_SECS` (used by tests of hung servers).
fn read_timeout() -> Duration {
    std::env::var("ROST_HTTP_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

/// Source of remote files.
pub trait Fetcher: Send + Sync + std::fmt::Debug {
    /// Fetches `paths` (relative to the remote root); `Ok(None)` is a 404.
    /// Results come back in the order of `paths`.
    fn fetch_many(&self, paths: &[String], limit: u64) -> Vec<Result<Option<Vec<u8>>>>;

    /// Fetches one path.
    fn fetch(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        self.fetch_many(&[path.to_owned()], limit)
            .pop()
            .unwrap_or(Ok(None))
    }

    /// Human-readable URL of `path`, for errors.
    fn url_of(&self, path: &str) -> String;
}

/// Creates the fetcher for a remote URL.
pub fn fetcher_for(url: &str) -> Result<Box<dyn Fetcher>> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Box::new(FileFetcher {
            root: PathBuf::from(path),
        }));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Box::new(HttpFetcher::new(url)?));
    }
    Err(Error::Other(crate::msg::invalid_uri_scheme(url)))
}

/// Reads files from a local directory (`file://` remotes).
#[derive(Debug)]
pub struct FileFetcher {
    root: PathBuf,
}

impl FileFetcher {
    /// A fetcher reading below `root`.
    pub fn new(root: &std::path::Path) -> FileFetcher {
        FileFetcher {
            root: root.to_owned(),
        }
    }
}

impl Fetcher for FileFetcher {
    fn fetch_many(&self, paths: &[String], limit: u64) -> Vec<Result<Option<Vec<u8>>>> {
        paths
            .iter()
            .map(|p| {
                let full = self.root.join(p);
                match std::fs::metadata(&full) {
                    Ok(m) if m.len() > limit => Err(Error::Other(format!(
                        "{}: {} bytes exceeds the limit of {limit}",
                        full.display(),
                        m.len()
                    ))),
                    Ok(_) => std::fs::read(&full).map(Some).map_err(|source| Error::Io {
                        op: "reading",
                        path: full,
                        source,
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(Error::Io {
                        op: "reading",
                        path: full,
                        source,
                    }),
                }
            })
            .collect()
    }

    fn url_of(&self, path: &str) -> String {
        format!("file://{}", self.root.join(path).display())
    }
}

/// Fetches over HTTP(S).
#[derive(Debug)]
pub struct HttpFetcher {
    base: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl HttpFetcher {
    /// A fetcher for the remote rooted at `base`.
    pub fn new(base: &str) -> Result<HttpFetcher> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(read_timeout())
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .user_agent(concat!("rost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Other(format!("creating HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Other(format!("creating async runtime: {e}")))?;
        Ok(HttpFetcher {
            base: base.trim_end_matches('/').to_owned(),
            client,
            rt,
        })
    }

    async fn get_once(
        client: &reqwest::Client,
        url: &str,
        limit: u64,
    ) -> std::result::Result<Option<Vec<u8>>, Attempt> {
        use futures_util::StreamExt;
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::Retry(format!("server error {status}")));
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(format!("server returned {status}")));
        }
        if let Some(len) = resp.content_length()
            && len > limit
        {
            return Err(Attempt::Fatal(format!(
                "{len} bytes exceeds the limit of {limit}"
            )));
        }
        let expected = resp.content_length();
        let mut body = Vec::with_capacity(expected.unwrap_or(0).min(limit) as usize);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Attempt::Retry(format!("reading body: {e}")))?;
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(Attempt::Fatal(format!(
                    "body exceeds the limit of {limit} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(len) = expected
            && body.len() as u64 != len
        {
            return Err(Attempt::Retry(format!(
                "truncated body: {} of {len} bytes",
                body.len()
            )));
        }
        Ok(Some(body))
    }

    async fn get(client: reqwest::Client, url: String, limit: u64) -> Result<Option<Vec<u8>>> {
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            match Self::get_once(&client, &url, limit).await {
                Ok(r) => return Ok(r),
                Err(Attempt::Fatal(msg)) => {
                    return Err(Error::Other(format!("fetching {url}: {msg}")));
                }
                Err(Attempt::Retry(msg)) => {
                    tracing::debug!(%url, attempt, %msg, "retrying");
                    last = msg;
                    if attempt < MAX_ATTEMPTS {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        }
        Err(Error::Other(format!(
            "fetching {url}: {last} (gave up after {MAX_ATTEMPTS} attempts)"
        )))
    }
}

enum Attempt {
    Retry(String),
    Fatal(String),
}

impl Fetcher for HttpFetcher {
    fn fetch_many(&self, paths: &[String], limit: u64) -> Vec<Result<Option<Vec<u8>>>> {
        let sem = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        self.rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, p) in paths.iter().enumerate() {
                let url = self.url_of(p);
                let client = self.client.clone();
                let sem = sem.clone();
                tasks.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    (i, Self::get(client, url, limit).await)
                });
            }
            let mut out: Vec<Option<Result<Option<Vec<u8>>>>> =
                (0..paths.len()).map(|_| None).collect();
            while let Some(r) = tasks.join_next().await {
                match r {
                    Ok((i, res)) => out[i] = Some(res),
                    Err(e) => return vec![Err(Error::Other(format!("fetch task failed: {e}")))],
                }
            }
            out.into_iter()
                .map(|r| r.unwrap_or_else(|| Err(Error::Other("fetch task lost".into()))))
                .collect()
        })
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}/{}", self.base, path)
    }
}
