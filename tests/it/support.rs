//! The harness: a real ipamd server on 127.0.0.1:0 over a temp-file database, a small HTTP/1.1 client, and helpers
//! that call a method as a given identity and check the outcome the way every area's tests need.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use ipamd::app::App;
use ipamd::clock::{Clock, ManualClock};
use ipamd::config::Settings;
use ipamd::db::{params, Sql};
use ipamd::methods::METHODS;

pub mod golden;
pub mod schema;

/// What `check` expects of a successful call.
pub const OK: &str = "ok";

/// The password of the operator org's admin in every test server.
pub const ADMIN_PASSWORD: &str = "admin-password";

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Someone who calls the API: a user of an org and the app key they call with.
#[derive(Debug, Clone)]
pub struct Ident {
    pub id: i64,
    pub org: String,
    pub username: String,
    pub appkey: String,
    pub userdata: String,
}

impl Ident {
    pub fn new(id: i64, org: &str, username: &str, password: &str, appkey: &str) -> Ident {
        Ident {
            id,
            org: org.to_string(),
            username: username.to_string(),
            appkey: appkey.to_string(),
            userdata: format!("{org}/{username}:{}", sha1_hex(username, password)),
        }
    }

    /// The same user claiming another password.
    pub fn with_password(&self, password: &str) -> Ident {
        Ident::new(self.id, &self.org, &self.username, password, &self.appkey)
    }

    /// The same user calling with another app key.
    pub fn with_appkey(&self, appkey: &str) -> Ident {
        Ident {
            appkey: appkey.to_string(),
            ..self.clone()
        }
    }

    /// The same user and app key with raw `userdata`.
    pub fn with_userdata(&self, userdata: &str) -> Ident {
        Ident {
            userdata: userdata.to_string(),
            ..self.clone()
        }
    }
}

/// Gives up a test whose service, tool or browser is missing: prints the reason and lets the caller return. Under
/// `CI=true` (where `.ci/run` provides all of them) a missing dependency fails the test instead, so a check that did
/// not run never counts as passed there.
pub fn skip(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {reason}: this test cannot be skipped on CI");
    }
    println!("skipping: {reason}");
}

/// The first of `names` found on PATH.
pub fn on_path(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The `userdata` hash, computed here from the seed's recipe rather than by the code under test.
pub fn sha1_hex(username: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(format!("{}-{password}", username.to_lowercase()).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The HTTP status methods.md (Errors) gives each error code.
pub fn status_of(code: &str) -> u16 {
    match code {
        "bad_request" | "invalid_params" | "duplicate" | "not_empty" | "last_admin" | "weak_password" | "conflict"
        | "quota_exceeded" => 400,
        "auth_required" | "auth_failed" => 401,
        "bad_appkey" | "appkey_disabled" | "account_disabled" | "access_denied" => 403,
        "not_found" | "unknown_method" | "unsupported_version" => 404,
        "method_not_allowed" => 405,
        "payload_too_large" => 413,
        "too_many_attempts" => 429,
        "too_large" => 400,
        other => panic!("the tests do not expect the code {other}"),
    }
}

/// A running server with its own database and an operator org whose admin is `admin`.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    /// The operator org's admin (org `admin`, user `admin`), calling with the org's first app key.
    pub admin: Ident,
    /// The REST token printed at first run.
    pub admin_token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
    _database: Option<Arc<PgDatabase>>,
}

/// A fresh PostgreSQL database of its own for a test server, when the suite runs on PostgreSQL
/// (`IPAMD_TEST_ENGINE=postgres`, on the server `IPAMD_TEST_DATABASE_URL` names); dropped with the server.
pub struct PgDatabase {
    url: String,
    name: String,
}

impl PgDatabase {
    /// `None` unless the suite runs on PostgreSQL.
    pub fn create() -> Option<PgDatabase> {
        if std::env::var("IPAMD_TEST_ENGINE").ok().as_deref() != Some("postgres") {
            return None;
        }
        assert!(
            std::env::var("IPAMD_TEST_DATABASE_URL").is_ok(),
            "IPAMD_TEST_ENGINE=postgres needs IPAMD_TEST_DATABASE_URL"
        );
        PgDatabase::fresh()
    }

    /// A fresh database on the server `IPAMD_TEST_DATABASE_URL` names, whichever engine the suite runs on; `None`
    /// (after [`skip`] said why) when it names none.
    pub fn fresh() -> Option<PgDatabase> {
        let Ok(url) = std::env::var("IPAMD_TEST_DATABASE_URL") else {
            skip("IPAMD_TEST_DATABASE_URL is unset, and this test needs PostgreSQL");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("ipamd_it_{}_{n}", std::process::id());
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// The database's URL, the `IPAMD_DB` of a server on it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Which engine a test server runs on.
#[derive(Clone, Copy, PartialEq)]
enum Engine {
    /// The suite's: PostgreSQL when `IPAMD_TEST_ENGINE=postgres`, else SQLite.
    Suite,
    Sqlite,
    Postgres,
}

/// An empty database of either engine for a copy of a server's data (`ipamd migrate`'s target), kept while the
/// value is.
pub struct EmptyDatabase {
    pub db: std::path::PathBuf,
    dir: TempDir,
    database: Option<Arc<PgDatabase>>,
}

impl EmptyDatabase {
    /// A SQLite file that does not exist yet.
    pub fn sqlite() -> EmptyDatabase {
        let dir = tempfile::tempdir().unwrap();
        EmptyDatabase {
            db: dir.path().join("copy.db"),
            dir,
            database: None,
        }
    }

    /// A fresh PostgreSQL database; `None` (after saying why) without a PostgreSQL server to test on.
    pub fn postgres() -> Option<EmptyDatabase> {
        let database = PgDatabase::fresh()?;
        Some(EmptyDatabase {
            db: database.url().into(),
            dir: tempfile::tempdir().unwrap(),
            database: Some(Arc::new(database)),
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (
            std::env::var("IPAMD_TEST_DATABASE_URL").unwrap_or_default(),
            self.name.clone(),
        );
        // The driver runs a runtime of its own: not on the test's.
        let _ = std::thread::spawn(move || {
            if let Ok(mut admin) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// A server like [`Server::start`]'s, with `adjust` applied to its settings last (API tokens, rate limits…).
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Server {
        Server::launch(Clock::System, adjust).await
    }

    /// A server like [`Server::start_with`]'s whose app reads the time from `clock`: it stands still until the test
    /// advances it, so expiries and windows are crossed without sleeping. Servers given the same clock share it.
    pub async fn start_with_clock(clock: &Arc<ManualClock>, adjust: impl FnOnce(&mut Settings)) -> Server {
        Server::launch(clock.clock(), adjust).await
    }

    /// A server on SQLite, whichever engine the suite runs on.
    pub async fn start_sqlite() -> Server {
        Server::launch_on(Engine::Sqlite, Clock::System, |_| {}).await
    }

    /// A server on a fresh PostgreSQL database, whichever engine the suite runs on; `None` (after [`skip`] said
    /// why) without a PostgreSQL server to test on.
    pub async fn start_postgres() -> Option<Server> {
        if std::env::var("IPAMD_TEST_DATABASE_URL").is_err() {
            skip("IPAMD_TEST_DATABASE_URL is unset, and this test needs PostgreSQL");
            return None;
        }
        Some(Server::launch_on(Engine::Postgres, Clock::System, |_| {}).await)
    }

    async fn launch(clock: Clock, adjust: impl FnOnce(&mut Settings)) -> Server {
        Server::launch_on(Engine::Suite, clock, adjust).await
    }

    async fn launch_on(engine: Engine, clock: Clock, adjust: impl FnOnce(&mut Settings)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults();
        settings.db = dir.path().join("ipam.db");
        let database = tokio::task::spawn_blocking(move || match engine {
            Engine::Suite => PgDatabase::create(),
            Engine::Sqlite => None,
            Engine::Postgres => PgDatabase::fresh(),
        })
        .await
        .unwrap()
        .map(Arc::new);
        if let Some(database) = &database {
            settings.db = database.url.clone().into();
        }
        settings.backup_dir = dir.path().join("backups");
        // Pinned rather than read from the environment: the auth tests depend on these numbers.
        settings.lockout_attempts = 10;
        settings.lockout_seconds = 300;
        settings.auth_cache_seconds = 300;
        // Off unless a test is about rate limits: the suites make hundreds of calls per caller.
        settings.ratelimit_enabled = false;
        adjust(&mut settings);
        let (app, creds) = tokio::task::spawn_blocking(move || {
            let app = App::open_with_clock(settings, METHODS, clock).unwrap();
            let creds = ipamd::cli::first_run(
                &app.store,
                Some(ADMIN_PASSWORD.into()),
                app.settings.min_password_length,
            )
            .unwrap();
            (app, creds.expect("an empty database gets the operator org"))
        })
        .await
        .unwrap();
        let (addr, stop, task) = serve(&app).await;
        let mut admin = Ident::new(0, &creds.org, &creds.username, &creds.password, &creds.appkey);
        assert_eq!(admin.userdata, creds.userdata);
        let mut server = Server {
            addr,
            app,
            admin: admin.clone(),
            admin_token: creds.token,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
            _database: database,
        };
        admin.id = id_of(&server.ok(&admin, "userdata", json!({})).await["user"]);
        server.admin = admin;
        server
    }

    /// The SQLite file of a test about SQLite itself; `None`, after saying so, when the suite runs on PostgreSQL.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        let path = self.app.store.sqlite_path().map(std::path::Path::to_path_buf);
        if path.is_none() {
            println!("not run: a test of the SQLite file, and this pass runs on PostgreSQL");
        }
        path
    }

    /// Stops the server and starts another on the same database, with the same settings and clock, as after a
    /// crash or an upgrade: the same admin and token, a new port.
    pub async fn restart(mut self) -> Server {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let settings = (*self.app.settings).clone();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        let database = self._database.clone();
        self.open_like(settings, dir, database).await
    }

    /// Another server on this one's database, with the same settings, clock, admin and token, as a second instance
    /// behind the same load balancer: its own caches, lockout memory and port.
    pub async fn beside(&self) -> Server {
        let settings = (*self.app.settings).clone();
        self.open_like(settings, tempfile::tempdir().unwrap(), self._database.clone())
            .await
    }

    /// A server on `copy`, which holds a copy of this server's data (`ipamd migrate`'s target): this server's
    /// settings (its backup directory too), admin and token.
    pub async fn serve_copy(&self, copy: EmptyDatabase) -> Server {
        let mut settings = (*self.app.settings).clone();
        settings.db = copy.db.clone();
        self.open_like(settings, copy.dir, copy.database).await
    }

    /// Another server with `settings` and this one's clock, admin and token, keeping `dir` and `database` while it
    /// runs.
    async fn open_like(&self, settings: Settings, dir: TempDir, database: Option<Arc<PgDatabase>>) -> Server {
        let clock = self.app.clock.clone();
        let app = tokio::task::spawn_blocking(move || App::open_with_clock(settings, METHODS, clock).unwrap())
            .await
            .unwrap();
        let (addr, stop, task) = serve(&app).await;
        Server {
            addr,
            app,
            admin: self.admin.clone(),
            admin_token: self.admin_token.clone(),
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
            _database: database,
        }
    }

    /// Asks the server to shut down and waits for `server::run` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap(),
            None => Ok(()),
        }
    }

    /// One HTTP/1.1 request on a fresh connection.
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        http(self.addr, method, path, headers, body).await
    }

    /// Writes `bytes` on a fresh connection as they are and returns everything the server answers until it closes.
    pub async fn raw(&self, bytes: &[u8]) -> String {
        let (addr, bytes) = (self.addr, bytes.to_vec());
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            // The server may answer before it has read everything and close: a failed write is not the test's
            // concern, the answer is.
            let _ = stream.write_all(&bytes);
            let mut out = Vec::new();
            let _ = stream.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
        .await
        .unwrap()
    }

    /// `POST /1.0/<method>` with `body` as raw JSON.
    pub async fn post(&self, method: &str, body: &Value) -> Reply {
        let path = format!("/1.0/{method}");
        let headers = [("content-type", "application/json")];
        self.request(Method::POST, &path, &headers, body.to_string()).await
    }

    /// `POST /1.0/<method>` with `body` urlencoded as the form field `data=`.
    pub async fn post_form(&self, method: &str, body: &Value) -> Reply {
        let path = format!("/1.0/{method}");
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let form = format!("data={}", urlencode(&body.to_string()));
        self.request(Method::POST, &path, &headers, form).await
    }

    /// Calls `method` as `who`; the HTTP status and the whole envelope.
    pub async fn call(&self, who: &Ident, method: &str, data: Value) -> (u16, Value) {
        let env = json!({"reqid": format!("r-{method}"), "appkey": who.appkey, "userdata": who.userdata, "data": data});
        let reply = self.post(method, &env).await;
        (reply.status, reply.json())
    }

    /// Calls `method` as `who` and checks the envelope: `expected` is [`OK`] or an error code. A success returns
    /// the `response` (after checking that every scalar in it is a string), an error the whole body.
    pub async fn check(&self, who: &Ident, method: &str, data: Value, expected: &str) -> Value {
        let (status, body) = self.call(who, method, data.clone()).await;
        let what = format!("{method} {data} as {} → {status} {body}", who.username);
        assert_eq!(body["reqid"], json!(format!("r-{method}")), "{what}");
        assert_eq!(body["method"], json!(method), "{what}");
        assert!(body["respid"].as_str().is_some_and(|r| !r.is_empty()), "{what}");
        if expected == OK {
            assert_eq!(status, 200, "{what}");
            assert!(body.get("error").is_none() && body.get("errorCode").is_none(), "{what}");
            let response = body
                .get("response")
                .cloned()
                .unwrap_or_else(|| panic!("no response: {what}"));
            assert_strings(&response, &what);
            response
        } else {
            assert_eq!(body["errorCode"], json!(expected), "{what}");
            assert_eq!(status, status_of(expected), "{what}");
            assert!(body.get("response").is_none(), "{what}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}");
            body
        }
    }

    /// [`Server::check`] expecting success.
    pub async fn ok(&self, who: &Ident, method: &str, data: Value) -> Value {
        self.check(who, method, data, OK).await
    }

    /// A new user of `admin`'s org at `level`, calling with `admin`'s app key (an app key belongs to the org).
    pub async fn user(&self, admin: &Ident, username: &str, level: &str) -> Ident {
        let password = format!("password-of-{username}");
        let data = json!({"username": username, "password": password, "email": format!("{username}@example.org"),
                          "level": level});
        let added = self.ok(admin, "org/users/add", data).await;
        Ident::new(id_of(only(&added)), &admin.org, username, &password, &admin.appkey)
    }

    /// Asserts that `subnet_prefixes` (kept by triggers) holds exactly the prefix lengths the subnets use.
    pub async fn assert_prefixes_derived(&self) {
        let store = self.app.store.clone();
        let (kept, counted) = tokio::task::spawn_blocking(move || {
            store.run_blocking(|db| {
                db.read(|tx| {
                    let rows = |sql: &str| -> Vec<(i64, i64, i64, i64)> {
                        tx.rows(sql, params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                            .unwrap()
                    };
                    Ok((
                        rows("SELECT org_id, family, prefix, subnets FROM subnet_prefixes ORDER BY 1, 2, 3"),
                        rows("SELECT org_id, family, prefix, count(*) FROM subnets GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"),
                    ))
                })
            })
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(kept, counted, "subnet_prefixes does not follow the subnets");
    }

    /// Asserts that the full-text index matches the address records (FTS5's integrity check against its content
    /// table) and that no queued index change outlived its transaction. PostgreSQL's search indexes are the server's
    /// own (`pg_trgm`), with nothing to check.
    pub async fn assert_fts_consistent(&self) {
        if self.app.store.sqlite_path().is_none() {
            return;
        }
        let store = self.app.store.clone();
        let pending = tokio::task::spawn_blocking(move || {
            store.run_blocking(|db| {
                db.read(|tx| {
                    tx.batch("INSERT INTO addresses_fts (addresses_fts, rank) VALUES ('integrity-check', 1)")?;
                    tx.query_row("SELECT count(*) FROM addresses_fts_pending", params![], |r| {
                        r.get::<i64>(0)
                    })
                })
            })
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(pending, 0, "queued full-text changes were left behind");
    }

    /// A new org `identifier` made the way `ipamd org add` makes it; its admin `bob`.
    pub async fn org(&self, identifier: &str) -> Ident {
        let store = self.app.store.clone();
        let identifier = identifier.to_string();
        let creds = tokio::task::spawn_blocking(move || {
            ipamd::cli::create_org(
                &store,
                &identifier,
                "",
                "bob",
                Some("password-of-bob".into()),
                false,
                12,
            )
        })
        .await
        .unwrap()
        .unwrap();
        let mut who = Ident::new(0, &creds.org, &creds.username, &creds.password, &creds.appkey);
        assert_eq!(who.userdata, creds.userdata);
        who.id = id_of(&self.ok(&who, "userdata", json!({})).await["user"]);
        who
    }

    /// Files a bare subnet row holding `used` address records straight into the database: the subnet methods
    /// belong to a later issue, and the group and org counts only need a row to count.
    pub async fn subnet_row(&self, org_id: i64, group_id: Option<i64>, used: i64) -> i64 {
        self.block_row(org_id, group_id, "10.0.0.0/24", used).await
    }

    /// Files a subnet row of `block` straight into the database, past every check the methods make (as an older
    /// server may have filed it).
    pub async fn block_row(&self, org_id: i64, group_id: Option<i64>, block: &str, used: i64) -> i64 {
        let net: ipnet::IpNet = block.parse().unwrap();
        let (lo, hi) = ipamd::net::range(&net);
        let family = if matches!(net, ipnet::IpNet::V4(_)) { 4 } else { 6 };
        self.app
            .store
            .run(move |db| {
                db.write(|tx| {
                    tx.query_row(
                        "INSERT INTO subnets (org_id, group_id, family, net_start, net_end, prefix, used, created,
                                              modifiedat, modby_name)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, 'test') RETURNING id",
                        params![
                            org_id,
                            group_id,
                            family,
                            ipamd::net::key_bytes(lo),
                            ipamd::net::key_bytes(hi),
                            net.prefix_len(),
                            used
                        ],
                        |r| r.get(0),
                    )
                })
            })
            .await
            .unwrap()
    }

    /// Files `count` records straight into the database, in the subnet `subnet_id` of the IPv4 block whose first
    /// address has key `base` (a u32), at offsets `from..from + count`, each named `seed-<offset>`: thousands of
    /// records without thousands of calls, for the tests of bounded reads. The subnet's counts follow (the offsets
    /// must be usable addresses outside DHCP ranges); its lowest-free marker does not.
    pub async fn seed_records(&self, subnet_id: i64, base: u32, from: u32, count: u32) {
        self.app
            .store
            .run(move |db| {
                db.write(|tx| {
                    tx.execute(
                        Sql::Dialects(
                            "WITH RECURSIVE n(i) AS (SELECT ?3 UNION ALL SELECT i + 1 FROM n WHERE i < ?3 + ?4 - 1)
                             INSERT INTO addresses (subnet_id, ip, hostname, created, modifiedat, modby_name)
                             SELECT ?1, unhex(printf('00000000000000000000ffff%08x', ?2 + i)), 'seed-' || i, 0, 0, 'seed'
                             FROM n",
                            "WITH RECURSIVE n(i) AS (SELECT CAST(?3 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < ?3 + ?4 - 1)
                             INSERT INTO addresses (subnet_id, ip, hostname, created, modifiedat, modby_name)
                             SELECT ?1, decode('00000000000000000000ffff' || lpad(to_hex(CAST(?2 AS BIGINT) + i), 8, '0'), 'hex'),
                                    'seed-' || i, 0, 0, 'seed'
                             FROM n",
                        ),
                        params![subnet_id, base, from, count],
                    )?;
                    tx.execute(
                        "UPDATE subnets SET used = used + ?2, taken = CAST(CAST(taken AS INTEGER) + ?2 AS TEXT)
                         WHERE id = ?1",
                        params![subnet_id, count],
                    )?;
                    Ok(())
                })
            })
            .await
            .unwrap();
    }

    /// Runs the read `method` with `data` as a readonly user of org `org_id`, the way the dispatcher runs it (same
    /// method table, one read transaction) but on a connection whose progress handler counts the SQLite virtual
    /// machine's steps: the work of the call, independent of timing. The reply and the steps, to the hundred.
    pub async fn steps(&self, org_id: i64, method: &'static str, data: Value) -> (Value, u64) {
        use ipamd::handler::{find_method, Caller, Ctx, Level};
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || {
            app.store.run_blocking(|db| {
                db.read(|tx| {
                    let steps = Arc::new(AtomicU64::new(0));
                    let counter = steps.clone();
                    let sqlite = tx.sqlite().expect("a SQLite store");
                    sqlite.progress_handler(
                        100,
                        Some(move || {
                            counter.fetch_add(100, Ordering::Relaxed);
                            false
                        }),
                    )?;
                    let caller = Caller {
                        org_id,
                        operator_org: false,
                        user_id: None,
                        username: "probe".into(),
                        level: Level::Readonly,
                        application: "probe".into(),
                    };
                    let ctx = Ctx {
                        tx,
                        caller: &caller,
                        settings: &app.settings,
                        store: &app.store,
                        now: app.clock.now(),
                        respid: "probe",
                        method,
                    };
                    let mut d = ipamd::params::Data::new(data)?;
                    let reply = (find_method(METHODS, method).unwrap().prepare)(&mut d).and_then(|h| h.run(&ctx));
                    sqlite.progress_handler(0, None::<fn() -> bool>)?;
                    Ok((reply?, steps.load(Ordering::Relaxed)))
                })
            })
        })
        .await
        .map(|r| r.map(|(reply, steps)| (serde_json::to_value(reply).unwrap(), steps)))
        .unwrap()
        .unwrap()
    }

    /// The id of `who`'s org.
    pub async fn org_id(&self, who: &Ident) -> i64 {
        id_of(&self.ok(who, "userdata", json!({})).await["org"])
    }

    /// Everything `admin` can see of their org, without the login stamps that a first login moves: what a refused
    /// call must leave unchanged.
    pub async fn snapshot(&self, admin: &Ident) -> Value {
        let mut state = Map::new();
        for method in [
            "org/info",
            "org/users/get",
            "org/appkeys/get",
            "org/tokens/get",
            "groups/get",
        ] {
            state.insert(method.into(), self.ok(admin, method, json!({})).await);
        }
        let logs = self.ok(admin, "org/logs", json!({"perpage": 500})).await;
        state.insert("org/logs".into(), logs);
        strip_login_stamps(Value::Object(state))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves `app` on a free port of 127.0.0.1 until the sender is used or dropped.
async fn serve(app: &App) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ipamd::server::run(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// One HTTP/1.1 request to any server on a fresh connection.
pub async fn http(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender
        .send_request(req.body(Full::new(body.into())).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// The one record of a keyed collection.
pub fn only(keyed: &Value) -> &Value {
    let map = keyed
        .as_object()
        .unwrap_or_else(|| panic!("not a keyed collection: {keyed}"));
    assert_eq!(map.len(), 1, "expected one record: {keyed}");
    let (key, record) = map.iter().next().unwrap();
    assert_eq!(record["id"].as_str(), Some(key.as_str()), "keyed by its id: {keyed}");
    record
}

/// The id of a rendered record (ids are strings on the wire).
pub fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no string id: {record}"))
}

/// The keys of a keyed collection, in order.
pub fn keys(keyed: &Value) -> Vec<String> {
    match keyed {
        Value::Object(m) => m.keys().cloned().collect(),
        Value::Array(a) if a.is_empty() => Vec::new(),
        other => panic!("not a keyed collection: {other}"),
    }
}

/// Asserts the manageips rule: every scalar is a string or null.
pub fn assert_strings(v: &Value, context: &str) {
    match v {
        Value::Null | Value::String(_) => {}
        Value::Bool(_) | Value::Number(_) => panic!("the scalar {v} is not a string in {context}"),
        Value::Array(items) => items.iter().for_each(|i| assert_strings(i, context)),
        Value::Object(m) => m.values().for_each(|i| assert_strings(i, context)),
    }
}

/// Whether `name` is `ipam-backup-YYYYMMDD-HHMMSSZ.db`, optionally with a `-N` suffix before `.db`.
pub fn is_backup_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("ipam-backup-").and_then(|r| r.strip_suffix(".db")) else {
        return false;
    };
    let b = rest.as_bytes();
    let stamp_ok = b.len() >= 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    let suffix = rest.get(16..).unwrap_or_default();
    stamp_ok
        && (suffix.is_empty()
            || suffix
                .strip_prefix('-')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) && !n.starts_with('0')))
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Percent-encodes everything but the unreserved characters.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn strip_login_stamps(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k != "lastlogin" && k != "lastused")
                .map(|(k, v)| (k, strip_login_stamps(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_login_stamps).collect()),
        other => other,
    }
}

/// The HTTP status of any code of methods.md's Errors: [`status_of`] plus the business-rule codes (all 400) that it
/// leaves out.
pub fn status_of_any(code: &str) -> u16 {
    match code {
        "invalid_subnet" | "invalid_split" | "not_contiguous" | "overlap" | "subnet_full" | "ambiguous"
        | "invalid_backup" => 400,
        "in_progress" => 409,
        "precondition_failed" => 412,
        "key_reused" => 422,

        "cursor_expired" => 410,
        other => status_of(other),
    }
}

impl Server {
    /// Calls `method` as `who` expecting the error `code` (any code of methods.md's Errors, with its HTTP status); the
    /// whole body. Like [`Server::check`], for the codes of the IPAM business rules as well.
    pub async fn refused(&self, who: &Ident, method: &str, data: Value, code: &str) -> Value {
        let (status, body) = self.call(who, method, data.clone()).await;
        let what = format!("{method} {data} as {} → {status} {body}", who.username);
        assert_eq!(body["reqid"], json!(format!("r-{method}")), "{what}");
        assert_eq!(body["method"], json!(method), "{what}");
        assert_eq!(body["errorCode"], json!(code), "{what}");
        assert_eq!(status, status_of_any(code), "{what}");
        assert!(body.get("response").is_none(), "{what}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}");
        if let Some(data) = body.get("errorData") {
            assert_strings(data, &what);
        }
        body
    }
}

impl Server {
    /// One `/api/v1` call with `token` as a bearer token (none when empty) and `body` as JSON.
    pub async fn api(&self, verb: Method, path: &str, token: &str, body: Option<&Value>) -> Reply {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("content-type", "application/json")];
        if !token.is_empty() {
            headers.push(("authorization", bearer.as_str()));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        self.request(verb, &format!("/api/v1{path}"), &headers, body).await
    }
}

impl Server {
    /// Everything of `admin`'s org that the get methods show: the org and its counts, every user, app key, token,
    /// group, subnet (with its address records and field definitions), address record and DHCP range, and the
    /// whole audit log, without the login stamps that calls move. What a refused or foreign call must leave
    /// unchanged.
    pub async fn dump(&self, admin: &Ident) -> Value {
        let mut state = Map::new();
        for (method, data) in [
            ("org/info", json!({})),
            ("org/users/get", json!({})),
            ("org/appkeys/get", json!({})),
            ("org/tokens/get", json!({})),
            ("groups/get", json!({})),
            ("subnets/get", json!({"addresses": true, "fields": true})),
            ("ipaddress/get", json!({})),
            ("dhcpranges/get", json!({})),
            ("org/logs", json!({"perpage": 500})),
        ] {
            state.insert(method.into(), self.ok(admin, method, data).await);
        }
        strip_login_stamps(Value::Object(state))
    }

    /// A new REST token of `who`'s, with `description`; the token itself (shown this once) and its record's id.
    pub async fn new_token(&self, who: &Ident, description: &str) -> (String, i64) {
        let added = self
            .ok(who, "org/tokens/add", json!({"description": description}))
            .await;
        let record = only(&added);
        (record["token"].as_str().unwrap().to_string(), id_of(record))
    }
}

/// One HTTP/1.1 request like [`http`], but a refused, reset or unanswered connection is an `Err` rather than a
/// panic: for tests that kill, starve or stop the server on purpose. Gives up after a minute.
pub async fn try_http(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Reply, String> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(body.into())).map_err(|e| e.to_string())?;
    let exchange = async move {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let resp = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), exchange)
        .await
        .map_err(|_| "no answer within a minute".to_string())?
}

/// The operator token (`API_TOKENS`) of every [`Ipamd`] process.
pub const OPERATOR_TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

/// A real `ipamd serve` process on 127.0.0.1:0, its database `ipam.db` and its backups in a directory of the test's,
/// rate limiting off, `API_TOKENS` = [`OPERATOR_TOKEN`]. Killed when dropped. Its stdout and stderr go to files in
/// that directory (a pipe nobody reads could stall it), one pair per start.
pub struct Ipamd {
    child: std::process::Child,
    pub addr: SocketAddr,
    stderr: std::path::PathBuf,
}

impl Ipamd {
    /// The `ipamd serve` command for `dir`, with none of the caller's ipamd settings: add flags or variables, then
    /// [`Ipamd::launch`] it.
    pub fn command(dir: &std::path::Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ipamd"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        Ipamd::environment(&mut cmd, dir);
        cmd
    }

    /// The environment of [`Ipamd::command`], for a command that runs ipamd through another program.
    pub fn environment(cmd: &mut std::process::Command, dir: &std::path::Path) {
        for var in [
            "IPAMD_LISTEN",
            "IPAMD_LOG_FORMAT",
            "RATELIMIT_STORAGE_URI",
            "API_RATE_LIMIT",
            "IPAMD_HEADER_TIMEOUT",
            "IPAMD_BODY_TIMEOUT",
            "IPAMD_MAX_CONNECTIONS",
            "IPAMD_LOCKOUT_ATTEMPTS",
            "IPAMD_LOCKOUT_SECONDS",
            "IPAMD_AUTH_CACHE_SECONDS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("IPAMD_DB", dir.join("ipam.db"))
            .env("BACKUP_DIR", dir.join("backups"))
            .env("API_TOKENS", OPERATOR_TOKEN)
            .env("IPAMD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RATELIMIT_ENABLED", "false")
            .env("RUST_LOG", "warn");
    }

    /// `ipamd serve` on `dir` with the default command.
    pub fn start(dir: &std::path::Path) -> Ipamd {
        Ipamd::launch(Ipamd::command(dir), dir)
    }

    /// Starts `cmd` and waits until it prints the address it listens on.
    pub fn launch(mut cmd: std::process::Command, dir: &std::path::Path) -> Ipamd {
        let n = (1..).find(|n| !dir.join(format!("ipamd-{n}.out")).exists()).unwrap();
        let (out, err) = (dir.join(format!("ipamd-{n}.out")), dir.join(format!("ipamd-{n}.err")));
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut ipamd = Ipamd {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            stderr: err,
        };
        for _ in 0..600 {
            let printed = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(addr) = printed
                .lines()
                .find_map(|l| l.strip_prefix("ipamd listening on http://"))
            {
                ipamd.addr = addr.trim().parse().unwrap();
                return ipamd;
            }
            if let Ok(Some(status)) = ipamd.child.try_wait() {
                panic!("ipamd exited with {status} before listening: {}", ipamd.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("ipamd did not listen within 30 s: {}", ipamd.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `kill -KILL`: no drain, no destructor, no last write; then reaps the process.
    pub fn kill(mut self) {
        signal(self.pid(), "KILL");
        let _ = self.child.wait();
    }

    /// `kill -TERM`, then waits for the exit; the exit status and the log.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        signal(self.pid(), "TERM");
        let status = self.child.wait().unwrap();
        (status, self.log())
    }

    /// `/api/v1<path>` with the operator token and `body` as JSON.
    pub async fn api(&self, verb: Method, path: &str, body: Option<&Value>) -> Result<Reply, String> {
        operator_api(self.addr, verb, path, body).await
    }

    /// [`Ipamd::api`] expecting `status`; the JSON answer (`null` for an empty body).
    pub async fn expect(&self, verb: Method, path: &str, body: Option<&Value>, status: u16) -> Value {
        let what = format!("{verb} {path} {}", body.map(Value::to_string).unwrap_or_default());
        let reply = self
            .api(verb, path, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", self.log()));
        assert_eq!(
            reply.status,
            status,
            "{what} → {}",
            String::from_utf8_lossy(&reply.body)
        );
        if reply.body.is_empty() {
            Value::Null
        } else {
            reply.json()
        }
    }
}

impl Drop for Ipamd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `/api/v1<path>` on the server at `addr` with [`OPERATOR_TOKEN`] and `body` as JSON, through [`try_http`].
pub async fn operator_api(addr: SocketAddr, verb: Method, path: &str, body: Option<&Value>) -> Result<Reply, String> {
    let bearer = format!("Bearer {OPERATOR_TOKEN}");
    let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    let body = body.map(Value::to_string).unwrap_or_default();
    try_http(addr, verb, &format!("/api/v1{path}"), &headers, body).await
}

/// Sends `SIG<name>` to `pid` with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}
