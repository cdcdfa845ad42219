//! Attacks by strangers on the real services, each with the honest user's success asserted
//! during the attack.

mod http;
mod results;
mod sandbox;
mod scheduler;
