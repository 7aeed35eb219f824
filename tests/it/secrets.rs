//! Secrets stay secret. A real `ipamd` process, logging at trace level, is driven with every kind of credential —
//! passwords through userdata (as JSON and as a form), a hash on org/users/add, app keys in either case, per-user
//! tokens by both headers, an `API_TOKENS` token, wrong passwords, keys and tokens, a clear password where the
//! sha1 belongs, a password change — and afterwards no password, sha1, app key, token or PHC string appears in
//! what it wrote (logs on stderr, stdout), and no clear credential appears anywhere in the database or its
//! backups: app keys and tokens are kept as SHA-256 digests, passwords as argon2id PHC strings over the sha1.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use hyper::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{http, only, sha1_hex, urlencode};

const ADMIN_PASSWORD: &str = "Admin-Secret-Passw0rd";
const OPERATOR_TOKEN: &str = "0peratorTokenFromTheEnvironment77";
const CAROL_PASSWORD: &str = "Carol-First-Secret-91";
const CAROL_NEW_PASSWORD: &str = "Carol-Second-Secret-37";
const DAVE_PASSWORD: &str = "Dave-Hashed-Secret-55";
const DAVE_NEW_PASSWORD: &str = "Dave-Rehashed-Secret-66";
const WRONG_PASSWORD: &str = "Not-Carols-Password-12";
const WRONG_APPKEY: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const WRONG_TOKEN: &str = "feedfacefeedfacefeedfacefeedfacefeedface";

#[tokio::test]
async fn no_secret_reaches_the_logs_or_the_database_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let init = ipamd(dir.path())
        .args(["init", "--json", "--password", ADMIN_PASSWORD])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let creds: Value = serde_json::from_slice(&init.stdout).unwrap();
    let admin_appkey = creds["appkey"].as_str().unwrap().to_string();
    let admin_token = creds["token"].as_str().unwrap().to_string();
    let admin_sha1 = creds["sha1"].as_str().unwrap().to_string();
    assert_eq!(admin_sha1, sha1_hex("admin", ADMIN_PASSWORD));

    let mut server = Ipamd::serve(dir.path());
    let addr = server.addr;
    let admin = Caller::new("admin", ADMIN_PASSWORD, &admin_appkey);
    // Every call below must answer as planned: a secret that never reached the server proves nothing.
    admin.ok(addr, "userdata", json!({})).await;
    admin
        .with_appkey(&admin_appkey.to_uppercase())
        .ok(addr, "groups/add", json!({"description": "g"}))
        .await;
    // A password on org/users/add, and a hash.
    let carol_add = json!({"username": "carol", "password": CAROL_PASSWORD, "email": "carol@example.org",
                           "level": "standard"});
    admin.ok(addr, "org/users/add", carol_add).await;
    let dave_sha1 = sha1_hex("dave", DAVE_PASSWORD);
    let dave_add = json!({"username": "dave", "hash": dave_sha1, "email": "dave@example.org"});
    admin.ok(addr, "org/users/add", dave_add).await;
    let carol = Caller::new("carol", CAROL_PASSWORD, &admin_appkey);
    carol.ok(addr, "userdata", json!({})).await;
    Caller::new("dave", DAVE_PASSWORD, &admin_appkey)
        .ok(addr, "userdata", json!({}))
        .await;
    // The same as a form.
    carol.form(addr, "org/info", 200).await;
    // Wrong passwords, a clear password where the sha1 belongs, a wrong app key, a wrong userdata form.
    for _ in 0..3 {
        Caller::new("carol", WRONG_PASSWORD, &admin_appkey)
            .refused(addr, "userdata", "auth_failed")
            .await;
    }
    let clear = carol.with_userdata(&format!("admin/carol:{CAROL_PASSWORD}"));
    clear.refused(addr, "userdata", "auth_failed").await;
    let garbled = carol.with_userdata(&format!("admin/carol{CAROL_PASSWORD}"));
    garbled.refused(addr, "userdata", "auth_failed").await;
    carol
        .with_appkey(WRONG_APPKEY)
        .refused(addr, "userdata", "bad_appkey")
        .await;
    // Envelopes that fail before authentication, holding the credentials.
    for body in [
        format!(
            r#"{{"appkey":"{admin_appkey}","userdata":"{}","data":{{"#,
            carol.userdata
        ),
        format!(r#"{{"appkey":["{admin_appkey}"],"userdata":"{}"}}"#, carol.userdata),
        format!(
            r#"{{"appkey":"{admin_appkey}","userdata":"{}","data":[1]}}"#,
            carol.userdata
        ),
    ] {
        let reply = http(
            addr,
            Method::POST,
            "/1.0/userdata",
            &[("content-type", "application/json")],
            body,
        )
        .await;
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(&reply.body));
    }
    // A new app key, used in both cases; a token for carol.
    let added = admin.ok(addr, "org/appkeys/add", json!({"name": "second"})).await;
    let second_key = only(&added)["key"].as_str().unwrap().to_string();
    carol.with_appkey(&second_key).ok(addr, "userdata", json!({})).await;
    carol
        .with_appkey(&second_key.to_uppercase())
        .ok(addr, "userdata", json!({}))
        .await;
    let added = carol
        .ok(addr, "org/tokens/add", json!({"description": "carol's"}))
        .await;
    let carol_token = only(&added)["token"].as_str().unwrap().to_string();
    // REST with every token, by both headers, and wrong or misplaced ones.
    let bearer = |t: &str| format!("Bearer {t}");
    for (headers, status) in [
        (vec![("authorization", bearer(&carol_token))], 200),
        (vec![("x-api-key", carol_token.clone())], 200),
        (vec![("authorization", format!("bEaReR   {carol_token}  "))], 200),
        (vec![("authorization", bearer(&admin_token))], 200),
        (vec![("authorization", bearer(OPERATOR_TOKEN))], 200),
        (vec![("x-api-key", OPERATOR_TOKEN.to_string())], 200),
        (vec![("authorization", bearer(WRONG_TOKEN))], 401),
        (vec![("authorization", format!("Basic {carol_token}"))], 401),
        (vec![("authorization", carol_token.clone())], 401),
        (vec![("x-api-key", admin_appkey.clone())], 401),
        (vec![], 401),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = http(addr, Method::GET, "/api/v1/hosts", &headers, "").await;
        assert_eq!(
            reply.status,
            status,
            "{headers:?}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let path = format!("/api/v1/hosts?api_key={carol_token}");
    let reply = http(addr, Method::GET, &path, &[], "").await;
    assert!(reply.status == 400 || reply.status == 401, "{}", reply.status);
    let headers = [("authorization", bearer(&carol_token))];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = json!({"network": "10.0.0.0", "cidr": 24, "description": "made by carol"}).to_string();
    let reply = http(addr, Method::POST, "/api/v1/networks", &headers, body).await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    // Password changes: carol her own, the admin dave's by hash.
    let change = json!({"id": "self", "password": CAROL_NEW_PASSWORD});
    carol.ok(addr, "org/users/edit", change).await;
    carol.refused(addr, "userdata", "auth_failed").await;
    let carol = Caller::new("carol", CAROL_NEW_PASSWORD, &admin_appkey);
    carol.ok(addr, "userdata", json!({})).await;
    let dave_new_sha1 = sha1_hex("dave", DAVE_NEW_PASSWORD);
    let dave_id = admin.ok(addr, "org/users/get", json!({})).await;
    let dave_id = dave_id
        .as_object()
        .unwrap()
        .values()
        .find(|u| u["username"] == "dave")
        .unwrap()["id"]
        .clone();
    admin
        .ok(addr, "org/users/edit", json!({"id": dave_id, "hash": dave_new_sha1}))
        .await;
    Caller::new("dave", DAVE_NEW_PASSWORD, &admin_appkey)
        .ok(addr, "userdata", json!({}))
        .await;
    // A backup: a copy of the database, to be searched as well.
    admin.ok(addr, "backups/add", json!({})).await;

    let (stdout, stderr) = server.stop();
    let logs = format!("{}{stderr}", String::from_utf8_lossy(&init.stderr));
    // The capture works: one line per request, with its respid.
    let requests = logs.lines().filter(|l| l.contains("respid")).count();
    assert!(requests >= 40, "only {requests} request lines were logged:\n{logs}");

    let secrets: Vec<(&str, String)> = vec![
        ("the admin's password", ADMIN_PASSWORD.into()),
        ("the admin's sha1", admin_sha1.clone()),
        ("the admin's app key", admin_appkey.clone()),
        ("the admin's token", admin_token.clone()),
        ("the API_TOKENS token", OPERATOR_TOKEN.into()),
        ("carol's first password", CAROL_PASSWORD.into()),
        ("carol's first sha1", sha1_hex("carol", CAROL_PASSWORD)),
        ("carol's new password", CAROL_NEW_PASSWORD.into()),
        ("carol's new sha1", sha1_hex("carol", CAROL_NEW_PASSWORD)),
        ("dave's password", DAVE_PASSWORD.into()),
        ("dave's sha1", dave_sha1.clone()),
        ("dave's new password", DAVE_NEW_PASSWORD.into()),
        ("dave's new sha1", dave_new_sha1.clone()),
        ("a wrong password", WRONG_PASSWORD.into()),
        ("a wrong password's sha1", sha1_hex("carol", WRONG_PASSWORD)),
        ("a wrong app key", WRONG_APPKEY.into()),
        ("a wrong token", WRONG_TOKEN.into()),
        ("the second app key", second_key.clone()),
        ("carol's token", carol_token.clone()),
    ];
    let leaks = |text: &str| -> Vec<&str> {
        let lower = text.to_lowercase();
        let mut found: Vec<&str> = secrets
            .iter()
            .filter(|(_, secret)| lower.contains(&secret.to_lowercase()))
            .map(|(what, _)| *what)
            .collect();
        if text.contains("$argon2") {
            found.push("a PHC string");
        }
        found
    };
    assert_eq!(leaks(&logs), Vec::<&str>::new(), "secrets in the logs:\n{logs}");
    assert_eq!(leaks(&stdout), Vec::<&str>::new(), "secrets on stdout:\n{stdout}");

    // The database, table by table and column by column: no clear credential anywhere.
    let db =
        rusqlite::Connection::open_with_flags(dir.path().join("ipam.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 10, "{tables:?}");
    for table in &tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_string).collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, column) in columns.iter().enumerate() {
                let text = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        format!("{} {}", String::from_utf8_lossy(t), hex(t))
                    }
                    other => format!("{other:?}"),
                };
                let found: Vec<&str> = leaks(&text).into_iter().filter(|w| *w != "a PHC string").collect();
                assert!(found.is_empty(), "{table}.{column} holds {found:?}: {text}");
            }
        }
    }
    // App keys and tokens as digests of the keys (lower case) and tokens.
    let digests = |sql: &str| -> Vec<String> {
        db.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let keys = digests("SELECT digest FROM appkeys");
    for key in [&admin_appkey, &second_key] {
        assert!(
            keys.contains(&sha256(&key.to_lowercase())),
            "no digest of an app key in {keys:?}"
        );
    }
    let tokens = digests("SELECT digest FROM tokens");
    for token in [&admin_token, &carol_token] {
        assert!(tokens.contains(&sha256(token)), "no digest of a token in {tokens:?}");
    }
    for d in keys.iter().chain(&tokens) {
        assert!(
            d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a SHA-256 digest: {d}"
        );
    }
    // Passwords as argon2id PHC strings over the current sha1 (and only it).
    let users: Vec<(String, String)> = db
        .prepare("SELECT username, phc FROM users")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(users.len(), 3);
    for (username, phc) in &users {
        assert!(
            is_argon2id_phc(phc),
            "{username}'s password is not an argon2id PHC string: {phc}"
        );
        let (now, before) = match username.as_str() {
            "admin" => (admin_sha1.clone(), None),
            "carol" => (
                sha1_hex("carol", CAROL_NEW_PASSWORD),
                Some(sha1_hex("carol", CAROL_PASSWORD)),
            ),
            "dave" => (dave_new_sha1.clone(), Some(dave_sha1.clone())),
            other => panic!("an unexpected user {other}"),
        };
        let parsed = PasswordHash::new(phc).unwrap();
        assert!(
            Argon2::default().verify_password(now.as_bytes(), &parsed).is_ok(),
            "{username}"
        );
        if let Some(before) = before {
            assert!(
                Argon2::default().verify_password(before.as_bytes(), &parsed).is_err(),
                "{username}"
            );
        }
    }
    drop(db);
    // And byte for byte, in the database, its journal and the backup: nothing in clear.
    let mut files = vec![dir.path().join("ipam.db"), dir.path().join("ipam.db-wal")];
    files.extend(
        std::fs::read_dir(dir.path().join("backups"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    assert!(files.len() >= 3, "{files:?}");
    for file in files.iter().filter(|f| f.exists()) {
        let bytes = std::fs::read(file).unwrap();
        for (what, secret) in &secrets {
            for form in [secret.clone(), secret.to_lowercase(), secret.to_uppercase()] {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{what} is in {} in clear",
                    file.file_name().unwrap().to_string_lossy()
                );
            }
        }
    }
}

/// The `ipamd` binary with its settings pointed into `dir` and nothing inherited that could change them.
fn ipamd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipamd"));
    cmd.env_clear()
        .env("IPAMD_DB", dir.join("ipam.db"))
        .env("BACKUP_DIR", dir.join("backups"))
        .env("IPAMD_LISTEN", "127.0.0.1:0")
        .env("API_TOKENS", format!("unused-token-of-enough-length, {OPERATOR_TOKEN}"))
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null());
    cmd
}

/// A running `ipamd serve` whose stdout and stderr are collected.
struct Ipamd {
    child: Child,
    addr: SocketAddr,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Ipamd {
    fn serve(dir: &Path) -> Ipamd {
        let mut child = ipamd(dir)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // The first line on stdout names the address.
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        stdout.lock().unwrap().extend(line.as_bytes());
        let addr = line
            .trim()
            .strip_prefix("ipamd listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .unwrap();
        let collect = |mut from: Box<dyn Read + Send>, into: Arc<Mutex<Vec<u8>>>| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        let readers = vec![
            collect(Box::new(out), stdout.clone()),
            collect(Box::new(child.stderr.take().unwrap()), stderr.clone()),
        ];
        Ipamd {
            child,
            addr,
            stdout,
            stderr,
            readers,
        }
    }

    /// Stops the server with SIGTERM (it drains and exits), and returns all it wrote on stdout and stderr.
    fn stop(&mut self) -> (String, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let text = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
        (text(&self.stdout), text(&self.stderr))
    }
}

impl Drop for Ipamd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A user of the operator org calling the envelope API.
#[derive(Clone)]
struct Caller {
    appkey: String,
    userdata: String,
}

impl Caller {
    fn new(username: &str, password: &str, appkey: &str) -> Caller {
        Caller {
            appkey: appkey.into(),
            userdata: format!("admin/{username}:{}", sha1_hex(username, password)),
        }
    }

    fn with_appkey(&self, appkey: &str) -> Caller {
        Caller {
            appkey: appkey.into(),
            ..self.clone()
        }
    }

    fn with_userdata(&self, userdata: &str) -> Caller {
        Caller {
            userdata: userdata.into(),
            ..self.clone()
        }
    }

    async fn call(&self, addr: SocketAddr, method: &str, data: Value) -> (u16, Value) {
        let env = json!({"reqid": 1, "appkey": self.appkey, "userdata": self.userdata, "data": data});
        let path = format!("/1.0/{method}");
        let reply = http(
            addr,
            Method::POST,
            &path,
            &[("content-type", "application/json")],
            env.to_string(),
        )
        .await;
        (reply.status, serde_json::from_slice(&reply.body).unwrap())
    }

    async fn ok(&self, addr: SocketAddr, method: &str, data: Value) -> Value {
        let (status, body) = self.call(addr, method, data).await;
        assert_eq!(status, 200, "{method}: {body}");
        body["response"].clone()
    }

    async fn refused(&self, addr: SocketAddr, method: &str, code: &str) {
        let (_, body) = self.call(addr, method, json!({})).await;
        assert_eq!(body["errorCode"], code, "{method}: {body}");
    }

    /// The envelope as the form field `data=`.
    async fn form(&self, addr: SocketAddr, method: &str, status: u16) {
        let env = json!({"reqid": 1, "appkey": self.appkey, "userdata": self.userdata});
        let body = format!("data={}", urlencode(&env.to_string()));
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let reply = http(addr, Method::POST, &format!("/1.0/{method}"), &headers, body).await;
        assert_eq!(reply.status, status, "{}", String::from_utf8_lossy(&reply.body));
    }
}

fn sha256(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` with base64 salt and hash.
fn is_argon2id_phc(phc: &str) -> bool {
    let parts: Vec<&str> = phc.split('$').collect();
    let b64 = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    let params = |s: &str| {
        let keys: Vec<&str> = s
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
                    k
                } else {
                    ""
                }
            })
            .collect();
        keys == ["m", "t", "p"]
    };
    matches!(parts.as_slice(), ["", "argon2id", "v=19", p, salt, hash] if params(p) && b64(salt) && b64(hash))
}
