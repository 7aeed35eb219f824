//! Credentials: the `userdata` sha1, argon2id password hashes, app key and token digests, the verification cache,
//! the cache of known callers and the failed-login lockout. Everything here is blocking (argon2) and runs on the
//! blocking pool or a database thread.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::dispatch::Caller;
use crate::error::{Code, Error, Result};

/// Most entries the verification cache and the lockout table keep before they drop expired ones.
const TABLE_LIMIT: usize = 10_000;

/// Process-wide authentication state: the verification cache and the lockout table.
pub struct Auth {
    /// HMAC-SHA-256 keyed once with a key random per process (cache keys mean nothing outside it and nothing
    /// secret is kept in memory); each cache key starts from a clone, without hashing the key again.
    mac: Hmac<Sha256>,
    /// A real argon2id hash of a random value, verified against for unknown users so timing reveals nothing.
    dummy_phc: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    /// Who a token or an app key with userdata authenticated as, for as long as `cache_ttl` and the credential
    /// epoch it was read at (see [`Auth::recall`]).
    callers: Mutex<HashMap<CallerKey, Remembered>>,
    lockout_attempts: u32,
    lockout_window: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

#[derive(Default)]
struct Failures {
    times: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Which credentials a remembered caller is for: a token by its SHA-256 digest (as stored in the database), an app
/// key with userdata by an HMAC of both (like the verification cache, nothing reusable is kept).
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
    pub fn new(cache_ttl: Duration, lockout_attempts: u32, lockout_window: Duration) -> Result<Auth> {
        let dummy_phc = hash_password(&random_hex(20)?)?;
        let mut hmac_key = [0u8; 32];
        fill_random(&mut hmac_key)?;
        Ok(Auth {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&hmac_key)
                .map_err(|e| Error::internal(format!("cache key: {e}")))?,
            dummy_phc,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            callers: Mutex::new(HashMap::new()),
            lockout_attempts,
            lockout_window,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Checks `sha1` against the stored `phc` (or the dummy when the user does not exist), cache first.
    ///
    /// The cache key covers the PHC string itself, so a password change (a new salt) can never hit an old entry.
    pub fn verify(&self, phc: Option<&str>, sha1: &str) -> Verified {
        let Some(phc) = phc else {
            verify_password(&self.dummy_phc, sha1);
            return Verified::Failed;
        };
        if self.cached(phc, sha1) {
            return Verified::Cached;
        }
        let (key, now) = (self.cache_key(phc, sha1), Instant::now());
        if !verify_password(phc, sha1) {
            return Verified::Failed;
        }
        if !self.cache_ttl.is_zero() {
            if let Ok(mut cache) = self.cache.lock() {
                make_room(&mut cache, |expires| *expires > now);
                cache.insert(key, now + self.cache_ttl);
            }
        }
        Verified::Fresh
    }

    /// The key of an app key (lower-cased) with the user `who` (`org/user`, lower-cased) and the presented sha1.
    pub fn envelope_key(&self, appkey: &str, who: &str, sha1: &str) -> CallerKey {
        let mut mac = self.mac.clone();
        mac.update(&(appkey.len() as u64).to_be_bytes());
        mac.update(appkey.as_bytes());
        mac.update(&(who.len() as u64).to_be_bytes());
        mac.update(who.as_bytes());
        mac.update(sha1.as_bytes());
        CallerKey::Envelope(mac.finalize().into_bytes().into())
    }

    /// The caller remembered for `key`, if it was read at `epoch` (the credential tables have not changed since)
    /// within the cache's lifetime, and whether this call is the one to stamp the credential's last use (`now`
    /// in unix seconds; once a minute).
    pub fn recall(&self, key: &CallerKey, epoch: i64, now: i64) -> Option<(Known, bool)> {
        let mut callers = self.callers.lock().ok()?;
        let entry = callers.get_mut(key)?;
        if entry.epoch != epoch || entry.until <= Instant::now() {
            return None;
        }
        let stamp = entry.stamped.is_none_or(|t| t < now - 60);
        if stamp {
            entry.stamped = Some(now);
        }
        Some((entry.known.clone(), stamp))
    }

    /// Remembers a successful check read at `epoch`; `stamped` is when the credential's last use was stamped.
    pub fn remember(&self, key: CallerKey, known: Known, epoch: i64, stamped: Option<i64>) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        if let Ok(mut callers) = self.callers.lock() {
            make_room(&mut callers, |r| r.until > now);
            let until = now + self.cache_ttl;
            callers.insert(
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
        let now = Instant::now();
        self.cache
            .lock()
            .is_ok_and(|cache| cache.get(&key).is_some_and(|expires| *expires > now))
    }

    /// Refuses a user who failed too often recently, with the seconds left in `Retry-After`.
    pub fn check_lockout(&self, who: &str) -> Result<()> {
        let Ok(table) = self.failures.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        match table.get(who).and_then(|f| f.locked_until).filter(|until| *until > now) {
            Some(until) => {
                let left = until.duration_since(now).as_secs().max(1);
                let mut e = Error::new(Code::TooManyAttempts, "too many failed attempts; try again later");
                e.retry_after = Some(left);
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Records a failed attempt; the one that reaches the limit inside the window starts the lockout.
    pub fn record_failure(&self, who: &str) {
        let Ok(mut table) = self.failures.lock() else {
            return;
        };
        let now = Instant::now();
        if table.len() >= TABLE_LIMIT {
            let window = self.lockout_window;
            table.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now) || f.times.back().is_some_and(|t| now - *t < window)
            });
        }
        let entry = table.entry(who.to_string()).or_default();
        while entry
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.lockout_window)
        {
            entry.times.pop_front();
        }
        entry.times.push_back(now);
        if entry.times.len() >= self.lockout_attempts as usize {
            entry.locked_until = Some(now + self.lockout_window);
            entry.times.clear();
        }
    }

    pub fn record_success(&self, who: &str) {
        if let Ok(mut table) = self.failures.lock() {
            table.remove(who);
        }
    }

    fn cache_key(&self, phc: &str, sha1: &str) -> [u8; 32] {
        // HMAC over length-prefixed parts, so no two (phc, sha1) pairs share an input.
        let mut mac = self.mac.clone();
        mac.update(&(phc.len() as u64).to_be_bytes());
        mac.update(phc.as_bytes());
        mac.update(sha1.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Keeps a cache under [`TABLE_LIMIT`] entries: drops those `live` refuses when it is full, all when that is not
/// enough.
fn make_room<K, V>(table: &mut HashMap<K, V>, live: impl Fn(&V) -> bool) {
    if table.len() >= TABLE_LIMIT {
        table.retain(|_, v| live(v));
        if table.len() >= TABLE_LIMIT {
            table.clear();
        }
    }
}

/// Parses `org/user:sha1hex`. The sha1 is normalised to lower case.
pub fn parse_userdata(s: &str) -> Option<Userdata> {
    let (org, rest) = s.split_once('/')?;
    let (username, sha1) = rest.rsplit_once(':')?;
    if org.is_empty() || username.is_empty() || sha1.len() != 40 || !sha1.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Userdata {
        org: org.to_string(),
        username: username.to_string(),
        sha1: sha1.to_ascii_lowercase(),
    })
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

/// Compares two secrets in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new app key: a UUID (v4), lower case.
pub fn new_appkey() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new REST token: 160 random bits as hex.
pub fn new_token() -> Result<String> {
    random_hex(20)
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

    #[test]
    fn userdata_parses_and_normalises() {
        let u = parse_userdata("acme/Bob:8F452AD7325194E0B09CE383A74D88D8D86B7B39").unwrap();
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
            assert_eq!(parse_userdata(bad), None, "{bad}");
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
        let auth = Auth::new(Duration::from_secs(60), 3, Duration::from_secs(60)).unwrap();
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

    #[test]
    fn a_remembered_caller_holds_for_its_epoch_only_and_stamps_once_a_minute() {
        let known = Known {
            caller: Caller {
                org_id: 1,
                operator_org: false,
                user_id: Some(2),
                username: "bob".into(),
                level: crate::dispatch::Level::Standard,
                application: "token:abc".into(),
            },
            expires: None,
            stamp_id: 7,
        };
        let auth = Auth::new(Duration::from_secs(60), 3, Duration::from_secs(60)).unwrap();
        let key = CallerKey::Token(digest_bytes("t"));
        assert!(auth.recall(&key, 5, 1000).is_none(), "nothing remembered yet");
        auth.remember(key, known.clone(), 5, Some(990));
        let (got, stamp) = auth.recall(&key, 5, 1000).unwrap();
        assert_eq!((got.caller.username.as_str(), got.stamp_id, stamp), ("bob", 7, false));
        assert!(auth.recall(&key, 6, 1000).is_none(), "another epoch");
        assert!(auth.recall(&CallerKey::Envelope(digest_bytes("t")), 5, 1000).is_none());
        assert!(auth.recall(&key, 5, 1051).unwrap().1, "a minute after the last stamp");
        assert!(!auth.recall(&key, 5, 1052).unwrap().1, "stamped just now");
        assert_ne!(auth.envelope_key("k", "o/u", "s"), auth.envelope_key("k", "o/u", "t"));

        let off = Auth::new(Duration::ZERO, 3, Duration::from_secs(60)).unwrap();
        off.remember(key, known, 5, None);
        assert!(off.recall(&key, 5, 1000).is_none(), "a zero lifetime remembers nothing");
    }

    #[test]
    fn lockout_starts_at_the_limit_and_success_resets() {
        let auth = Auth::new(Duration::ZERO, 3, Duration::from_secs(60)).unwrap();
        for _ in 0..2 {
            auth.record_failure("o/u");
            assert!(auth.check_lockout("o/u").is_ok());
        }
        auth.record_success("o/u");
        for _ in 0..3 {
            assert!(auth.check_lockout("o/u").is_ok());
            auth.record_failure("o/u");
        }
        let e = auth.check_lockout("o/u").unwrap_err();
        assert_eq!(e.code, Code::TooManyAttempts);
        assert!(e.retry_after.unwrap() > 0);
        assert!(auth.check_lockout("o/other").is_ok());
    }

    #[test]
    fn secrets_have_the_promised_shape() {
        let p = new_password().unwrap();
        assert_eq!(p.len(), 24);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(new_token().unwrap().len(), 40);
        assert_eq!(new_appkey().len(), 36);
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab"));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
