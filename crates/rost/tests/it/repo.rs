//! `rost repo` integration tests.
