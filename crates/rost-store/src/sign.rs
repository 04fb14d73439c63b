//! ed25519 signatures on commits and summaries, in ostree's layout.
//!
//! A commit's signatures live in its detached metadata under
//! `ostree.sign.ed25519` as `aay` — raw 64-byte signatures over the raw
//! `.commit` bytes. A summary's live in `summary.sig` (`a{sv}`, same key) over
//! the raw summary bytes. Keys are base64 text: a 32-byte public key, a 64-byte
//! secret key (seed ‖ public).

use std::path::Path;

use base64::Engine;
use ed25519_dalek::{Signer, Verifier};

use crate::gvariant::{Type, Value};
use crate::{Checksum, Error, ObjectType, Repo, Result};

/// Detached-metadata key holding ed25519 signatures.
pub const ED25519_KEY: &str = "ostree.sign.ed25519";

fn b64(s: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| Error::Other(format!("invalid base64 key: {e}")))
}

/// Parses a base64 secret key (64 bytes: seed ‖ public, or a bare 32-byte seed).
pub fn parse_secret_key(s: &str) -> Result<ed25519_dalek::SigningKey> {
    let b = b64(s)?;
    let seed: [u8; 32] = match b.len() {
        64 | 32 => b[..32]
            .try_into()
            .map_err(|_| Error::Other("invalid ed25519 secret key".into()))?,
        n => {
            return Err(Error::Other(format!(
                "invalid ed25519 secret key: {n} bytes, expected 64"
            )));
        }
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    if b.len() == 64 && key.verifying_key().as_bytes()[..] != b[32..] {
        return Err(Error::Other(
            "invalid ed25519 secret key: public half does not match the seed".into(),
        ));
    }
    Ok(key)
}

/// Parses a base64 public key (32 bytes).
pub fn parse_public_key(s: &str) -> Result<ed25519_dalek::VerifyingKey> {
    let b = b64(s)?;
    let arr: [u8; 32] = b.as_slice().try_into().map_err(|_| {
        Error::Other(format!(
            "invalid ed25519 public key: {} bytes, expected 32",
            b.len()
        ))
    })?;
    ed25519_dalek::VerifyingKey::from_bytes(&arr)
        .map_err(|e| Error::Other(format!("invalid ed25519 public key: {e}")))
}

/// Reads keys, one base64 key per line (blank lines and `#` comments skipped).
pub fn read_keys_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        op: "reading",
        path: path.to_owned(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The `aay` signatures stored under `key` in a detached-metadata dictionary.
pub(crate) fn signatures_under(meta: Option<&Value>, key: &str) -> Vec<Vec<u8>> {
    match meta.and_then(|m| m.lookup(key)) {
        Some(Value::Array(_, items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Bytes(b) => Some(b.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `meta` with `sig` appended to the `aay` under `key` (kept once); every
/// other key is kept, in order, and `key` moves to the end.
pub(crate) fn with_signature_under(meta: Option<&Value>, key: &str, sig: Vec<u8>) -> Value {
    let mut entries: Vec<(String, Value)> = Vec::new();
    if let Some(Value::Array(_, items)) = meta {
        for it in items {
            if let Value::DictEntry(k, v) = it
                && let (Some(k), Value::Variant(v)) = (k.as_str(), v.as_ref())
                && k != key
            {
                entries.push((k.to_owned(), (**v).clone()));
            }
        }
    }
    let mut sigs = signatures_under(meta, key);
    if !sigs.contains(&sig) {
        sigs.push(sig);
    }
    let aay = Value::Array(
        Type::Array(Box::new(Type::Byte)),
        sigs.into_iter().map(Value::Bytes).collect(),
    );
    entries.push((key.to_owned(), aay));
    Value::dict_sv(entries)
}

fn signatures_in(meta: Option<&Value>) -> Vec<Vec<u8>> {
    signatures_under(meta, ED25519_KEY)
}

fn with_signature(meta: Option<Value>, sig: Vec<u8>) -> Value {
    with_signature_under(meta.as_ref(), ED25519_KEY, sig)
}

/// Signs a commit with each secret key, appending to its detached metadata.
pub fn sign_commit(repo: &Repo, commit: &Checksum, secret_keys: &[String]) -> Result<()> {
    let raw = repo.load_metadata_raw(ObjectType::Commit, commit)?;
    let mut meta = repo.load_detached_metadata(commit)?;
    for k in secret_keys {
        let key = parse_secret_key(k)?;
        let sig = key.sign(&raw).to_bytes().to_vec();
        meta = Some(with_signature(meta, sig));
    }
    repo.write_detached_metadata(commit, meta.as_ref())
}

/// Checks `data` against the ed25519 signatures in `meta` and the public keys:
/// `Ok` when at least one signature verifies with one key.
pub fn verify_signatures(
    data: &[u8],
    meta: Option<&Value>,
    public_keys: &[String],
    what: &str,
) -> Result<()> {
    let sigs = signatures_in(meta);
    if sigs.is_empty() {
        return Err(Error::Other(format!("{what}: no ed25519 signatures found")));
    }
    let keys: Vec<ed25519_dalek::VerifyingKey> = public_keys
        .iter()
        .map(|k| parse_public_key(k))
        .collect::<Result<_>>()?;
    for s in &sigs {
        let Ok(arr) = <[u8; 64]>::try_from(s.as_slice()) else {
            continue;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&arr);
        if keys.iter().any(|k| k.verify(data, &sig).is_ok()) {
            return Ok(());
        }
    }
    Err(Error::Other(format!(
        "{what}: none of {} ed25519 signature(s) is valid for the trusted keys",
        sigs.len()
    )))
}

/// Verifies a stored commit's ed25519 signatures.
pub fn verify_commit(repo: &Repo, commit: &Checksum, public_keys: &[String]) -> Result<()> {
    let raw = repo.load_metadata_raw(ObjectType::Commit, commit)?;
    let meta = repo.load_detached_metadata(commit)?;
    verify_signatures(
        &raw,
        meta.as_ref(),
        public_keys,
        &format!("commit {commit}"),
    )
}

/// The `summary.sig` bytes for `summary` signed by each secret key.
pub fn sign_summary(summary: &[u8], secret_keys: &[String]) -> Result<Vec<u8>> {
    let mut meta = None;
    for k in secret_keys {
        let key = parse_secret_key(k)?;
        meta = Some(with_signature(meta, key.sign(summary).to_bytes().to_vec()));
    }
    Ok(meta.unwrap_or_else(|| Value::dict_sv([])).to_bytes())
}

/// Generates a key pair: (secret base64 of 64 bytes, public base64).
pub fn generate_keypair(seed: [u8; 32]) -> (String, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(key.verifying_key().as_bytes());
    let e = &base64::engine::general_purpose::STANDARD;
    (e.encode(secret), e.encode(key.verifying_key().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 §7.1, test 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIG_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    #[test]
    fn rfc8032_vector() {
        let seed: [u8; 32] = hex::decode(SEED).unwrap().try_into().unwrap();
        let (secret, public) = generate_keypair(seed);
        assert_eq!(hex::encode(b64(&public).unwrap()), PUBLIC);
        let key = parse_secret_key(&secret).unwrap();
        assert_eq!(hex::encode(key.sign(b"").to_bytes()), SIG_EMPTY);
        let meta = with_signature(None, hex::decode(SIG_EMPTY).unwrap());
        verify_signatures(b"", Some(&meta), std::slice::from_ref(&public), "x").unwrap();
        assert!(verify_signatures(b"tampered", Some(&meta), &[public], "x").is_err());
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(parse_secret_key("not base64!").is_err());
        assert!(parse_public_key("AAAA").is_err());
        let seed = [7u8; 32];
        let (secret, _) = generate_keypair(seed);
        let mut raw = b64(&secret).unwrap();
        raw[40] ^= 1;
        let e = &base64::engine::general_purpose::STANDARD;
        assert!(parse_secret_key(&e.encode(raw)).is_err());
    }

    #[test]
    fn signatures_append_and_keep_other_keys() {
        let meta = Value::dict_sv([("foo".into(), Value::str("bar"))]);
        let m = with_signature(Some(meta), vec![1; 64]);
        let m = with_signature(Some(m), vec![2; 64]);
        assert_eq!(m.lookup("foo").and_then(Value::as_str), Some("bar"));
        assert_eq!(signatures_in(Some(&m)).len(), 2);
    }
}
