//! Rate limits for both APIs: one budget per caller per fixed window, counted in memory or in Redis (so several
//! ipamd processes share one budget).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use crate::auth;

/// A budget: `count` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u64,
    pub period: Duration,
}

/// Parses `200 per minute`, `10/second`, `5000 per hour`, `1 per day` (units may be plural).
pub fn parse_limit(s: &str) -> Result<Limit, String> {
    let bad = || format!("not a rate limit: '{s}' (use e.g. '200 per minute' or '10/second')");
    let t = s.trim().to_ascii_lowercase();
    let (n, unit) = t.split_once('/').or_else(|| t.split_once(" per ")).ok_or_else(bad)?;
    let count: u64 = n.trim().parse().map_err(|_| bad())?;
    let secs = match unit.trim().trim_end_matches('s') {
        "second" | "sec" => 1,
        "minute" | "min" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return Err(bad()),
    };
    if count == 0 {
        return Err(bad());
    }
    Ok(Limit {
        count,
        period: Duration::from_secs(secs),
    })
}

/// The outcome of one check, for the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the budget refills.
    pub reset: u64,
}

enum Backend {
    Memory(Mutex<HashMap<String, (u64, u64)>>),
    /// Connected on first use, and reconnected by the manager after failures.
    Redis(redis::Client, tokio::sync::OnceCell<ConnectionManager>),
}

pub struct Limiter {
    limit: Limit,
    backend: Backend,
}

/// Most keys the memory backend keeps before it drops those of past windows.
const MEMORY_KEYS: usize = 100_000;

impl Limiter {
    /// Builds the limiter from the settings; `None` when rate limiting is off.
    pub fn new(enabled: bool, limit: &str, storage: &str) -> Result<Option<Limiter>, String> {
        if !enabled {
            return Ok(None);
        }
        let limit = parse_limit(limit)?;
        let backend = if storage.starts_with("memory://") || storage.is_empty() {
            Backend::Memory(Mutex::new(HashMap::new()))
        } else if storage.starts_with("redis://") || storage.starts_with("rediss://") {
            let client = redis::Client::open(storage).map_err(|e| format!("RATELIMIT_STORAGE_URI: {e}"))?;
            Backend::Redis(client, tokio::sync::OnceCell::new())
        } else {
            return Err(format!(
                "RATELIMIT_STORAGE_URI: unsupported storage '{storage}' (memory:// or redis://)"
            ));
        };
        Ok(Some(Limiter { limit, backend }))
    }

    /// `caller`'s budget without spending any of it.
    pub async fn peek(&self, caller: &str) -> Decision {
        self.count(caller, 0).await
    }

    /// Counts one request against `caller`'s budget. A Redis failure lets the request through (and is logged):
    /// an outage of the limiter must not become an outage of the IPAM.
    pub async fn check(&self, caller: &str) -> Decision {
        self.count(caller, 1).await
    }

    async fn count(&self, caller: &str, spend: u64) -> Decision {
        let period = self.limit.period.as_secs().max(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let window = now / period;
        let reset = period - now % period;
        let count = match &self.backend {
            Backend::Memory(table) => match table.lock() {
                Ok(mut t) => {
                    if t.len() >= MEMORY_KEYS {
                        t.retain(|_, (w, _)| *w == window);
                    }
                    let entry = t.entry(caller.to_string()).or_insert((window, 0));
                    if entry.0 != window {
                        *entry = (window, 0);
                    }
                    entry.1 += spend;
                    entry.1
                }
                Err(_) => 0,
            },
            Backend::Redis(client, manager) => {
                match redis_count(client, manager, caller, window, period, spend).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "rate limiter: Redis failed; letting the request through");
                        0
                    }
                }
            }
        };
        Decision {
            // A peek is refused once the budget is spent; a spend once it goes beyond.
            allowed: if spend == 0 {
                count < self.limit.count
            } else {
                count <= self.limit.count
            },
            limit: self.limit.count,
            remaining: self.limit.count.saturating_sub(count),
            reset,
        }
    }
}

/// One atomic increment of the caller's counter for this window, which expires with the window.
async fn redis_count(
    client: &redis::Client,
    manager: &tokio::sync::OnceCell<ConnectionManager>,
    caller: &str,
    window: u64,
    period: u64,
    spend: u64,
) -> Result<u64, String> {
    let connect = || async {
        tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client.clone()))
            .await
            .map_err(|_| "Redis did not answer within 5 s".to_string())?
            .map_err(|e| e.to_string())
    };
    let mut con = manager.get_or_try_init(connect).await?.clone();
    let key = format!("ipamd:rl:{}:{window}", auth::digest(caller));
    // INCRBY 0 reads without spending; the first spend of a window sets its expiry.
    let script = redis::Script::new(
        "local n = redis.call('INCRBY', KEYS[1], ARGV[2]) \
         if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n",
    );
    script
        .key(&key)
        .arg(period + 1)
        .arg(spend)
        .invoke_async::<u64>(&mut con)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            parse_limit("200 per minute").unwrap(),
            Limit {
                count: 200,
                period: Duration::from_secs(60)
            }
        );
        assert_eq!(parse_limit("10/second").unwrap().period, Duration::from_secs(1));
        assert_eq!(parse_limit(" 5 per hours ").unwrap().count, 5);
        assert_eq!(parse_limit("1/day").unwrap().period, Duration::from_secs(86_400));
        for bad in ["", "200", "x per minute", "0/second", "10 per fortnight", "-1/second"] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn memory_budget_runs_out_per_caller() {
        let l = Limiter::new(true, "3 per hour", "memory://").unwrap().unwrap();
        for left in [2, 1, 0] {
            let d = l.check("a").await;
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let d = l.check("a").await;
        assert!(!d.allowed && d.reset > 0 && d.reset <= 3600);
        assert!(l.check("b").await.allowed);
    }
}
