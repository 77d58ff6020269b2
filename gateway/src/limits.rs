//! Per-client rate limits (token buckets, via governor): a general one, and
//! a stricter one for the open endpoints that attackers hammer (register,
//! login, refresh, logout). The client is the peer address, or, behind
//! configured trusted proxies, the last address they report in X-Forwarded-For.

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use http::HeaderMap;
use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

/// Rate-limit settings.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub per_second: u32,
    pub burst: u32,
    pub sensitive_per_minute: u32,
    pub sensitive_burst: u32,
    pub trusted_proxies: Vec<IpAddr>,
}

pub struct Limits {
    general: DefaultKeyedRateLimiter<IpAddr>,
    sensitive: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
    /// For `RateLimit-Policy`: (limit, window seconds) of each bucket.
    pub general_policy: (u32, u64),
    pub sensitive_policy: (u32, u64),
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    pub fn new(s: &LimitSettings) -> Arc<Self> {
        let general = Quota::per_second(nonzero(s.per_second)).allow_burst(nonzero(s.burst));
        let sensitive = Quota::per_minute(nonzero(s.sensitive_per_minute))
            .allow_burst(nonzero(s.sensitive_burst));
        let limits = Arc::new(Self {
            general: DefaultKeyedRateLimiter::keyed(general),
            sensitive: DefaultKeyedRateLimiter::keyed(sensitive),
            trusted_proxies: s.trusted_proxies.clone(),
            general_policy: (s.burst.max(1), 1),
            sensitive_policy: (s.sensitive_burst.max(1), 60),
        });
        // Forget idle clients now and then, so the tables do not grow without end.
        let weak: Weak<Self> = Arc::downgrade(&limits);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(limits) = weak.upgrade() else { return };
                limits.general.retain_recent();
                limits.sensitive.retain_recent();
            }
        });
        limits
    }

    /// The client's address: the peer, or behind trusted proxies the
    /// rightmost X-Forwarded-For entry that is not itself a trusted proxy.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip();
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }

    /// `Err(wait)` when `client` must wait before this request.
    pub fn check(&self, client: IpAddr, sensitive: bool) -> Result<(), Duration> {
        let limiter = if sensitive {
            &self.sensitive
        } else {
            &self.general
        };
        limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trusted: Vec<IpAddr>) -> LimitSettings {
        LimitSettings {
            per_second: 1,
            burst: 2,
            sensitive_per_minute: 1,
            sensitive_burst: 1,
            trusted_proxies: trusted,
        }
    }

    #[tokio::test]
    async fn a_client_gets_its_burst_then_waits() {
        let limits = Limits::new(&settings(vec![]));
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!(limits.check(ip, false).is_ok() && limits.check(ip, false).is_ok());
        let wait = limits.check(ip, false).expect_err("over the burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another client and the other bucket are separate.
        assert!(limits.check([192, 0, 2, 2].into(), false).is_ok());
        assert!(limits.check(ip, true).is_ok());
        assert!(limits.check(ip, true).is_err());
    }

    #[tokio::test]
    async fn x_forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let limits = Limits::new(&settings(vec![proxy]));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.0.0.1"
                .parse()
                .expect("ascii"),
        );
        assert_eq!(
            limits.client(SocketAddr::new(proxy, 1), &headers),
            IpAddr::from([198, 51, 100, 7])
        );
        let stranger: IpAddr = [192, 0, 2, 50].into();
        assert_eq!(
            limits.client(SocketAddr::new(stranger, 1), &headers),
            stranger
        );
    }
}
