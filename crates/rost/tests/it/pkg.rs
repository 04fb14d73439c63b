//! `rost pkg` integration tests (rost-rpm work).
