//! The worker: fetches apps and datasets, runs tasks in a sandbox, contributes and reveals.
