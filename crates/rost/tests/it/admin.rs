//! `rost admin` integration tests (sysroot work).
