//! `rost-compose`: treefile parsing and the compose pipeline.
//!
//! Bootstrap placeholder: the crate is filled in by the compose work (issue 4).
#![deny(clippy::print_stdout, clippy::print_stderr)]
