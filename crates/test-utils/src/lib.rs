//! Test harness for poco: a devnet with the deployed contracts, funded accounts and fixtures.
