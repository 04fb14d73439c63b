//! Boot Loader Specification entries and kernel arguments.
//!
//! Pure parsing and formatting; no I/O.

use std::cmp::Ordering;

/// Keys libostree writes first, in this order (`ostree_bootconfig_parser_write`).
const ORDERED_KEYS: [&str; 6] = [
    "title",
    "version",
    "options",
    "devicetree",
    "linux",
    "initrd",
];

/// A BLS entry: `key value` lines, keys unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootEntry {
    entries: Vec<(String, String)>,
}

impl BootEntry {
    /// Parses an entry file (`key value` per line, `#` comments).
    pub fn parse(text: &str) -> BootEntry {
        let mut e = BootEntry::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = match line.split_once([' ', '\t']) {
                Some((k, v)) => (k, v.trim_start()),
                None => (line, ""),
            };
            e.set(k, v);
        }
        e
    }

    /// Value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing an existing value in place).
    pub fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_owned(),
            None => self.entries.push((key.to_owned(), value.to_owned())),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// Serializes as libostree does: the well-known keys first in a fixed
    /// order, then the others in file order; each line ends in `\n`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for key in ORDERED_KEYS {
            if let Some(v) = self.get(key) {
                out.push_str(&format!("{key} {v}\n"));
            }
        }
        for (k, v) in &self.entries {
            if !ORDERED_KEYS.contains(&k.as_str()) {
                out.push_str(&format!("{k} {v}\n"));
            }
        }
        out
    }
}

/// Kernel command-line arguments, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelArgs {
    args: Vec<String>,
}

fn karg_key(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(k, _)| k)
}

impl KernelArgs {
    /// Splits an `options` string on whitespace.
    pub fn parse(s: &str) -> KernelArgs {
        KernelArgs {
            args: s.split_whitespace().map(str::to_owned).collect(),
        }
    }

    /// `--karg`: the first argument with the same key is replaced in place and
    /// any later ones dropped; a new key is appended.
    pub fn replace(&mut self, arg: &str) {
        let key = karg_key(arg);
        match self.args.iter().position(|a| karg_key(a) == key) {
            Some(first) => {
                self.args[first] = arg.to_owned();
                let mut i = 0;
                self.args.retain(|a| {
                    i += 1;
                    i - 1 == first || karg_key(a) != key
                });
            }
            None => self.args.push(arg.to_owned()),
        }
    }

    /// `--karg-append`: appends unconditionally.
    pub fn append(&mut self, arg: &str) {
        self.args.push(arg.to_owned());
    }

    /// `--karg-delete`: removes `key=value` exactly, or every `key` without a value.
    pub fn delete(&mut self, arg: &str) {
        if arg.contains('=') {
            if let Some(i) = self.args.iter().position(|a| a == arg) {
                self.args.remove(i);
            }
        } else {
            self.args.retain(|a| karg_key(a) != arg);
        }
    }

    /// Removes every argument with this key.
    pub fn remove_key(&mut self, key: &str) {
        self.args.retain(|a| karg_key(a) != key);
    }

    /// The value of the first argument with this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|a| karg_key(a) == key)
            .map(|a| a.split_once('=').map_or("", |(_, v)| v))
    }

    /// Joined with single spaces.
    pub fn to_string_joined(&self) -> String {
        self.args.join(" ")
    }
}

/// `strverscmp`-like ordering: digit runs compare numerically.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..na], &b[..nb]);
                let ta = trim_zeros(da);
                let tb = trim_zeros(db);
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

/// Parses os-release text (`KEY=value`, shell quoting) into pairs.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v[1..v.len() - 1]
                .replace("\\\"", "\"")
                .replace("\\\\", "\\")
        } else {
            v.to_owned()
        };
        out.push((k.to_owned(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_orders_keys() {
        let e =
            BootEntry::parse("linux /a\noptions x=1\ntitle T\nversion 2\ncustom z\ninitrd /b\n");
        assert_eq!(
            e.to_text(),
            "title T\nversion 2\noptions x=1\nlinux /a\ninitrd /b\ncustom z\n"
        );
    }

    #[test]
    fn kargs_replace_append_delete() {
        let cases: &[(&str, &str, &str)] = &[
            ("root=a quiet", "root=b", "root=b quiet"),
            ("root=a quiet root=c", "root=b", "root=b quiet"),
            ("quiet", "root=b", "quiet root=b"),
            ("a ostree=/x b", "ostree=/y", "a ostree=/y b"),
        ];
        for (start, arg, want) in cases {
            let mut k = KernelArgs::parse(start);
            k.replace(arg);
            assert_eq!(k.to_string_joined(), *want, "{start} + {arg}");
        }
        let mut k = KernelArgs::parse("console=a console=b quiet");
        k.delete("console=a");
        assert_eq!(k.to_string_joined(), "console=b quiet");
        k.delete("quiet");
        k.append("console=c");
        assert_eq!(k.to_string_joined(), "console=b console=c");
        assert_eq!(k.get("console"), Some("b"));
    }

    #[test]
    fn version_order() {
        assert_eq!(version_cmp("10", "9"), Ordering::Greater);
        assert_eq!(version_cmp("2", "2"), Ordering::Equal);
        assert_eq!(version_cmp("1", "2"), Ordering::Less);
    }

    #[test]
    fn os_release_unquotes() {
        let v = parse_os_release("ID=x\nPRETTY_NAME=\"Test OS\"\n# c\nVERSION='1'\n");
        assert_eq!(v[1], ("PRETTY_NAME".into(), "Test OS".into()));
        assert_eq!(v[2], ("VERSION".into(), "1".into()));
    }
}
