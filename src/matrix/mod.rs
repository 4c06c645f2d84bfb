//! The homeserver side: the only code that talks to Matrix. Locates existing objects, compares them with the
//! plan, applies the differences, and handles rate limits and errors; takes the rooms' events in ([`intake`]).

pub mod attendance;
pub mod client;
pub mod fanout;
pub mod identity;
pub mod intake;
pub mod live;
pub mod prefetch;
pub mod reconcile;
pub mod session;
