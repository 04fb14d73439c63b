//! GKeyFile-style INI files: the repo `config`, `.origin` files, remotes.
//!
//! Hand-written: the format is tiny, and we must write it back the way GLib does
//! (`[group]`, `key=value`, a blank line between groups, comments kept) so that
//! the real `ostree` and users' diffs see no churn. Generic INI crates normalise
//! whitespace or drop comments.

/// One `[group]` with its lines in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Group name, without brackets.
    pub name: String,
    /// `key=value` entries in file order (comments are kept as entries with a `#` key).
    entries: Vec<(String, String)>,
}

/// A parsed key file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFile {
    groups: Vec<Group>,
}

impl KeyFile {
    /// Parses text; the error names the 1-based line.
    pub fn parse(text: &str) -> Result<KeyFile, String> {
        let mut kf = KeyFile::default();
        let mut pending_comments: Vec<String> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            let trimmed = line.trim_start();
            if trimmed.is_empty() {
                continue;
            }
            if trimmed.starts_with('#') {
                pending_comments.push(line.to_owned());
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {}: group header lacks ']'", i + 1))?;
                let mut g = Group {
                    name: name.to_owned(),
                    entries: Vec::new(),
                };
                g.entries
                    .extend(pending_comments.drain(..).map(|c| ("#".to_owned(), c)));
                kf.groups.push(g);
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!(
                    "line {}: expected key=value, found {line:?}",
                    i + 1
                ));
            };
            let g = kf
                .groups
                .last_mut()
                .ok_or_else(|| format!("line {}: key outside of any group", i + 1))?;
            g.entries
                .extend(pending_comments.drain(..).map(|c| ("#".to_owned(), c)));
            g.entries
                .push((k.trim().to_owned(), v.trim_start().to_owned()));
        }
        Ok(kf)
    }

    /// Looks up a value.
    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        self.groups
            .iter()
            .filter(|g| g.name == group)
            .flat_map(|g| g.entries.iter())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .next_back()
    }

    /// Looks up a boolean (`true`/`false`, also `1`/`0`).
    pub fn get_bool(&self, group: &str, key: &str) -> Option<bool> {
        match self.get(group, key)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }

    /// Sets a value, creating the group at the end if needed.
    pub fn set(&mut self, group: &str, key: &str, value: &str) {
        let g = match self.groups.iter().position(|g| g.name == group) {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(Group {
                    name: group.to_owned(),
                    entries: Vec::new(),
                });
                let last = self.groups.len() - 1;
                &mut self.groups[last]
            }
        };
        match g.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_owned(),
            None => g.entries.push((key.to_owned(), value.to_owned())),
        }
    }

    /// Removes a key; returns whether it was present.
    pub fn remove_key(&mut self, group: &str, key: &str) -> bool {
        let mut found = false;
        for g in self.groups.iter_mut().filter(|g| g.name == group) {
            let before = g.entries.len();
            g.entries.retain(|(k, _)| k != key);
            found |= g.entries.len() != before;
        }
        found
    }

    /// Removes a whole group; returns whether it was present.
    pub fn remove_group(&mut self, group: &str) -> bool {
        let before = self.groups.len();
        self.groups.retain(|g| g.name != group);
        before != self.groups.len()
    }

    /// Whether the group exists.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g.name == group)
    }

    /// Group names in order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Keys of a group in order.
    pub fn keys(&self, group: &str) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|g| g.name == group)
            .flat_map(|g| g.entries.iter())
            .filter(|(k, _)| k != "#")
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Serializes as GLib does.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            // Comments that preceded the header stay before it.
            for (_, c) in g.entries.iter().take_while(|(k, _)| k == "#") {
                out.push_str(c);
                out.push('\n');
            }
            out.push('[');
            out.push_str(&g.name);
            out.push_str("]\n");
            let lead = g.entries.iter().take_while(|(k, _)| k == "#").count();
            for (k, v) in g.entries.iter().skip(lead) {
                if k == "#" {
                    out.push_str(v);
                } else {
                    out.push_str(k);
                    out.push('=');
                    out.push_str(v);
                }
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_ostree_config() {
        let text = "[core]\nrepo_version=1\nmode=archive-z2\n\n[remote \"r\"]\nurl=http://x\ngpg-verify=false\n";
        let kf = KeyFile::parse(text).unwrap();
        assert_eq!(kf.get("core", "mode"), Some("archive-z2"));
        assert_eq!(kf.get_bool("remote \"r\"", "gpg-verify"), Some(false));
        assert_eq!(kf.to_text(), text);
    }

    #[test]
    fn set_and_remove() {
        let mut kf = KeyFile::default();
        kf.set("origin", "refspec", "r:b");
        kf.set("libostree-transient", "pinned", "true");
        kf.set("origin", "refspec", "r:c");
        assert_eq!(
            kf.to_text(),
            "[origin]\nrefspec=r:c\n\n[libostree-transient]\npinned=true\n"
        );
        assert!(kf.remove_group("libostree-transient"));
        assert!(kf.remove_key("origin", "refspec"));
        assert_eq!(kf.to_text(), "[origin]\n");
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            KeyFile::parse("[core\n").unwrap_err(),
            "line 1: group header lacks ']'"
        );
        assert_eq!(
            KeyFile::parse("a=b\n").unwrap_err(),
            "line 1: key outside of any group"
        );
        assert!(
            KeyFile::parse("[g]\n# c\nnoequals\n")
                .unwrap_err()
                .starts_with("line 3")
        );
    }
}
