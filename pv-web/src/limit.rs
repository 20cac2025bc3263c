//! Per-client rate limiting (GCRA via `governor`, the standard Rust rate limiter): the sign-in,
//! second-factor and passkey endpoints allow `security.auth_requests_per_minute` requests per
//! client address; beyond that they answer 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// A keyed limiter over client addresses.
#[derive(Debug)]
pub struct PerClientLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl PerClientLimiter {
    /// `n` requests per minute per client, in a burst of up to `n`.
    pub fn per_minute(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self { limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)) }
    }

    /// `Ok` when `client` may go ahead, else how many seconds to wait.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), u64> {
        let key = client.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(wait.as_secs().max(1))
            }
        }
    }
}
