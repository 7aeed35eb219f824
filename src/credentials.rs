//! Credential checking: envelope `appkey` + `userdata`, bearer tokens (per-user tokens and `API_TOKENS`), the web
//! UI's sign-in and sessions (and the SQL that starts and ends a session) and the command line's `Local`, with the
//! SQL they read; the `Grant` a write's check noted and its `recheck` in the
//! writer; and the last-use stamps written after a call's read transaction.

use crate::app::App;
use crate::auth::{self, CallerKey, Known, Verified};
use crate::db::{params, Row};
use crate::error::{Code, Error, Result};
use crate::handler::{check_access, Access, Caller, Credentials, Level};
use crate::store::{Db, Tx};

/// What a write's credentials were checked against, read in the snapshot that authenticated it, for [`recheck`].
pub(crate) struct Grant {
    /// That snapshot's `credential_epoch`; `None` when its row is missing (then the writer checks in full).
    epoch: Option<i64>,
    /// The PHC string the password of `userdata` was verified against.
    phc: Option<String>,
    /// A user token's expiry, which depends on the time, not the epoch.
    expires: Option<i64>,
}

/// Reads the [`Grant`] of a write authenticated in `tx`, whose `credential_epoch` is `epoch`.
pub(crate) fn grant(tx: &Tx, credentials: &Credentials, caller: &Caller, epoch: Option<i64>) -> Result<Grant> {
    let (phc, expires) = match (credentials, caller.user_id) {
        (Credentials::Envelope { .. }, Some(user)) => {
            let phc = tx.query_row("SELECT phc FROM users WHERE id = ?1", params![user], |r| r.get(0))?;
            (Some(phc), None)
        }
        (Credentials::Token(Some(token)), Some(_)) => {
            let digest = auth::digest(token.trim());
            let expires = tx.query_row("SELECT expires FROM tokens WHERE digest = ?1", params![digest], |r| {
                r.get(0)
            })?;
            (None, expires)
        }
        // An app key alone, `API_TOKENS` and the command line: no password, no expiry.
        _ => (None, None),
    };
    Ok(Grant { epoch, phc, expires })
}

/// Checks in the write transaction `tx`, just before the handler runs, that the credentials which authorised a
/// write (in an earlier read transaction) still do, and returns the caller as they stand now (their level may have
/// changed). When `credential_epoch` has not moved since, nothing they depend on has changed: only a token's expiry
/// is checked. Otherwise the call is authenticated again, here, as a fresh call would be, with the password taken
/// as verified if its stored hash is still the one it was verified against (no argon2 in the writer), and refused
/// with the error a fresh call would get. A caller that authenticates as someone else now (a restore gave their
/// credentials to another org or user) is refused too.
pub(crate) fn recheck(
    tx: &Tx,
    app: &App,
    credentials: &Credentials,
    access: Access,
    grant: &Grant,
    caller: &Caller,
) -> Result<Caller> {
    if grant.expires.is_some_and(|e| e <= app.clock.now()) {
        return Err(Error::new(Code::AuthFailed, "invalid token"));
    }
    if grant.epoch.is_some() && credential_epoch(tx)? == grant.epoch {
        return Ok(caller.clone());
    }
    app.auth.write_rechecked();
    let prior = Some((grant.phc.clone(), Verified::Fresh));
    let fresh = match authenticate(
        tx,
        app,
        credentials,
        access,
        prior,
        Mode::Recheck,
        &mut Stamps::default(),
    )? {
        Authenticated::Caller(fresh) => fresh,
        Authenticated::NeedsArgon2(_) => return Err(Error::internal("argon2 in the writer")),
    };
    if (fresh.org_id, fresh.user_id, &fresh.username) != (caller.org_id, caller.user_id, &caller.username) {
        return Err(Error::new(Code::AuthFailed, "authentication failed"));
    }
    check_access(&fresh, access)?;
    Ok(fresh)
}

/// A password to verify with argon2: the stored PHC string (`None` for an unknown user, verified against a dummy
/// so the answer takes as long) and the presented sha1.
pub(crate) struct PasswordCheck {
    pub(crate) phc: Option<String>,
    pub(crate) sha1: String,
}

/// The outcome of a [`PasswordCheck`], with the PHC string it was made against.
pub(crate) type Prior = (Option<String>, Verified);

/// What authentication found: the caller, or a password that needs argon2 first.
pub(crate) enum Authenticated {
    Caller(Caller),
    NeedsArgon2(PasswordCheck),
}

struct AppKeyRow {
    id: i64,
    org_id: i64,
    name: String,
    enabled: bool,
    operator_org: bool,
    lastused: Option<i64>,
}

struct UserRow {
    id: i64,
    org_id: i64,
    username: String,
    level: String,
    disabled: bool,
    operator_org: bool,
}

impl UserRow {
    /// The caller this user is, calling through `application` (an app key's name, or `token:<prefix>`).
    fn caller(self, application: String) -> Caller {
        Caller {
            org_id: self.org_id,
            operator_org: self.operator_org,
            user_id: Some(self.id),
            username: self.username,
            level: Level::parse(&self.level).unwrap_or(Level::Readonly),
            application,
        }
    }
}

/// Reads a [`UserRow`] from `u.id, u.org_id, u.username, u.level, u.disabled, <the user's org>.operator` at
/// column `at`.
fn user_row(r: &Row, at: usize) -> Result<UserRow> {
    Ok(UserRow {
        id: r.get(at)?,
        org_id: r.get(at + 1)?,
        username: r.get(at + 2)?,
        level: r.get(at + 3)?,
        disabled: r.get(at + 4)?,
        operator_org: r.get(at + 5)?,
    })
}

/// Whether a credential check may use and change the process's authentication state (`app.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A call's own check, in a read transaction of a committed snapshot: it recalls and remembers known callers,
    /// and counts failed and successful logins for the lockout.
    Call,
    /// [`recheck`], in the writer's transaction, which may yet roll back: it reads the database and the lockout,
    /// and changes nothing in memory. A caller remembered at an epoch that never commits would be trusted once a
    /// later change commits with that same epoch (a disable, say); and a write's check is no login to count.
    Recheck,
}

/// Checks the credentials of a call. Last-use marks to write go to `stamps`, written after the read transaction.
pub(crate) fn authenticate(
    tx: &Tx,
    app: &App,
    creds: &Credentials,
    access: Access,
    prior: Option<Prior>,
    mode: Mode,
    stamps: &mut Stamps,
) -> Result<Authenticated> {
    match creds {
        Credentials::Envelope { appkey, userdata } => {
            authenticate_envelope(tx, app, appkey, userdata, access, prior, mode, stamps)
        }
        Credentials::Token(token) => {
            authenticate_token(tx, app, token.as_deref(), mode, stamps).map(Authenticated::Caller)
        }
        Credentials::SignIn(userdata) => authenticate_sign_in(tx, app, userdata, prior, mode, stamps),
        Credentials::Session(id) => authenticate_session(tx, app, id.as_deref(), stamps).map(Authenticated::Caller),
        Credentials::Local => operator(tx, "cli").map(Authenticated::Caller),
        Credentials::LocalUser { org, username } => local_user(tx, org, username).map(Authenticated::Caller),
    }
}

/// The command line acting as user `username` of org `org` (the recovery commands): whoever runs it holds the
/// database file, so no password is asked, and a disabled user may be acted for. The errors name what is missing.
pub(crate) fn local_user(tx: &Tx, org: &str, username: &str) -> Result<Caller> {
    let found = tx.query_opt(
        "SELECT id, operator FROM orgs WHERE identifier = ?1",
        params![org.trim().to_ascii_lowercase()],
        |r| Ok((r.get::<i64>(0)?, r.get::<bool>(1)?)),
    )?;
    let (org_id, operator_org) =
        found.ok_or_else(|| Error::new(Code::NotFound, format!("no org '{org}' (`ipamd org list` lists them)")))?;
    let user = tx.query_opt(
        "SELECT id, username, level FROM users WHERE org_id = ?1 AND username = ?2",
        params![org_id, username],
        |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)),
    )?;
    let (user_id, username, level) =
        user.ok_or_else(|| Error::new(Code::NotFound, format!("no user '{username}' in org '{org}'")))?;
    Ok(Caller {
        org_id,
        operator_org,
        user_id: Some(user_id),
        username,
        level: Level::parse(&level).unwrap_or(Level::Readonly),
        application: "cli".into(),
    })
}

/// When credentials were last used, to record once the call's read transaction has ended.
#[derive(Default)]
pub(crate) struct Stamps {
    now: i64,
    user_login: Option<i64>,
    appkey: Option<i64>,
    token: Option<i64>,
    /// A web UI session, whose last use is its idle timeout.
    session: Option<i64>,
    /// The `credential_epoch` at which the ids above were read (see [`Stamps::seen`]).
    epoch: Option<i64>,
    /// A user's failed login to count, or the failures a successful one clears.
    login: Option<LoginMark>,
    /// The `credential_epoch` of the call's transaction, once read (see [`Stamps::epoch_of`]).
    snapshot: Option<Option<i64>>,
}

/// What a login leaves in `login_failures` (schema.sql, migration 17), the failed logins of the users that exist,
/// which every process on the database counts and reads: so N processes allow no more guesses than one.
#[derive(Debug, Clone, Copy)]
enum LoginMark {
    /// A failure of the user of lockout key `who` at `now` (unix seconds), under the lockout's settings.
    Failed {
        who: [u8; 32],
        now: i64,
        attempts: u32,
        window: u64,
    },
    /// A success of a user who had failures stored.
    Succeeded([u8; 32]),
}

impl LoginMark {
    /// Writes the mark in its own transaction. A failure is counted by one statement that inserts or increments
    /// (two processes counting at once lose neither count); the failure that reaches the limit starts the lockout
    /// and moves `credential_epoch`, so every process checks its remembered callers again and finds it. A failure
    /// also deletes a batch of expired rows: the table holds at most the users that failed within a window.
    fn record(self, db: &mut Db) -> Result<()> {
        db.write(|tx| match self {
            LoginMark::Succeeded(who) => {
                tx.execute("DELETE FROM login_failures WHERE digest = ?1", params![who])?;
                Ok(())
            }
            LoginMark::Failed {
                who,
                now,
                attempts,
                window,
            } => {
                let window = i64::try_from(window).unwrap_or(i64::MAX);
                let (ended, until) = (now.saturating_sub(window), now.saturating_add(window));
                let attempts = i64::from(attempts);
                tx.execute(
                    "DELETE FROM login_failures WHERE digest IN (
                         SELECT digest FROM login_failures WHERE since <= ?1 LIMIT 64)",
                    params![ended],
                )?;
                // The first failure inserts (the limit may be one); a later one counts in the window it falls in.
                let first = if attempts <= 1 { (0, Some(until)) } else { (1, None) };
                let locked_until = tx.query_row(
                    "INSERT INTO login_failures (digest, since, failures, locked_until) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (digest) DO UPDATE SET
                         locked_until = CASE
                             WHEN (CASE WHEN login_failures.since <= ?5 THEN 1
                                        ELSE login_failures.failures + 1 END) >= ?6 THEN ?7
                             ELSE login_failures.locked_until END,
                         since = CASE
                             WHEN login_failures.since <= ?5
                               OR login_failures.failures + 1 >= ?6 THEN ?2
                             ELSE login_failures.since END,
                         failures = CASE
                             WHEN (CASE WHEN login_failures.since <= ?5 THEN 1
                                        ELSE login_failures.failures + 1 END) >= ?6 THEN 0
                             WHEN login_failures.since <= ?5 THEN 1
                             ELSE login_failures.failures + 1 END
                     RETURNING locked_until",
                    params![who, now, first.0, first.1, ended, attempts, until],
                    |r| r.get::<Option<i64>>(0),
                )?;
                if locked_until == Some(until) {
                    tx.execute("UPDATE credential_epoch SET n = n + 1", params![])?;
                }
                Ok(())
            }
        })
    }
}

impl Stamps {
    fn is_empty(&self) -> bool {
        self.user_login.is_none() && self.appkey.is_none() && self.token.is_none() && self.session.is_none()
    }

    /// Notes the epoch of the transaction that read the ids, if there are marks to write: the marks are written
    /// in another transaction, and only if no credential changed in between (a restore may have given the ids to
    /// other rows).
    pub(crate) fn seen(&mut self, tx: &Tx) -> Result<()> {
        if !self.is_empty() {
            self.epoch = self.epoch_of(tx)?;
        }
        Ok(())
    }

    /// The `credential_epoch` of `tx`, read once: a call asks for it to trust a remembered caller, to note its
    /// marks and for a write's [`Grant`], all in the one transaction these stamps belong to.
    pub(crate) fn epoch_of(&mut self, tx: &Tx) -> Result<Option<i64>> {
        if let Some(epoch) = self.snapshot {
            return Ok(epoch);
        }
        let epoch = credential_epoch(tx)?;
        self.snapshot = Some(epoch);
        Ok(epoch)
    }

    /// Records the marks. Best effort: a write fault must not fail a call that only wanted to leave them, so a
    /// failure is logged and the call goes on.
    pub(crate) fn record(self, db: &mut Db) {
        if let Some(mark) = self.login {
            if let Err(e) = mark.record(db) {
                tracing::warn!(error = %e, "could not record a login in the lockout's count");
            }
        }
        if self.is_empty() {
            return;
        }
        let written = db.write(|tx| {
            if self.epoch.is_none() || credential_epoch(tx)? != self.epoch {
                return Ok(());
            }
            let marks = [
                ("UPDATE users SET lastlogin = ?1 WHERE id = ?2", self.user_login),
                ("UPDATE appkeys SET lastused = ?1 WHERE id = ?2", self.appkey),
                ("UPDATE tokens SET lastused = ?1 WHERE id = ?2", self.token),
                ("UPDATE sessions SET lastseen = ?1 WHERE id = ?2", self.session),
            ];
            for (sql, id) in marks {
                if let Some(id) = id {
                    tx.execute(sql, params![self.now, id])?;
                }
            }
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record the last use of a credential");
        }
    }
}

// One argument past clippy's threshold: each is a separate input of the check, and a struct for this one caller
// would only rename them.
#[allow(clippy::too_many_arguments)]
fn authenticate_envelope(
    tx: &Tx,
    app: &App,
    appkey: &Option<String>,
    userdata: &Option<String>,
    access: Access,
    prior: Option<Prior>,
    mode: Mode,
    stamps: &mut Stamps,
) -> Result<Authenticated> {
    let appkey = appkey.as_deref().map(str::trim).filter(|k| !k.is_empty());
    let appkey = appkey
        .ok_or_else(|| Error::new(Code::AuthRequired, "an appkey is required"))?
        .to_lowercase();
    let userdata = userdata
        .as_deref()
        .filter(|u| !u.is_empty() && access != Access::AppKey);
    // An org or username longer than any can be is refused here, before anything is looked up or kept.
    let ud = userdata.map(auth::parse_userdata).transpose()?.flatten();
    let now = app.clock.now();
    stamps.now = now;
    let remembered = match (&ud, mode) {
        (Some(ud), Mode::Call) => stamps
            .epoch_of(tx)?
            .map(|epoch| (app.auth.envelope_key(&appkey, ud), epoch)),
        _ => None,
    };
    // The same credentials succeeded at this credential epoch: every check below would pass again. The lockout too:
    // the failure that starts one moves the epoch, in every process (see [`LoginMark::record`]). (After argon2,
    // `prior` carries a fresh result: the checks run.)
    if let (Some((key, epoch)), None) = (&remembered, &prior) {
        if let Some((known, stamp)) = app.auth.recall(key, *epoch, now) {
            stamps.appkey = stamp.then_some(known.stamp_id);
            return Ok(Authenticated::Caller(known.caller));
        }
    }
    let digest = auth::digest(&appkey);
    // The user of `userdata`, looked up in the app key's org, comes with the key in one statement (NULLs when
    // there is none).
    let username = ud.as_ref().map(|u| &u.username);
    let row = tx.query_opt(
        "SELECT k.id, k.org_id, k.name, k.enabled, ko.operator, k.lastused, ko.identifier,
                    u.id, u.org_id, u.username, u.level, u.disabled, ko.operator, u.phc, u.unlocks
             FROM appkeys k JOIN orgs ko ON ko.id = k.org_id
             LEFT JOIN users u ON u.org_id = k.org_id AND u.username = ?2
             WHERE k.digest = ?1",
        params![digest, username],
        |r| {
            let key = AppKeyRow {
                id: r.get(0)?,
                org_id: r.get(1)?,
                name: r.get(2)?,
                enabled: r.get(3)?,
                operator_org: r.get(4)?,
                lastused: r.get(5)?,
            };
            let org: String = r.get(6)?;
            // The user and the PHC string of its password, when the user exists.
            let user = match r.get::<Option<i64>>(7)? {
                None => None,
                Some(_) => Some((user_row(r, 7)?, r.get::<String>(13)?)),
            };
            let unlocks = r.get::<Option<i64>>(14)?.unwrap_or(0);
            Ok((key, org, user, unlocks))
        },
    )?;
    let (key, key_org, user, unlocks) = row.ok_or_else(|| Error::new(Code::BadAppkey, "unknown appkey"))?;
    if !key.enabled {
        return Err(Error::new(Code::AppkeyDisabled, "this appkey is disabled"));
    }
    // Once a minute at most, as for tokens: a key in steady use should not turn every read into a write.
    let touch_key = key.lastused.is_none_or(|t| t < now - 60);
    if access == Access::AppKey {
        stamps.appkey = touch_key.then_some(key.id);
        return Ok(Authenticated::Caller(Caller {
            org_id: key.org_id,
            operator_org: key.operator_org,
            user_id: None,
            username: String::new(),
            level: Level::Readonly,
            application: key.name,
        }));
    }
    if userdata.is_none() {
        return Err(Error::new(Code::AuthRequired, "userdata is required"));
    }
    // Userdata not of the form `org/user:<40 hex digits>` (often a password sent where its sha1 belongs): the answer
    // says what the form is. It tells nothing about credentials of the right form.
    let ud = ud.ok_or_else(|| {
        Error::new(
            Code::AuthFailed,
            "authentication failed: userdata must be org/user:sha1, where sha1 is 40 hex digits, the SHA-1 of the \
             lower-cased username, a hyphen and the password (not the password itself)",
        )
    })?;
    // Another org's user (or an org that does not exist) is refused before the lockout is checked or counted and
    // before any password check: one answer whatever the password, and no way to lock out another org's users.
    if !ud.org.eq_ignore_ascii_case(&key_org) {
        return Err(Error::new(
            Code::BadAppkey,
            "this appkey belongs to another organisation",
        ));
    }
    let login = Claim {
        org_id: key.org_id,
        ud,
        user,
        unlocks,
    };
    let (user, verified) = match check_password(tx, app, login, prior, mode, stamps)? {
        Login::User(user, verified) => (user, verified),
        Login::NeedsArgon2(check) => return Ok(Authenticated::NeedsArgon2(check)),
    };
    // A real login (not a cache hit) is worth a write, at most once per cache lifetime.
    stamps.user_login = (verified == Verified::Fresh).then_some(user.id);
    stamps.appkey = touch_key.then_some(key.id);
    let caller = user.caller(key.name);
    if let Some((cache_key, epoch)) = remembered {
        let stamped = if touch_key { Some(now) } else { key.lastused };
        app.auth
            .remember(cache_key, known(&caller, None, key.id), epoch, stamped);
    }
    Ok(Authenticated::Caller(caller))
}

/// The `credential_epoch` of the call's transaction: remembered callers read at another one are not trusted.
/// `None` if the table has lost its row: then nothing is remembered or trusted, and every call is checked in full.
fn credential_epoch(tx: &Tx) -> Result<Option<i64>> {
    tx.query_opt(crate::store::CREDENTIAL_EPOCH, params![], |r| r.get(0))
}

fn known(caller: &Caller, expires: Option<i64>, stamp_id: i64) -> Known {
    Known {
        caller: caller.clone(),
        expires,
        stamp_id,
    }
}

/// The operator org's admin without a user: `API_TOKENS` tokens (`api-token`) and the command line (`cli`).
fn operator(tx: &Tx, username: &str) -> Result<Caller> {
    let org_id = tx.query_opt(
        "SELECT id FROM orgs WHERE operator = 1 ORDER BY id LIMIT 1",
        params![],
        |r| r.get::<i64>(0),
    )?;
    let org_id = org_id.ok_or_else(|| Error::new(Code::Unavailable, "the database is not initialised"))?;
    Ok(Caller {
        org_id,
        operator_org: true,
        user_id: None,
        username: username.into(),
        level: Level::Admin,
        application: if username == "cli" {
            "cli".into()
        } else {
            "API_TOKENS".into()
        },
    })
}

fn authenticate_token(tx: &Tx, app: &App, token: Option<&str>, mode: Mode, stamps: &mut Stamps) -> Result<Caller> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let token = token.ok_or_else(|| Error::new(Code::AuthRequired, "a token is required"))?;
    let key = app.auth.token_key(token);
    if auth::contains_digest(&app.operator_tokens, &key) {
        return operator(tx, "api-token");
    }
    let invalid = || Error::new(Code::AuthFailed, "invalid token");
    let now = app.clock.now();
    stamps.now = now;
    // A recheck neither trusts nor remembers (see [`Mode::Recheck`]).
    let epoch = match mode {
        Mode::Call => stamps.epoch_of(tx)?,
        Mode::Recheck => None,
    };
    let key = CallerKey::Token(key);
    // The same token succeeded at this credential epoch: only its expiry is checked again.
    if let Some((known, stamp)) = epoch.and_then(|epoch| app.auth.recall(&key, epoch, now)) {
        if known.expires.is_some_and(|e| e <= now) {
            return Err(invalid());
        }
        stamps.token = stamp.then_some(known.stamp_id);
        return Ok(known.caller);
    }
    let row = tx.query_opt(
        "SELECT t.id, t.prefix, t.expires, t.lastused, u.id, u.org_id, u.username, u.level, u.disabled, o.operator
             FROM tokens t JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id WHERE t.digest = ?1",
        params![auth::digest(token)],
        |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<Option<i64>>(2)?,
                r.get::<Option<i64>>(3)?,
                user_row(r, 4)?,
            ))
        },
    )?;
    let (token_id, prefix, expires, lastused, user) = row.ok_or_else(invalid)?;
    if expires.is_some_and(|e| e <= now) {
        return Err(invalid());
    }
    if user.disabled {
        return Err(Error::new(Code::AccountDisabled, "this account is disabled"));
    }
    // Once a minute at most: a token in steady use should not turn every read into a write.
    let touch = lastused.is_none_or(|t| t < now - 60);
    stamps.token = touch.then_some(token_id);
    let caller = user.caller(format!("token:{prefix}"));
    if let Some(epoch) = epoch {
        let stamped = if touch { Some(now) } else { lastused };
        app.auth
            .remember(key, known(&caller, expires, token_id), epoch, stamped);
    }
    Ok(caller)
}

/// What a password check found: the user with how their password was verified, or a password argon2 must check
/// first.
enum Login {
    User(UserRow, Verified),
    NeedsArgon2(PasswordCheck),
}

/// A login's claim: `ud`, whose user in org `org_id` is `user` (with the PHC string of their password; `None` when
/// there is none) with `unlocks` unlocks (0 for none).
struct Claim {
    org_id: i64,
    ud: auth::Userdata,
    user: Option<(UserRow, String)>,
    unlocks: i64,
}

/// Checks the password of a [`Claim`] for the envelope and the web UI's sign-in alike: the lockout, the
/// verification cache or argon2 (`prior`), failed and successful logins counted (a user's in the database, after
/// the read transaction: [`Stamps::login`]), a disabled account refused.
fn check_password(
    tx: &Tx,
    app: &App,
    claim: Claim,
    prior: Option<Prior>,
    mode: Mode,
    stamps: &mut Stamps,
) -> Result<Login> {
    let Claim {
        org_id,
        ud,
        user,
        unlocks,
    } = claim;
    let who = app.auth.lockout_key(org_id, &ud.username, unlocks);
    // A user's failures are the database's, shared by every process; a name that names nobody's, this process's.
    let stored = match user {
        Some(_) => stored_failures(tx, app, &who)?,
        None => {
            app.auth.check_lockout(&who)?;
            false
        }
    };
    let phc = user.as_ref().map(|(_, phc)| phc.as_str());
    let verified = match (prior, phc) {
        // Verified just now against the hash still stored.
        (Some((checked, result)), _) if checked.as_deref() == phc => result,
        // The password was changed while argon2 ran: this login fails rather than loop.
        (Some(_), _) => Verified::Failed,
        (None, Some(stored)) if app.auth.cached(stored, &ud.sha1) => Verified::Cached,
        (None, _) => {
            let phc = phc.map(str::to_string);
            return Ok(Login::NeedsArgon2(PasswordCheck { phc, sha1: ud.sha1 }));
        }
    };
    let user = match (user, verified) {
        (Some((user, _)), Verified::Cached | Verified::Fresh) => user,
        (user, _) => {
            // A name that names nobody is counted too, so no answer (the lockout included) tells it from a user's
            // (argon2 ran against the dummy hash).
            if mode == Mode::Call {
                match user {
                    Some(_) => {
                        stamps.login = Some(LoginMark::Failed {
                            who,
                            now: app.clock.now(),
                            attempts: app.settings.lockout_attempts,
                            window: app.settings.lockout_seconds,
                        })
                    }
                    None => app.auth.record_failure(&who),
                }
            }
            return Err(Error::new(Code::AuthFailed, "authentication failed"));
        }
    };
    if mode == Mode::Call && stored {
        stamps.login = Some(LoginMark::Succeeded(who));
    }
    if user.disabled {
        return Err(Error::new(Code::AccountDisabled, "this account is disabled"));
    }
    Ok(Login::User(user, verified))
}

/// Refuses a user whose lockout (`login_failures`, by lockout key `who`) is in force; whether the user has failures
/// stored, which a successful login clears.
fn stored_failures(tx: &Tx, app: &App, who: &[u8; 32]) -> Result<bool> {
    let row = tx.query_opt(
        "SELECT locked_until FROM login_failures WHERE digest = ?1",
        params![*who],
        |r| r.get::<Option<i64>>(0),
    )?;
    let Some(locked_until) = row else {
        return Ok(false);
    };
    let now = app.clock.now();
    match locked_until.filter(|until| *until > now) {
        Some(until) => Err(auth::locked_out(u64::try_from(until - now).unwrap_or(1))),
        None => Ok(true),
    }
}

/// The web UI's sign-in: `org/user:sha1` as the envelope's `userdata`, with no app key. The org is found by its
/// identifier; the password is checked as the envelope's is ([`check_password`]). An org that does not exist is
/// refused as a wrong password is.
fn authenticate_sign_in(
    tx: &Tx,
    app: &App,
    userdata: &str,
    prior: Option<Prior>,
    mode: Mode,
    stamps: &mut Stamps,
) -> Result<Authenticated> {
    let failed = || Error::new(Code::AuthFailed, "authentication failed");
    let ud = auth::parse_userdata(userdata)?.ok_or_else(failed)?;
    stamps.now = app.clock.now();
    let row = tx.query_opt(
        "SELECT o.id, u.id, u.org_id, u.username, u.level, u.disabled, o.operator, u.phc, u.unlocks
             FROM orgs o LEFT JOIN users u ON u.org_id = o.id AND u.username = ?2
             WHERE o.identifier = ?1",
        params![ud.org.to_ascii_lowercase(), ud.username],
        |r| {
            let user = match r.get::<Option<i64>>(1)? {
                None => None,
                Some(_) => Some((user_row(r, 1)?, r.get::<String>(7)?)),
            };
            Ok((r.get::<i64>(0)?, user, r.get::<Option<i64>>(8)?.unwrap_or(0)))
        },
    )?;
    let (org_id, user, unlocks) = row.ok_or_else(failed)?;
    let claim = Claim {
        org_id,
        ud,
        user,
        unlocks,
    };
    match check_password(tx, app, claim, prior, mode, stamps)? {
        Login::NeedsArgon2(check) => Ok(Authenticated::NeedsArgon2(check)),
        Login::User(user, verified) => {
            stamps.user_login = (verified == Verified::Fresh).then_some(user.id);
            Ok(Authenticated::Caller(user.caller(SESSION_APPLICATION.into())))
        }
    }
}

/// What the audit log names as the application of the web UI's calls.
pub const SESSION_APPLICATION: &str = "ui";

/// A web UI session (the cookie's id): valid while within both timeouts (`IPAMD_UI_IDLE_MINUTES`,
/// `IPAMD_UI_SESSION_HOURS`), while its user's password is the one signed in with and while the user is enabled.
/// Its last use is stamped at most once a minute, after the call's read transaction.
fn authenticate_session(tx: &Tx, app: &App, id: Option<&str>, stamps: &mut Stamps) -> Result<Caller> {
    let id = id.map(str::trim).filter(|t| !t.is_empty());
    let id = id.ok_or_else(|| Error::new(Code::AuthRequired, "sign in first"))?;
    let ended = || Error::new(Code::AuthFailed, "the session has ended: sign in again");
    let row = tx.query_opt(
        "SELECT s.id, s.phc, s.created, s.lastseen, u.id, u.org_id, u.username, u.level, u.disabled, o.operator,
                    u.phc
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN orgs o ON o.id = u.org_id WHERE s.digest = ?1",
        params![auth::digest(id)],
        |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<i64>(2)?,
                r.get::<i64>(3)?,
                user_row(r, 4)?,
                r.get::<String>(10)?,
            ))
        },
    )?;
    let (session, signed_in_with, created, lastseen, user, phc) = row.ok_or_else(ended)?;
    let now = app.clock.now();
    let settings = &app.settings;
    let idle = i64::try_from(settings.ui_idle_minutes.saturating_mul(60)).unwrap_or(i64::MAX);
    let life = i64::try_from(settings.ui_session_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    if now >= lastseen.saturating_add(idle) || now >= created.saturating_add(life) {
        return Err(ended());
    }
    if signed_in_with != auth::digest(&phc) {
        return Err(ended());
    }
    if user.disabled {
        return Err(Error::new(Code::AccountDisabled, "this account is disabled"));
    }
    stamps.now = now;
    stamps.session = (lastseen < now - 60).then_some(session);
    Ok(user.caller(SESSION_APPLICATION.into()))
}

/// Starts a web UI session for user `user_id` of org `org_id`, who has just signed in, and returns its id (the
/// cookie's value; only its digest is stored). The session remembers the user's password hash as it is now
/// (its digest): a password changed since ends it. A batch of expired sessions is deleted on the way, so the table
/// holds little more than the live ones.
pub fn start_session(tx: &Tx, app: &App, user_id: i64, org_id: i64) -> Result<String> {
    let phc: String = tx
        .query_opt(
            "SELECT phc FROM users WHERE id = ?1 AND org_id = ?2 AND disabled = 0",
            params![user_id, org_id],
            |r| r.get(0),
        )?
        .ok_or_else(|| Error::new(Code::AuthFailed, "authentication failed"))?;
    let now = app.clock.now();
    let idle = i64::try_from(app.settings.ui_idle_minutes.saturating_mul(60)).unwrap_or(i64::MAX);
    let life = i64::try_from(app.settings.ui_session_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    tx.execute(
        "DELETE FROM sessions WHERE id IN (
             SELECT id FROM sessions WHERE lastseen <= ?1 OR created <= ?2 LIMIT 256)",
        params![now.saturating_sub(idle), now.saturating_sub(life)],
    )?;
    let id = auth::new_session_id()?;
    tx.execute(
        "INSERT INTO sessions (digest, user_id, phc, created, lastseen) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![auth::digest(&id), user_id, auth::digest(&phc), now],
    )?;
    Ok(id)
}

/// Ends the web UI session `id` (signing out). An unknown id ends nothing.
pub fn end_session(tx: &Tx, id: &str) -> Result<()> {
    tx.execute("DELETE FROM sessions WHERE digest = ?1", params![auth::digest(id)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `recheck` runs in the writer's transaction, which may roll back: at a moved epoch it checks the credentials
    /// in full but leaves nothing in the process's tables. Before, it remembered the caller at the uncommitted
    /// epoch (trusted again once a later change, a disable, commits with the same number) and counted a failed
    /// password check for the lockout.
    #[test]
    fn a_recheck_leaves_no_known_caller_and_counts_no_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::config::Settings::defaults();
        settings.db = dir.path().join("ipam.db");
        let app = App::open(settings, &[]).unwrap();
        let creds =
            crate::cli::create_org(&app.store, "a", "", "admin", Some("admin-password".into()), true, 12).unwrap();
        let envelope = Credentials::Envelope {
            appkey: Some(creds.appkey.clone()),
            userdata: Some(creds.userdata.clone()),
        };
        let token = Credentials::Token(Some(creds.token.clone()));
        let access = Access::User(Level::Standard);
        let (app2, stored) = (app.clone(), |tx: &Tx| -> Result<(Caller, Grant)> {
            let (org_id, user_id, phc): (i64, i64, String) = tx.query_row(
                "SELECT org_id, id, phc FROM users WHERE username = 'admin'",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let caller = Caller {
                org_id,
                operator_org: false,
                user_id: Some(user_id),
                username: "admin".into(),
                level: Level::Admin,
                application: String::new(),
            };
            let grant = Grant {
                epoch: credential_epoch(tx)?,
                phc: Some(phc),
                expires: None,
            };
            Ok((caller, grant))
        });
        app.store
            .run_blocking(move |db| {
                let (caller, grant) = db.read(stored)?;
                // An earlier call of the batch moved the epoch; the batch then rolls back.
                let rolled_back = db.write(|tx| {
                    tx.execute("UPDATE credential_epoch SET n = n + 1", params![])?;
                    for creds in [&envelope, &token] {
                        let fresh = recheck(tx, &app2, creds, access, &grant, &caller)?;
                        assert_eq!(fresh.user_id, caller.user_id);
                    }
                    // The password changed in the same batch: the write is refused, and no login failed.
                    tx.execute("UPDATE users SET phc = phc || 'x'", params![])?;
                    let refused = recheck(tx, &app2, &envelope, access, &grant, &caller).unwrap_err();
                    assert_eq!(refused.code, Code::AuthFailed);
                    Err::<(), _>(Error::internal("the commit failed"))
                });
                assert!(rolled_back.is_err());
                let held = app2.auth.held();
                assert_eq!(
                    held.callers.entries, 0,
                    "nothing remembered at an epoch that never committed"
                );
                assert_eq!(held.failures.entries, 0, "a recheck is no failed login");
                Ok(())
            })
            .unwrap();
    }

    /// A user's failures count within the window that starts at the first one, the one that reaches the limit
    /// starts the lockout and moves the credential epoch, a success clears them, and expired rows go.
    #[test]
    fn failed_logins_count_in_their_window_and_lock_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("ipam.db")).unwrap();
        store
            .run_blocking(|db| {
                let fail = |db: &mut Db, who: u8, now: i64| {
                    let mark = LoginMark::Failed {
                        who: [who; 32],
                        now,
                        attempts: 3,
                        window: 100,
                    };
                    mark.record(db)
                };
                let row = |db: &mut Db, who: u8| {
                    db.read(|tx| {
                        tx.query_opt(
                            "SELECT since, failures, locked_until FROM login_failures WHERE digest = ?1",
                            params![[who; 32]],
                            |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?, r.get::<Option<i64>>(2)?)),
                        )
                    })
                };
                let epoch = |db: &mut Db| db.read(credential_epoch);
                fail(db, 1, 1000)?;
                fail(db, 1, 1050)?;
                assert_eq!(row(db, 1)?, Some((1000, 2, None)));
                // The window of the first failure has ended: a new one starts.
                fail(db, 1, 1100)?;
                assert_eq!(row(db, 1)?, Some((1100, 1, None)));
                fail(db, 1, 1150)?;
                let before = epoch(db)?;
                fail(db, 1, 1199)?;
                assert_eq!(row(db, 1)?, Some((1199, 0, Some(1299))), "locked for a window");
                assert_eq!(epoch(db)?, before.map(|n| n + 1), "the lockout moved the epoch");
                fail(db, 2, 1200)?;
                LoginMark::Succeeded([2; 32]).record(db)?;
                assert_eq!(row(db, 2)?, None, "a success clears the count");
                // A failure a window after the lockout's start deletes the expired rows, other users' too.
                fail(db, 3, 1300)?;
                assert_eq!(row(db, 1)?, None);
                assert_eq!(row(db, 3)?, Some((1300, 1, None)));
                Ok(())
            })
            .unwrap();
    }

    /// Last-use marks are written in a transaction after the one that read their ids: they are dropped when a
    /// credential changed in between (after a restore, the same ids may name other rows).
    #[test]
    fn last_use_marks_are_dropped_once_a_credential_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("ipam.db")).unwrap();
        crate::cli::create_org(&store, "a", "", "admin", Some("admin-password".into()), true, 12).unwrap();
        store
            .run_blocking(|db| {
                let (key, epoch) = db.read(|tx| {
                    let key = tx.query_row("SELECT id FROM appkeys", params![], |r| r.get::<i64>(0))?;
                    Ok((key, credential_epoch(tx)?))
                })?;
                let lastused = |db: &mut Db| {
                    db.read(|tx| tx.query_row("SELECT lastused FROM appkeys", params![], |r| r.get::<Option<i64>>(0)))
                };
                let stamps = |now| Stamps {
                    now,
                    appkey: Some(key),
                    epoch,
                    ..Stamps::default()
                };
                stamps(100).record(db);
                assert_eq!(lastused(db)?, Some(100));
                db.write(|tx| tx.execute("UPDATE credential_epoch SET n = n + 1", params![]))?;
                stamps(200).record(db);
                assert_eq!(lastused(db)?, Some(100));
                Ok(())
            })
            .unwrap();
    }
}
