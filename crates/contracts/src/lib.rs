//! Typed bindings of the poco contracts, built from the artifacts committed under
//! `artifacts/`, a `deploy` of the whole protocol, and the decoding of contract reverts into
//! typed errors. Sits between `poco-primitives` and `poco-chain`.
