//! The result store: keeps result archives, accepts them only from the chosen worker and
//! serves them only to the beneficiary.
