//! Credentials: the `userdata` sha1, argon2id password hashes, app key and token digests, the verification cache,
//! the cache of known callers and the failed-login lockout. Everything here is blocking (argon2) and runs on the
//! blocking pool or a database thread.
//!
//! Each table is keyed by a fixed-size digest, never by claimed text, holds at most [`TABLE_LIMIT`] entries of a
//! bounded size, and drops expired entries at least once per lifetime (on the next change after it), not only
//! when it is full. Lifetimes and windows are measured by the app's [`Clock`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::error::{Code, Error, Result};
use crate::handler::Caller;
use crate::ratelimit::{Held, Owner};

/// Most entries each table (verification cache, known callers, lockout) keeps.
pub const TABLE_LIMIT: usize = 10_000;

/// The longest org identifier or username `userdata` may claim, in bytes: what `org/add` and `org/users/add`
/// accept. Longer claims are refused before anything is looked up or kept.
pub const NAME_MAX: usize = 64;

/// The longest application name (an app key's name) a remembered caller may carry, in bytes: `org/appkeys/add`
/// accepts 64 characters. A caller with a longer one (from an older database) is checked in full every time.
pub const APPLICATION_MAX: usize = 256;

/// Process-wide authentication state: the verification cache, the known callers and the failed logins of names
/// that name nobody (a user's are kept in the database, shared by every process: credentials.rs).
pub struct Auth {
    /// What every lifetime and window here is measured by (the app's clock).
    clock: Clock,
    /// The keyed hash of the tables' keys: BLAKE3 in its keyed mode (a MAC) under a key random per process, so a
    /// key means nothing outside it, nothing secret is kept in memory, and an attacker can neither predict a key nor
    /// make two inputs share one. About a tenth of the instructions of HMAC-SHA-256 over the same input, and it runs
    /// on every authenticated call. Each key starts from a clone, without hashing the key again.
    keyed: blake3::Hasher,
    /// The hash of [`Auth::lockout_key`]: BLAKE3 in its key derivation mode under a fixed context, the same in every
    /// process, since the users' failed logins are kept by it in the database they share.
    lockout: blake3::Hasher,
    /// A real argon2id hash of a random value, verified against for unknown users so timing reveals nothing.
    dummy_phc: String,
    cache_ttl: Duration,
    cache: Mutex<Table<[u8; 32], Instant>>,
    /// Who a token or an app key with userdata authenticated as, for as long as `cache_ttl` and the credential
    /// epoch it was read at (see [`Auth::recall`]).
    callers: Mutex<Table<CallerKey, Remembered>>,
    lockout_attempts: u32,
    lockout_window: Duration,
    /// Failed logins of names that name nobody, by [`Auth::lockout_key`].
    failures: Mutex<Table<[u8; 32], Failures>>,
    /// See [`Auth::write_checks`].
    writes_queued: AtomicU64,
    writes_rechecked: AtomicU64,
    /// See [`Auth::work`].
    callers_recalled: AtomicU64,
    passwords_cached: AtomicU64,
    argon2_runs: AtomicU64,
}

/// The failed logins of a name that names nobody: `count` since `since` (a window that starts at the first
/// failure), and the lockout they started. Fixed-size, however many attempts the lockout allows. (A user's are
/// the row of `login_failures` of the same shape.)
struct Failures {
    since: Instant,
    count: u32,
    locked_until: Option<Instant>,
}

/// How far writes got through their credential checks (see [`Auth::write_checks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteChecks {
    /// Writes authorised in a read transaction and handed to the group-commit writer.
    pub queued: u64,
    /// Writes whose credentials the writer checked again in full because `credential_epoch` had moved since.
    pub rechecked: u64,
}

/// What the credential checks cost (see [`Auth::work`]), for `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthWork {
    /// Calls answered from the known callers, with no credential lookup.
    pub callers_recalled: u64,
    /// Passwords found in the verification cache, with no argon2.
    pub passwords_cached: u64,
    /// argon2 verifications (against a user's hash or the dummy).
    pub argon2_runs: u64,
}

/// What the authentication tables hold (see [`Auth::held`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeld {
    pub cache: Held,
    pub callers: Held,
    pub failures: Held,
}

/// A table whose entries expire: swept of expired entries once per `every` (on the next change after it), and
/// kept under [`TABLE_LIMIT`] entries.
struct Table<K, V> {
    map: HashMap<K, V>,
    swept: Instant,
}

impl<K: Hash + Eq, V> Table<K, V> {
    /// An empty table, made at `now`: its first sweep is due a lifetime later.
    fn new(now: Instant) -> Self {
        Table {
            map: HashMap::new(),
            swept: now,
        }
    }

    /// Drops the entries `live` refuses when a sweep is due or the table is full; whether there is room for one
    /// more entry then.
    fn sweep(&mut self, now: Instant, every: Duration, live: impl Fn(&V) -> bool) -> bool {
        if now.duration_since(self.swept) >= every || self.map.len() >= TABLE_LIMIT {
            self.map.retain(|_, v| live(v));
            self.map.shrink_to(self.map.len() * 2);
            self.swept = now;
        }
        self.map.len() < TABLE_LIMIT
    }
}

/// Which credentials a remembered caller is for: a token by its [`Auth::token_key`], an app key with userdata by a
/// keyed hash of both (like the verification cache, nothing reusable is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerKey {
    Token([u8; 32]),
    Envelope([u8; 32]),
}

/// What a successful credential check found, all a later call with the same credentials needs.
#[derive(Debug, Clone)]
pub struct Known {
    pub caller: Caller,
    /// A token's expiry (unix seconds), checked at every use as the row's would be.
    pub expires: Option<i64>,
    /// The app key or token whose last use is stamped, at most once a minute.
    pub stamp_id: i64,
}

struct Remembered {
    known: Known,
    /// The `credential_epoch` of the transaction that read the credentials.
    epoch: i64,
    until: Instant,
    /// When the credential's last use was last stamped (unix seconds).
    stamped: Option<i64>,
}

/// The result of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Verified earlier and remembered: no argon2 ran.
    Cached,
    /// Verified now with argon2.
    Fresh,
    Failed,
}

/// The parts of `userdata` = `org/user:sha1hex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userdata {
    pub org: String,
    pub username: String,
    pub sha1: String,
}

impl Auth {
    pub fn new(clock: Clock, cache_ttl: Duration, lockout_attempts: u32, lockout_window: Duration) -> Result<Auth> {
        let dummy_phc = hash_password(&random_hex(20)?)?;
        let mut secret = [0u8; 32];
        fill_random(&mut secret)?;
        let now = clock.instant();
        Ok(Auth {
            clock,
            keyed: blake3::Hasher::new_keyed(&secret),
            lockout: blake3::Hasher::new_derive_key("ipamd login lockout v1"),
            dummy_phc,
            cache_ttl,
            cache: Mutex::new(Table::new(now)),
            callers: Mutex::new(Table::new(now)),
            lockout_attempts,
            lockout_window,
            failures: Mutex::new(Table::new(now)),
            writes_queued: AtomicU64::new(0),
            writes_rechecked: AtomicU64::new(0),
            callers_recalled: AtomicU64::new(0),
            passwords_cached: AtomicU64::new(0),
            argon2_runs: AtomicU64::new(0),
        })
    }

    /// How many writes reached the writer, and how many of them were checked again there at a moved epoch: so a
    /// test can change a credential while a write is known to wait for the writer, and know that the write was
    /// refused by the writer's check, not by its first one. (A count, never trusted for a decision: a rolled-back
    /// batch does not undo it.)
    pub fn write_checks(&self) -> WriteChecks {
        WriteChecks {
            queued: self.writes_queued.load(Ordering::Relaxed),
            rechecked: self.writes_rechecked.load(Ordering::Relaxed),
        }
    }

    /// Counts a write handed to the writer ([`Auth::write_checks`]).
    pub fn write_queued(&self) {
        self.writes_queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a write checked again at a moved epoch ([`Auth::write_checks`]).
    pub fn write_rechecked(&self) {
        self.writes_rechecked.fetch_add(1, Ordering::Relaxed);
    }

    /// How often the caches spared a lookup or an argon2 run, and how often argon2 ran.
    pub fn work(&self) -> AuthWork {
        AuthWork {
            callers_recalled: self.callers_recalled.load(Ordering::Relaxed),
            passwords_cached: self.passwords_cached.load(Ordering::Relaxed),
            argon2_runs: self.argon2_runs.load(Ordering::Relaxed),
        }
    }

    /// What each table holds: its entries, and the bytes of its storage and of what its entries own.
    pub fn held(&self) -> AuthHeld {
        let none = Held { entries: 0, bytes: 0 };
        let callers = self.callers.lock().map_or(none, |t| {
            let strings: usize = t
                .map
                .values()
                .map(|r| r.known.caller.username.capacity() + r.known.caller.application.capacity())
                .sum();
            let table = Held::of(&t.map);
            Held {
                bytes: table.bytes + strings,
                ..table
            }
        });
        AuthHeld {
            cache: self.cache.lock().map_or(none, |t| Held::of(&t.map)),
            callers,
            failures: self.failures.lock().map_or(none, |t| Held::of(&t.map)),
        }
    }

    /// Checks `sha1` against the stored `phc` (or the dummy when the user does not exist), cache first.
    ///
    /// The cache key covers the PHC string itself, so a password change (a new salt) can never hit an old entry.
    pub fn verify(&self, phc: Option<&str>, sha1: &str) -> Verified {
        let Some(phc) = phc else {
            self.argon2_runs.fetch_add(1, Ordering::Relaxed);
            verify_password(&self.dummy_phc, sha1);
            return Verified::Failed;
        };
        if self.cached(phc, sha1) {
            return Verified::Cached;
        }
        let (key, now) = (self.cache_key(phc, sha1), self.clock.instant());
        self.argon2_runs.fetch_add(1, Ordering::Relaxed);
        if !verify_password(phc, sha1) {
            return Verified::Failed;
        }
        if !self.cache_ttl.is_zero() {
            if let Ok(mut cache) = self.cache.lock() {
                if !cache.sweep(now, self.cache_ttl, |expires| *expires > now) {
                    cache.map.clear();
                }
                cache.map.insert(key, now + self.cache_ttl);
            }
        }
        Verified::Fresh
    }

    /// The key of an app key (trimmed and lower-cased here) with the claimed user and sha1 of `userdata`.
    ///
    /// The parts are gathered, length-prefixed, in one buffer and hashed in one update: this runs on every
    /// envelope call, and each update of the hasher has a cost of its own.
    pub fn envelope_key(&self, appkey: &str, ud: &Userdata) -> CallerKey {
        let parts = [appkey.trim(), ud.org.as_str(), ud.username.as_str()];
        let mut input = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum::<usize>() + ud.sha1.len());
        for part in parts {
            let start = input.len() + 8;
            input.extend_from_slice(&[0; 8]);
            if part.is_ascii() {
                input.extend(part.bytes().map(|b| b.to_ascii_lowercase()));
            } else {
                input.extend_from_slice(part.to_lowercase().as_bytes());
            }
            let len = (input.len() - start) as u64;
            input[start - 8..start].copy_from_slice(&len.to_be_bytes());
        }
        input.extend_from_slice(ud.sha1.as_bytes());
        let mut h = self.keyed.clone();
        h.update(&input);
        CallerKey::Envelope(*h.finalize().as_bytes())
    }

    /// The key of a token in this process's tables (known callers, the `API_TOKENS` list): a keyed hash, a sixth of
    /// the instructions of the SHA-256 digest the database stores, which a remembered token then never needs.
    pub fn token_key(&self, token: &str) -> [u8; 32] {
        let mut h = self.keyed.clone();
        h.update(b"token");
        h.update(token.as_bytes());
        *h.finalize().as_bytes()
    }

    /// [`Auth::proven`] for an envelope's app key and `userdata` (malformed `userdata` is never proven).
    pub fn proven_envelope(&self, appkey: &str, userdata: &str) -> Option<Owner> {
        let ud = parse_userdata(userdata).ok().flatten()?;
        self.proven(&self.envelope_key(appkey, &ud))
    }

    /// The key of the lockout of user `username` (as claimed, compared case-insensitively) of org `org_id`, whose
    /// `unlocks` count is `unlocks` (0 for a name that names nobody): `ipamd user unlock` raises the count in the
    /// database, so the user's failures and lockout are left behind under the old key, in every process. The same
    /// in every process (the database keeps a user's failures by it); it says nothing the database does not hold.
    pub fn lockout_key(&self, org_id: i64, username: &str, unlocks: i64) -> [u8; 32] {
        let mut h = self.lockout.clone();
        h.update(&org_id.to_be_bytes());
        h.update(&unlocks.to_be_bytes());
        h.update(username.to_lowercase().as_bytes());
        *h.finalize().as_bytes()
    }

    /// The user whose budget a call with credentials `key` spends, when those credentials were proven within the
    /// cache's lifetime; `None` sends the call to its client address's budget. The credential epoch is not
    /// checked here (it needs the database): the call itself checks it before anything else runs.
    pub fn proven(&self, key: &CallerKey) -> Option<Owner> {
        let callers = self.callers.lock().ok()?;
        let entry = callers.map.get(key).filter(|r| r.until > self.clock.instant())?;
        let user = entry.known.caller.user_id?;
        Some(Owner::User {
            org: entry.known.caller.org_id,
            user,
        })
    }

    /// The caller remembered for `key`, if it was read at `epoch` (the credential tables have not changed since)
    /// within the cache's lifetime, and whether this call is the one to stamp the credential's last use (`now`
    /// in unix seconds; once a minute).
    pub fn recall(&self, key: &CallerKey, epoch: i64, now: i64) -> Option<(Known, bool)> {
        let mut callers = self.callers.lock().ok()?;
        let entry = callers.map.get_mut(key)?;
        if entry.epoch < epoch {
            // Read before a credential changed: checked again in full (and remembered again if it still holds).
            callers.map.remove(key);
            return None;
        }
        if entry.epoch != epoch || entry.until <= self.clock.instant() {
            return None;
        }
        let stamp = entry.stamped.is_none_or(|t| t < now - 60);
        if stamp {
            entry.stamped = Some(now);
        }
        self.callers_recalled.fetch_add(1, Ordering::Relaxed);
        Some((entry.known.clone(), stamp))
    }

    /// Remembers a successful check read at `epoch`; `stamped` is when the credential's last use was stamped.
    pub fn remember(&self, key: CallerKey, known: Known, epoch: i64, stamped: Option<i64>) {
        if self.cache_ttl.is_zero()
            || known.caller.username.len() > NAME_MAX
            || known.caller.application.len() > APPLICATION_MAX
        {
            return;
        }
        let now = self.clock.instant();
        if let Ok(mut callers) = self.callers.lock() {
            if !callers.sweep(now, self.cache_ttl, |r| r.until > now) {
                callers.map.clear();
            }
            let until = now + self.cache_ttl;
            callers.map.insert(
                key,
                Remembered {
                    known,
                    epoch,
                    until,
                    stamped,
                },
            );
        }
    }

    /// Whether `sha1` was verified against `phc` recently: the check that needs no argon2.
    pub fn cached(&self, phc: &str, sha1: &str) -> bool {
        let key = self.cache_key(phc, sha1);
        let now = self.clock.instant();
        let hit = self
            .cache
            .lock()
            .is_ok_and(|cache| cache.map.get(&key).is_some_and(|expires| *expires > now));
        if hit {
            self.passwords_cached.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Refuses a name that names nobody (by [`Auth::lockout_key`]) that failed too often recently, as a user is
    /// refused ([`locked_out`]).
    pub fn check_lockout(&self, who: &[u8; 32]) -> Result<()> {
        let Ok(table) = self.failures.lock() else {
            return Ok(());
        };
        let now = self.clock.instant();
        match table
            .map
            .get(who)
            .and_then(|f| f.locked_until)
            .filter(|until| *until > now)
        {
            Some(until) => Err(locked_out(until.duration_since(now).as_secs())),
            None => Ok(()),
        }
    }

    /// Records a failed attempt of `who`, a name that names nobody; the one that reaches the limit inside the
    /// window starts the lockout. Such names are counted as users are, so the answers (the lockout included)
    /// never tell them apart.
    ///
    /// A full table first drops expired entries, then those that only count failures. When every entry is a
    /// lockout in force, the failure is not counted (argon2 and the rate limits still slow its author down).
    pub fn record_failure(&self, who: &[u8; 32]) {
        let Ok(mut table) = self.failures.lock() else {
            return;
        };
        let (now, window) = (self.clock.instant(), self.lockout_window);
        let locked = |f: &Failures| f.locked_until.is_some_and(|u| u > now);
        let room = table.sweep(now, window, |f| locked(f) || now.duration_since(f.since) < window);
        if !room && !table.map.contains_key(who) {
            table.map.retain(|_, f| locked(f));
            if table.map.len() >= TABLE_LIMIT {
                return;
            }
        }
        let entry = table.map.entry(*who).or_insert(Failures {
            since: now,
            count: 0,
            locked_until: None,
        });
        if now.duration_since(entry.since) >= window {
            (entry.since, entry.count) = (now, 0);
        }
        entry.count += 1;
        if entry.count >= self.lockout_attempts {
            entry.locked_until = Some(now + window);
            (entry.since, entry.count) = (now, 0);
        }
    }

    fn cache_key(&self, phc: &str, sha1: &str) -> [u8; 32] {
        // Length-prefixed parts, so no two (phc, sha1) pairs share an input.
        let mut h = self.keyed.clone();
        h.update(&(phc.len() as u64).to_be_bytes());
        h.update(phc.as_bytes());
        h.update(sha1.as_bytes());
        *h.finalize().as_bytes()
    }
}

/// The refusal of a login during a lockout, with the seconds left (at least one) in `Retry-After`.
pub fn locked_out(seconds_left: u64) -> Error {
    let mut e = Error::new(Code::TooManyAttempts, "too many failed attempts; try again later");
    e.retry_after = Some(seconds_left.max(1));
    e
}

/// Parses `org/user:sha1hex`; `Ok(None)` when it is malformed. The sha1 is normalised to lower case. An org or
/// username longer than [`NAME_MAX`] bytes (which no org or user can have) is refused as a bad request.
pub fn parse_userdata(s: &str) -> Result<Option<Userdata>> {
    let too_long = || {
        Error::new(
            Code::BadRequest,
            format!("userdata: the org and the username are at most {NAME_MAX} bytes each"),
        )
    };
    // `org/` + `user` + `:` + 40 hex digits.
    if s.len() > 2 * NAME_MAX + 42 {
        return Err(too_long());
    }
    let Some((org, rest)) = s.split_once('/') else {
        return Ok(None);
    };
    let Some((username, sha1)) = rest.rsplit_once(':') else {
        return Ok(None);
    };
    if org.len() > NAME_MAX || username.len() > NAME_MAX {
        return Err(too_long());
    }
    if org.is_empty() || username.is_empty() || sha1.len() != 40 || !sha1.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(Some(Userdata {
        org: org.to_string(),
        username: username.to_string(),
        sha1: sha1.to_ascii_lowercase(),
    }))
}

/// The hex SHA-1 of `lowercase(username) + "-" + password`, as clients send it in `userdata`.
pub fn userdata_sha1(username: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(username.to_lowercase().as_bytes());
    h.update(b"-");
    h.update(password.as_bytes());
    hex(&h.finalize())
}

/// The stored form of an app key or token: hex SHA-256. App keys are lower-cased first by their callers.
pub fn digest(secret: &str) -> String {
    hex(&digest_bytes(secret))
}

/// [`digest`] before it is written as hex.
pub fn digest_bytes(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// argon2id PHC string over the client's sha1 (lower-cased). Refused on the writer's and the database threads
/// ([`crate::store::on_database_thread`]): hashing there would hold up every queued write, or read, for ~20 ms.
pub fn hash_password(sha1: &str) -> Result<String> {
    if crate::store::on_database_thread() {
        return Err(Error::internal("argon2 must not run on a database thread"));
    }
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(sha1.to_ascii_lowercase().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

fn verify_password(phc: &str, sha1: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(sha1.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Whether `digest` is one of `digests` (the `API_TOKENS` tokens), compared in constant time.
pub fn contains_digest(digests: &[[u8; 32]], digest: &[u8; 32]) -> bool {
    digests.iter().any(|d| bool::from(d[..].ct_eq(&digest[..])))
}

/// A new app key: a UUID (v4), lower case.
pub fn new_appkey() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new REST token: 160 random bits as hex.
pub fn new_token() -> Result<String> {
    random_hex(20)
}

/// A new web UI session id: 256 random bits as hex.
pub fn new_session_id() -> Result<String> {
    random_hex(32)
}

/// The web UI's CSRF token of session `id`: a digest of it under a label of its own, so the page carries it and a
/// forged request from another site, which cannot read the page, cannot.
pub fn csrf_token(id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"ipamd ui csrf\0");
    h.update(id.as_bytes());
    hex(&h.finalize())
}

/// Whether `given` is the CSRF token `expected`, compared in constant time.
pub fn csrf_matches(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// A generated password: 24 characters from 62 (about 143 bits).
pub fn new_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut buf = [0u8; 32];
        fill_random(&mut buf)?;
        // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
        out.extend(
            buf.iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[(*b % 62) as usize] as char),
        );
    }
    out.truncate(24);
    Ok(out)
}

/// The first characters of a secret, kept to recognise it in lists and logs.
pub fn prefix(secret: &str) -> String {
    secret.chars().take(8).collect()
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf)?;
    Ok(hex(&buf))
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf).map_err(|e| Error::internal(format!("no randomness: {e}")))
}

/// Lower-case hex, as digests are stored.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn userdata_parses_and_normalises() {
        let u = parse_userdata("acme/Bob:8F452AD7325194E0B09CE383A74D88D8D86B7B39")
            .unwrap()
            .unwrap();
        assert_eq!(u.org, "acme");
        assert_eq!(u.username, "Bob");
        assert_eq!(u.sha1, "8f452ad7325194e0b09ce383a74d88d8d86b7b39");
        for bad in [
            "",
            "acme",
            "acme/bob",
            "acme/bob:123",
            "/bob:8f452ad7325194e0b09ce383a74d88d8d86b7b39",
            "acme/:8f452ad7325194e0b09ce383a74d88d8d86b7b39",
            "acme/bob:zz452ad7325194e0b09ce383a74d88d8d86b7b39",
        ] {
            assert_eq!(parse_userdata(bad).unwrap(), None, "{bad}");
        }
        let sha = "8f452ad7325194e0b09ce383a74d88d8d86b7b39";
        let longest = format!("{}/{}:{sha}", "o".repeat(NAME_MAX), "u".repeat(NAME_MAX));
        assert!(parse_userdata(&longest).unwrap().is_some());
        for long in [
            format!("{}/u:{sha}", "o".repeat(NAME_MAX + 1)),
            format!("o/{}:{sha}", "u".repeat(NAME_MAX + 1)),
            format!("o/{}:{sha}", "u".repeat(1 << 20)),
            "x".repeat(1 << 20),
        ] {
            assert_eq!(parse_userdata(&long).unwrap_err().code, Code::BadRequest);
        }
    }

    #[test]
    fn sha1_matches_the_documented_recipe() {
        // sha1("admin-secret"), computed independently with sha1sum.
        assert_eq!(
            userdata_sha1("Admin", "secret"),
            "6421dfe5510d328b2b2f39dd2d4c302da2980f8e"
        );
    }

    #[test]
    fn passwords_hash_and_verify_with_cache_and_dummy() {
        let auth = Auth::new(Clock::System, Duration::from_secs(60), 3, Duration::from_secs(60)).unwrap();
        let sha = userdata_sha1("bob", "pw");
        let phc = hash_password(&sha).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert_eq!(auth.verify(Some(&phc), &sha), Verified::Fresh);
        assert_eq!(auth.verify(Some(&phc), &sha), Verified::Cached);
        assert_eq!(
            auth.verify(Some(&phc), &userdata_sha1("bob", "other")),
            Verified::Failed
        );
        assert_eq!(auth.verify(None, &sha), Verified::Failed);
        let new_phc = hash_password(&userdata_sha1("bob", "new")).unwrap();
        assert_eq!(
            auth.verify(Some(&new_phc), &sha),
            Verified::Failed,
            "a new hash never hits the old cache entry"
        );
    }

    /// A standard user `bob` (org 1, user 2) who called with a token.
    fn known_bob() -> Known {
        Known {
            caller: Caller {
                org_id: 1,
                operator_org: false,
                user_id: Some(2),
                username: "bob".into(),
                level: crate::handler::Level::Standard,
                application: "token:abc".into(),
            },
            expires: None,
            stamp_id: 7,
        }
    }

    #[test]
    fn a_remembered_caller_holds_for_its_epoch_only_and_stamps_once_a_minute() {
        let known = known_bob();
        let auth = Auth::new(Clock::System, Duration::from_secs(60), 3, Duration::from_secs(60)).unwrap();
        let key = CallerKey::Token(digest_bytes("t"));
        assert!(auth.recall(&key, 5, 1000).is_none(), "nothing remembered yet");
        auth.remember(key, known.clone(), 5, Some(990));
        let (got, stamp) = auth.recall(&key, 5, 1000).unwrap();
        assert_eq!((got.caller.username.as_str(), got.stamp_id, stamp), ("bob", 7, false));
        assert!(auth.recall(&key, 4, 1000).is_none(), "an older epoch");
        assert!(auth.recall(&CallerKey::Envelope(digest_bytes("t")), 5, 1000).is_none());
        assert!(auth.recall(&key, 5, 1051).unwrap().1, "a minute after the last stamp");
        assert!(!auth.recall(&key, 5, 1052).unwrap().1, "stamped just now");
        assert_eq!(auth.proven(&key), Some(Owner::User { org: 1, user: 2 }));
        assert!(auth.recall(&key, 6, 1000).is_none(), "a newer epoch");
        assert!(auth.recall(&key, 5, 1000).is_none(), "a newer epoch drops the entry");
        assert_eq!(auth.proven(&key), None);
        let ud = |s: &str| parse_userdata(s).unwrap().unwrap();
        let sha = userdata_sha1("u", "p");
        let ekey = |appkey: &str, userdata: &str| auth.envelope_key(appkey, &ud(userdata));
        assert_eq!(ekey(" K ", &format!("O/U:{sha}")), ekey("k", &format!("o/u:{sha}")));
        assert_ne!(ekey("k", &format!("o/u:{sha}")), ekey("k", &format!("o/v:{sha}")));
        assert_ne!(
            ekey("k", &format!("o/u:{sha}")),
            ekey("k", &format!("o/u:{}", userdata_sha1("u", "q")))
        );

        let off = Auth::new(Clock::System, Duration::ZERO, 3, Duration::from_secs(60)).unwrap();
        off.remember(key, known, 5, None);
        assert!(off.recall(&key, 5, 1000).is_none(), "a zero lifetime remembers nothing");
    }

    #[test]
    fn lockout_starts_at_the_limit_with_a_key_every_process_shares() {
        let auth = Auth::new(Clock::System, Duration::ZERO, 3, Duration::from_secs(60)).unwrap();
        let who = auth.lockout_key(1, "U", 0);
        assert_eq!(who, auth.lockout_key(1, "u", 0));
        let other_process = Auth::new(Clock::System, Duration::ZERO, 3, Duration::from_secs(60)).unwrap();
        assert_eq!(
            who,
            other_process.lockout_key(1, "u", 0),
            "the database keeps failures by it"
        );
        for _ in 0..3 {
            assert!(auth.check_lockout(&who).is_ok());
            auth.record_failure(&who);
        }
        let e = auth.check_lockout(&who).unwrap_err();
        assert_eq!(e.code, Code::TooManyAttempts);
        assert!(e.retry_after.unwrap() > 0);
        assert!(auth.check_lockout(&auth.lockout_key(1, "other", 0)).is_ok());
        assert!(
            auth.check_lockout(&auth.lockout_key(2, "u", 0)).is_ok(),
            "another org's user"
        );
        assert!(
            auth.check_lockout(&auth.lockout_key(1, "u", 1)).is_ok(),
            "the same user once unlocked"
        );
    }

    #[test]
    fn the_lockout_table_stays_bounded_and_keeps_lockouts_in_force() {
        let auth = Auth::new(Clock::System, Duration::ZERO, 2, Duration::from_secs(60)).unwrap();
        let target = auth.lockout_key(1, "target", 0);
        auth.record_failure(&target);
        auth.record_failure(&target);
        for i in 0..2 * TABLE_LIMIT {
            auth.record_failure(&auth.lockout_key(1, &format!("ghost-{i}"), 0));
        }
        let held = auth.held().failures;
        assert!(held.entries <= TABLE_LIMIT, "{held:?}");
        assert!(held.bytes < 2 << 20, "{held:?}");
        assert!(auth.check_lockout(&target).is_err(), "the lockout in force was kept");

        // A table full of lockouts in force counts no more failures.
        let auth = Auth::new(Clock::System, Duration::ZERO, 1, Duration::from_secs(60)).unwrap();
        for i in 0..TABLE_LIMIT {
            auth.record_failure(&auth.lockout_key(1, &format!("ghost-{i}"), 0));
        }
        assert_eq!(auth.held().failures.entries, TABLE_LIMIT);
        assert!(auth.check_lockout(&auth.lockout_key(1, "ghost-7", 0)).is_err());
        let late = auth.lockout_key(1, "late", 0);
        auth.record_failure(&late);
        assert!(auth.check_lockout(&late).is_ok(), "not counted");
        assert_eq!(auth.held().failures.entries, TABLE_LIMIT);

        // Expired entries go at the first change a lifetime later, full or not.
        let clock = ManualClock::new();
        let brief = Auth::new(clock.clock(), Duration::ZERO, 5, Duration::from_millis(20)).unwrap();
        for i in 0..100 {
            brief.record_failure(&brief.lockout_key(1, &format!("user-{i}"), 0));
        }
        assert_eq!(brief.held().failures.entries, 100);
        clock.advance(Duration::from_millis(19));
        brief.record_failure(&brief.lockout_key(1, "early", 0));
        assert_eq!(
            brief.held().failures.entries,
            101,
            "no sweep before a lifetime has passed"
        );
        clock.advance(Duration::from_millis(1));
        brief.record_failure(&brief.lockout_key(1, "late", 0));
        assert_eq!(
            brief.held().failures.entries,
            2,
            "only the entries still in their window stay"
        );
    }

    #[test]
    fn the_cache_the_known_callers_and_the_lockout_expire_on_the_clock() {
        let clock = ManualClock::new();
        let minute = Duration::from_secs(60);
        let auth = Auth::new(clock.clock(), minute, 2, Duration::from_secs(300)).unwrap();
        let second = Duration::from_secs(1);

        let sha = userdata_sha1("bob", "pw");
        let phc = hash_password(&sha).unwrap();
        assert_eq!(auth.verify(Some(&phc), &sha), Verified::Fresh);
        let key = CallerKey::Token(digest_bytes("t"));
        auth.remember(key, known_bob(), 5, None);
        clock.advance(minute - second);
        assert!(auth.cached(&phc, &sha), "a second before the cache's lifetime ends");
        assert!(auth.recall(&key, 5, 0).is_some() && auth.proven(&key).is_some());
        clock.advance(second);
        assert!(!auth.cached(&phc, &sha), "verified a lifetime ago");
        assert!(auth.recall(&key, 5, 0).is_none() && auth.proven(&key).is_none());

        // Two failures lock the user out for the window; failures further apart than the window do not.
        let who = auth.lockout_key(1, "bob", 0);
        auth.record_failure(&who);
        clock.advance(Duration::from_secs(300));
        auth.record_failure(&who);
        assert!(auth.check_lockout(&who).is_ok(), "the first failure's window had ended");
        auth.record_failure(&who);
        assert_eq!(auth.check_lockout(&who).unwrap_err().retry_after, Some(300));
        clock.advance(Duration::from_secs(299));
        assert_eq!(auth.check_lockout(&who).unwrap_err().retry_after, Some(1));
        clock.advance(second);
        assert!(auth.check_lockout(&who).is_ok(), "the lockout ended");
    }

    #[test]
    fn secrets_have_the_promised_shape() {
        let p = new_password().unwrap();
        assert_eq!(p.len(), 24);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(new_token().unwrap().len(), 40);
        assert_eq!(new_appkey().len(), 36);
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
