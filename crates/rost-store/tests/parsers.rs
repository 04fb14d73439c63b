//! Hostile-input tests for every object parser: valid objects from our writer,
//! then every truncation and many byte flips. Errors are fine; panics are bugs.
//! (A stable stand-in for cargo-fuzz, which needs nightly.)
#![allow(clippy::unwrap_used)]

use rost_store::Checksum;
use rost_store::gvariant::{Type, Value};
use rost_store::objects::{Commit, DirMeta, DirTree, FileHeader, TreeDir, TreeFile};

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let x = vec![
        (b"user.a".to_vec(), b"1".to_vec()),
        (b"security.capability".to_vec(), vec![1, 0, 0, 2]),
    ];
    let meta = DirMeta {
        uid: 1000,
        gid: 1000,
        mode: 0o40755,
        xattrs: x.clone(),
    };
    let tree = DirTree {
        files: (0..40)
            .map(|i| TreeFile {
                name: format!("file-{i}"),
                checksum: Checksum([i as u8; 32]),
            })
            .collect(),
        dirs: (0..10)
            .map(|i| TreeDir {
                name: format!("dir-{i}"),
                tree: Checksum([1; 32]),
                meta: Checksum([2; 32]),
            })
            .collect(),
    };
    let commit = Commit {
        metadata: Value::dict_sv([
            ("version".into(), Value::str("42.1")),
            (
                "ostree.ref-binding".into(),
                Value::Array(Type::Str, vec![Value::str("os/x86_64")]),
            ),
            ("rpmostree.inputhash".into(), Value::str("ab".repeat(32))),
        ]),
        parent: Some(Checksum([9; 32])),
        subject: "subject".into(),
        body: "body ".repeat(80),
        timestamp: 1_600_000_000,
        root_tree: Checksum([3; 32]),
        root_meta: Checksum([4; 32]),
    };
    let hdr = FileHeader {
        uid: 0,
        gid: 0,
        mode: 0o120777,
        symlink_target: "../target".into(),
        xattrs: x,
    };
    vec![
        ("dirmeta", meta.to_bytes()),
        ("dirtree", tree.to_bytes()),
        ("commit", commit.to_bytes()),
        ("file", hdr.to_bytes()),
        ("filez", hdr.to_archive_bytes(12345)),
    ]
}

fn parse(kind: &str, b: &[u8]) {
    match kind {
        "dirmeta" => drop(DirMeta::parse(b, "x")),
        "dirtree" => drop(DirTree::parse(b, "x")),
        "commit" => drop(Commit::parse(b, "x")),
        "file" => drop(FileHeader::parse(b)),
        _ => drop(FileHeader::parse_archive(b)),
    }
    for t in ["a{sv}", "(a{sv}aya(say)sstayay)", "v", "aay", "as"] {
        let _ = Value::from_bytes(&Type::parse(t).unwrap(), b);
    }
}

#[test]
fn seeds_parse_back() {
    for (kind, b) in seeds() {
        match kind {
            "dirmeta" => drop(DirMeta::parse(&b, "x").unwrap()),
            "dirtree" => drop(DirTree::parse(&b, "x").unwrap()),
            "commit" => drop(Commit::parse(&b, "x").unwrap()),
            "file" => drop(FileHeader::parse(&b).unwrap()),
            _ => drop(FileHeader::parse_archive(&b).unwrap()),
        }
    }
}

#[test]
fn truncations_and_flips_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (kind, b) in seeds() {
        for len in 0..b.len() {
            parse(kind, &b[..len]);
        }
        for _ in 0..2000 {
            let mut m = b.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % m.len();
                m[i] ^= 1 << (next() % 8);
            }
            parse(kind, &m);
            // Framing offsets live at the end: hit them harder.
            let mut m = b.clone();
            let n = m.len();
            let i = n - 1 - (next() as usize % n.min(8));
            m[i] = next() as u8;
            parse(kind, &m);
        }
    }
}
