//! The Lua scripts: each one atomic step, one round trip.

use redis::{Script, aio::ConnectionManager};
use std::{sync::LazyLock, time::Duration};

/// A GCRA bucket's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gcra {
    /// Admitted; this many more would be at once.
    Allowed { remaining: u32 },
    /// Refused; admitted again after this long.
    Limited { retry_after: Duration },
}

/// GCRA (the generic cell rate algorithm) on one key holding the
/// theoretical arrival time in ms. ARGV: emission interval (ms), burst.
/// Returns {1, remaining} or {0, wait ms}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * (burst - 1)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if now < tat - tolerance then
  return {0, tat - tolerance - now}
end
local next = tat + interval
redis.call('SET', KEYS[1], next, 'PX', next - now)
return {1, math.floor((now + tolerance - next) / interval) + 1}
";
static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA_LUA));

pub(crate) async fn gcra(
    conn: &mut ConnectionManager,
    key: &str,
    interval: Duration,
    burst: u32,
) -> redis::RedisResult<Gcra> {
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let (allowed, n): (i64, i64) = GCRA
        .key(key)
        .arg(interval_ms)
        .arg(burst.max(1))
        .invoke_async(conn)
        .await?;
    Ok(if allowed == 1 {
        Gcra::Allowed {
            remaining: u32::try_from(n.max(0)).unwrap_or(u32::MAX),
        }
    } else {
        Gcra::Limited {
            retry_after: Duration::from_millis(u64::try_from(n.max(1)).unwrap_or(1)),
        }
    })
}

/// KEYS: the value, the writers' mark. ARGV: version, value, ttl ms.
/// Stores the value (its version in front) unless the mark or the cached
/// value's version is newer.
const PUT_IF_NEWER_LUA: &str = r"
local version = tonumber(ARGV[1])
local written = tonumber(redis.call('GET', KEYS[2]))
if written and written > version then return 0 end
local cached = redis.call('GET', KEYS[1])
if cached then
  local sep = string.find(cached, ':', 1, true)
  if sep and tonumber(string.sub(cached, 1, sep - 1)) >= version then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
";
static PUT_IF_NEWER: LazyLock<Script> = LazyLock::new(|| Script::new(PUT_IF_NEWER_LUA));

pub(crate) async fn put_if_newer(
    conn: &mut ConnectionManager,
    key: &str,
    mark: &str,
    version: i64,
    value: &[u8],
    ttl: Duration,
) -> redis::RedisResult<bool> {
    let stored: i64 = PUT_IF_NEWER
        .key(key)
        .key(mark)
        .arg(version)
        .arg(value)
        .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
        .invoke_async(conn)
        .await?;
    Ok(stored == 1)
}

/// KEYS: the value, the writers' mark. ARGV: version, mark ttl ms.
const INVALIDATE_LUA: &str = r"
local version = tonumber(ARGV[1])
local written = tonumber(redis.call('GET', KEYS[2]))
if (not written) or written < version then
  redis.call('SET', KEYS[2], version, 'PX', ARGV[2])
end
redis.call('DEL', KEYS[1])
return 1
";
static INVALIDATE: LazyLock<Script> = LazyLock::new(|| Script::new(INVALIDATE_LUA));

pub(crate) async fn invalidate(
    conn: &mut ConnectionManager,
    key: &str,
    mark: &str,
    version: i64,
    mark_ttl: Duration,
) -> redis::RedisResult<()> {
    let _: i64 = INVALIDATE
        .key(key)
        .key(mark)
        .arg(version)
        .arg(
            u64::try_from(mark_ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        )
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// The value part of a cached entry (`<version>:<value>`).
pub(crate) fn strip_version(entry: &[u8]) -> Option<&[u8]> {
    let sep = entry.iter().position(|b| *b == b':')?;
    Some(&entry[sep + 1..])
}

/// Loads every script (a Redis that restarted or was flushed has none), in
/// one round trip.
pub(crate) async fn load_all(conn: &mut ConnectionManager) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for code in [GCRA_LUA, PUT_IF_NEWER_LUA, INVALIDATE_LUA] {
        pipe.cmd("SCRIPT").arg("LOAD").arg(code);
    }
    pipe.query_async::<()>(conn).await
}
