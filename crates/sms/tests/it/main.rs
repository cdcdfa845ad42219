//! Integration tests of the SMS against a real devnet: the service runs in this process on a
//! manual clock, and each test plays the scheduler, the worker and the enclave by hand, so
//! that every refusal can be provoked on purpose.

mod common;
mod dcap;
mod secrets;
mod sessions;
