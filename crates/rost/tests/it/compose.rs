//! `rost compose` integration tests (compose work).
