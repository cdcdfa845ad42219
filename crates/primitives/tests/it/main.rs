//! Integration tests of poco-primitives: the public API against values computed elsewhere.

mod contract_vectors;
