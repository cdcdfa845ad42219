//! The poco marketplace: an orderbook service that validates, stores and serves signed orders
//! and keeps them true to the chain.
