//! Integration tests of poco-worker.

mod exec;
mod module_cache;
mod python;
