//! Benchmark programs of poco: each prints its figures and the conditions it ran in.
