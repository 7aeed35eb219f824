//! Rate limits for both APIs: one budget per owner (a user who proved who they are, an `API_TOKENS` token, or the
//! client address) per fixed window, counted in memory or in Redis (so several ipamd processes share one budget).
//!
//! The memory table is keyed by [`Owner`], a fixed-size value, and holds only the current window: it is emptied
//! when the window turns and never holds more than [`MEMORY_KEYS`] owners. A Redis that fails costs microseconds:
//! after a failure no connection is tried for a growing interval (one warning per attempt), and meanwhile every
//! process counts in its own memory table.
//!
//! Windows are whole periods of unix time read from the app's [`Clock`] (so processes sharing a Redis count the
//! same windows), and the back-off is measured by it too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use sha2::{Digest, Sha256};

use crate::auth;
use crate::clock::Clock;

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
    /// The budget's period, in seconds.
    pub period: u64,
}

/// Whose budget a call spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A user whose credentials were proven earlier (see [`crate::auth::Auth::proven`]): whichever of their app
    /// keys or tokens they call with, one budget.
    User { org: i64, user: i64 },
    /// An `API_TOKENS` operator token, by its SHA-256 digest.
    Operator([u8; 32]),
    /// The client address ([`crate::net::client`]: an IPv6 client counts by its /64): every call whose credentials
    /// are not proven yet.
    Address(IpAddr),
}

impl Owner {
    pub fn address(ip: IpAddr) -> Owner {
        Owner::Address(crate::net::client(ip))
    }

    /// The owner's name in Redis: a digest, the same in every process, that holds no secret.
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        match self {
            Owner::User { org, user } => {
                h.update(b"user");
                h.update(org.to_be_bytes());
                h.update(user.to_be_bytes());
            }
            Owner::Operator(token) => {
                h.update(b"operator");
                h.update(token);
            }
            Owner::Address(IpAddr::V4(ip)) => {
                h.update(b"address");
                h.update(ip.octets());
            }
            Owner::Address(IpAddr::V6(ip)) => {
                h.update(b"address");
                h.update(ip.octets());
            }
        }
        auth::hex(&h.finalize())
    }
}

/// What a table holds, for the tests and the bounds SECURITY.md states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub entries: usize,
    /// The bytes of the table's storage (its capacity times the size of an entry): keys and values are fixed-size.
    pub bytes: usize,
}

impl Held {
    pub fn of<K, V>(table: &HashMap<K, V>) -> Held {
        Held {
            entries: table.len(),
            bytes: table.capacity() * (std::mem::size_of::<(K, V)>() + 1),
        }
    }
}

/// Most owners the memory table counts in one window. Entries are fixed-size (49 bytes with the table's
/// overhead), so the table stays under 6.5 MiB. Owners beyond it are let through uncounted, with a warning once per
/// window: that takes more client addresses in one window than any one attacker should have, and refusing them
/// would refuse the legitimate callers among them.
pub const MEMORY_KEYS: usize = 100_000;

/// The counts of the current window.
struct Counts {
    window: u64,
    counts: HashMap<Owner, u64>,
    /// Whether the table was found full in this window (warned once).
    warned: bool,
}

/// How long a connection to Redis, and then each command, may take before it counts as a failure.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// The first pause after a Redis failure; it doubles after each failed attempt, up to [`REDIS_MAX_BACKOFF`].
const REDIS_BACKOFF: Duration = Duration::from_secs(1);
const REDIS_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One atomic increment of a window's counter, which sets the counter's expiry on the first request of the window.
/// Built once: `Script::new` hashes the source (its SHA-1 names it in Redis).
static COUNT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local n = redis.call('INCR', KEYS[1]) \
         if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n",
    )
});

struct Redis {
    client: redis::Client,
    link: Mutex<Link>,
    /// What the back-off is measured by (the app's clock).
    clock: Clock,
}

/// The state of the connection to Redis.
struct Link {
    conn: Option<MultiplexedConnection>,
    /// Counts the connections made, so that of several calls failing on one connection only the first drops it.
    generation: u64,
    /// A call is connecting: the others count in memory meanwhile rather than wait.
    connecting: bool,
    /// No connection attempt before this.
    next_attempt: Option<Instant>,
    backoff: Duration,
}

/// What a call does with Redis.
enum Route<'a> {
    Use(MultiplexedConnection, u64),
    /// This call connects; the others count in memory until it is done.
    Connect(Connecting<'a>),
    Memory,
}

/// The one connection attempt in progress ([`Link::connecting`]). hyper drops a request's future when its client
/// goes away, so the attempt may end at any await: dropped before [`Redis::connect`] has recorded the outcome, it
/// counts as a failed attempt (the flag is cleared and the next attempt waits for the back-off), so a cancelled
/// connect can neither leave every later call counting in memory for good nor make each call try again at once.
struct Connecting<'a> {
    redis: &'a Redis,
    /// Cleared once [`Redis::connect`] has recorded the outcome itself.
    pending: bool,
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        if !self.pending {
            return;
        }
        if let Ok(mut link) = self.redis.link.lock() {
            link.connecting = false;
            link.back_off(self.redis.clock.instant());
        }
    }
}

pub struct Limiter {
    limit: Limit,
    /// What the windows are counted by (the app's clock).
    clock: Clock,
    /// The counts of this process: the backend with `memory://`, the fallback while Redis is unreachable.
    memory: Mutex<Counts>,
    redis: Option<Redis>,
}

impl Limiter {
    /// Builds the limiter from the settings, on `clock`; `None` when rate limiting is off.
    pub fn new(enabled: bool, limit: &str, storage: &str, clock: Clock) -> Result<Option<Limiter>, String> {
        if !enabled {
            return Ok(None);
        }
        let limit = parse_limit(limit)?;
        let redis = if storage.starts_with("memory://") || storage.is_empty() {
            None
        } else if storage.starts_with("redis://") || storage.starts_with("rediss://") {
            let client = redis::Client::open(storage).map_err(|e| format!("RATELIMIT_STORAGE_URI: {e}"))?;
            Some(Redis {
                client,
                link: Mutex::new(Link {
                    conn: None,
                    generation: 0,
                    connecting: false,
                    next_attempt: None,
                    backoff: REDIS_BACKOFF,
                }),
                clock: clock.clone(),
            })
        } else {
            return Err(format!(
                "RATELIMIT_STORAGE_URI: unsupported storage '{storage}' (memory:// or redis://)"
            ));
        };
        let memory = Mutex::new(Counts {
            window: 0,
            counts: HashMap::new(),
            warned: false,
        });
        Ok(Some(Limiter {
            limit,
            clock,
            memory,
            redis,
        }))
    }

    /// Connects to Redis, if that is the storage, and warns when it cannot: run once at start, so that an
    /// unreachable Redis is reported before the first call meets it.
    pub async fn check_storage(&self) {
        if let Some(redis) = &self.redis {
            if let Route::Connect(attempt) = redis.route() {
                if redis.connect(attempt).await.is_some() {
                    tracing::info!("rate limiter: connected to Redis");
                }
            }
        }
    }

    /// Whether the counters' storage can be used now, for `GET /readyz`: always with `memory://`; with Redis, while
    /// it is connected. Costs a lock, never a round trip: while Redis is down, a connection attempt is started in
    /// the background when the back-off allows one, and a later answer shows its outcome.
    pub fn storage_ready(self: &Arc<Self>) -> bool {
        let Some(redis) = &self.redis else {
            return true;
        };
        if redis.link.lock().is_ok_and(|link| link.conn.is_some()) {
            return true;
        }
        let limiter = self.clone();
        tokio::spawn(async move { limiter.check_storage().await });
        false
    }

    /// Counts one request against `owner`'s budget. While Redis fails, the request is counted in this process's
    /// memory instead: an outage of the limiter must neither become an outage of the IPAM nor lift every limit.
    pub async fn check(&self, owner: &Owner) -> Decision {
        let period = self.limit.period.as_secs().max(1);
        // Unix seconds, so that every process sharing a Redis counts the same windows.
        let now = u64::try_from(self.clock.now()).unwrap_or(0);
        let window = now / period;
        let reset = period - now % period;
        let shared = match &self.redis {
            Some(redis) => redis.count(owner, window, period).await,
            None => None,
        };
        let count = match shared {
            Some(n) => Some(n),
            None => self.count_in_memory(owner, window),
        };
        match count {
            Some(count) => Decision {
                allowed: count <= self.limit.count,
                limit: self.limit.count,
                remaining: self.limit.count.saturating_sub(count),
                reset,
                period,
            },
            None => Decision {
                allowed: true,
                limit: self.limit.count,
                remaining: self.limit.count,
                reset,
                period,
            },
        }
    }

    /// What the memory table holds.
    pub fn held(&self) -> Held {
        self.memory
            .lock()
            .map_or(Held { entries: 0, bytes: 0 }, |m| Held::of(&m.counts))
    }

    /// One more request of `owner` in `window`; `None` when it was not counted (the table full, or poisoned).
    fn count_in_memory(&self, owner: &Owner, window: u64) -> Option<u64> {
        let mut m = self.memory.lock().ok()?;
        if m.window != window {
            // Every count belongs to a past window: all of them go, and so does the storage they took.
            *m = Counts {
                window,
                counts: HashMap::new(),
                warned: false,
            };
        }
        if m.counts.len() >= MEMORY_KEYS && !m.counts.contains_key(owner) {
            if !m.warned {
                m.warned = true;
                tracing::warn!(
                    owners = MEMORY_KEYS,
                    "rate limiter: the table is full for this window; further owners are not counted"
                );
            }
            return None;
        }
        let count = m.counts.entry(*owner).or_insert(0);
        *count += 1;
        Some(*count)
    }
}

impl Redis {
    /// One atomic increment of the owner's counter for this window, which expires with the window; `None` when
    /// Redis is not connected or fails.
    async fn count(&self, owner: &Owner, window: u64, period: u64) -> Option<u64> {
        let (mut conn, generation) = match self.route() {
            Route::Use(conn, generation) => (conn, generation),
            Route::Connect(attempt) => self.connect(attempt).await?,
            Route::Memory => return None,
        };
        let key = format!("ipamd:rl:{}:{window}", owner.digest());
        match COUNT.key(&key).arg(period + 1).invoke_async::<u64>(&mut conn).await {
            Ok(n) => {
                self.answered();
                Some(n)
            }
            Err(e) => {
                self.failed(generation, &e.to_string());
                None
            }
        }
    }

    /// The connection to use, or whether this call is the one to connect.
    fn route(&self) -> Route<'_> {
        let Ok(mut link) = self.link.lock() else {
            return Route::Memory;
        };
        if let Some(conn) = &link.conn {
            return Route::Use(conn.clone(), link.generation);
        }
        if link.connecting || link.next_attempt.is_some_and(|t| self.clock.instant() < t) {
            return Route::Memory;
        }
        link.connecting = true;
        Route::Connect(Connecting {
            redis: self,
            pending: true,
        })
    }

    /// Connects, within [`REDIS_TIMEOUT`]; on failure, backs off and warns.
    async fn connect(&self, mut attempt: Connecting<'_>) -> Option<(MultiplexedConnection, u64)> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let connected = self.client.get_multiplexed_async_connection_with_config(&config).await;
        let mut link = self.link.lock().ok()?;
        link.connecting = false;
        attempt.pending = false;
        match connected {
            Ok(conn) => {
                link.generation += 1;
                link.conn = Some(conn.clone());
                link.next_attempt = None;
                Some((conn, link.generation))
            }
            Err(e) => {
                let pause = link.back_off(self.clock.instant());
                tracing::warn!(
                    error = %e,
                    retry_in_secs = pause.as_secs(),
                    "rate limiter: cannot reach Redis (RATELIMIT_STORAGE_URI); counting in memory per process"
                );
                None
            }
        }
    }

    /// Redis answered: the next failure pauses for the shortest time again. (Not on connecting: a server that
    /// accepts connections and then fails every command must still be tried less and less often.)
    fn answered(&self) {
        if let Ok(mut link) = self.link.lock() {
            link.backoff = REDIS_BACKOFF;
        }
    }

    /// A command failed on connection `generation`: the first call to see it drops the connection and backs off.
    fn failed(&self, generation: u64, error: &str) {
        let Ok(mut link) = self.link.lock() else {
            return;
        };
        if link.generation != generation || link.conn.is_none() {
            return;
        }
        link.conn = None;
        let pause = link.back_off(self.clock.instant());
        tracing::warn!(
            error,
            retry_in_secs = pause.as_secs(),
            "rate limiter: Redis failed; counting in memory per process"
        );
    }
}

impl Link {
    /// Schedules the next connection attempt the current pause after `now`, and doubles the pause after that;
    /// returns the pause.
    fn back_off(&mut self, now: Instant) -> Duration {
        let pause = self.backoff;
        self.next_attempt = Some(now + pause);
        self.backoff = (pause * 2).min(REDIS_MAX_BACKOFF);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

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
    async fn memory_budget_runs_out_per_owner_until_the_window_turns() {
        let clock = ManualClock::new();
        let l = Limiter::new(true, "3 per hour", "memory://", clock.clock())
            .unwrap()
            .unwrap();
        let (a, b) = (Owner::User { org: 1, user: 2 }, Owner::User { org: 1, user: 3 });
        for left in [2, 1, 0] {
            let d = l.check(&a).await;
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let d = l.check(&a).await;
        assert!(!d.allowed && d.reset > 0 && d.reset <= 3600);
        assert!(l.check(&b).await.allowed);
        // The last second of the window, then the next window with a full budget.
        clock.advance(Duration::from_secs(d.reset - 1));
        let last = l.check(&a).await;
        assert_eq!((last.allowed, last.reset), (false, 1));
        clock.advance(Duration::from_secs(1));
        let d = l.check(&a).await;
        assert_eq!((d.allowed, d.remaining, d.reset), (true, 2, 3600));
    }

    #[test]
    fn the_memory_table_holds_one_window_and_at_most_its_cap() {
        let l = Limiter::new(true, "3 per hour", "memory://", Clock::System)
            .unwrap()
            .unwrap();
        for i in 0..1000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert_eq!(l.count_in_memory(&Owner::address(ip), 7), Some(1));
        }
        assert_eq!(l.held().entries, 1000);
        // The window turns: every count of the last one goes, and its storage with it.
        assert_eq!(l.count_in_memory(&Owner::User { org: 1, user: 1 }, 8), Some(1));
        assert_eq!(l.held().entries, 1);
        assert!(l.held().bytes < 1000, "{:?}", l.held());
        // Full: known owners go on counting, new ones are not counted.
        for i in 1..MEMORY_KEYS as i64 {
            l.count_in_memory(&Owner::User { org: 1, user: i + 1 }, 8);
        }
        assert_eq!(l.count_in_memory(&Owner::User { org: 1, user: 1 }, 8), Some(2));
        assert_eq!(l.count_in_memory(&Owner::User { org: 2, user: 1 }, 8), None);
        let held = l.held();
        assert_eq!(held.entries, MEMORY_KEYS);
        assert!(held.bytes < 8 << 20, "{held:?}");
    }

    /// hyper drops a request's future when its client goes away: a connect cancelled half-way must not leave the
    /// limiter believing a call is still connecting (then no call would try Redis again, for good).
    #[tokio::test]
    async fn a_cancelled_connect_is_tried_again_after_the_back_off() {
        // Accepts connections (the kernel's backlog) but never answers the handshake.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("redis://{}", silent.local_addr().unwrap());
        let clock = ManualClock::new();
        let l = Limiter::new(true, "3 per hour", &uri, clock.clock()).unwrap().unwrap();
        let owner = Owner::User { org: 1, user: 1 };
        let cancelled = tokio::time::timeout(REDIS_TIMEOUT / 5, l.check(&owner)).await;
        assert!(cancelled.is_err(), "the connect was still waiting for Redis");
        let redis = l.redis.as_ref().unwrap();
        assert!(matches!(redis.route(), Route::Memory), "backing off");
        clock.advance(REDIS_BACKOFF - Duration::from_millis(1));
        assert!(matches!(redis.route(), Route::Memory), "still backing off");
        clock.advance(Duration::from_millis(1));
        assert!(
            matches!(redis.route(), Route::Connect(_)),
            "tried again after the back-off"
        );
        assert!(
            !redis.link.lock().unwrap().connecting,
            "the abandoned attempt cleared the flag"
        );
        // The failed attempt just above backed off again; meanwhile calls count in memory at once.
        let d = tokio::time::timeout(REDIS_TIMEOUT / 5, l.check(&owner)).await.unwrap();
        assert_eq!(d.remaining, 2);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Owner::address(a), Owner::address(b));
        assert_ne!(Owner::address(a), Owner::address(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(Owner::address(mapped), Owner::Address("10.0.0.1".parse().unwrap()));
    }
}
