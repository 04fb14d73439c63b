//! Integration tests: drive the real `rost` binary (and, for interop, the real
//! `ostree`, `rpm`, `rpmbuild`, `createrepo_c`, …).
//!
//! Interop tests call [`util::require_tool`]: outside CI a missing tool skips the
//! test with a note; under `CI=true` it fails.

#![allow(clippy::unwrap_used)]

mod admin;
mod compose;
mod crash;
mod host;
mod http;
mod ostree_mode;
mod pkg;
mod pull;
mod repo;
mod tree;
mod util;
