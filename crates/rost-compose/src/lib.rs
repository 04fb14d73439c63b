//! `rost-compose`: treefile parsing and the compose pipeline.
//!
//! Owns [`treefile`] (rpm-ostree's manifests: includes, variables, validation),
//! the per-package import cache ([`import`]), tree assembly, scriptlets
//! ([`scripts`]), postprocessing ([`postprocess`]), the in-tree rpmdb
//! ([`rpmdb`]) and the final commit with rpm-ostree's metadata ([`compose`]).
//! Deliberately ignores sysroots, SELinux labelling and initramfs generation.
//!
//! ```
//! let (tf, _) = rost_compose::treefile::parse_treefile(
//!     "ref: os/${basearch}\npackages: [bash coreutils]\n", "t.yaml", true).unwrap();
//! assert_eq!(tf.all_packages("x86_64"), vec!["bash", "coreutils"]);
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod assemble;
pub mod compose;
pub mod error;
pub mod import;
pub mod postprocess;
pub mod rpmdb;
pub mod scripts;
pub mod treefile;

pub use compose::{ComposeOptions, ComposeResult, Outcome, compose_tree};
pub use error::{Error, Result};
