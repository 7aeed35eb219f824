//! The command line's work apart from serving: creating the operator org on first run (`ipamd init`) and new
//! orgs (`ipamd org add`), each with its first admin, an app key and a REST token, printed once; listing the orgs;
//! the recovery commands (`ipamd user reset-password`, `user unlock`, `token create`), which act as the user
//! concerned and are audited like any change; and the transfer commands (`ipamd export`, `import`, `output`), which
//! act as the user they name.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::auth;
use crate::clock::Clock;
use crate::credentials;
use crate::dispatch;
use crate::error::{Code, Error, Result};
use crate::handler::{self, Call, Ctx, Level};
use crate::methods::{appkeys, backups, import, org, tokens, users};
use crate::model::{ExportPage, Org, Reply};
use crate::store::{Store, Tx};

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
    call_on(&runtime()?, app, credentials, method, data)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the runtime: {e}")))
}

/// [`call`] on a runtime the caller keeps, for a command that makes many calls.
fn call_on(
    runtime: &tokio::runtime::Runtime,
    app: &App,
    credentials: handler::Credentials,
    method: &str,
    data: Value,
) -> Result<Reply> {
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
    write_as(app, org, username, "ipamd user unlock", users::unlock)
}

/// Runs `f` in one write transaction through a `Ctx`, as `username` of `org` calling `method`: what the dispatcher
/// gives a handler, for the commands that run one themselves.
fn write_as<T>(
    app: &App,
    org: &str,
    username: &str,
    method: &'static str,
    f: impl FnOnce(&Ctx) -> Result<T>,
) -> Result<T> {
    write_with(app, |tx| credentials::local_user(tx, org, username), method, f)
}

/// Runs `f` in one write transaction through a `Ctx`, as the caller `caller` finds in it, calling `method`.
fn write_with<T>(
    app: &App,
    caller: impl FnOnce(&Tx) -> Result<handler::Caller>,
    method: &'static str,
    f: impl FnOnce(&Ctx) -> Result<T>,
) -> Result<T> {
    app.store.run_blocking(|db| {
        db.write(|tx| {
            let caller = caller(tx)?;
            let respid = handler::new_respid();
            let ctx = Ctx {
                tx,
                caller: &caller,
                settings: &app.settings,
                store: &app.store,
                now: app.clock.now(),
                respid: &respid,
                method,
            };
            f(&ctx)
        })
    })
}

/// The page size of `ipamd export`: the most `export/get` gives.
const EXPORT_PAGE: usize = crate::methods::MAX_RECORDS;

/// Writes the rows of `scope` (the `subnet` or `group` parameter, or none) as `format` (`csv` or `json`) to `out`,
/// page by page through `export/get` as `username` of `org`: the memory used is one page's, however many rows.
/// Shows the progress on standard error when it is a terminal. Returns the number of rows.
pub fn export(app: &App, org: &str, username: &str, scope: Value, format: &str, out: &mut dyn Write) -> Result<usize> {
    let runtime = runtime()?;
    let failed = |e: std::io::Error| Error::internal(format!("cannot write the export: {e}"));
    let mut progress = Progress::new("exported", None);
    let (mut rows, mut after) = (0, None::<String>);
    loop {
        let mut data = json!({"format": format, "limit": EXPORT_PAGE, "after": after});
        if let (Some(d), Value::Object(scope)) = (data.as_object_mut(), &scope) {
            d.extend(scope.clone());
        }
        let page = match call_on(&runtime, app, acting_as(org, username), "export/get", data)? {
            Reply::Exported(page) => page,
            _ => return Err(Error::internal("export/get answered no page")),
        };
        out.write_all(&page.part(after.is_none())).map_err(failed)?;
        rows += page.rows.len();
        progress.show(rows);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    out.write_all(ExportPage::tail(format)).map_err(failed)?;
    out.flush().map_err(failed)?;
    progress.finish(rows);
    Ok(rows)
}

/// Imports rows (`import/run`'s parameters) as `username` of `org`, in one transaction. The command line runs the
/// handler itself, through a `Ctx` in one write as the dispatcher would (with the method's level checked), so that
/// it can show the progress row by row on a terminal: a call through the dispatcher answers only at the end.
pub fn import(app: &App, org: &str, username: &str, params: Value) -> Result<crate::model::ImportReport> {
    let mut data = crate::params::Data::new(params)?;
    let p = <import::RunParams as handler::Params>::decode(&mut data)?;
    data.finish()?;
    let mut progress = Progress::new("imported", Some(p.len()));
    let report = write_as(app, org, username, "import/run", |ctx| {
        ctx.require(Level::Standard)?;
        import::run_with(ctx, p, &mut |done| progress.show(done))
    })?;
    progress.finish(report.created + report.updated + report.refused);
    Ok(report)
}

/// The progress of a long export or import, on standard error when it is a terminal (never into a file or a
/// pipe): rows so far, the rate, and the time left when the total is known. Redrawn at most five times a second.
struct Progress {
    shown: bool,
    verb: &'static str,
    total: Option<usize>,
    start: std::time::Instant,
    last: Option<std::time::Instant>,
}

impl Progress {
    fn new(verb: &'static str, total: Option<usize>) -> Progress {
        Progress {
            shown: std::io::stderr().is_terminal(),
            verb,
            total,
            start: std::time::Instant::now(),
            last: None,
        }
    }

    fn show(&mut self, done: usize) {
        if !self.shown || self.last.is_some_and(|t| t.elapsed().as_millis() < 200) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        eprint!("\r{}\x1b[K", self.line(done));
    }

    fn finish(&mut self, done: usize) {
        if self.shown {
            eprintln!("\r{}\x1b[K", self.line(done));
        }
    }

    fn line(&self, done: usize) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let mut line = format!("{} {done} rows, {rate:.0} rows/s", self.verb);
        if let Some(total) = self.total.filter(|_| rate > 0.0) {
            let left = total.saturating_sub(done) as f64 / rate;
            line.push_str(&format!(" of {total}, {left:.0} s left"));
        }
        line
    }
}

/// What `ipamd migrate` copied: the backup it went through, and the rows of each table in it and in the target.
#[derive(Debug, Serialize)]
pub struct Migrated {
    pub backup: String,
    pub tables: Vec<CopiedTable>,
}

#[derive(Debug, Serialize)]
pub struct CopiedTable {
    pub table: String,
    /// Rows in the backup of the source.
    pub backup: i64,
    /// Rows in the target after the restore (the audit log holds the restore's own entry too).
    pub target: i64,
}

/// `ipamd migrate`: copies every record of `source` into `target`, an empty database (no org) of either engine,
/// through the one backup file format both engines write and restore: a backup of the source (in the backup
/// directory both share), restored into the target. Refuses a target that holds any org, and fails when the
/// target holds fewer rows of a table than the backup.
pub fn migrate(source: &App, target: &App) -> Result<Migrated> {
    let not_empty = || {
        Error::new(
            Code::Conflict,
            "the target database is not empty (it holds organisations): migrate copies into an empty database only",
        )
    };
    // Checked before the backup is made (no backup for nothing), and again in the restore's transaction.
    if target.store.run_blocking(|db| db.read(org::any))? {
        return Err(not_empty());
    }
    let Reply::NewBackup(made) = call(source, handler::Credentials::Local, "backups/add", json!({}))? else {
        return Err(Error::internal("backups/add answered no backup"));
    };
    let name = made.backup.name;
    let path = source.settings.backup_dir.join(&name);
    // The target has no operator org to act as yet: the restore acts as the backup's, which it brings.
    let caller = handler::Caller {
        org_id: backups::operator_org(&path)?,
        operator_org: true,
        user_id: None,
        username: "cli".into(),
        level: Level::Admin,
        application: "cli".into(),
    };
    let restore = backups::NameParam::new(&name)?;
    write_with(
        target,
        |_| Ok(caller),
        "backups/restore",
        |ctx| match org::any(ctx.tx)? {
            true => Err(not_empty()),
            false => backups::restore(ctx, restore),
        },
    )?;
    let in_backup = backups::file_row_counts(&path)?;
    let in_target = target.store.run_blocking(|db| db.read(backups::row_counts))?;
    let mut tables = Vec::new();
    for (table, backup) in in_backup {
        let target = in_target.iter().find(|(t, _)| *t == table).map_or(0, |(_, n)| *n);
        if target < backup {
            return Err(Error::internal(format!(
                "the target holds {target} rows of {table}, the backup {backup}"
            )));
        }
        tables.push(CopiedTable { table, backup, target });
    }
    Ok(Migrated { backup: name, tables })
}
