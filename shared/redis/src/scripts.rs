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

/// A GCRA bucket's answer to a request for several admissions at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcraTake {
    /// `granted` admissions (at least one, at most as many as asked), taken
    /// from the bucket as if that many requests had arrived now.
    Granted { granted: u32, remaining: u32 },
    /// Not even one; admitted again after this long.
    Limited { retry_after: Duration },
}

/// GCRA (the generic cell rate algorithm) on one key holding the
/// theoretical arrival time in ms. ARGV: emission interval (ms), burst, the
/// admissions wanted (up to as many as the bucket holds now).
/// Returns {granted, remaining} or {0, wait ms}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tolerance = interval * (burst - 1)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if now < tat - tolerance then
  return {0, tat - tolerance - now}
end
local granted = math.min(want, math.floor((now + tolerance - tat) / interval) + 1)
local next = tat + granted * interval
redis.call('SET', KEYS[1], next, 'PX', next - now)
return {granted, math.floor((now + tolerance - next) / interval) + 1}
";
static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA_LUA));

pub(crate) async fn gcra(
    conn: &mut ConnectionManager,
    key: &str,
    interval: Duration,
    burst: u32,
) -> redis::RedisResult<Gcra> {
    Ok(match gcra_take(conn, key, interval, burst, 1).await? {
        GcraTake::Granted { remaining, .. } => Gcra::Allowed { remaining },
        GcraTake::Limited { retry_after } => Gcra::Limited { retry_after },
    })
}

pub(crate) async fn gcra_take(
    conn: &mut ConnectionManager,
    key: &str,
    interval: Duration,
    burst: u32,
    want: u32,
) -> redis::RedisResult<GcraTake> {
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let (granted, n): (i64, i64) = GCRA
        .key(key)
        .arg(interval_ms)
        .arg(burst.max(1))
        .arg(want.max(1))
        .invoke_async(conn)
        .await?;
    Ok(if granted >= 1 {
        GcraTake::Granted {
            granted: u32::try_from(granted).unwrap_or(1),
            remaining: u32::try_from(n.max(0)).unwrap_or(u32::MAX),
        }
    } else {
        GcraTake::Limited {
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
