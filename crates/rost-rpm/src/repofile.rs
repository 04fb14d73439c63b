//! dnf-style `.repo` files (INI): sections are repositories.
//!
//! Hand-written: the format is a few dozen lines of INI with dnf's quirks
//! (continuation lines for URL lists, `$var` substitution, boolean spellings,
//! `metadata_expire` suffixes), not worth an INI crate that knows none of them.

use std::path::Path;

use crate::error::{Error, Result};

/// Values substituted into `.repo` files.
#[derive(Debug, Clone, Default)]
pub struct RepoVars {
    /// `$releasever`.
    pub releasever: String,
    /// `$basearch` (e.g. `x86_64`).
    pub basearch: String,
    /// `$arch` (defaults to basearch).
    pub arch: String,
}

impl RepoVars {
    /// Replaces `$releasever`, `$basearch`, `$arch` (also `${name}` forms).
    pub fn substitute(&self, s: &str) -> String {
        let arch = if self.arch.is_empty() {
            &self.basearch
        } else {
            &self.arch
        };
        let mut out = s.to_owned();
        for (k, v) in [
            ("releasever", self.releasever.as_str()),
            ("basearch", self.basearch.as_str()),
            ("arch", arch.as_str()),
        ] {
            out = out.replace(&format!("${{{k}}}"), v);
            out = out.replace(&format!("${k}"), v);
        }
        out
    }
}

/// One `[id]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    /// Section name.
    pub id: String,
    /// `name=` (defaults to the id).
    pub name: String,
    /// `baseurl=` URLs (file://, http://, https://), substituted.
    pub baseurl: Vec<String>,
    /// `metalink=` (parsed; baseurl is preferred).
    pub metalink: Option<String>,
    /// `mirrorlist=` (parsed; baseurl is preferred).
    pub mirrorlist: Option<String>,
    /// `enabled=` (default true).
    pub enabled: bool,
    /// `gpgcheck=` (default false, as dnf's own default).
    pub gpgcheck: bool,
    /// `gpgkey=` URLs.
    pub gpgkey: Vec<String>,
    /// `priority=` (default 99; lower wins).
    pub priority: i32,
    /// `cost=` (default 1000; lower wins among equal packages).
    pub cost: i32,
    /// `exclude=` / `excludepkgs=` globs.
    pub exclude: Vec<String>,
    /// `includepkgs=` globs (empty: everything).
    pub includepkgs: Vec<String>,
    /// `metadata_expire=` in seconds; `None` = never expires.
    pub metadata_expire: Option<u64>,
}

impl RepoConfig {
    fn new(id: &str) -> Self {
        RepoConfig {
            id: id.to_owned(),
            name: id.to_owned(),
            baseurl: Vec::new(),
            metalink: None,
            mirrorlist: None,
            enabled: true,
            gpgcheck: false,
            gpgkey: Vec::new(),
            priority: 99,
            cost: 1000,
            exclude: Vec::new(),
            includepkgs: Vec::new(),
            metadata_expire: Some(48 * 3600),
        }
    }

    /// Whether a package name passes this repo's `exclude`/`includepkgs`.
    pub fn admits(&self, name: &str) -> bool {
        if self.exclude.iter().any(|g| glob_match(g, name)) {
            return false;
        }
        self.includepkgs.is_empty() || self.includepkgs.iter().any(|g| glob_match(g, name))
    }
}

/// Shell-style glob (`*`, `?`, `[abc]`) as dnf uses for exclude lists.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len()).any(|i| rec(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && rec(&p[1..], &s[1..]),
            Some(b'[') => {
                let Some(end) = p.iter().position(|&c| c == b']') else {
                    return s.first() == Some(&b'[') && rec(&p[1..], &s[1..]);
                };
                let Some(&c) = s.first() else { return false };
                let set = &p[1..end];
                let (neg, set) = match set.first() {
                    Some(b'!') | Some(b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != neg && rec(&p[end + 1..], &s[1..])
            }
            Some(&c) => s.first() == Some(&c) && rec(&p[1..], &s[1..]),
        }
    }
    rec(pattern.as_bytes(), s.as_bytes())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_expire(v: &str) -> Option<Option<u64>> {
    let v = v.trim();
    if v == "never" || v == "-1" {
        return Some(None);
    }
    let (num, mult) = match v.chars().last()? {
        's' => (&v[..v.len() - 1], 1),
        'm' => (&v[..v.len() - 1], 60),
        'h' => (&v[..v.len() - 1], 3600),
        'd' => (&v[..v.len() - 1], 86400),
        _ => (v, 1),
    };
    num.trim().parse::<u64>().ok().map(|n| Some(n * mult))
}

/// `(line, key, value)` of one setting.
type KeyValue = (usize, String, String);

/// Parses the text of a `.repo` file. `file` names it in errors.
pub fn parse_repo_file(text: &str, file: &str, vars: &RepoVars) -> Result<Vec<RepoConfig>> {
    let err = |line: usize, reason: String| Error::Parse {
        file: file.to_owned(),
        line,
        reason,
    };
    // First pass: join continuation lines into (line number, key, value).
    let mut sections: Vec<(usize, String, Vec<KeyValue>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            if let Some((_, _, kvs)) = sections.last_mut()
                && let Some(last) = kvs.last_mut()
            {
                last.2.push('\n');
                last.2.push_str(trimmed);
                continue;
            }
            return Err(err(lineno, "continuation line without a key".into()));
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let id = rest
                .strip_suffix(']')
                .ok_or_else(|| err(lineno, format!("unterminated section header {trimmed:?}")))?
                .trim();
            if id.is_empty() {
                return Err(err(lineno, "empty section name".into()));
            }
            sections.push((lineno, id.to_owned(), Vec::new()));
            continue;
        }
        let (k, v) = trimmed
            .split_once('=')
            .ok_or_else(|| err(lineno, format!("expected key=value, got {trimmed:?}")))?;
        let Some((_, _, kvs)) = sections.last_mut() else {
            return Err(err(lineno, "key outside of a [section]".into()));
        };
        kvs.push((lineno, k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut out = Vec::new();
    for (_, id, kvs) in sections {
        if id == "main" {
            continue;
        }
        let mut r = RepoConfig::new(&vars.substitute(&id));
        for (lineno, k, v) in kvs {
            let v = vars.substitute(&v);
            match k.as_str() {
                "name" => r.name = v,
                "baseurl" => r.baseurl = split_list(&v),
                "metalink" => r.metalink = Some(v),
                "mirrorlist" => r.mirrorlist = Some(v),
                "enabled" | "gpgcheck" => {
                    let b = parse_bool(&v).ok_or_else(|| {
                        err(lineno, format!("{k}: expected a boolean, got {v:?}"))
                    })?;
                    if k == "enabled" {
                        r.enabled = b;
                    } else {
                        r.gpgcheck = b;
                    }
                }
                "gpgkey" => r.gpgkey = split_list(&v),
                "priority" | "cost" => {
                    let n: i32 = v
                        .parse()
                        .map_err(|_| err(lineno, format!("{k}: expected an integer, got {v:?}")))?;
                    if k == "priority" {
                        r.priority = n;
                    } else {
                        r.cost = n;
                    }
                }
                "exclude" | "excludepkgs" => r.exclude.extend(split_list(&v)),
                "includepkgs" => r.includepkgs.extend(split_list(&v)),
                "metadata_expire" => {
                    r.metadata_expire = parse_expire(&v).ok_or_else(|| {
                        err(lineno, format!("metadata_expire: bad duration {v:?}"))
                    })?;
                }
                _ => tracing::debug!("{file}:{lineno}: ignoring key {k}"),
            }
        }
        if r.baseurl.is_empty() && r.metalink.is_none() && r.mirrorlist.is_none() {
            return Err(err(
                0,
                format!("repo {}: no baseurl, metalink or mirrorlist", r.id),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// Reads and parses a `.repo` file.
pub fn load_repo_file(path: &Path, vars: &RepoVars) -> Result<Vec<RepoConfig>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    parse_repo_file(&text, &path.display().to_string(), vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> RepoVars {
        RepoVars {
            releasever: "40".into(),
            basearch: "x86_64".into(),
            arch: String::new(),
        }
    }

    #[test]
    fn parses_fedora_style_file() {
        let text = "\
[main]
gpgcheck=1

# comment
[fedora]
name=Fedora $releasever - $basearch
baseurl=http://example.invalid/$releasever/$arch/os/
  https://mirror.invalid/${releasever}/$basearch/
metalink=https://mirrors.invalid/metalink?repo=fedora-$releasever&arch=$basearch
enabled=1
gpgcheck=yes
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch
priority=10
cost=500
exclude=kernel* foo,bar
metadata_expire=7d

[updates]
mirrorlist=https://mirrors.invalid/list
enabled=false
includepkgs=a*
metadata_expire=never
";
        let repos = parse_repo_file(text, "f.repo", &vars()).unwrap();
        assert_eq!(repos.len(), 2);
        let f = &repos[0];
        assert_eq!(f.id, "fedora");
        assert_eq!(f.name, "Fedora 40 - x86_64");
        assert_eq!(
            f.baseurl,
            [
                "http://example.invalid/40/x86_64/os/",
                "https://mirror.invalid/40/x86_64/"
            ]
        );
        assert!(f.metalink.as_deref().unwrap().contains("repo=fedora-40"));
        assert!(f.enabled && f.gpgcheck);
        assert_eq!(f.priority, 10);
        assert_eq!(f.cost, 500);
        assert_eq!(f.exclude, ["kernel*", "foo", "bar"]);
        assert_eq!(f.metadata_expire, Some(7 * 86400));
        assert!(!f.admits("kernel-core") && !f.admits("foo") && f.admits("food"));
        let u = &repos[1];
        assert!(!u.enabled);
        assert_eq!(u.priority, 99);
        assert_eq!(u.cost, 1000);
        assert_eq!(u.metadata_expire, None);
        assert!(u.admits("abc") && !u.admits("bcd"));
    }

    #[test]
    fn rejects_malformed_files_with_line_numbers() {
        let cases: &[(&str, &str)] = &[
            ("[x\nbaseurl=a", "f.repo:1"),
            ("baseurl=a", "f.repo:1"),
            ("[x]\nbaseurl=a\nenabled=maybe", "f.repo:3"),
            ("[x]\nbaseurl=a\npriority=high", "f.repo:3"),
            ("[x]\nname=only", "no baseurl"),
            ("[x]\nbaseurl=a\njunk", "f.repo:3"),
        ];
        for &(text, want) in cases {
            let e = parse_repo_file(text, "f.repo", &vars()).unwrap_err();
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn globs() {
        let cases: &[(&str, &str, bool)] = &[
            ("kernel*", "kernel-core", true),
            ("kernel*", "xkernel", false),
            ("?oo", "foo", true),
            ("f[a-o]o", "foo", true),
            ("f[!o]o", "foo", false),
            ("foo", "foo", true),
            ("*", "", true),
        ];
        for &(p, s, want) in cases {
            assert_eq!(glob_match(p, s), want, "{p} {s}");
        }
    }
}
