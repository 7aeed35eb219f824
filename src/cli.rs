//! The command line's work apart from serving: creating the operator org on first run (`ipamd init`) and new
//! orgs (`ipamd org add`), each with its first admin, an app key and a REST token, printed once; listing the orgs;
//! and the recovery commands (`ipamd user reset-password`, `user unlock`, `token create`), which act as the user
//! concerned and are audited like any change.

use serde::Serialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::auth;
use crate::clock::Clock;
use crate::credentials;
use crate::dispatch;
use crate::error::{Code, Error, Result};
use crate::handler::{self, Call, Ctx, Level};
use crate::methods::{appkeys, org, tokens, users};
use crate::model::{Org, Reply};
use crate::store::Store;

/// Everything a new org's admin needs to call ipamd. Shown once; only hashes and digests are stored.
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    pub org: String,
    pub username: String,
    pub password: String,
    pub sha1: String,
    pub userdata: String,
    pub appkey: String,
    pub token: String,
}

impl Credentials {
    /// The human form, for a terminal.
    pub fn text(&self) -> String {
        format!(
            "  org:       {}\n  username:  {}\n  password:  {}\n  userdata:  {}\n  appkey:    {}\n  token:     {}\n",
            self.org, self.username, self.password, self.userdata, self.appkey, self.token
        )
    }
}

/// A user's new password, from `ipamd user reset-password`. Shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewPassword {
    pub org: String,
    pub username: String,
    pub password: String,
    pub sha1: String,
    pub userdata: String,
}

/// A REST token from `ipamd token create`. Shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    pub org: String,
    pub username: String,
    pub token: String,
}

/// Creates an org with its first admin, one app key and one REST token, in one transaction.
/// With `first_run`, it is the operator org and is created only while the database has no org at all.
/// A password given shorter than `min_password_length` is refused before anything is written.
pub fn create_org(
    store: &Store,
    identifier: &str,
    description: &str,
    admin: &str,
    password: Option<String>,
    first_run: bool,
    min_password_length: u32,
) -> Result<Credentials> {
    let identifier = org::valid_identifier(identifier)?;
    let username = users::valid_username(admin)?;
    let password = match password {
        Some(p) => {
            users::check_password(&p, min_password_length)?;
            p
        }
        None => auth::new_password()?,
    };
    let sha1 = auth::userdata_sha1(&username, &password);
    // argon2 before the write transaction, not inside it.
    let phc = auth::hash_password(&sha1)?;
    let (appkey, token) =
        store.run_blocking(|db| {
            db.write(|tx| {
                match (first_run, org::any(tx)?) {
                    (true, true) => return Err(Error::new(Code::Conflict, "the database is already initialised")),
                    // The first org is the operator org; only init (or the first serve) may make it.
                    (false, false) => return Err(Error::new(
                        Code::Conflict,
                        "the database has no operator organisation yet: run `ipamd init` (or start the server) first",
                    )),
                    _ => {}
                }
                // The command line has no app: its stamps are the system's time.
                let now = Clock::System.now();
                let org_id = org::insert(tx, &identifier, description, first_run, now)?;
                let user = users::NewUser {
                    username: username.clone(),
                    phc: phc.clone(),
                    email: format!("{username}@localhost"),
                    realname: None,
                    level: Level::Admin,
                };
                let user_id = users::insert(tx, org_id, &user, now)?;
                let (_, appkey) = appkeys::insert(tx, org_id, user_id, "default", Some("created with the org"), now)?;
                let (_, token) = tokens::insert(tx, org_id, user_id, Some("created with the org"), None, now)?;
                Ok((appkey, token))
            })
        })?;
    Ok(Credentials {
        userdata: format!("{identifier}/{username}:{sha1}"),
        org: identifier,
        username,
        password,
        sha1,
        appkey,
        token,
    })
}

/// Creates the operator org `admin` with user `admin` when the database has no org yet; `None` when it has.
pub fn first_run(store: &Store, password: Option<String>, min_password_length: u32) -> Result<Option<Credentials>> {
    // Asked first, so that an initialised database costs no argon2 run and its start does not depend on the
    // password (a short IPAMD_ADMIN_PASSWORD left from before the length rule). `create_org` asks again in its
    // transaction.
    if store.run_blocking(|db| db.read(org::any))? {
        return Ok(None);
    }
    match create_org(
        store,
        "admin",
        "operator organisation",
        "admin",
        password,
        true,
        min_password_length,
    ) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.code == Code::Conflict => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every org, by id.
pub fn orgs(store: &Store) -> Result<Vec<Org>> {
    store.run_blocking(|db| db.read(org::all))
}

/// Runs `method` through the dispatcher as `credentials`, on a runtime of its own: the command line's calls take
/// the path of every call, with its checks, transaction and audit entry.
pub fn call(app: &App, credentials: handler::Credentials, method: &str, data: Value) -> Result<Reply> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the runtime: {e}")))?;
    let call = Call {
        method: method.into(),
        credentials,
        data,
        key: None,
    };
    runtime.block_on(dispatch::dispatch(app, call)).result
}

/// The command line acting as `username` of `org`.
fn acting_as(org: &str, username: &str) -> handler::Credentials {
    handler::Credentials::LocalUser {
        org: org.to_string(),
        username: username.to_string(),
    }
}

/// Gives `username` of `org` a new password (generated when `None`) through `org/users/edit`, as the user: the
/// new hash moves the credential epoch, so a running server refuses the old password at the next call.
pub fn reset_password(app: &App, org: &str, username: &str, password: Option<String>) -> Result<NewPassword> {
    let password = match password {
        Some(p) => p,
        None => auth::new_password()?,
    };
    let data = json!({"id": "self", "password": password});
    let user = match call(app, acting_as(org, username), "org/users/edit", data)? {
        Reply::Users(users) => users.records.0.into_iter().next(),
        _ => None,
    };
    let username = user
        .map(|u| u.username)
        .ok_or_else(|| Error::internal("org/users/edit answered no user"))?;
    let org = org.trim().to_ascii_lowercase();
    let sha1 = auth::userdata_sha1(&username, &password);
    Ok(NewPassword {
        userdata: format!("{org}/{username}:{sha1}"),
        org,
        username,
        password,
        sha1,
    })
}

/// Creates a REST token for `username` of `org` through `org/tokens/add`, as the user (so within their quota).
pub fn create_token(app: &App, org: &str, username: &str) -> Result<NewToken> {
    let data = json!({"description": "created from the command line"});
    let token = match call(app, acting_as(org, username), "org/tokens/add", data)? {
        Reply::Tokens(tokens) => tokens.records.0.into_iter().next().and_then(|t| t.token),
        _ => None,
    };
    Ok(NewToken {
        org: org.trim().to_ascii_lowercase(),
        username: username.to_string(),
        token: token.ok_or_else(|| Error::internal("org/tokens/add answered no token"))?,
    })
}

/// Ends the lockout of `username` of `org`: no method does this, so the change and its audit entry are written
/// here in one transaction, through the handler vocabulary as a method's would be.
pub fn unlock(app: &App, org: &str, username: &str) -> Result<()> {
    app.store.run_blocking(|db| {
        db.write(|tx| {
            let caller = credentials::local_user(tx, org, username)?;
            let respid = handler::new_respid();
            let ctx = Ctx {
                tx,
                caller: &caller,
                settings: &app.settings,
                store: &app.store,
                now: app.clock.now(),
                respid: &respid,
                method: "ipamd user unlock",
            };
            users::unlock(&ctx)
        })
    })
}
