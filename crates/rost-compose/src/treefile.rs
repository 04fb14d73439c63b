//! Treefiles: rpm-ostree's YAML/JSON compose manifests.
//!
//! [`load_treefile`] reads a treefile and everything it includes, checks every
//! file against the schema on its own (so an error names the file that holds the
//! bad key), merges them (arrays concatenate, included first; scalars and map
//! entries of the includer win), substitutes variables and returns the flattened
//! [`Treefile`] plus the external inputs (scripts, added files) that feed the
//! input hash. [`parse_treefile`] is the pure single-file parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A scalar written as a string, a number or a boolean (`releasever: 42`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The value as text, the way it is substituted.
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// One string or a list of strings (`include`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl OneOrMany {
    fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `repo-packages` entry: packages that must come from one repo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoPackages {
    /// Repo id.
    pub repo: String,
    /// Package specs.
    pub packages: Vec<String>,
}

/// A treefile, with rpm-ostree's key names. Unknown keys are an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct Treefile {
    /// Output branch.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// `$releasever` for repo files and `${releasever}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releasever: Option<Scalar>,
    /// User variables for `${name}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, Scalar>>,
    /// Treefiles to include (relative to this one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<OneOrMany>,
    /// Includes per basearch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch_include: Option<BTreeMap<String, OneOrMany>>,
    /// Repo ids from `.repo` files next to the treefile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repos: Option<Vec<String>>,
    /// Package specs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<String>>,
    #[serde(rename = "packages-x86_64", skip_serializing_if = "Option::is_none")]
    pub packages_x86_64: Option<Vec<String>>,
    #[serde(rename = "packages-aarch64", skip_serializing_if = "Option::is_none")]
    pub packages_aarch64: Option<Vec<String>>,
    #[serde(rename = "packages-ppc64le", skip_serializing_if = "Option::is_none")]
    pub packages_ppc64le: Option<Vec<String>>,
    #[serde(rename = "packages-s390x", skip_serializing_if = "Option::is_none")]
    pub packages_s390x: Option<Vec<String>>,
    #[serde(rename = "packages-riscv64", skip_serializing_if = "Option::is_none")]
    pub packages_riscv64: Option<Vec<String>>,
    #[serde(rename = "packages-i686", skip_serializing_if = "Option::is_none")]
    pub packages_i686: Option<Vec<String>>,
    #[serde(rename = "packages-armhfp", skip_serializing_if = "Option::is_none")]
    pub packages_armhfp: Option<Vec<String>>,
    /// Packages pinned to one repo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_packages: Option<Vec<RepoPackages>>,
    /// Package name globs never installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_packages: Option<Vec<String>>,
    /// Install weak dependencies (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommends: Option<bool>,
    /// Keep `%doc` files (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation: Option<bool>,
    /// Locales kept under `/usr/share/locale` (empty: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_langs: Option<Vec<String>>,
    /// `[source, destination]` pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_files: Option<Vec<(String, String)>>,
    /// Paths to delete from the tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_files: Option<Vec<String>>,
    /// `[package, regex…]`: delete that package's matching files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_from_packages: Option<Vec<Vec<String>>>,
    /// Inline shell scripts run in the tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postprocess: Option<Vec<String>>,
    /// A script file run in the tree, last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postprocess_script: Option<String>,
    /// systemd units to enable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<String>>,
    /// systemd default target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_target: Option<String>,
    /// `22` gives versions 22, 22.1, 22.2, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic_version_prefix: Option<String>,
    /// String in os-release replaced by the commit version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutate_os_release: Option<String>,
    /// Commit metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_commit_metadata: Option<BTreeMap<String, serde_json::Value>>,
    /// Commit metadata (older name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
    /// Where kernels go; only `modules` (and its superset `new`) are supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_location: Option<String>,
    /// Ship an empty `/etc/machine-id` (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machineid_compat: Option<bool>,
    /// Groups kept in `/etc/group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etc_group_members: Option<Vec<String>>,
    /// Clear write bits of executables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly_executables: Option<bool>,
    /// `/tmp` a directory rather than a symlink to `sysroot/tmp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmp_is_dir: Option<bool>,
    /// SELinux labelling; only `false` is supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<bool>,
}

impl Treefile {
    /// Packages for `basearch`: `packages` plus `packages-$basearch`, split on whitespace.
    pub fn all_packages(&self, basearch: &str) -> Vec<String> {
        let arch = match basearch {
            "x86_64" => &self.packages_x86_64,
            "aarch64" => &self.packages_aarch64,
            "ppc64le" => &self.packages_ppc64le,
            "s390x" => &self.packages_s390x,
            "riscv64" => &self.packages_riscv64,
            "i686" => &self.packages_i686,
            "armhfp" => &self.packages_armhfp,
            _ => &None,
        };
        let mut out = Vec::new();
        let rp = self
            .repo_packages
            .iter()
            .flatten()
            .flat_map(|r| r.packages.iter());
        for p in self
            .packages
            .iter()
            .flatten()
            .chain(arch.iter().flatten())
            .chain(rp)
        {
            out.extend(split_spec(p));
        }
        out
    }
}

/// Splits a `packages` entry: whitespace separates names, except around a
/// version operator (`foo >= 1.0` is one spec).
pub fn split_spec(entry: &str) -> Vec<String> {
    let words: Vec<&str> = entry.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let is_op = |w: &str| matches!(w, "<" | "<=" | "=" | ">=" | ">" | "==");
        if i + 2 < words.len() && is_op(words[i + 1]) {
            out.push(format!("{} {} {}", words[i], words[i + 1], words[i + 2]));
            i += 3;
        } else {
            out.push(words[i].to_owned());
            i += 1;
        }
    }
    out
}

/// A loaded, flattened treefile.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged treefile, variables substituted.
    pub treefile: Treefile,
    /// Directory of the top-level treefile (repo files and relative paths).
    pub dir: PathBuf,
    /// Every treefile read, top-level first.
    pub files: Vec<PathBuf>,
    /// Variables in force (`basearch`, `releasever`, user ones).
    pub variables: BTreeMap<String, String>,
    /// Content of `postprocess-script`, if any.
    pub postprocess_script: Option<Vec<u8>>,
    /// add-files sources: (source path, destination, content).
    pub add_files: Vec<(PathBuf, String, Vec<u8>)>,
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn is_yaml(path: &Path) -> bool {
    !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Parses one treefile's text (no includes). `name` is used in errors.
pub fn parse_treefile(text: &str, name: &str, yaml: bool) -> Result<(Treefile, serde_json::Value)> {
    let err = |msg: String| Error::Treefile {
        file: name.to_owned(),
        msg,
    };
    let value: serde_json::Value = if yaml {
        serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?
    } else {
        serde_json::from_str(text).map_err(|e| err(e.to_string()))?
    };
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        v => v,
    };
    let tf: Treefile = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            err(inner)
        } else {
            err(format!("{path}: {inner}"))
        }
    })?;
    Ok((tf, value))
}

/// Merges `over` (the includer) onto `base` (an included file).
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    use serde_json::Value as V;
    let (V::Object(b), V::Object(o)) = (base, over) else {
        return;
    };
    for (k, v) in o {
        match (b.get_mut(&k), v) {
            (Some(V::Array(ba)), V::Array(oa)) => ba.extend(oa),
            (Some(bv @ V::Object(_)), ov @ V::Object(_)) => merge(bv, ov),
            (_, v) => {
                b.insert(k, v);
            }
        }
    }
}

struct LoadCtx {
    basearch: String,
    seen: BTreeSet<PathBuf>,
    files: Vec<PathBuf>,
}

impl LoadCtx {
    fn load(&mut self, path: &Path, from: Option<(&Path, &str)>) -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(path).map_err(|e| match from {
            Some((f, key)) => Error::Treefile {
                file: f.display().to_string(),
                msg: format!("{key}: cannot read {:?}: {e}", path.display().to_string()),
            },
            None => Error::io("reading", path, e),
        })?;
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        if !self.seen.insert(canon) {
            return Err(Error::Treefile {
                file: path.display().to_string(),
                msg: "included more than once".into(),
            });
        }
        self.files.push(path.to_owned());
        let name = path.display().to_string();
        let (tf, mut value) = parse_treefile(&text, &name, is_yaml(path))?;
        let dir = parent_dir(path);
        let mut includes: Vec<(String, String)> = Vec::new();
        if let Some(inc) = &tf.include {
            includes.extend(inc.to_vec().into_iter().map(|i| ("include".to_owned(), i)));
        }
        if let Some(ai) = tf.arch_include.as_ref().and_then(|m| m.get(&self.basearch)) {
            let key = format!("arch-include.{}", self.basearch);
            includes.extend(ai.to_vec().into_iter().map(|i| (key.clone(), i)));
        }
        if let serde_json::Value::Object(m) = &mut value {
            m.remove("include");
            m.remove("arch-include");
        }
        let mut merged = serde_json::Value::Object(Default::default());
        for (key, inc) in includes {
            let sub = self.load(&dir.join(&inc), Some((path, &key)))?;
            merge(&mut merged, sub);
        }
        merge(&mut merged, value);
        Ok(merged)
    }
}

/// Replaces `${name}` with variables; an unknown variable is an error naming `what`.
pub fn substitute(s: &str, vars: &BTreeMap<String, String>, what: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| Error::Invalid {
            msg: format!("{what}: unterminated variable in {s:?}"),
        })?;
        let name = &after[..end];
        let v = vars.get(name).ok_or_else(|| Error::Invalid {
            msg: format!("{what}: unknown variable ${{{name}}} in {s:?}"),
        })?;
        out.push_str(v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn subst_json(
    v: &mut serde_json::Value,
    vars: &BTreeMap<String, String>,
    what: &str,
) -> Result<()> {
    match v {
        serde_json::Value::String(s) => *s = substitute(s, vars, what)?,
        serde_json::Value::Array(a) => {
            for x in a {
                subst_json(x, vars, what)?;
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                subst_json(x, vars, &format!("{what}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Loads `path` with its includes for `basearch` and flattens it.
pub fn load_treefile(path: &Path, basearch: &str) -> Result<Loaded> {
    let mut ctx = LoadCtx {
        basearch: basearch.to_owned(),
        seen: BTreeSet::new(),
        files: Vec::new(),
    };
    let merged = ctx.load(path, None)?;
    let name = path.display().to_string();
    let mut tf: Treefile =
        serde_path_to_error::deserialize(merged).map_err(|e| Error::Treefile {
            file: name.clone(),
            msg: format!("{}: {}", e.path(), e.inner()),
        })?;
    if tf.selinux == Some(true) {
        return Err(Error::Treefile {
            file: name,
            msg: "selinux: true is not supported yet (set `selinux: false`)".into(),
        });
    }
    if let Some(bl) = &tf.boot_location
        && bl != "modules"
        && bl != "new"
    {
        return Err(Error::Treefile {
            file: name,
            msg: format!("boot-location: {bl:?} is not supported (use \"modules\")"),
        });
    }
    let mut vars = BTreeMap::new();
    vars.insert("basearch".to_owned(), basearch.to_owned());
    if let Some(r) = &tf.releasever {
        vars.insert("releasever".to_owned(), r.as_text());
    }
    for (k, v) in tf.variables.iter().flatten() {
        vars.insert(k.clone(), v.as_text());
    }
    let tf_err = |e: Error| match e {
        Error::Invalid { msg } => Error::Treefile {
            file: name.clone(),
            msg,
        },
        e => e,
    };
    if let Some(r) = &tf.ref_ {
        tf.ref_ = Some(substitute(r, &vars, "ref").map_err(tf_err)?);
    }
    if let Some(r) = &tf.mutate_os_release {
        tf.mutate_os_release = Some(substitute(r, &vars, "mutate-os-release").map_err(tf_err)?);
    }
    if let Some(r) = &tf.automatic_version_prefix {
        tf.automatic_version_prefix =
            Some(substitute(r, &vars, "automatic-version-prefix").map_err(tf_err)?);
    }
    for (key, m) in [
        ("metadata", &mut tf.metadata),
        ("add-commit-metadata", &mut tf.add_commit_metadata),
    ] {
        for (k, v) in m.iter_mut().flatten() {
            subst_json(v, &vars, &format!("{key}.{k}")).map_err(tf_err)?;
        }
    }
    let dir = parent_dir(path);
    let postprocess_script = match &tf.postprocess_script {
        Some(p) => Some(std::fs::read(dir.join(p)).map_err(|e| Error::Treefile {
            file: name.clone(),
            msg: format!("postprocess-script: cannot read {p:?}: {e}"),
        })?),
        None => None,
    };
    let mut add_files = Vec::new();
    for (i, (src, dest)) in tf.add_files.iter().flatten().enumerate() {
        let d = dest.trim_start_matches('/');
        if !(d.starts_with("usr/") || d.starts_with("etc/")) {
            return Err(Error::Treefile {
                file: name.clone(),
                msg: format!("add-files[{i}]: destination {dest:?} is not under /usr or /etc"),
            });
        }
        let content = std::fs::read(dir.join(src)).map_err(|e| Error::Treefile {
            file: name.clone(),
            msg: format!("add-files[{i}]: cannot read {src:?}: {e}"),
        })?;
        add_files.push((dir.join(src), d.to_owned(), content));
    }
    for (i, e) in tf.remove_from_packages.iter().flatten().enumerate() {
        if e.len() < 2 {
            return Err(Error::Treefile {
                file: name.clone(),
                msg: format!("remove-from-packages[{i}]: expected [package, regex, …]"),
            });
        }
        for r in &e[1..] {
            regex::Regex::new(r).map_err(|err| Error::Treefile {
                file: name.clone(),
                msg: format!("remove-from-packages[{i}]: bad regex {r:?}: {err}"),
            })?;
        }
    }
    Ok(Loaded {
        treefile: tf,
        dir,
        files: ctx.files,
        variables: vars,
        postprocess_script,
        add_files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_file_and_key() {
        let e = parse_treefile("ref: a\npackagez: [x]\n", "t.yaml", true).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("t.yaml") && s.contains("packagez"), "{s}");
    }

    #[test]
    fn wrong_type_names_path() {
        let e = parse_treefile("packages: [a, [b]]\n", "t.yaml", true).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("t.yaml") && s.contains("packages[1]"), "{s}");
        let e = parse_treefile(r#"{"recommends": "yes"}"#, "t.json", false).unwrap_err();
        assert!(e.to_string().contains("recommends"), "{e}");
    }

    #[test]
    fn scalars_and_lists() {
        let (tf, _) = parse_treefile(
            "releasever: 42\ninclude: base.yaml\npackages: ['bash coreutils', 'foo >= 1.0']\n",
            "t",
            true,
        )
        .unwrap();
        assert_eq!(tf.releasever, Some(Scalar::Int(42)));
        assert_eq!(tf.include, Some(OneOrMany::One("base.yaml".into())));
        assert_eq!(
            tf.all_packages("x86_64"),
            vec!["bash", "coreutils", "foo >= 1.0"]
        );
    }

    #[test]
    fn substitution() {
        let mut v = BTreeMap::new();
        v.insert("basearch".into(), "x86_64".into());
        v.insert("releasever".into(), "42".into());
        assert_eq!(
            substitute("os/${releasever}/${basearch}", &v, "ref").unwrap(),
            "os/42/x86_64"
        );
        assert!(substitute("${nope}", &v, "ref").is_err());
    }

    #[test]
    fn includes_merge() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("base.yaml"),
            "ref: base\npackages: [a]\nvariables: {x: 1}\npostprocess: [one]\n",
        )
        .unwrap();
        std::fs::write(d.path().join("arch.yaml"), "packages: [c]\n").unwrap();
        std::fs::write(
            d.path().join("top.yaml"),
            "include: base.yaml\narch-include: {x86_64: arch.yaml}\nref: top/${x}/${basearch}\npackages: [b]\npostprocess: [two]\n",
        )
        .unwrap();
        let l = load_treefile(&d.path().join("top.yaml"), "x86_64").unwrap();
        assert_eq!(l.treefile.ref_.as_deref(), Some("top/1/x86_64"));
        assert_eq!(
            l.treefile.packages,
            Some(vec!["a".into(), "c".into(), "b".into()])
        );
        assert_eq!(
            l.treefile.postprocess,
            Some(vec!["one".into(), "two".into()])
        );
        assert_eq!(l.files.len(), 3);
        let l = load_treefile(&d.path().join("top.yaml"), "aarch64").unwrap();
        assert_eq!(l.treefile.packages, Some(vec!["a".into(), "b".into()]));

        std::fs::write(d.path().join("bad.yaml"), "include: missing.yaml\n").unwrap();
        let e = load_treefile(&d.path().join("bad.yaml"), "x86_64")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.yaml") && e.contains("include") && e.contains("missing.yaml"),
            "{e}"
        );

        std::fs::write(d.path().join("inc-bad.yaml"), "include: evil.yaml\n").unwrap();
        std::fs::write(d.path().join("evil.yaml"), "bogus-key: 1\n").unwrap();
        let e = load_treefile(&d.path().join("inc-bad.yaml"), "x86_64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("evil.yaml") && e.contains("bogus-key"), "{e}");

        std::fs::write(d.path().join("se.yaml"), "selinux: true\n").unwrap();
        let e = load_treefile(&d.path().join("se.yaml"), "x86_64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported yet"), "{e}");
    }
}
