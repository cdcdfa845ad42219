//! The high-level poco client used by the `poco` CLI and by tests.
