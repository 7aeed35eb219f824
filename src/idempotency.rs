//! Idempotency keys: a write sent again with the key it was first sent with (REST's `Idempotency-Key` header, the
//! envelope's `requestkey`) gets the first answer again, status and body, without running a second time.
//!
//! The answer is stored in the `request_keys` table (schema.sql, migration 12) in the write's own savepoint, so the
//! change and its key commit together or not at all, and survive a restart. The writer is one thread per database,
//! so the look-up in the write transaction decides: a retry queued behind the first request finds its answer. A
//! request still in flight in this process holds its key in [`InFlight`], and a retry meanwhile is answered 409
//! `in_progress` at once instead of waiting. Only successes are kept: a failing write rolls its savepoint back, the
//! key's row with it, so a retry runs again (methods.md, Idempotency keys).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::db::params;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Code, Error, Result};
use crate::handler::{Caller, Kind, Method, RenderAnswer, RequestKey};
use crate::model::{Replayed, Reply};
use crate::store::Tx;

/// The longest key accepted, in bytes.
pub const MAX_KEY: usize = 255;

/// Most expired keys one keyed write deletes: the purge's cost stays bounded, and keyed writes purge faster than
/// they add.
const PURGE_BATCH: i64 = 16;

/// Most keys held by requests in flight. Past it a request holds none: the write transaction's look-up still
/// keeps it from running twice, a retry just waits for the first answer instead of being told 409.
const MAX_IN_FLIGHT: usize = 4096;

/// A request's key, checked, with its request's fingerprint.
pub struct Keyed {
    key: String,
    /// SHA-256 of the target and the canonical parameters.
    fingerprint: [u8; 32],
    render: RenderAnswer,
}

impl Keyed {
    /// Checks the key the door found on a call of `method` with parameters `data`.
    pub fn new(request: RequestKey, method: &Method, data: &Value) -> Result<Keyed> {
        let RequestKey { key, target, render } = request;
        if method.kind != Kind::Write {
            return Err(Error::new(
                Code::BadRequest,
                format!(
                    "{} takes no idempotency key: keys are for writes (and not a restore)",
                    method.name
                ),
            ));
        }
        if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                Code::BadRequest,
                format!("an idempotency key is 1 to {MAX_KEY} visible ASCII characters"),
            ));
        }
        let mut hash = Sha256::new();
        hash.update(target.as_bytes());
        hash.update(b"\n");
        hash.update(serde_json::to_vec(&canonical(data)).unwrap_or_default());
        Ok(Keyed {
            key,
            fingerprint: hash.finalize().into(),
            render,
        })
    }

    /// Holds the key for `caller` while the request is in flight; `in_progress` if another request holds it.
    pub fn hold(&self, in_flight: &Arc<InFlight>, caller: &Caller) -> Result<Option<Held>> {
        let mut hash = Sha256::new();
        hash.update(caller.org_id.to_le_bytes());
        hash.update(scope(caller).as_bytes());
        hash.update(b"\n");
        hash.update(self.key.as_bytes());
        let digest: [u8; 32] = hash.finalize().into();
        let mut held = in_flight
            .keys
            .lock()
            .map_err(|_| Error::internal("the in-flight keys are poisoned"))?;
        if held.contains(&digest) {
            return Err(Error::new(
                Code::InProgress,
                "a request with this idempotency key is still in progress; retry when it has been answered",
            ));
        }
        if held.len() >= MAX_IN_FLIGHT {
            return Ok(None);
        }
        held.insert(digest);
        Ok(Some(Held {
            in_flight: in_flight.clone(),
            digest,
        }))
    }

    /// Runs the write `run` once for this key, in the write transaction `tx`: the stored answer when the key was
    /// used before (for the same request; `key_reused` for another), else `run`'s answer, stored with the key.
    /// Keys older than `ttl` seconds count as unused.
    pub fn once(
        &self,
        tx: &Tx,
        caller: &Caller,
        now: i64,
        ttl: u64,
        respid: &str,
        run: impl FnOnce() -> Result<Reply>,
    ) -> Result<Reply> {
        let scope = scope(caller);
        let oldest = now.saturating_sub(i64::try_from(ttl).unwrap_or(i64::MAX));
        let stored = tx.query_opt(
            "SELECT fingerprint, status, body, etag FROM request_keys
                 WHERE org_id = ?1 AND caller = ?2 AND key = ?3 AND created > ?4",
            params![caller.org_id, scope, self.key, oldest],
            |r| {
                let (fingerprint, status, body) = (r.get::<Vec<u8>>(0)?, r.get(1)?, r.get(2)?);
                Ok((
                    fingerprint,
                    Replayed {
                        status,
                        body,
                        etag: r.get(3)?,
                    },
                ))
            },
        )?;
        if let Some((fingerprint, first)) = stored {
            if fingerprint != self.fingerprint {
                return Err(Error::new(
                    Code::KeyReused,
                    "this idempotency key was used for a different request; use a new key for a new request",
                ));
            }
            return Ok(Reply::Replayed(Box::new(first)));
        }
        let reply = run()?;
        let answer = (self.render)(respid, &reply)?;
        tx.execute(
            "DELETE FROM request_keys WHERE rowid IN
             (SELECT rowid FROM request_keys WHERE created <= ?1 ORDER BY created LIMIT ?2)",
            params![oldest, PURGE_BATCH],
        )?;
        // An expired row of the same key may be left (the purge takes the oldest first): replaced.
        tx.execute(
            "INSERT OR REPLACE INTO request_keys (org_id, user_id, caller, key, fingerprint, status, body, etag, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                caller.org_id,
                caller.user_id,
                scope,
                self.key,
                &self.fingerprint[..],
                answer.status,
                answer.body,
                answer.etag,
                now
            ],
        )?;
        Ok(reply)
    }
}

/// Whose keys a caller's are, within its org: its user's, or the `API_TOKENS` operator tokens' (which act as no
/// user, and share theirs).
fn scope(caller: &Caller) -> String {
    match caller.user_id {
        Some(id) => format!("user:{id}"),
        None => caller.application.clone(),
    }
}

/// `v` with every object's members in order of their names: parameters sent in another order are the same request.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(members.into_iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The keys of the requests in flight in this process, as digests of caller and key (bounded: [`MAX_IN_FLIGHT`]).
#[derive(Default)]
pub struct InFlight {
    keys: Mutex<HashSet<[u8; 32]>>,
}

/// A key held by a request in flight, released when the request has its answer.
pub struct Held {
    in_flight: Arc<InFlight>,
    digest: [u8; 32],
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.in_flight.keys.lock() {
            keys.remove(&self.digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_parameters_ignore_member_order_only() {
        let a = canonical(&json!({"b": 1, "a": {"y": [2, {"q": 1, "p": 0}], "x": "s"}}));
        let b = canonical(&json!({"a": {"x": "s", "y": [2, {"p": 0, "q": 1}]}, "b": 1}));
        assert_eq!(serde_json::to_vec(&a).unwrap(), serde_json::to_vec(&b).unwrap());
        let c = canonical(&json!({"a": {"x": "s", "y": [{"p": 0, "q": 1}, 2]}, "b": 1}));
        assert_ne!(serde_json::to_vec(&a).unwrap(), serde_json::to_vec(&c).unwrap());
    }
}
