//! `rost serve`: a static HTTP/1.1 file server for an archive repository.
//!
//! For quick setups and tests only — production fleets use any web server or
//! CDN, since a repository is plain static files. Hand-written on std threads
//! rather than pulling in a server framework: it answers GET and HEAD for files
//! below the root (never outside it, never a directory listing), keeps
//! connections alive, and nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// Longest request line or header line accepted.
const MAX_LINE: usize = 8192;

/// Serves `root` on `addr` until the process ends. Calls `on_ready` with the
/// bound address (useful with port 0).
pub fn serve(root: &Path, addr: &str, on_ready: &dyn Fn(std::net::SocketAddr)) -> Result<()> {
    let listener =
        TcpListener::bind(addr).map_err(|e| Error::Other(format!("binding {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Other(format!("binding {addr}: {e}")))?;
    on_ready(local);
    let root = root.to_owned();
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let root = root.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &root);
        });
    }
    Ok(())
}

/// Maps a request path to a file below `root`; `None` if it tries to escape.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let mut out = root.to_owned();
    for c in Path::new(&decoded).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            // `+` stays `+`: delta paths contain it.
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn read_line(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    let n = r.by_ref().take(MAX_LINE as u64).read_line(&mut line)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

fn handle(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    loop {
        let Some(request) = read_line(&mut reader)? else {
            return Ok(());
        };
        let mut keep_alive = true;
        loop {
            let Some(h) = read_line(&mut reader)? else {
                return Ok(());
            };
            if h.is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("connection:")
                && h.to_ascii_lowercase().contains("close")
            {
                keep_alive = false;
            }
        }
        let mut parts = request.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        if method != "GET" && method != "HEAD" {
            w.write_all(
                b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n\r\n",
            )?;
            continue;
        }
        let file = resolve(root, target).filter(|p| p.is_file());
        match file.and_then(|p| std::fs::File::open(p).ok()) {
            Some(mut f) => {
                let len = f.metadata()?.len();
                write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
                )?;
                if method == "GET" {
                    std::io::copy(&mut f, &mut w)?;
                }
            }
            None => w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
        }
        w.flush()?;
        if !keep_alive {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_the_root() {
        let r = Path::new("/srv/repo");
        assert_eq!(
            resolve(r, "/objects/ab/cd.filez"),
            Some(PathBuf::from("/srv/repo/objects/ab/cd.filez"))
        );
        assert_eq!(
            resolve(r, "/deltas/a+b/superblock"),
            Some(PathBuf::from("/srv/repo/deltas/a+b/superblock"))
        );
        assert_eq!(
            resolve(r, "/config?x=1"),
            Some(PathBuf::from("/srv/repo/config"))
        );
        for bad in [
            "/../etc/passwd",
            "/objects/%2e%2e/%2e%2e/x",
            "/a/../../b",
            "/%zz",
        ] {
            assert_eq!(resolve(r, bad), None, "{bad}");
        }
    }
}
