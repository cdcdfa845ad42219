//! Integration tests of poco-worker.

mod exec;
