//! Test HTTP servers: real nginx on loopback, and a tiny fault-injecting one.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server on port {port} did not come up");
}

/// nginx serving `root` on 127.0.0.1; stopped on drop.
pub struct Nginx {
    child: Child,
    /// Base URL.
    pub url: String,
    prefix: PathBuf,
}

impl Nginx {
    /// Starts nginx (foreground) with a private prefix under `work`.
    pub fn start(root: &Path, work: &Path) -> Nginx {
        let prefix = work.join(format!("nginx-{}", free_port()));
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let port = free_port();
        let p = prefix.display();
        let conf = format!(
            "user root;\nworker_processes 1;\nerror_log {p}/error.log;\npid {p}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/tmp;\n  proxy_temp_path {p}/tmp;\n\
             fastcgi_temp_path {p}/tmp;\n  uwsgi_temp_path {p}/tmp;\n  scgi_temp_path {p}/tmp;\n\
             default_type application/octet-stream;\n  keepalive_requests 100000;\n\
             server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
            root.display()
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .spawn()
            .expect("starting nginx");
        wait_for(port);
        Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            prefix,
        }
    }

    /// Request paths from the access log, in order.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.prefix.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split('"')
                    .nth(1)
                    .and_then(|r| r.split_whitespace().nth(1))
                    .map(str::to_owned)
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// How the fault server answers one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Serve these bytes instead of the file.
    Replace(Vec<u8>),
    /// Promise the full length, send half, close.
    Truncate,
    /// Answer 500 this many times, then serve normally.
    FailTimes(u32),
    /// Accept and never answer.
    Hang,
}

/// A minimal HTTP/1.1 static server with per-path faults.
pub struct FaultServer {
    /// Base URL.
    pub url: String,
    stop: Arc<AtomicBool>,
    /// Count of requests served, by path.
    pub hits: Arc<Mutex<HashMap<String, u32>>>,
}

impl FaultServer {
    /// Serves `root` with `faults` applied.
    pub fn start(root: &Path, faults: HashMap<String, Fault>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let faults = Arc::new(Mutex::new(faults));
        let root = root.to_owned();
        {
            let stop = stop.clone();
            let hits = hits.clone();
            listener.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            let root = root.clone();
                            let faults = faults.clone();
                            let hits = hits.clone();
                            let stop = stop.clone();
                            std::thread::spawn(move || serve_conn(s, &root, &faults, &hits, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        FaultServer {
            url: format!("http://127.0.0.1:{port}"),
            stop,
            hits,
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_conn(
    s: TcpStream,
    root: &Path,
    faults: &Mutex<HashMap<String, Fault>>,
    hits: &Mutex<HashMap<String, u32>>,
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        // Drain headers.
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .trim_start_matches('/')
            .to_owned();
        *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let fault = {
            let mut f = faults.lock().unwrap();
            match f.get_mut(&path) {
                Some(Fault::FailTimes(n)) if *n > 0 => {
                    *n -= 1;
                    Some(Fault::FailTimes(1))
                }
                Some(Fault::FailTimes(_)) => None,
                other => other.cloned(),
            }
        };
        let body = std::fs::read(root.join(&path)).ok();
        let res = match (fault, body) {
            (Some(Fault::Hang), _) => {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            (Some(Fault::FailTimes(_)), _) => {
                w.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            }
            (Some(Fault::Replace(b)), _) => write_body(&mut w, &b),
            (Some(Fault::Truncate), Some(b)) => {
                let _ = w.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes(),
                );
                let _ = w.write_all(&b[..b.len() / 2]);
                return;
            }
            (_, Some(b)) => write_body(&mut w, &b),
            (_, None) => w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        };
        if res.is_err() {
            return;
        }
    }
}

fn write_body(w: &mut TcpStream, b: &[u8]) -> std::io::Result<()> {
    w.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes())?;
    w.write_all(b)
}
