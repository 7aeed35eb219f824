//! `org/users/*`: the users of the caller's org. Users are disabled, never deleted, and every org keeps at least
//! one enabled admin. Password hashes never leave the server.

use serde_json::{json, Value};

use crate::auth;
use crate::db::{params, Row};
use crate::error::{Code, Error, Result};
use crate::handler::{Action, Caller, Change, Ctx, Level, ObjectKind, Params};
use crate::methods::{check_version, listed, List, ListParams, Table};
use crate::model::{self, Records, User};
use crate::params::{Data, Patch};
use crate::store::{Db, Tx};

const COLS: &str = "id, username, email, realname, level, disabled, created, lastlogin, version";

fn record(r: &Row) -> Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        realname: r.get(3)?,
        level: r.get(4)?,
        disabled: r.get(5)?,
        created: r.get(6)?,
        lastlogin: r.get(7)?,
        version: r.get(8)?,
    })
}

/// One user of the caller's org.
pub fn load(ctx: &Ctx, id: i64) -> Result<User> {
    ctx.tx
        .query_opt(
            &format!("SELECT {COLS} FROM users WHERE id = ?1 AND org_id = ?2"),
            params![id, ctx.org()],
            record,
        )?
        .ok_or_else(|| Error::not_found("user"))
}

/// The org's users by id (or the one `id`); with `page` or `perpage`, a page.
pub fn get(ctx: &Ctx, p: ListParams) -> Result<model::List<User>> {
    let table = Table {
        cols: COLS,
        from: "users t",
        order: "t.id",
        key: "users",
        what: "user",
    };
    listed(ctx, List::new("t.org_id = ?", ctx.org()), &table, &p, record)
}

/// Checks a username: `[A-Za-z0-9._@-]{1,64}`.
pub fn valid_username(s: &str) -> Result<String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::param(
            "username",
            "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '@' and '-'",
        ))
    }
}

/// Refuses a password shorter than `min` characters (`IPAMD_MIN_PASSWORD_LENGTH`), wherever one is set in clear.
pub fn check_password(password: &str, min: u32) -> Result<()> {
    check_length(Some(password.chars().count()), min)
}

/// [`check_password`] for a password of `chars` characters (`None`: a client-side `hash`, which cannot be measured).
fn check_length(chars: Option<usize>, min: u32) -> Result<()> {
    if chars.is_some_and(|n| n < min as usize) {
        return Err(Error::new(
            Code::WeakPassword,
            format!("the password must be at least {min} characters long"),
        ));
    }
    Ok(())
}

fn valid_email(s: &str) -> Result<String> {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && s.len() <= 254 && !s.contains(char::is_whitespace) =>
        {
            Ok(s.to_string())
        }
        _ => Err(Error::param("email", "must be an email address")),
    }
}

/// A new password, as given: in clear (`password`) or as the client-side sha1 (`hash`).
enum Secret {
    Password(String),
    Hash(String),
}

impl Secret {
    fn decode(d: &mut Data) -> Result<Option<Secret>> {
        match (d.str("password")?, d.str("hash")?) {
            (Some(_), Some(_)) => Err(Error::param("hash", "give either password or hash, not both")),
            (Some(pw), None) => Ok(Some(Secret::Password(pw))),
            (None, Some(h)) if h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Some(Secret::Hash(h.to_ascii_lowercase())))
            }
            (None, Some(_)) => Err(Error::param(
                "hash",
                "must be 40 hex digits: sha1(lowercase(username) + '-' + password)",
            )),
            (None, None) => Ok(None),
        }
    }

    /// The length of a password in clear, in characters; a client-side `hash` cannot be measured.
    fn chars(&self) -> Option<usize> {
        match self {
            Secret::Password(pw) => Some(pw.chars().count()),
            Secret::Hash(_) => None,
        }
    }

    /// The sha1 the server hashes with argon2.
    fn sha1(&self, username: &str) -> String {
        match self {
            Secret::Password(pw) => auth::userdata_sha1(username, pw),
            Secret::Hash(h) => h.clone(),
        }
    }
}

fn level_param(d: &mut Data) -> Result<Option<Level>> {
    d.str("level")?
        .map(|l| Level::parse(&l).ok_or_else(|| Error::param("level", "must be readonly, standard or admin")))
        .transpose()
}

/// A user to create, by `org/users/add` or the command line.
pub struct NewUser {
    pub username: String,
    /// The argon2id PHC string over the client-side sha1 (see `auth::userdata_sha1`), computed before the call's
    /// transaction so the writer never waits on argon2.
    pub phc: String,
    pub email: String,
    pub realname: Option<String>,
    pub level: Level,
}

/// Inserts a user; the values are validated by `NewUser::decode` or the command line.
pub fn insert(tx: &Tx, org_id: i64, u: &NewUser, now: i64) -> Result<i64> {
    let NewUser {
        username,
        phc,
        email,
        realname,
        level,
    } = u;
    let taken: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE org_id = ?1 AND username = ?2)",
        params![org_id, username],
        |r| r.get(0),
    )?;
    if taken {
        return Err(Error::new(
            Code::Duplicate,
            format!("the username '{username}' is taken"),
        ));
    }
    let id = tx.query_row(
        "INSERT INTO users (org_id, username, email, realname, level, phc, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        params![org_id, username, email, realname, level.as_str(), phc, now],
        |r| r.get::<i64>(0),
    )?;
    Ok(id)
}

/// The parameters of `org/users/add`: a [`NewUser`] whose password is hashed by [`Params::slow`].
pub struct AddParams {
    username: String,
    /// The password's length, checked by the handler against the settings (the password itself is not kept).
    chars: Option<usize>,
    sha1: String,
    phc: Option<String>,
    email: String,
    realname: Option<String>,
    level: Level,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let username = valid_username(&d.req_str("username")?)?;
        let secret = Secret::decode(d)?.ok_or_else(|| Error::param("password", "password or hash is required"))?;
        Ok(AddParams {
            sha1: secret.sha1(&username),
            chars: secret.chars(),
            phc: None,
            email: valid_email(&d.req_str("email")?)?,
            realname: d.str("realname")?,
            level: level_param(d)?.unwrap_or(Level::Standard),
            username,
        })
    }

    fn has_slow_work(&self) -> bool {
        self.phc.is_none()
    }

    fn slow(&mut self) -> Result<()> {
        self.phc = Some(auth::hash_password(&self.sha1)?);
        Ok(())
    }
}

pub fn add(ctx: &Ctx, p: AddParams) -> Result<Records<User>> {
    check_length(p.chars, ctx.settings.min_password_length)?;
    let p = NewUser {
        phc: p
            .phc
            .ok_or_else(|| Error::internal("the new password was not hashed"))?,
        username: p.username,
        email: p.email,
        realname: p.realname,
        level: p.level,
    };
    let id = insert(ctx.tx, ctx.org(), &p, ctx.now)?;
    let after = load(ctx, id)?;
    ctx.log(
        Change::new(
            ObjectKind::User.id(id),
            Action::Added,
            format!("user {} added", p.username),
        )
        .detail(json!({"level": p.level.as_str()}))
        .after(&after),
    )?;
    Ok(Records(vec![after]))
}

pub struct EditParams {
    /// `None` means "self".
    id: Option<i64>,
    email: Option<String>,
    realname: Patch<String>,
    secret: Option<Secret>,
    /// The user whose password changes, read by `resolve`, and `secret` hashed for them by `slow`.
    hashed: Option<Hashed>,
    level: Option<Level>,
    disabled: Option<bool>,
    version: Option<i64>,
}

/// A new password hashed for the user it was hashed for.
struct Hashed {
    id: i64,
    username: String,
    phc: Option<String>,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let id = match d.str("id")? {
            None => return Err(Error::param("id", "is required (a user id or \"self\")")),
            Some(s) if s.eq_ignore_ascii_case("self") => None,
            Some(s) => Some(
                crate::params::as_int(&Value::String(s))
                    .filter(|i| *i > 0)
                    .ok_or_else(|| Error::param("id", "must be a user id or \"self\""))?,
            ),
        };
        Ok(EditParams {
            id,
            email: d.str("email")?.map(|e| valid_email(&e)).transpose()?,
            realname: d.patch_str("realname")?,
            secret: Secret::decode(d)?,
            hashed: None,
            level: level_param(d)?,
            disabled: d.bool("disabled")?,
            version: d.int("version")?,
        })
    }

    /// Reads the name of the user whose password changes: its sha1 covers it. Nothing is read (and later hashed)
    /// for a change the handler refuses the caller, nor found for a user of another org.
    fn resolve(&mut self, db: &mut Db, caller: &Caller) -> Result<()> {
        let Some(id) = self.target(caller) else {
            return Ok(());
        };
        if self.secret.is_none() || (self.needs_admin(id, caller) && !caller.has(Level::Admin)) {
            return Ok(());
        }
        let username: Option<String> = db.read(|tx| {
            tx.query_opt(
                "SELECT username FROM users WHERE id = ?1 AND org_id = ?2",
                params![id, caller.org_id],
                |r| r.get(0),
            )
        })?;
        self.hashed = username.map(|username| Hashed {
            id,
            username,
            phc: None,
        });
        Ok(())
    }

    fn has_slow_work(&self) -> bool {
        self.hashed.as_ref().is_some_and(|h| h.phc.is_none())
    }

    fn slow(&mut self) -> Result<()> {
        if let (Some(secret), Some(h)) = (&self.secret, &mut self.hashed) {
            h.phc = Some(auth::hash_password(&secret.sha1(&h.username))?);
        }
        Ok(())
    }
}

impl EditParams {
    /// The user edited: the one named, else the caller.
    fn target(&self, caller: &Caller) -> Option<i64> {
        self.id.or(caller.user_id)
    }

    /// Whether editing user `id` this way needs an admin: anyone may change their own email, realname and
    /// password.
    fn needs_admin(&self, id: i64, caller: &Caller) -> bool {
        Some(id) != caller.user_id || self.level.is_some() || self.disabled.is_some()
    }
}

/// Edits a user. Anyone may change their own email, realname and password; the rest needs an admin.
pub fn edit(ctx: &Ctx, p: EditParams) -> Result<Records<User>> {
    let Some(id) = p.target(ctx.caller) else {
        return Err(Error::param(
            "id",
            "an operator token is not a user: name the user's id",
        ));
    };
    if p.needs_admin(id, ctx.caller) {
        ctx.require(Level::Admin)?;
    }
    if let Some(secret) = &p.secret {
        check_length(secret.chars(), ctx.settings.min_password_length)?;
    }
    let before = load(ctx, id)?;
    check_version(ctx, "users", id, p.version)?;
    let username = before.username.clone();
    let was_active_admin = before.level == Level::Admin.as_str() && !before.disabled;
    let demoted = p.level.is_some_and(|l| l != Level::Admin) || p.disabled == Some(true);
    if was_active_admin && demoted {
        let others: i64 = ctx.tx.query_row(
            "SELECT count(*) FROM users WHERE org_id = ?1 AND id <> ?2 AND level = 'admin' AND disabled = 0",
            params![ctx.org(), id],
            |r| r.get(0),
        )?;
        if others == 0 {
            return Err(Error::new(
                Code::LastAdmin,
                "the organisation's last enabled admin cannot be demoted or disabled",
            ));
        }
    }
    let mut changed = Vec::new();
    if let Some(email) = &p.email {
        ctx.tx
            .execute("UPDATE users SET email = ?1 WHERE id = ?2", params![email, id])?;
        changed.push("email");
    }
    match &p.realname {
        Patch::Keep => {}
        Patch::Clear => {
            ctx.tx
                .execute("UPDATE users SET realname = NULL WHERE id = ?1", params![id])?;
            changed.push("realname");
        }
        Patch::Set(r) => {
            ctx.tx
                .execute("UPDATE users SET realname = ?1 WHERE id = ?2", params![r, id])?;
            changed.push("realname");
        }
    }
    if p.secret.is_some() {
        // Hashed before the writer for the user found then. Another user, or none, only if the data changed in
        // between (a restore): the call answers as if it ran before the change.
        let hashed = p.hashed.as_ref().filter(|h| h.id == id && h.username == username);
        let Some(phc) = hashed.and_then(|h| h.phc.as_ref()) else {
            return Err(Error::not_found("user"));
        };
        // A new PHC string (new salt) is also what invalidates every cached verification of the old password.
        ctx.tx
            .execute("UPDATE users SET phc = ?1 WHERE id = ?2", params![phc, id])?;
        changed.push("password");
    }
    if let Some(level) = p.level {
        ctx.tx
            .execute("UPDATE users SET level = ?1 WHERE id = ?2", params![level.as_str(), id])?;
        changed.push("level");
    }
    if let Some(disabled) = p.disabled {
        ctx.tx
            .execute("UPDATE users SET disabled = ?1 WHERE id = ?2", params![disabled, id])?;
        changed.push("disabled");
    }
    let after = load(ctx, id)?;
    if !changed.is_empty() {
        // Each field given, even if to the value it had: `[before, after]`; the password only as "changed".
        let (b, a) = (&before, &after);
        let changes: serde_json::Map<String, Value> = changed
            .iter()
            .map(|f| {
                let change = match *f {
                    "email" => json!([b.email, a.email]),
                    "realname" => json!([b.realname, a.realname]),
                    "level" => json!([b.level, a.level]),
                    "disabled" => json!([b.disabled, a.disabled]),
                    _ => json!("changed"),
                };
                (f.to_string(), change)
            })
            .collect();
        ctx.log(
            Change::new(
                ObjectKind::User.id(id),
                Action::Edited,
                format!("user {username} edited"),
            )
            .detail(Value::Object(changes))
            .before(&before)
            .after(&after),
        )?;
    }
    Ok(Records(vec![after]))
}

/// Ends the lockout of the caller, a user the command line acts for (`ipamd user unlock`): raising `unlocks` moves
/// the user's lockout key (`auth::Auth::lockout_key`) and the credential epoch, so every server process starts them
/// afresh at their next login.
pub fn unlock(ctx: &Ctx) -> Result<()> {
    let id = ctx
        .caller
        .user_id
        .ok_or_else(|| Error::internal("unlock: the caller is no user"))?;
    ctx.tx.execute(
        "UPDATE users SET unlocks = unlocks + 1 WHERE id = ?1 AND org_id = ?2",
        params![id, ctx.org()],
    )?;
    ctx.log(
        Change::new(
            ObjectKind::User.id(id),
            Action::Edited,
            format!("user {} unlocked", ctx.caller.username),
        )
        .detail(json!({"lockout": "ended"})),
    )
}
