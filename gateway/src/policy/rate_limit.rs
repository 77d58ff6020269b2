//! Per-client rate limits (token buckets, via governor): a general one, and
//! a stricter one for the open endpoints that attackers hammer (register,
//! login, refresh, logout). The client is the peer address, or, behind
//! configured trusted proxies, the one their X-Forwarded-For names by
//! `suite_grpc::forwarded::client_behind`'s walk.
//! Each route says which bucket it counts against (`suite.api.v1.http`).

use crate::{
    contract::{endpoints::Matched, routes::RateClass},
    http::problem::Problem,
    state::SharedState,
};
use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

/// The buckets' sizes, from the configuration (`RATE_LIMIT_*`), and the
/// proxies whose `X-Forwarded-For` names the client.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub per_second: u32,
    pub burst: u32,
    pub sensitive_per_minute: u32,
    pub sensitive_burst: u32,
    pub trusted_proxies: Vec<IpAddr>,
}

/// Every client's buckets (general and strict), local or shared in Redis.
pub struct RateLimits {
    general: DefaultKeyedRateLimiter<IpAddr>,
    sensitive: DefaultKeyedRateLimiter<IpAddr>,
    /// With `REDIS_URL`: the buckets every gateway replica shares.
    redis: Option<RedisBuckets>,
    trusted_proxies: Vec<IpAddr>,
    /// For `RateLimit-Policy`: (limit, window seconds) of each bucket.
    pub general_policy: (u32, u64),
    pub sensitive_policy: (u32, u64),
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The buckets in Redis, and when to try Redis again after it failed.
struct RedisBuckets {
    redis: suite_redis::Redis,
    /// (interval, burst) of the general and the sensitive buckets.
    general: (Duration, u32),
    sensitive: (Duration, u32),
    /// Admissions this replica took from a client's shared bucket ahead of
    /// its requests (see [`Lease`]), per bucket.
    general_leases: Leases,
    sensitive_leases: Leases,
    /// Set when Redis failed a check: until when at most the local buckets
    /// answer, and the count of the client's successful probes then.
    local: std::sync::Mutex<Option<Fallback>>,
}

#[derive(Clone, Copy)]
struct Fallback {
    until: std::time::Instant,
    answered: u64,
}

/// Admissions taken from a client's shared bucket in one script call and
/// spent by this replica's next requests of that client, so that a busy
/// client costs a Redis round trip per lease, not per request. The shared
/// limit stays exact: a lease is taken from the bucket in Redis before any
/// of it is spent, and only what the bucket holds is granted. What a lease
/// costs: admissions it holds when it lapses unspent were counted all the
/// same, so a client may be limited up to a lease early on each replica.
/// Hence leases are small against the burst ([`Leases::cap`]), short-lived
/// ([`LEASE_FOR`]), and grow only for a client that spent its last one in
/// time: an occasional client asks for one admission at a time, as without
/// leases.
#[derive(Clone, Copy)]
struct Lease {
    /// Admissions left to spend.
    left: u32,
    /// Until when they may be spent.
    until: std::time::Instant,
    /// The size of the last lease taken.
    size: u32,
}

/// How long a lease may be spent.
const LEASE_FOR: Duration = Duration::from_millis(50);
/// The largest lease, whatever the burst.
const MAX_LEASE: u32 = 64;

struct Leases {
    by_client: std::sync::Mutex<std::collections::HashMap<IpAddr, Lease>>,
    /// At most a sixteenth of the burst: a bucket of 100 leases 6 at most,
    /// one of 20 or less never more than one (exactly as without leases).
    cap: u32,
}

impl Leases {
    fn new(burst: u32) -> Self {
        Self {
            by_client: Default::default(),
            cap: (burst / 16).clamp(1, MAX_LEASE),
        }
    }

    /// Spends one admission of `client`'s lease, if it holds one; otherwise
    /// the number of admissions to ask the bucket for.
    fn spend(&self, client: IpAddr, now: std::time::Instant) -> Result<(), u32> {
        if self.cap == 1 {
            return Err(1);
        }
        let mut leases = self.lock();
        let Some(lease) = leases.get_mut(&client) else {
            return Err(1);
        };
        if lease.left > 0 && now < lease.until {
            lease.left -= 1;
            return Ok(());
        }
        // Spent in time: the client is busy, the next lease doubles.
        // Lapsed with admissions left: back to one at a time.
        Err(if lease.left == 0 && now < lease.until {
            (lease.size * 2).min(self.cap)
        } else {
            1
        })
    }

    /// `granted` admissions were taken for `client`; this request spends
    /// one of them.
    fn took(&self, client: IpAddr, granted: u32, now: std::time::Instant) {
        if self.cap == 1 {
            return;
        }
        let mut leases = self.lock();
        let lease = leases.entry(client).or_insert(Lease {
            left: 0,
            until: now,
            size: 1,
        });
        // Concurrent requests of one client may each have taken a lease:
        // what any of them holds is kept.
        let left = if now < lease.until { lease.left } else { 0 };
        *lease = Lease {
            left: left + granted.saturating_sub(1),
            until: now + LEASE_FOR,
            size: granted.max(1),
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<IpAddr, Lease>> {
        // Each change is one map operation: a panic cannot leave one half-made.
        self.by_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget_idle(&self) {
        let now = std::time::Instant::now();
        self.lock().retain(|_, l| now < l.until + LEASE_FOR);
    }
}

/// The longest a replica keeps to its local buckets after Redis failed a
/// check, if the client has not found Redis answering since (it probes
/// after every failure, so this only backs that up).
const LOCAL_FOR: Duration = Duration::from_secs(1);

impl RedisBuckets {
    /// Local while the client finds Redis unavailable (it fails every command
    /// at once then, and says so as soon as a probe succeeds); after a failed
    /// check, local until the client's next successful probe, or
    /// [`LOCAL_FOR`]. No state of ours outlasts Redis's return: the client's
    /// probes decide.
    fn in_fallback(&self) -> bool {
        if !self.redis.is_available() {
            return true;
        }
        let Ok(local) = self.local.lock() else {
            return true;
        };
        local.is_some_and(|f| {
            std::time::Instant::now() < f.until && self.redis.answered() == f.answered
        })
    }

    fn fall_back(&self, error: &suite_redis::Error) {
        let Ok(mut local) = self.local.lock() else {
            return;
        };
        if local.is_none() {
            tracing::warn!(%error, "Redis failed the rate limits: local buckets until it answers");
        }
        *local = Some(Fallback {
            until: std::time::Instant::now() + LOCAL_FOR,
            answered: self.redis.answered(),
        });
        rate_limit_metrics().shared.set(0);
        rate_limit_metrics().redis_errors.inc();
    }

    fn recovered(&self) {
        if let Ok(mut local) = self.local.lock()
            && local.take().is_some()
        {
            tracing::info!("Redis answers again: the rate limits are shared again");
        }
        rate_limit_metrics().shared.set(1);
    }
}

struct RateLimitMetrics {
    /// 1 while the buckets are Redis's, 0 while local.
    shared: prometheus_client::metrics::gauge::Gauge,
    redis_errors: prometheus_client::metrics::counter::Counter,
}

fn rate_limit_metrics() -> &'static RateLimitMetrics {
    static METRICS: std::sync::LazyLock<RateLimitMetrics> = std::sync::LazyLock::new(|| {
        let registry = suite_telemetry::metrics::metrics();
        RateLimitMetrics {
            shared: registry.registered(
                "suite_gateway_rate_limit_shared",
                "1 while the rate buckets are in Redis (shared by the replicas), 0 while this replica's own",
                Default::default(),
            ),
            redis_errors: registry.registered(
                "suite_gateway_rate_limit_redis_errors",
                "Rate-limit checks that Redis failed or answered too late (answered by the local buckets)",
                Default::default(),
            ),
        }
    });
    &METRICS
}

impl RateLimits {
    pub fn new(s: &RateLimitSettings) -> Arc<Self> {
        Self::with_redis(s, None)
    }

    /// The limits, in `redis` when given (with the local buckets as the
    /// fallback).
    pub fn with_redis(s: &RateLimitSettings, redis: Option<suite_redis::Redis>) -> Arc<Self> {
        let general = Quota::per_second(nonzero(s.per_second)).allow_burst(nonzero(s.burst));
        let sensitive = Quota::per_minute(nonzero(s.sensitive_per_minute))
            .allow_burst(nonzero(s.sensitive_burst));
        let redis = redis.map(|redis| {
            rate_limit_metrics().shared.set(1);
            RedisBuckets {
                redis,
                general: (Duration::from_secs(1) / s.per_second.max(1), s.burst.max(1)),
                sensitive: (
                    Duration::from_secs(60) / s.sensitive_per_minute.max(1),
                    s.sensitive_burst.max(1),
                ),
                general_leases: Leases::new(s.burst.max(1)),
                sensitive_leases: Leases::new(s.sensitive_burst.max(1)),
                local: std::sync::Mutex::new(None),
            }
        });
        let limits = Arc::new(Self {
            general: DefaultKeyedRateLimiter::keyed(general),
            sensitive: DefaultKeyedRateLimiter::keyed(sensitive),
            redis,
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
                if let Some(shared) = &limits.redis {
                    shared.general_leases.forget_idle();
                    shared.sensitive_leases.forget_idle();
                }
            }
        });
        limits
    }

    /// The client's address: the peer, or behind a trusted proxy the
    /// rightmost X-Forwarded-For entry that is not itself a trusted proxy;
    /// an entry that is not an address stops the walk at the last trusted
    /// hop (see `suite_grpc::forwarded::client_behind`), so nothing a
    /// client writes left of it can choose its bucket.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip();
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let values = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(HeaderValue::as_bytes);
        suite_grpc::forwarded::client_behind(values, |ip| self.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }

    /// `Err(wait)` when `client` must wait before this request: Redis's
    /// shared bucket answers if there is one and it answers in time, else
    /// this replica's own.
    pub async fn check(&self, client: IpAddr, class: RateClass) -> Result<(), Duration> {
        if let Some(shared) = &self.redis
            && !shared.in_fallback()
        {
            let ((interval, burst), name, leases) = match class {
                RateClass::Auth => (shared.sensitive, "auth", &shared.sensitive_leases),
                RateClass::General => (shared.general, "general", &shared.general_leases),
            };
            let want = match leases.spend(client, std::time::Instant::now()) {
                Ok(()) => return Ok(()),
                Err(want) => want,
            };
            match shared
                .redis
                .gcra_take(&format!("rl:{name}:{client}"), interval, burst, want)
                .await
            {
                Ok(suite_redis::GcraTake::Granted { granted, .. }) => {
                    leases.took(client, granted, std::time::Instant::now());
                    shared.recovered();
                    return Ok(());
                }
                Ok(suite_redis::GcraTake::Limited { retry_after }) => {
                    shared.recovered();
                    return Err(retry_after);
                }
                Err(e) => shared.fall_back(&e),
            }
        }
        self.check_local(client, class)
    }

    /// This replica's own buckets.
    pub fn check_local(&self, client: IpAddr, class: RateClass) -> Result<(), Duration> {
        let limiter = match class {
            RateClass::Auth => &self.sensitive,
            RateClass::General => &self.general,
        };
        limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

/// The client a request counts for, as the rate limit found it (the
/// services are told it as `x-forwarded-for`).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub IpAddr);

/// The layer: a route's request over its client's bucket is a 429, before
/// it costs a token check or an upstream call.
pub async fn limit(
    State(gw): State<SharedState>,
    matched: Matched,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "no peer address").into_response();
    };
    let client = gw.limits.client(peer, req.headers());
    // Unmatched paths count too: probing for routes costs like using them.
    let class = matched
        .endpoint()
        .map_or(RateClass::General, |e| e.route.rate);
    if let Err(wait) = gw.limits.check(client, class).await {
        return too_many(&gw.limits, class, wait).into_response();
    }
    req.extensions_mut().insert(Client(client));
    next.run(req).await
}

/// 429 with `Retry-After` (whole seconds, rounded up) and the policy broken.
fn too_many(limits: &RateLimits, class: RateClass, wait: Duration) -> Problem {
    let secs = suite_grpc::status::whole_seconds(wait);
    let ((limit, window), name) = match class {
        RateClass::Auth => (limits.sensitive_policy, "auth"),
        RateClass::General => (limits.general_policy, "default"),
    };
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests; try again in {secs} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        p = p.with_header(header::RETRY_AFTER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";q={limit};w={window}")) {
        p = p.with_header(http::HeaderName::from_static("ratelimit-policy"), v);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trusted: Vec<IpAddr>) -> RateLimitSettings {
        RateLimitSettings {
            per_second: 1,
            burst: 2,
            sensitive_per_minute: 1,
            sensitive_burst: 1,
            trusted_proxies: trusted,
        }
    }

    #[test]
    fn a_busy_client_leases_more_at_a_time_up_to_a_sixteenth_of_the_burst() {
        let leases = Leases::new(100);
        assert_eq!(leases.cap, 6);
        let ip: IpAddr = [192, 0, 2, 9].into();
        let now = std::time::Instant::now();
        // The first request asks for one admission.
        assert_eq!(leases.spend(ip, now), Err(1));
        leases.took(ip, 1, now);
        // Spent in time: 2, then 4, then 6 (the cap), each spent in turn.
        let mut asked = Vec::new();
        for _ in 0..4 {
            let want = leases.spend(ip, now).expect_err("a new lease");
            asked.push(want);
            leases.took(ip, want, now);
            for _ in 1..want {
                assert_eq!(leases.spend(ip, now), Ok(()));
            }
        }
        assert_eq!(asked, [2, 4, 6, 6]);
        // A bucket that held less grants less: the lease is what was granted.
        leases.took(ip, 2, now);
        assert_eq!(leases.spend(ip, now), Ok(()));
        assert_eq!(leases.spend(ip, now), Err(4));
    }

    #[test]
    fn a_lapsed_lease_is_not_spent_and_its_client_asks_for_one_again() {
        let leases = Leases::new(1000);
        let ip: IpAddr = [192, 0, 2, 10].into();
        let now = std::time::Instant::now();
        leases.took(ip, 8, now);
        assert_eq!(leases.spend(ip, now), Ok(()));
        let later = now + LEASE_FOR;
        assert_eq!(leases.spend(ip, later), Err(1), "lapsed with 6 left");
        leases.forget_idle();
        assert_eq!(leases.lock().len(), 1, "kept a while after it lapsed");
    }

    #[test]
    fn small_bursts_never_lease() {
        for burst in [1, 10, 20, 31] {
            let leases = Leases::new(burst);
            let ip: IpAddr = [192, 0, 2, 11].into();
            let now = std::time::Instant::now();
            for _ in 0..5 {
                assert_eq!(leases.spend(ip, now), Err(1), "burst {burst}");
                leases.took(ip, 1, now);
            }
            assert!(leases.lock().is_empty());
        }
    }

    #[tokio::test]
    async fn a_client_gets_its_burst_then_waits() {
        let limits = RateLimits::new(&settings(vec![]));
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!(
            limits.check_local(ip, RateClass::General).is_ok()
                && limits.check_local(ip, RateClass::General).is_ok()
        );
        let wait = limits
            .check_local(ip, RateClass::General)
            .expect_err("over the burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another client and the other bucket are separate.
        assert!(
            limits
                .check_local([192, 0, 2, 2].into(), RateClass::General)
                .is_ok()
        );
        assert!(limits.check_local(ip, RateClass::Auth).is_ok());
        assert!(limits.check_local(ip, RateClass::Auth).is_err());
    }

    #[tokio::test]
    async fn x_forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let limits = RateLimits::new(&settings(vec![proxy]));
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

    /// Every form of entry a proxy writes names the client; one that is not
    /// an address stops the walk at the last trusted hop, so whatever the
    /// client wrote left of it never picks the bucket.
    #[tokio::test]
    async fn an_unparseable_forwarded_entry_never_lets_a_client_pick_its_bucket() {
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let inner: IpAddr = [10, 0, 0, 2].into();
        let limits = RateLimits::new(&settings(vec![proxy, inner]));
        let client = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append("x-forwarded-for", v.parse().expect("ascii"));
            }
            limits.client(SocketAddr::new(proxy, 443), &headers)
        };
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for (values, expected) in [
            (&["198.51.100.1, 203.0.113.9"][..], "203.0.113.9"),
            (&["198.51.100.1, 203.0.113.9:4711"], "203.0.113.9"),
            (&["198.51.100.1, [2001:db8::1]"], "2001:db8::1"),
            (&["198.51.100.1, [2001:db8::1]:443"], "2001:db8::1"),
            (&["198.51.100.1,\t 203.0.113.9 ,10.0.0.2"], "203.0.113.9"),
            (
                &["198.51.100.1", "203.0.113.9:4711, 10.0.0.2"],
                "203.0.113.9",
            ),
            // Unreadable: the proxy we walked from.
            (&["198.51.100.1, unknown"], "10.0.0.1"),
            (&["198.51.100.1, _hidden"], "10.0.0.1"),
            (&["198.51.100.1, <script>"], "10.0.0.1"),
            (&["198.51.100.1, "], "10.0.0.1"),
            (&["198.51.100.1", "unknown"], "10.0.0.1"),
            // Past a trusted hop: that hop, which wrote the entry.
            (&["198.51.100.1, unknown, 10.0.0.2"], "10.0.0.2"),
            // Nothing but proxies: the first of them.
            (&["10.0.0.2"], "10.0.0.2"),
            (&[], "10.0.0.1"),
        ] {
            assert_eq!(client(values), ip(expected), "{values:?}");
        }
        // A value that is not visible ASCII is unreadable too.
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "198.51.100.1".parse().expect("ascii"));
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.9\xff").expect("obs-text"),
        );
        assert_eq!(limits.client(SocketAddr::new(proxy, 443), &headers), proxy);
    }
}
