//! Who may call: the per-client rate limits, and the bearer token of every
//! route that is not public. Both refuse before any service is called.

pub mod authenticate;
pub mod exchange;
pub mod rate_limit;
