//! The vocabulary handlers and the dispatcher share: what a method is ([`Method`], [`Access`], [`Kind`],
//! [`Level`]), who calls it ([`Credentials`], [`Caller`]), a call and its outcome ([`Call`], [`Outcome`]), what a
//! handler sees ([`Ctx`]), how a typed handler is bound to its parameters ([`Params`], [`call`]), and the audit
//! entry a write leaves ([`Change`], written by [`Ctx::log`]).
//!
//! A leaf: it imports nothing of the dispatcher, the doors or the handlers, so each of them can stand on it.

use crate::db::{params, Sql};
use serde::Serialize;
use serde_json::Value;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::model::{ChangeEntry, Replayed, Reply};
use crate::params::Data;
use crate::store::{Db, Store, Tx};

/// Permission levels, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Readonly,
    Standard,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Readonly => "readonly",
            Level::Standard => "standard",
            Level::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "readonly" => Some(Level::Readonly),
            "standard" => Some(Level::Standard),
            "admin" => Some(Level::Admin),
            _ => None,
        }
    }
}

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A valid, enabled app key is enough (`ping`, `version`).
    AppKey,
    /// An authenticated user of at least this level.
    User(Level),
    /// An admin of the operator org (backups).
    Operator,
}

/// Whether a method changes data: writers run in `BEGIN IMMEDIATE` and leave log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    /// A read that may wait (the change feed's `wait`): when it answers an empty page of changes that asks to wait,
    /// the dispatcher waits for the writer's next commit, holding no connection or thread, and runs it again, until
    /// something comes or the wait is over.
    Poll,
    Write,
    /// A write that replaces the whole database (`backups/restore`): it runs alone, in a transaction of its own,
    /// so nothing it leaves for the commit (deferred foreign keys) touches another call.
    Replace,
}

/// One line of the method table.
pub struct Method {
    pub name: &'static str,
    pub access: Access,
    pub kind: Kind,
    /// Decodes the parameters and returns the handler bound to them (see [`call`]).
    pub prepare: fn(&mut Data) -> Result<Prepared>,
}

/// A handler with its decoded parameters, ready to run in a transaction.
pub type Prepared = Box<dyn Bound>;

/// A handler bound to its parameters (see [`call`]).
pub trait Bound: Send {
    /// [`Params::resolve`] of the parameters.
    fn resolve(&mut self, db: &mut Db, caller: &Caller) -> Result<()>;
    /// [`Params::has_slow_work`] of the parameters.
    fn has_slow_work(&self) -> bool;
    /// [`Params::slow`] of the parameters.
    fn slow(&mut self) -> Result<()>;
    fn run(self: Box<Self>, ctx: &Ctx) -> Result<Reply>;
}

struct Handler<P, R> {
    f: fn(&Ctx, P) -> Result<R>,
    params: P,
}

impl<P: Params + Send, R: Into<Reply>> Bound for Handler<P, R> {
    fn resolve(&mut self, db: &mut Db, caller: &Caller) -> Result<()> {
        self.params.resolve(db, caller)
    }

    fn has_slow_work(&self) -> bool {
        self.params.has_slow_work()
    }

    fn slow(&mut self) -> Result<()> {
        self.params.slow()
    }

    fn run(self: Box<Self>, ctx: &Ctx) -> Result<Reply> {
        (self.f)(ctx, self.params).map(Into::into)
    }
}

/// Decodes the parameters of handler `f` and refuses leftovers. Each table line calls this. Decoding (and, for a
/// write, `Params::resolve`) happens on a database thread before the call reaches its transaction; a write's slow
/// work (`Params::slow`, such as hashing a new password) on tokio's blocking pool, so neither the database threads
/// nor the group-commit writer wait on it.
pub fn call<P: Params + Send + 'static, R: Into<Reply> + 'static>(
    f: fn(&Ctx, P) -> Result<R>,
    data: &mut Data,
) -> Result<Prepared> {
    let params = P::decode(data)?;
    data.finish()?;
    Ok(Box::new(Handler { f, params }))
}

/// The credentials a front door collected, not yet checked.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// The envelope's `appkey` and `userdata`.
    Envelope {
        appkey: Option<String>,
        userdata: Option<String>,
    },
    /// A REST bearer token (`None` when the request carried none).
    Token(Option<String>),
    /// The web UI's sign-in form: `org/user:sha1`, the envelope's `userdata` built by the server from the org,
    /// username and password typed in, checked as the envelope's is (lockout, argon2, verification cache) but
    /// without an app key.
    SignIn(String),
    /// The web UI's session cookie (`None` when the request carried none).
    Session(Option<String>),
    /// The command line on the server's own machine, acting as the operator org's admin. No front door
    /// builds this.
    Local,
    /// The command line on the server's own machine, acting as user `username` of org `org` (identifiers as
    /// given): the recovery commands. No front door builds this.
    LocalUser { org: String, username: String },
}

/// The authenticated caller of one call.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: i64,
    pub operator_org: bool,
    /// `None` for an app key alone (`ping`) and for the `API_TOKENS` operator tokens.
    pub user_id: Option<i64>,
    pub username: String,
    pub level: Level,
    /// What the audit log names as the application: the app key's name, a token's prefix, or `API_TOKENS`.
    pub application: String,
}

/// Everything a handler gets: the transaction, the caller, the settings, the store (for its file, not its
/// connections: the transaction is the handler's one way into the database) and the time of the call.
pub struct Ctx<'a> {
    pub tx: &'a Tx<'a>,
    pub caller: &'a Caller,
    pub settings: &'a Settings,
    pub store: &'a Store,
    pub now: i64,
    pub respid: &'a str,
    pub method: &'static str,
}

impl Ctx<'_> {
    pub fn org(&self) -> i64 {
        self.caller.org_id
    }

    /// The one level check, used by the dispatcher and by handlers whose rule depends on the parameters.
    pub fn require(&self, level: Level) -> Result<()> {
        require(self.caller, level)
    }

    /// Writes the audit entry of `change` into the call's transaction, with its entry in the change feed and the
    /// webhook outbox ([`Ctx::feed`]): the one place an entry is written, so the change, its entry, its place in
    /// the feed and its deliveries commit together or not at all.
    pub fn log(&self, change: Change) -> Result<()> {
        let detail = change.detail.as_ref().map(Value::to_string);
        self.tx.execute_later(
            "INSERT INTO logs (org_id, time, userid, \"user\", application, respid, method, objecttype, objectid,
                               summary, changes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                self.caller.org_id,
                self.now,
                self.caller.user_id,
                self.caller.username,
                self.caller.application,
                self.respid,
                self.method,
                change.object.kind.as_str(),
                change.object.id,
                change.summary,
                detail,
            ],
        )?;
        self.feed(change)
    }

    /// Appends `change` to the org's change feed (to every org's, for a restore, which replaced them all), and a
    /// delivery to the outbox of each of the org's enabled webhooks whose filter it passes. Every
    /// [`PURGE_EVERY`]th entry also purges a batch of what is past the retention.
    ///
    /// This runs in every write, so it parses no JSON it need not: an edit's two records are cut to the fields that
    /// changed, which needs them parsed, but a record alone (an add, a delete) is stored as the handler wrote it,
    /// and the records are read for a webhook's filter and payload only when the org has an enabled webhook.
    fn feed(&self, change: Change) -> Result<()> {
        let (before, after) = match (&change.before, &change.after) {
            (Some(b), Some(a)) => {
                let (b, a) = changed_fields(parse_record(b), parse_record(a));
                (b.map(|v| v.to_string()), a.map(|v| v.to_string()))
            }
            _ => (change.before.clone(), change.after.clone()),
        };
        let detail = change.detail.as_ref().map(Value::to_string);
        let orgs = match change.action {
            Action::Restored => self
                .tx
                .rows("SELECT id FROM orgs ORDER BY id", params![], |r| r.get(0))?,
            _ => vec![self.org()],
        };
        let (objecttype, action) = (change.object.kind.as_str(), change.action.as_str());
        for org in orgs {
            // With whether the org has an enabled webhook: most have none, and then nothing more is read.
            let (cursor, hooked) = self.tx.query_row(
                "INSERT INTO changes (org_id, time, userid, \"user\", application, respid, method, objecttype, objectid,
                                      action, summary, before, after, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 RETURNING id, EXISTS(SELECT 1 FROM webhooks WHERE org_id = ?1 AND enabled = 1)",
                params![
                    org,
                    self.now,
                    self.caller.user_id,
                    self.caller.username,
                    self.caller.application,
                    self.respid,
                    self.method,
                    objecttype,
                    change.object.id,
                    action,
                    change.summary,
                    before,
                    after,
                    detail,
                ],
                |r| Ok((r.get::<i64>(0)?, r.get::<bool>(1)?)),
            )?;
            if hooked {
                self.outbox(org, cursor, &change, before.as_deref(), after.as_deref())?;
            }
            if cursor % PURGE_EVERY == 0 {
                self.purge()?;
            }
        }
        Ok(())
    }

    /// Queues the feed entry `cursor` of `change` (its records cut as the feed stores them: `before`, `after`) for
    /// each enabled webhook of `org` whose filter it passes (for an org that has one).
    fn outbox(&self, org: i64, cursor: i64, change: &Change, before: Option<&str>, after: Option<&str>) -> Result<()> {
        // (id, object types, actions, subnet, group) of each subscription.
        type Hook = (i64, String, String, Option<i64>, Option<i64>);
        let hooks: Vec<Hook> = self.tx.rows(
            "SELECT id, objecttypes, actions, subnet_id, group_id FROM webhooks WHERE org_id = ?1 AND enabled = 1",
            params![org],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        if hooks.is_empty() {
            return Ok(());
        }
        // What a filter looks at, read from the whole records (not the fields the feed keeps of an edit).
        let whole = [&change.after, &change.before].map(|r| r.as_deref().and_then(parse_record));
        let field = |name: &str| {
            whole
                .iter()
                .chain(std::iter::once(&change.detail))
                .find_map(|r| r.as_ref().and_then(|r| r.get(name)).and_then(Value::as_i64))
        };
        let subnet = match change.object.kind {
            ObjectKind::Subnet => change.object.id,
            ObjectKind::Address | ObjectKind::DhcpRange => field("subnet"),
            _ => None,
        };
        let group = match change.object.kind {
            ObjectKind::Group => change.object.id,
            ObjectKind::Subnet => field("group"),
            // An address or DHCP range is in the group of its subnet.
            ObjectKind::Address | ObjectKind::DhcpRange if hooks.iter().any(|h| h.4.is_some()) => match subnet {
                Some(subnet) => self
                    .tx
                    .query_opt("SELECT group_id FROM subnets WHERE id = ?1", params![subnet], |r| {
                        r.get(0)
                    })?
                    .flatten(),
                None => None,
            },
            _ => None,
        };
        let entry = ChangeEntry {
            cursor,
            time: self.now,
            objecttype: change.object.kind.as_str().to_string(),
            objectid: change.object.id,
            action: change.action.as_str().to_string(),
            summary: change.summary.clone(),
            before: before.and_then(parse_record),
            after: after.and_then(parse_record),
            detail: change.detail.clone(),
            userid: self.caller.user_id,
            user: self.caller.username.clone(),
            application: self.caller.application.clone(),
            method: self.method.to_string(),
            respid: self.respid.to_string(),
        };
        let event = format!("{}.{}", entry.objecttype, entry.action);
        let payload = serde_json::json!({
            "type": event,
            "timestamp": crate::time::rfc3339(entry.time),
            "data": entry,
        })
        .to_string();
        let listed = |list: &str, item: &str| list.is_empty() || list.split(',').any(|x| x == item);
        for (hook, types, actions, hook_subnet, hook_group) in hooks {
            let passes = listed(&types, &entry.objecttype)
                && listed(&actions, &entry.action)
                && hook_subnet.is_none_or(|s| subnet == Some(s))
                && hook_group.is_none_or(|g| group == Some(g));
            if passes {
                self.tx.execute(
                    "INSERT INTO webhook_deliveries (webhook_id, change_id, event, payload, next_attempt, created,
                                                     updated)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![
                        hook,
                        entry.cursor,
                        event,
                        payload,
                        self.now.saturating_mul(1000),
                        self.now
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Deletes a batch of the feed's oldest entries past the retention (a batch of the oldest ids, so the work is
    /// bounded however large the feed), noting the highest id deleted for `cursor_expired`, and a batch of
    /// finished deliveries past it.
    fn purge(&self) -> Result<()> {
        let cutoff = self.now.saturating_sub(
            i64::try_from(self.settings.feed_retention_days)
                .unwrap_or(i64::MAX / 2)
                .saturating_mul(86_400),
        );
        let upto: Option<i64> = self.tx.query_row(
            "SELECT max(c.id) FROM (SELECT id, time FROM changes ORDER BY id LIMIT 1024) AS c WHERE c.time < ?1",
            params![cutoff],
            |r| r.get(0),
        )?;
        if let Some(upto) = upto {
            self.tx.execute("DELETE FROM changes WHERE id <= ?1", params![upto])?;
            self.tx.execute(
                Sql::Dialects(
                    "UPDATE changes_purged SET id = max(id, ?1)",
                    "UPDATE changes_purged SET id = GREATEST(id, ?1)",
                ),
                params![upto],
            )?;
        }
        self.tx.execute(
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries WHERE status != 'pending' AND updated < ?1 LIMIT 1024)",
            params![cutoff],
        )?;
        Ok(())
    }
}

/// How often (in feed entries) a write purges a batch past the retention: with batches of 1024, the purge keeps
/// up with any rate of writes.
const PURGE_EVERY: i64 = 256;

/// A record's JSON text as a handler wrote it for its [`Change`]; `None` should it not parse.
fn parse_record(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

/// The fields of an edit's records that changed, before and after; a record alone (an add, a delete) is kept whole.
fn changed_fields(before: Option<Value>, after: Option<Value>) -> (Option<Value>, Option<Value>) {
    match (before, after) {
        (Some(Value::Object(mut b)), Some(Value::Object(mut a))) => {
            let same: Vec<String> = b
                .iter()
                .filter(|(k, v)| a.get(k.as_str()) == Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            for k in &same {
                b.shift_remove(k);
                a.shift_remove(k);
            }
            (Some(Value::Object(b)), Some(Value::Object(a)))
        }
        pair => pair,
    }
}

/// The kinds of record a change is about; stored as the audit entry's `objecttype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Org,
    User,
    Appkey,
    Token,
    Group,
    Subnet,
    Field,
    Address,
    DhcpRange,
    Backup,
    Webhook,
}

impl Action {
    /// The `action` of the change feed and the second half of a webhook's event type (`ipaddress.added`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Edited => "edited",
            Action::Deleted => "deleted",
            Action::Split => "split",
            Action::Joined => "joined",
            Action::Restored => "restored",
        }
    }
}

impl ObjectKind {
    /// The `objecttype` of `org/logs` (methods.md).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Org => "org",
            ObjectKind::User => "user",
            ObjectKind::Appkey => "appkey",
            ObjectKind::Token => "token",
            ObjectKind::Group => "group",
            ObjectKind::Subnet => "subnet",
            ObjectKind::Field => "field",
            ObjectKind::Address => "ipaddress",
            ObjectKind::DhcpRange => "dhcprange",
            ObjectKind::Backup => "backup",
            ObjectKind::Webhook => "webhook",
        }
    }

    /// The record of this kind with id `id`.
    pub fn id(self, id: i64) -> Object {
        Object {
            kind: self,
            id: Some(id),
        }
    }
}

/// What a change is about: a kind of record and its id (`None` for what has none: a backup is known by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub kind: ObjectKind,
    pub id: Option<i64>,
}

/// What a change did to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Edited,
    Deleted,
    /// A subnet split into smaller ones (the object is the first of them, the original's id).
    Split,
    /// Subnets joined into one (the object is the survivor).
    Joined,
    /// The whole database replaced by a backup.
    Restored,
}

/// One change a write made, as its audit entry: built by the handler, written by [`Ctx::log`].
///
/// The `logs` table stores the object (`objecttype`, `objectid`), the summary and the detail (`changes`), beside
/// the call's org, caller, time, respid and method. The `changes` table (the change feed) stores all of it with the
/// action and the fields that changed, from the records before and after.
#[derive(Debug, Clone)]
pub struct Change {
    pub object: Object,
    pub action: Action,
    /// The human summary: "address 10.0.0.5 deleted".
    pub summary: String,
    /// The method's own detail, as methods.md documents it for each method (`changes`).
    pub detail: Option<Value>,
    /// The record before the change, as JSON text, where the handler read it anyway.
    pub before: Option<String>,
    /// The record after the change, as JSON text, where the handler read it anyway (for its reply).
    pub after: Option<String>,
}

impl Change {
    pub fn new(object: Object, action: Action, summary: impl Into<String>) -> Change {
        Change {
            object,
            action,
            summary: summary.into(),
            detail: None,
            before: None,
            after: None,
        }
    }

    /// With the method's detail (`changes`).
    pub fn detail(self, detail: Value) -> Change {
        Change {
            detail: Some(detail),
            ..self
        }
    }

    /// With the record as it was before.
    pub fn before(self, record: &impl Serialize) -> Change {
        Change {
            before: serde_json::to_string(record).ok(),
            ..self
        }
    }

    /// With the record as it is after.
    pub fn after(self, record: &impl Serialize) -> Change {
        Change {
            after: serde_json::to_string(record).ok(),
            ..self
        }
    }
}

/// One call, as a front door hands it over.
pub struct Call {
    pub method: String,
    pub credentials: Credentials,
    pub data: Value,
    /// The idempotency key the request carried, if any.
    pub key: Option<RequestKey>,
}

/// An idempotency key a front door found on a request (REST's `Idempotency-Key` header, the envelope's
/// `requestkey`), with what the dispatcher needs to keep the answer for the key's retries.
pub struct RequestKey {
    pub key: String,
    /// What the request addressed besides its parameters (the envelope's method, REST's verb and route), part of
    /// the request's fingerprint.
    pub target: String,
    pub render: RenderAnswer,
}

/// Renders a successful answer, given the call's respid, as the door will send it: the status and body stored with
/// an idempotency key, in the write's own transaction.
pub type RenderAnswer = Box<dyn Fn(&str, &Reply) -> Result<Replayed> + Send>;

/// What came of a call, for the front door to render and log.
pub struct Outcome {
    pub respid: String,
    /// Who called, for the request log line (never a secret).
    pub caller: String,
    pub result: Result<Reply>,
}

impl Outcome {
    /// A request that failed before the dispatcher had it (rate limit, body, decoding): a fresh respid, no caller.
    pub fn failed(e: Error) -> Outcome {
        Outcome {
            respid: new_respid(),
            caller: String::new(),
            result: Err(e),
        }
    }
}

/// The line of `methods` named `name`: a scan of the table, in order (it holds some fifty lines).
pub fn find_method(methods: &'static [Method], name: &str) -> Option<&'static Method> {
    methods.iter().find(|m| m.name == name)
}

/// The names of `methods` nearest to `name`, for a "did you mean": at most three, each at most a third of the
/// name's length of edits away (insertions, deletions, substitutions of a character), nearest first. A name longer
/// than any method's is not compared.
pub fn closest_methods(methods: &[Method], name: &str) -> Vec<&'static str> {
    if name.len() > 64 {
        return Vec::new();
    }
    let most = (name.chars().count() / 3).max(1);
    let mut near: Vec<(usize, &'static str)> = methods
        .iter()
        .map(|m| (strsim::levenshtein(name, m.name), m.name))
        .filter(|(d, _)| *d <= most)
        .collect();
    near.sort();
    near.into_iter().take(3).map(|(_, m)| m).collect()
}

/// A unique response id: a UUID v7 in simple form, ordered by time (to the millisecond).
///
/// Its 80 bits after the time come from a generator per thread, seeded once from random keys: uuid's own
/// `now_v7` asks the kernel for random bytes on every reply (a `getrandom` system call or two per request). The
/// bits only make ids unique, they guard nothing: a reply's id is no secret.
pub fn new_respid() -> String {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(respid_seed());
    }
    // SplitMix64: a 64-bit state stepped by a constant and mixed; two outputs give the 80 bits.
    let next = || {
        STATE.with(|state| {
            let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            state.set(s);
            let z = (s ^ (s >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
    };
    let (a, b) = (next().to_le_bytes(), next().to_le_bytes());
    let mut bits = [0u8; 10];
    bits[..8].copy_from_slice(&a);
    bits[8..].copy_from_slice(&b[..2]);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    uuid::Builder::from_unix_timestamp_millis(millis, &bits)
        .into_uuid()
        .simple()
        .to_string()
}

/// A thread's first state for [`new_respid`]: the thread's id and the time, hashed with the standard library's
/// per-thread random keys (taken from the operating system once).
fn respid_seed() -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::thread::current().id().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    h.finish()
}

/// A method's parameters, decoded by the dispatcher before the handler runs.
pub trait Params: Sized {
    fn decode(d: &mut Data) -> Result<Self>;

    /// For a write: what [`Params::slow`] needs from the database (a stored username). Runs on a database thread
    /// once the call is authenticated and decoded, in read transactions of its own; what it read may change before
    /// the handler runs, which must check it. Default: nothing.
    fn resolve(&mut self, _db: &mut Db, _caller: &Caller) -> Result<()> {
        Ok(())
    }

    /// For a write: whether [`Params::slow`] has work to do.
    fn has_slow_work(&self) -> bool {
        false
    }

    /// For a write: work too slow for the database threads and the group-commit writer (argon2 over a new
    /// password). Runs on tokio's blocking pool, holding no connection, before the call is queued for the writer.
    fn slow(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Params for () {
    fn decode(_: &mut Data) -> Result<()> {
        Ok(())
    }
}

impl Caller {
    /// Whether the caller is a user (or operator token) of at least `level`. An app key alone carries no user,
    /// hence no level.
    pub fn has(&self, level: Level) -> bool {
        (self.user_id.is_some() || !self.username.is_empty()) && self.level >= level
    }
}

pub fn require(caller: &Caller, level: Level) -> Result<()> {
    match caller.has(level) {
        true => Ok(()),
        false => Err(Error::access_denied()),
    }
}

pub fn check_access(caller: &Caller, access: Access) -> Result<()> {
    match access {
        Access::AppKey => Ok(()),
        Access::User(level) => require(caller, level),
        Access::Operator if caller.operator_org => require(caller, Level::Admin),
        Access::Operator => Err(Error::access_denied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_methods_are_a_few_edits_away() {
        let table = crate::methods::METHODS;
        assert_eq!(closest_methods(table, "group/get"), ["groups/get"]);
        assert_eq!(closest_methods(table, "groups/get/"), ["groups/get"]);
        assert!(closest_methods(table, "nothing-like-it").is_empty());
        assert!(closest_methods(table, &"x".repeat(100)).is_empty());
        assert!(closest_methods(table, "subnets/ad").len() <= 3);
    }
    use serde_json::json;

    /// `objecttype` is part of the wire contract of `org/logs`: each kind keeps the name it was stored under.
    #[test]
    fn object_kinds_keep_their_stored_names() {
        let kinds = [
            (ObjectKind::Org, "org"),
            (ObjectKind::User, "user"),
            (ObjectKind::Appkey, "appkey"),
            (ObjectKind::Token, "token"),
            (ObjectKind::Group, "group"),
            (ObjectKind::Subnet, "subnet"),
            (ObjectKind::Field, "field"),
            (ObjectKind::Address, "ipaddress"),
            (ObjectKind::DhcpRange, "dhcprange"),
            (ObjectKind::Backup, "backup"),
            (ObjectKind::Webhook, "webhook"),
        ];
        for (kind, name) in kinds {
            assert_eq!(kind.as_str(), name);
        }
    }

    /// The feed keeps only what an edit changed; an add or a delete keeps its record whole.
    #[test]
    fn the_feed_keeps_the_changed_fields_of_an_edit() {
        let before = json!({"id": 7, "name": "a", "vlan": 3, "gone": 1});
        let after = json!({"id": 7, "name": "b", "vlan": 3, "new": 2});
        assert_eq!(
            changed_fields(Some(before.clone()), Some(after)),
            (
                Some(json!({"name": "a", "gone": 1})),
                Some(json!({"name": "b", "new": 2}))
            )
        );
        assert_eq!(changed_fields(Some(before.clone()), None), (Some(before), None));
    }

    #[test]
    fn a_change_carries_its_records_as_json_text() {
        let change = Change::new(ObjectKind::Subnet.id(7), Action::Edited, "subnet edited")
            .detail(json!({"name": ["a", "b"]}))
            .before(&json!({"id": 7, "name": "a"}))
            .after(&json!({"id": 7, "name": "b"}));
        assert_eq!(change.object, ObjectKind::Subnet.id(7));
        assert_eq!(change.detail, Some(json!({"name": ["a", "b"]})));
        assert_eq!(change.before.as_deref(), Some(r#"{"id":7,"name":"a"}"#));
        assert_eq!(change.after.as_deref(), Some(r#"{"id":7,"name":"b"}"#));
    }
}
