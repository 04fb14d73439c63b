//! User-visible error texts that must read exactly as libostree's.
//!
//! Scripts written for `ostree` (and libostree's own test suite) match these
//! words, so rost keeps them in one place: the store builds its errors from
//! here and the `ostree` compatibility mode of the binary does the same for
//! the texts it produces itself. Each function names the situation, not the
//! caller. The quotes (`“…”`) are GLib's, as libostree prints them.

use std::fmt::Display;

/// A ref or revision that does not resolve.
pub fn refspec_not_found(rev: impl Display) -> String {
    format!("Refspec '{rev}' not found")
}

/// A string that is not a valid `[remote:]ref`.
pub fn invalid_refspec(spec: impl Display) -> String {
    format!("Invalid refspec {spec}")
}

/// A ref name that is not valid where only a local ref name is allowed.
pub fn invalid_ref_name(name: impl Display) -> String {
    format!("Invalid ref name {name}")
}

/// A revision that is neither a checksum nor a ref name.
pub fn invalid_rev(rev: impl Display) -> String {
    format!("Invalid rev {rev}")
}

/// A metadata object (`CSUM.commit`, `CSUM.dirtree`, …) that is not stored.
pub fn no_such_metadata_object(csum: impl Display, ext: &str) -> String {
    format!("No such metadata object {csum}.{ext}")
}

/// `refs --create` onto an existing ref without `--force`.
pub fn ref_exists(name: impl Display) -> String {
    format!("--create specified but ref {name} already exists")
}

/// `refs --create` given no revision.
pub const CREATE_NEEDS_REVISION: &str = "You must specify a revision when creating a new ref";

/// `refs --alias --create` naming a remote ref.
pub fn alias_to_remote(remote: impl Display) -> String {
    format!("Cannot create alias to remote ref: {remote}")
}

/// `refs --alias --create` pointing at a ref that does not exist.
pub fn alias_to_missing(target: impl Display) -> String {
    format!("Cannot create alias to non-existent ref: {target}")
}

/// `refs --delete` of a ref that an alias still points at.
pub fn ref_has_alias(name: impl Display, alias: impl Display) -> String {
    format!("Ref '{name}' has an active alias: '{alias}'")
}

/// A new ref whose path is a directory of other refs (or the reverse).
pub fn ref_conflict(existing: impl Display, under: impl Display) -> String {
    format!("Conflict: {existing} exists under {under} when attempting write")
}

/// A command given more positional arguments than it takes.
pub const TOO_MANY_ARGS: &str = "Too many arguments given";

/// `config get` of a key that the group does not have.
pub fn keyfile_no_key(group: impl Display, key: impl Display) -> String {
    format!("Key file does not have key “{key}” in group “{group}”")
}

/// `config get` of a group the file does not have.
pub fn keyfile_no_group(group: impl Display) -> String {
    format!("Key file does not have group “{group}”")
}

/// `config` KEY without a section.
pub const CONFIG_KEY_FORM: &str = "Key must be of the form \"sectionname.keyname\"";

/// `SOURCE_DATE_EPOCH` that is not an integer.
pub const SOURCE_DATE_EPOCH_INVALID: &str = "Failed to convert SOURCE_DATE_EPOCH";

/// `SOURCE_DATE_EPOCH` beyond 64-bit seconds.
pub const SOURCE_DATE_EPOCH_RANGE: &str =
    "Parsing SOURCE_DATE_EPOCH: Numerical result out of range";

/// `--bootable` on a tree without `/usr/lib/modules/KVER/vmlinuz`.
pub const NO_KERNEL_IN_MODULES: &str = "No kernel found in /usr/lib/modules";

/// A stored object whose content does not hash to its name.
pub fn corrupted_object(kind: &str, expected: impl Display, actual: impl Display) -> String {
    format!("Corrupted {kind} object; checksum expected='{expected}' actual='{actual}'")
}

/// A dirtree entry name that would escape its directory.
pub fn invalid_slash_in_filename(name: impl Display) -> String {
    format!("Invalid / in filename {name}")
}

/// A pull that must verify the summary's signature finds no summary.
pub const GPG_NO_SUMMARY: &str = "GPG verification enabled, but no summary found (check that the configured URL in remote config is correct)";

/// `checkout -U -H` from a bare repository.
pub const BARE_NO_USER_HARDLINKS: &str =
    "Bare repository mode cannot hardlink in user checkout mode";

/// A content object that is not stored.
pub fn no_file_object(csum: impl Display) -> String {
    format!("Couldn't find file object '{csum}'")
}

/// A remote URL rost cannot fetch from (not http, https or file).
pub fn invalid_uri_scheme(url: impl Display) -> String {
    format!("Invalid URI scheme in {url}")
}

/// `pull --require-static-deltas` into an archive repository.
pub const NO_DELTAS_IN_ARCHIVE: &str = "Can't use static deltas in an archive repo";

/// `pull --require-static-deltas` when the remote offers none for a ref.
pub fn deltas_required(delta: impl Display) -> String {
    format!("Static deltas required, but none found for {delta}")
}

/// `--bareuseronly-files`: a regular file with setuid/setgid/sticky or
/// world-writable bits.
pub fn bareuseronly_bad_mode(csum: impl Display, mode: u32, bits: u32) -> String {
    format!("Content object {csum}: invalid mode 0{mode:o} with bits 0{bits:o}")
}

/// A file name that is not UTF-8 (OSTree stores names as UTF-8).
pub fn invalid_utf8_filename(name: impl Display) -> String {
    format!("Invalid UTF-8 in filename {name}")
}

/// `cat` of a directory (GLib's wording, as ostree prints it).
pub const CANT_OPEN_DIRECTORY: &str = "Can't open directory";

/// A dirtree entry named `""`.
pub const INVALID_EMPTY_FILENAME: &str = "Invalid empty filename";

/// A dirtree entry named `.`.
pub const INVALID_DOT_FILENAME: &str = "Invalid self-referential filename '.'";

/// A dirtree entry named `..`.
pub const INVALID_DOTDOT_FILENAME: &str = "Invalid path uplink filename '..'";

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts libostree 2022.7 prints, word for word.
    #[test]
    fn wording_matches_libostree() {
        assert_eq!(
            refspec_not_found("nosuchbranch"),
            "Refspec 'nosuchbranch' not found"
        );
        assert_eq!(invalid_refspec("."), "Invalid refspec .");
        assert_eq!(
            invalid_ref_name("origin:main"),
            "Invalid ref name origin:main"
        );
        assert_eq!(invalid_rev("GARBAGE"), "Invalid rev GARBAGE");
        assert_eq!(
            no_such_metadata_object("ab", "commit"),
            "No such metadata object ab.commit"
        );
        assert_eq!(
            alias_to_remote("exampleos"),
            "Cannot create alias to remote ref: exampleos"
        );
        assert_eq!(
            alias_to_missing("nonexistent"),
            "Cannot create alias to non-existent ref: nonexistent"
        );
        assert_eq!(
            ref_has_alias("x", "al"),
            "Ref 'x' has an active alias: 'al'"
        );
        assert_eq!(
            keyfile_no_key("core", "lock-timeout-secs"),
            "Key file does not have key “lock-timeout-secs” in group “core”"
        );
        assert_eq!(
            corrupted_object("commit", "aa", "bb"),
            "Corrupted commit object; checksum expected='aa' actual='bb'"
        );
        assert_eq!(
            invalid_slash_in_filename("../afile"),
            "Invalid / in filename ../afile"
        );
    }
}
