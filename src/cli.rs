//! The command line's work apart from serving: creating the operator org on first run (`ipamd init`) and new
//! orgs (`ipamd org add`), each with its first admin, an app key and a REST token, printed once.

use serde::Serialize;

use crate::auth;
use crate::clock::Clock;
use crate::error::{Code, Error, Result};
use crate::handler::Level;
use crate::methods::{appkeys, org, tokens, users};
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

/// Creates an org with its first admin, one app key and one REST token, in one transaction.
/// With `first_run`, it is the operator org and is created only while the database has no org at all.
pub fn create_org(
    store: &Store,
    identifier: &str,
    description: &str,
    admin: &str,
    password: Option<String>,
    first_run: bool,
) -> Result<Credentials> {
    let identifier = org::valid_identifier(identifier)?;
    let username = users::valid_username(admin)?;
    let password = match password {
        Some(p) if p.is_empty() => return Err(Error::param("password", "must not be empty")),
        Some(p) => p,
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
pub fn first_run(store: &Store, password: Option<String>) -> Result<Option<Credentials>> {
    match create_org(store, "admin", "operator organisation", "admin", password, true) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.code == Code::Conflict => Ok(None),
        Err(e) => Err(e),
    }
}
