//! `rost-sysroot`: the `ostree admin` layer (deployments, /etc merge, boot entries).
//!
//! Bootstrap placeholder: the crate is filled in by the sysroot work (issue 6).
#![deny(clippy::print_stdout, clippy::print_stderr)]
