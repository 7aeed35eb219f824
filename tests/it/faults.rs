//! Resource faults: a database that cannot be written (another program holding its write lock, a file system gone
//! read-only, a full disk) answers `unavailable` (503) with a JSON body on both front doors, reads go on, nothing
//! half-written stays behind, and the server recovers by itself when the fault goes. A corrupt backup never
//! replaces live data.
//!
//! The tests run as root, so `chmod` stops no write, and a running server keeps its database files open anyway.
//! Each fault is therefore made the way the kernel or another program would really make it:
//! - the write lock: a second SQLite connection holds `BEGIN IMMEDIATE` longer than the server's busy timeout;
//! - read-only: strace attached to the server makes its `pwrite64` calls fail with EROFS, which is what the kernel
//!   answers once a file system is remounted read-only (say after disk errors); detaching strace lifts it;
//! - full disk: the server runs in a mount namespace of its own (unshare) on a small tmpfs that the test fills with
//!   a file through `/proc/<pid>/root`; deleting the file frees the space.
//!
//! The last two need ptrace and unshare; where either is missing the test says so and checks nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hyper::Method;
use rusqlite::Connection;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{self, signal, Ident, Ipamd, Reply, Server};

/// Checks an envelope answer for the `unavailable` error.
fn assert_unavailable_envelope(status: u16, body: &Value, what: &str) {
    assert_eq!(
        (status, &body["errorCode"]),
        (503, &json!("unavailable")),
        "{what}: {body}"
    );
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {body}");
    assert!(body.get("response").is_none(), "{what}: {body}");
}

/// Checks a REST answer for the `unavailable` error.
fn assert_unavailable(reply: &Result<Reply, String>, what: &str) {
    let reply = reply
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: the connection failed: {e}"));
    let body = reply.json();
    assert_eq!(
        (reply.status, &body["code"]),
        (503, &json!("unavailable")),
        "{what}: {body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// `PRAGMA integrity_check` of the database file at `path`.
fn integrity(path: &Path) -> String {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

/// The subnets `who` sees, as CIDR strings in order.
async fn subnets(s: &Server, who: &Ident) -> Vec<String> {
    let got = s.ok(who, "subnets/get", json!({})).await;
    let records: Vec<&Value> = match &got {
        Value::Object(m) => m.values().collect(),
        _ => Vec::new(),
    };
    records
        .iter()
        .map(|r| r["subnet"].as_str().unwrap().to_string())
        .collect()
}

/// The networks of an [`Ipamd`], as `network/cidr` strings in order.
async fn networks(server: &Ipamd) -> Vec<String> {
    let page = server.expect(Method::GET, "/networks?per_page=1000", None, 200).await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}/{}", n["network"].as_str().unwrap(), n["cidr"]))
        .collect()
}

/// Files `n` address records into subnet `id` (an IPv4 /16 starting at 10.91.0.0) straight into the database file
/// while no server runs, each with 200 characters of text that the full-text index does not cover.
fn fill_subnet(db: &Path, id: i64, n: u32) {
    let mut conn = Connection::open(db).unwrap();
    ipamd::store::add_functions(&conn).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO addresses (subnet_id, ip, discovery_source, created, modifiedat, modby_name)
                 VALUES (?1, ?2, hex(randomblob(1500)), 0, 0, 'faults test')",
            )
            .unwrap();
        for i in 1..=n {
            let mut key = [0u8; 16];
            key[10..12].copy_from_slice(&[0xff, 0xff]);
            key[12..].copy_from_slice(&(0x0a5b_0000 + i).to_be_bytes());
            insert.execute(rusqlite::params![id, key.to_vec()]).unwrap();
        }
    }
    tx.execute("UPDATE subnets SET used = ?1 WHERE id = ?2", rusqlite::params![n, id])
        .unwrap();
    tx.commit().unwrap();
}

/// A strace attached to the server, detached (killed) when dropped, so a failing test leaves no tracer behind.
struct Tracer(std::process::Child);

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Whether `program` runs here (`--version` succeeds).
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_held_by_another_program_gives_unavailable_until_it_is_released() {
    let s = Server::start().await;
    let a = s.admin.clone();
    s.ok(&a, "subnets/add", json!({"subnet": "10.80.0.0/24"})).await;
    // The token's first use stamps it (a write); done before the fault, reads under it need no write.
    assert_eq!(s.api(Method::GET, "/networks", &s.admin_token, None).await.status, 200);
    let Some(db) = s.sqlite_file() else { return };
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        let _ = released.recv();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    is_locked.await.unwrap();

    // Both front doors wait out the busy timeout and answer 503; reads go on meanwhile.
    let envelope = s.call(&a, "subnets/add", json!({"subnet": "10.81.0.0/24"}));
    let body = json!({"network": "10.82.0.0", "cidr": 24});
    let rest = s.api(Method::POST, "/networks", &s.admin_token, Some(&body));
    let read = async {
        let seen = subnets(&s, &a).await;
        let rest_read = s.api(Method::GET, "/networks", &s.admin_token, None).await;
        (seen, rest_read.status)
    };
    let ((status, envelope), rest, (seen, rest_read)) = tokio::join!(envelope, rest, read);
    assert_unavailable_envelope(status, &envelope, "subnets/add under a held write lock");
    assert_unavailable(&Ok(rest), "POST /networks under a held write lock");
    assert_eq!((seen, rest_read), (vec!["10.80.0.0/24".to_string()], 200));

    release.send(()).unwrap();
    holder.join().unwrap();
    s.ok(&a, "subnets/add", json!({"subnet": "10.81.0.0/24"})).await;
    let created = s.api(Method::POST, "/networks", &s.admin_token, Some(&body)).await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(subnets(&s, &a).await, ["10.80.0.0/24", "10.81.0.0/24", "10.82.0.0/24"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_file_system_gives_unavailable_until_it_is_writable_again() {
    if !available("strace") {
        return support::skip("strace is not installed, so no write can be made to fail with EROFS");
    }
    let dir = TempDir::new().unwrap();
    let server = Ipamd::start(dir.path());
    let body = |n: u8| json!({"network": format!("10.90.{n}.0"), "cidr": 24});
    server.expect(Method::POST, "/networks", Some(&body(1)), 201).await;
    // A network big enough that deleting it overflows SQLite's page cache: the statement itself then writes, and
    // an I/O error in the middle of a statement rolls the whole transaction back. Its 5,000 records (the most one
    // delete may take along) of 3,000 bytes each fill a page each, 5,000 pages, more than the cache holds (2,048).
    let big = server
        .expect(
            Method::POST,
            "/networks",
            Some(&json!({"network": "10.91.0.0", "cidr": 16})),
            201,
        )
        .await;
    let big = big["id"].as_i64().unwrap();
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    fill_subnet(&dir.path().join("ipam.db"), big, 5_000);
    let server = Ipamd::start(dir.path());

    let mut tracer = Tracer(
        Command::new("strace")
            .args(["-f", "-p", &server.pid().to_string(), "-o", "/dev/null"])
            .args(["-e", "trace=pwrite64", "-e", "inject=pwrite64:error=EROFS"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // strace says "Process N attached" once every thread of the server is traced.
    let mut said = BufReader::new(tracer.0.stderr.take().unwrap());
    let mut line = String::new();
    let attached = tokio::task::spawn_blocking(move || {
        said.read_line(&mut line).unwrap();
        (said, line)
    });
    let (said, line) = attached.await.unwrap();
    if !line.contains("attached") {
        return support::skip(&format!("strace cannot attach here ({})", line.trim()));
    }

    for n in 2..5 {
        let reply = server.api(Method::POST, "/networks", Some(&body(n))).await;
        assert_unavailable(&reply, "POST /networks on a read-only file system");
    }
    let reply = server
        .api(Method::DELETE, &format!("/networks/{big}?force=true"), None)
        .await;
    assert_unavailable(&reply, "deleting a big network on a read-only file system");
    let backup = server.api(Method::POST, "/backups", None).await;
    assert_eq!(
        backup.as_ref().map(|r| r.status).ok(),
        Some(503),
        "{:?}",
        backup.map(|r| r.json())
    );
    assert_eq!(
        networks(&server).await,
        ["10.90.1.0/24", "10.91.0.0/16"],
        "reads go on, and nothing was half-written"
    );
    let held = server.expect(Method::GET, &format!("/networks/{big}"), None, 200).await;
    assert_eq!(held["used_hosts"], json!(5_000), "{held}");

    signal(tracer.0.id(), "TERM");
    tracer.0.wait().unwrap();
    drop(said);
    server.expect(Method::POST, "/networks", Some(&body(2)), 201).await;
    server
        .expect(Method::DELETE, &format!("/networks/{big}?force=true"), None, 204)
        .await;
    assert_eq!(networks(&server).await, ["10.90.1.0/24", "10.90.2.0/24"]);
    server.expect(Method::POST, "/backups", None, 201).await;
    assert_eq!(integrity(&dir.path().join("ipam.db")), "ok");
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_unavailable_until_space_returns() {
    let (logs, data) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    // The server's own mount namespace, with a small tmpfs over its data directory.
    let script = r#"mount -t tmpfs -o size=8m ipamd-full-disk "$0" && exec "$@""#;
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(data.path())
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return support::skip("this machine does not let the test mount a tmpfs in a namespace of its own (unshare)");
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(data.path())
        .arg(env!("CARGO_BIN_EXE_ipamd"))
        .args(["serve", "--listen", "127.0.0.1:0"]);
    Ipamd::environment(&mut cmd, data.path());
    let server = Ipamd::launch(cmd, logs.path());
    // The data directory as the server sees it: the tmpfs.
    let root = PathBuf::from(format!("/proc/{}/root{}", server.pid(), data.path().display()));
    assert!(root.join("ipam.db").exists(), "the database is not on the tmpfs");
    assert!(
        !data.path().join("ipam.db").exists(),
        "the database is not on the tmpfs"
    );

    let net = server
        .expect(
            Method::POST,
            "/networks",
            Some(&json!({"network": "10.95.0.0", "cidr": 24})),
            201,
        )
        .await;
    let next = format!("/ip/networks/{}/next-ip", net["id"]);
    let mut acknowledged = Vec::new();
    for i in 0..3 {
        let host = server
            .expect(
                Method::POST,
                &next,
                Some(&json!({"hostname": format!("before-{i}")})),
                201,
            )
            .await;
        acknowledged.push(host["ip_address"].as_str().unwrap().to_string());
    }

    // Fill the disk.
    let mut filler = std::fs::File::create(root.join("filler")).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    let full = (0..1024).any(|_| filler.write_all(&chunk).is_err());
    assert!(full, "the tmpfs never filled");
    drop(filler);

    for i in 0..3 {
        let reply = server
            .api(Method::POST, &next, Some(&json!({"hostname": format!("refused-{i}")})))
            .await;
        assert_unavailable(&reply, "an allocation on a full disk");
    }
    let reply = server.api(Method::POST, "/backups", None).await;
    assert_unavailable(&reply, "a backup on a full disk");
    let hosts = server
        .expect(Method::GET, &format!("/networks/{}/hosts", net["id"]), None, 200)
        .await;
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 3, "reads go on: {hosts}");

    std::fs::remove_file(root.join("filler")).unwrap();
    let host = server
        .expect(Method::POST, &next, Some(&json!({"hostname": "after"})), 201)
        .await;
    acknowledged.push(host["ip_address"].as_str().unwrap().to_string());
    let hosts = server
        .expect(Method::GET, &format!("/networks/{}/hosts", net["id"]), None, 200)
        .await;
    let stored: Vec<String> = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip_address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, acknowledged, "exactly the acknowledged allocations");
    server.expect(Method::POST, "/backups", None, 201).await;
    assert_eq!(integrity(&root.join("ipam.db")), "ok");
}

/// Everything the operator token sees through the REST API: what a refused restore must leave as it was.
async fn live(s: &Server) -> Value {
    let mut state = serde_json::Map::new();
    for path in [
        "/networks?per_page=1000",
        "/hosts?per_page=1000",
        "/dhcp-ranges?per_page=1000",
    ] {
        let reply = s.api(Method::GET, path, &s.admin_token, None).await;
        assert_eq!(reply.status, 200, "{path}");
        state.insert(path.into(), reply.json());
    }
    Value::Object(state)
}

/// A copy of the backup `from` named `name` in the same directory, changed by `damage`.
fn damaged(from: &Path, name: &str, damage: impl FnOnce(&Path)) -> String {
    let to = from.with_file_name(name);
    std::fs::copy(from, &to).unwrap();
    damage(&to);
    name.to_string()
}

/// Runs `sql` on the database file at `path` without its constraints.
fn tamper(path: &Path, sql: &str) {
    let conn = Connection::open(path).unwrap();
    ipamd::store::add_functions(&conn).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON;")
        .unwrap();
    conn.execute_batch(sql).unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE").unwrap();
}

#[tokio::test]
async fn a_corrupt_backup_never_replaces_live_data() {
    let s = Server::start().await;
    let token = s.admin_token.clone();
    let post = |path: &'static str, body: Value| {
        let token = token.clone();
        let s = &s;
        async move {
            let reply = s.api(Method::POST, path, &token, Some(&body)).await;
            assert_eq!(reply.status, 201, "{path}: {}", String::from_utf8_lossy(&reply.body));
            reply.json()
        }
    };
    let net = post("/networks", json!({"network": "10.60.0.0", "cidr": 24, "name": "live"})).await;
    post("/hosts", json!({"network_id": net["id"], "hostname": "kept"})).await;
    let made = post("/backups", json!({})).await;
    let good = s.app.settings.backup_dir.join(made["name"].as_str().unwrap());
    // The live data moves on after the backup, so that a restore, whole or partial, would show.
    post(
        "/networks",
        json!({"network": "10.61.0.0", "cidr": 24, "name": "newer"}),
    )
    .await;
    let before = live(&s).await;

    let size = std::fs::metadata(&good).unwrap().len();
    let names = [
        // Garbage over the middle of the file: the integrity check fails.
        damaged(&good, "scribbled.db", |p| {
            let mut bytes = std::fs::read(p).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle..middle + 4096].fill(0xa5);
            std::fs::write(p, bytes).unwrap();
        }),
        // Cut off at a page boundary, as a copy that ran out of space would be.
        damaged(&good, "cut.db", |p| {
            let file = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            file.set_len(size / 2 / 4096 * 4096).unwrap();
        }),
        // Sound SQLite, wrong ipamd: another schema version, a table missing.
        damaged(&good, "other-version.db", |p| tamper(p, "PRAGMA user_version = 999")),
        damaged(&good, "missing-table.db", |p| tamper(p, "DROP TABLE dhcp_ranges")),
        // Sound SQLite whose rows break ipamd's rules: a record of a subnet that does not exist, a status that
        // the schema forbids. The integrity check does not look at either.
        damaged(&good, "dangling.db", |p| {
            tamper(p, "UPDATE addresses SET subnet_id = 999")
        }),
        damaged(&good, "unchecked.db", |p| {
            tamper(p, "UPDATE addresses SET status = 'bogus'")
        }),
    ];
    let mut problems = Vec::new();
    for name in &names {
        let reply = s
            .api(Method::POST, &format!("/backups/{name}/restore"), &token, None)
            .await;
        let body = reply.json();
        // Every unfit backup, also one whose rows break a foreign key or a CHECK, is refused as invalid_backup.
        let refused = (reply.status, &body["code"]) == (400, &json!("invalid_backup"));
        if !refused || body.get("restored").is_some() {
            problems.push(format!("restoring {name} answered {} {body}", reply.status));
        }
        if live(&s).await != before {
            problems.push(format!("restoring {name} changed the live data"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The good backup still restores.
    let reply = s
        .api(
            Method::POST,
            &format!("/backups/{}/restore", made["name"].as_str().unwrap()),
            &token,
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_ne!(live(&s).await, before);
}
