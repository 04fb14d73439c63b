//! OSTree-format repository (placeholder during bootstrap).
