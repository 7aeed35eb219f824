//! Crash safety: a real `ipamd` process killed with SIGKILL in the middle of concurrent allocations and edits, of a
//! backup and of a restore, then started again on the same database. Every acknowledged change must be there,
//! nothing unacknowledged half there, the database sound (`PRAGMA integrity_check`, foreign keys, the full-text
//! index, the per-subnet counts) and no address recorded twice.
//!
//! SIGKILL ends the process, not the machine: what reached the kernel survives. So these tests show that an answer
//! leaves only after its commit and that recovery keeps whole transactions only; `synchronous = FULL` (store.rs) is
//! what carries the same promise across a power cut, which a test on one machine cannot pull.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{operator_api, Ipamd};

/// Checks what must hold of any database ipamd left behind, whatever moment it died at.
fn assert_sound(db: &Path) {
    let conn = Connection::open(db).unwrap();
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(check, ["ok"], "integrity_check");
    let dangling: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dangling, 0, "rows point at rows that are gone");
    // The full-text index is kept by triggers in the same transaction as its rows: it must match them exactly.
    conn.execute(
        "INSERT INTO addresses_fts (addresses_fts) VALUES ('integrity-check')",
        [],
    )
    .unwrap();
    let twice: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM addresses GROUP BY subnet_id, ip HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(twice, 0, "an address is recorded twice");
    let miscounted: Vec<(i64, i64, i64)> = conn
        .prepare(
            "SELECT s.id, s.used, (SELECT count(*) FROM addresses a WHERE a.subnet_id = s.id) FROM subnets s
             WHERE s.used != (SELECT count(*) FROM addresses a WHERE a.subnet_id = s.id)",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        miscounted.is_empty(),
        "subnet counts differ from their records: {miscounted:?}"
    );
}

/// What a restore replaces, in a form to compare: the row count of every table (the derived full-text tables
/// and the change feed, which a restore continues rather than replaces, aside), every subnet and address record, and the number of audit log entries under `"logs"`.
fn fingerprint(db: &Path) -> BTreeMap<String, Value> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name NOT LIKE '%_fts%' AND name != 'changes' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))
            .unwrap();
        out.insert(t, json!(n));
    }
    let rows = |sql: &str| -> Value {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows: Vec<Value> = stmt
            .query_map([], |r| Ok(json!([r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?])))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        Value::Array(rows)
    };
    out.insert("subnet rows".into(), rows("SELECT id, name FROM subnets ORDER BY id"));
    out.insert(
        "address rows".into(),
        rows("SELECT id, hex(ip) || ' ' || hostname FROM addresses ORDER BY id"),
    );
    out
}

/// Fills the audit log of the database in `dir` with `rows` entries of about 1 KiB of random text, straight into
/// the file while no server runs, so that a backup or a restore takes long enough to be killed in the middle.
fn bulk_logs(dir: &Path, rows: usize) {
    let mut conn = Connection::open(dir.join("ipam.db")).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO logs (org_id, time, user, application, respid, method, objecttype, summary)
                 VALUES (1, 0, 'bulk', 'crash test', 'bulk', 'bulk/fill', 'filler', hex(randomblob(512)))",
            )
            .unwrap();
        for _ in 0..rows {
            insert.execute([]).unwrap();
        }
    }
    tx.commit().unwrap();
}

fn backup_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("backups"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".db"))
                .collect()
        })
        .unwrap_or_default()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Polls every 2 ms, for at most a minute, until `ready` holds or `gave_up` does (the call being watched ended);
/// whether `ready` held.
async fn watch(mut ready: impl FnMut() -> bool, gave_up: impl Fn() -> bool) -> bool {
    for _ in 0..30_000 {
        if ready() {
            return true;
        }
        if gave_up() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("neither the awaited state nor the end of the call came within a minute");
}

/// One host a client allocated, and what became of the edit it sent next.
struct Allocation {
    id: i64,
    ip: String,
    name: String,
    edit: Edit,
}

enum Edit {
    /// Sent, and the server died before answering: either name may be stored.
    Unanswered(String),
    Acknowledged(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_mid_stream_keeps_every_acknowledged_change_and_no_half_change() {
    let dir = TempDir::new().unwrap();
    let server = Ipamd::start(dir.path());
    let mut networks = Vec::new();
    for (i, network) in ["10.61.0.0", "10.62.0.0"].into_iter().enumerate() {
        let body = json!({"network": network, "cidr": 22, "name": format!("crash-{i}")});
        let net = server.expect(Method::POST, "/networks", Some(&body), 201).await;
        networks.push(net["id"].as_i64().unwrap());
    }
    let addr = server.addr;
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    // Eight clients, each allocating the next free address of one of the networks and then renaming the host, as
    // fast as the server answers, until it stops answering.
    for client in 0..8 {
        let (acknowledged, net) = (acknowledged.clone(), networks[client % 2]);
        clients.spawn(async move {
            let (mut done, mut attempted) = (Vec::new(), BTreeSet::new());
            for n in 0.. {
                let name = format!("h-{client}-{n}");
                attempted.insert(name.clone());
                let path = format!("/ip/networks/{net}/next-ip");
                let host = match operator_api(addr, Method::POST, &path, Some(&json!({"hostname": name}))).await {
                    Ok(r) if r.status == 201 => r.json(),
                    Ok(r) => panic!("allocation answered {}: {}", r.status, String::from_utf8_lossy(&r.body)),
                    Err(_) => break,
                };
                acknowledged.fetch_add(1, Ordering::SeqCst);
                let edit = format!("e-{client}-{n}");
                let mut allocation = Allocation {
                    id: host["id"].as_i64().unwrap(),
                    ip: host["ip_address"].as_str().unwrap().to_string(),
                    name,
                    edit: Edit::Unanswered(edit.clone()),
                };
                let path = format!("/hosts/{}", allocation.id);
                let answer = operator_api(addr, Method::PATCH, &path, Some(&json!({"hostname": edit}))).await;
                match answer {
                    Ok(r) if r.status == 200 => {
                        assert_eq!(r.json()["hostname"], json!(edit));
                        allocation.edit = Edit::Acknowledged(edit);
                        done.push(allocation);
                    }
                    Ok(r) => panic!("edit answered {}: {}", r.status, String::from_utf8_lossy(&r.body)),
                    Err(_) => {
                        done.push(allocation);
                        break;
                    }
                }
            }
            (done, attempted)
        });
    }
    let progressing = || acknowledged.load(Ordering::SeqCst) >= 150;
    assert!(
        watch(progressing, || clients.is_empty()).await,
        "the clients stopped early: {}",
        server.log()
    );
    server.kill();
    let (mut allocations, mut attempted) = (Vec::new(), BTreeSet::new());
    while let Some(joined) = clients.join_next().await {
        let (done, tried) = joined.unwrap();
        allocations.extend(done);
        attempted.extend(tried);
    }
    assert!(
        allocations.iter().any(|a| matches!(a.edit, Edit::Acknowledged(_))),
        "no edit was acknowledged"
    );

    let restarted = Ipamd::start(dir.path());
    let db = dir.path().join("ipam.db");
    assert_sound(&db);
    let mut stored: HashMap<i64, (String, String)> = HashMap::new();
    for net in &networks {
        let page = restarted
            .expect(
                Method::GET,
                &format!("/hosts?network_id={net}&per_page=1000"),
                None,
                200,
            )
            .await;
        for h in page["data"].as_array().unwrap() {
            let (ip, name) = (h["ip_address"].as_str().unwrap(), h["hostname"].as_str().unwrap());
            stored.insert(h["id"].as_i64().unwrap(), (ip.to_string(), name.to_string()));
        }
    }
    // Every acknowledged allocation is there with its address, and every acknowledged edit with its name.
    for a in &allocations {
        let (ip, name) = stored
            .get(&a.id)
            .unwrap_or_else(|| panic!("the acknowledged allocation of {} ({}) is lost", a.ip, a.name));
        assert_eq!(ip, &a.ip, "{} moved", a.name);
        match &a.edit {
            Edit::Acknowledged(e) => assert_eq!(name, e, "the acknowledged edit of {} is lost", a.name),
            Edit::Unanswered(e) => assert!(name == e || name == &a.name, "{} became {name}", a.name),
        }
    }
    // Whatever else is there was sent: an allocation that was cut off before its answer, whole or not at all.
    let known: BTreeSet<i64> = allocations.iter().map(|a| a.id).collect();
    for (id, (ip, name)) in &stored {
        if !known.contains(id) {
            assert!(attempted.contains(name), "host {id} ({ip}, {name}) was never asked for");
        }
    }
    let unanswered = allocations
        .iter()
        .filter(|a| matches!(a.edit, Edit::Unanswered(_)))
        .count();
    eprintln!(
        "killed with {} allocations acknowledged, {unanswered} edits and {} allocations unanswered; {} stored",
        allocations.len(),
        attempted.len() - allocations.len(),
        stored.len()
    );
    let addresses: BTreeSet<&String> = stored.values().map(|(ip, _)| ip).collect();
    assert_eq!(addresses.len(), stored.len(), "an address is recorded twice");
    // Each change and its audit entry were one transaction: the counts agree exactly.
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM logs WHERE method = 'ipaddress/add'"),
        stored.len() as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM logs WHERE method = 'ipaddress/edit'"),
        stored.values().filter(|(_, name)| name.starts_with("e-")).count() as i64
    );
    // And the restarted server goes on allocating, never an address already held.
    let path = format!("/ip/networks/{}/next-ip", networks[0]);
    let fresh = restarted
        .expect(Method::POST, &path, Some(&json!({"hostname": "after"})), 201)
        .await;
    assert!(!addresses.contains(&fresh["ip_address"].as_str().unwrap().to_string()));
}

/// `fingerprint` after `n` more audit log entries: what a restore leaves (the restore logs itself).
fn plus_logs(mut fp: BTreeMap<String, Value>, n: i64) -> BTreeMap<String, Value> {
    let logs = fp["logs"].as_i64().unwrap();
    fp.insert("logs".into(), json!(logs + n));
    fp
}

/// Prepares `dir` with a database holding the network "before" with three hosts and `rows` big audit entries.
async fn big_database(dir: &Path, rows: usize) {
    let server = Ipamd::start(dir);
    let body = json!({"network": "10.70.0.0", "cidr": 24, "name": "before"});
    let net = server.expect(Method::POST, "/networks", Some(&body), 201).await;
    let path = format!("/ip/networks/{}/next-ip", net["id"]);
    for i in 0..3 {
        let body = json!({"hostname": format!("before-{i}")});
        server.expect(Method::POST, &path, Some(&body), 201).await;
    }
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    bulk_logs(dir, rows);
}

/// Restores every backup in `names` and checks the outcome: refused as `invalid_backup` with the live data as it
/// was, or restored whole, the live data then exactly what the backup held. Returns the live fingerprint after.
async fn restore_each(server: &Ipamd, dir: &Path, names: &BTreeSet<String>) -> BTreeMap<String, Value> {
    let db = dir.join("ipam.db");
    let mut live = fingerprint(&db);
    for name in names {
        let file = dir.join("backups").join(name);
        let held = fingerprint_if_whole(&file);
        let verified = server
            .expect(Method::GET, &format!("/backups/{name}/verify"), None, 200)
            .await;
        if held.is_some() {
            assert_eq!(verified["integrity_ok"], json!(true), "{name}: {verified}");
        }
        let reply = server
            .api(Method::POST, &format!("/backups/{name}/restore"), None)
            .await
            .unwrap();
        let body = reply.json();
        eprintln!(
            "restoring {name} ({} bytes, verified {}) answered {}",
            size(&file),
            verified["integrity_ok"],
            reply.status
        );
        match reply.status {
            200 => {
                assert_eq!(body["integrity_ok"], json!(true), "{name}: {body}");
                let held = held.unwrap_or_else(|| panic!("{name} was restored but is not a whole database"));
                live = plus_logs(held, 1);
                assert_eq!(fingerprint(&db), live, "{name} was restored partly");
            }
            400 => {
                assert_eq!(body["code"], json!("invalid_backup"), "{name}: {body}");
                assert_eq!(
                    fingerprint(&db),
                    live,
                    "a refused restore of {name} changed the live data"
                );
            }
            other => panic!("restoring {name} answered {other}: {body}"),
        }
        assert_sound(&db);
    }
    live
}

/// The fingerprint of a backup file if SQLite finds it whole and it is an ipamd database, read from a copy so that
/// nothing (a rollback of a hot journal) changes the file itself.
fn fingerprint_if_whole(file: &Path) -> Option<BTreeMap<String, Value>> {
    let scratch = TempDir::new().unwrap();
    let copy = scratch.path().join("copy.db");
    std::fs::copy(file, &copy).ok()?;
    let journal = PathBuf::from(format!("{}-journal", file.display()));
    if journal.exists() {
        std::fs::copy(&journal, scratch.path().join("copy.db-journal")).ok()?;
    }
    let conn = Connection::open(&copy).ok()?;
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).ok()?;
    let is_ipamd: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name = 'addresses')",
            [],
            |r| r.get(0),
        )
        .ok()?;
    drop(conn);
    (ok == "ok" && is_ipamd).then(|| fingerprint(&copy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_backup_leaves_the_live_data_whole_and_no_half_backup_restorable() {
    let dir = TempDir::new().unwrap();
    big_database(dir.path(), 20_000).await;
    let db = dir.path().join("ipam.db");
    let before = fingerprint(&db);
    let server = Ipamd::start(dir.path());
    let addr = server.addr;
    let call = tokio::spawn(async move { operator_api(addr, Method::POST, "/backups", None).await });
    let backups = dir.path().join("backups");
    // Killed as soon as the backup file has its first bytes.
    let started = || backup_files(dir.path()).iter().any(|n| size(&backups.join(n)) > 0);
    let mid = watch(started, || call.is_finished()).await;
    server.kill();
    let answer = call.await.unwrap();
    eprintln!(
        "killed {} the backup's first bytes; the call {}",
        if mid { "at" } else { "before" },
        answer
            .as_ref()
            .map_or("got no answer".to_string(), |r| format!("answered {}", r.status))
    );

    let restarted = Ipamd::start(dir.path());
    assert_sound(&db);
    assert_eq!(fingerprint(&db), before, "the live data changed");
    let after = restore_each(&restarted, dir.path(), &backup_files(dir.path())).await;
    assert!(after == before || after == plus_logs(before.clone(), 1), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_restore_leaves_all_old_or_all_new_data() {
    let dir = TempDir::new().unwrap();
    big_database(dir.path(), 20_000).await;
    let (db, backups) = (dir.path().join("ipam.db"), dir.path().join("backups"));
    let mut server = Ipamd::start(dir.path());
    let backup = server.expect(Method::POST, "/backups", None, 201).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    let restored = plus_logs(fingerprint(&backups.join(&backup)), 1);
    // The live data moves on from the backup: a second network, and one host fewer in the first.
    let body = json!({"network": "10.71.0.0", "cidr": 24, "name": "after"});
    let net = server.expect(Method::POST, "/networks", Some(&body), 201).await;
    let path = format!("/ip/networks/{}/next-ip", net["id"]);
    server
        .expect(Method::POST, &path, Some(&json!({"hostname": "after-0"})), 201)
        .await;
    server.expect(Method::DELETE, "/hosts/1", None, 204).await;
    let wal = PathBuf::from(format!("{}-wal", db.display()));

    // Killed while the safety backup is being written, then while the live tables are being replaced.
    for phase in ["the safety backup", "the copy"] {
        let live = fingerprint(&db);
        assert_ne!(live, restored);
        let known = backup_files(dir.path());
        let addr = server.addr;
        let path = format!("/backups/{backup}/restore");
        let call = tokio::spawn(async move { operator_api(addr, Method::POST, &path, None).await });
        let safety_started = || {
            backup_files(dir.path())
                .difference(&known)
                .any(|n| size(&backups.join(n)) > 0)
        };
        let mut landed = watch(safety_started, || call.is_finished()).await;
        if landed && phase == "the copy" {
            // The replaced rows overflow the page cache into the write-ahead log before the commit.
            let wal_before = size(&wal);
            landed = watch(|| size(&wal) > wal_before, || call.is_finished()).await;
        }
        server.kill();
        let answer = call.await.unwrap();
        eprintln!(
            "killed {} {phase}; the call {}",
            if landed { "during" } else { "after" },
            answer
                .as_ref()
                .map_or("got no answer".to_string(), |r| format!("answered {}", r.status))
        );

        server = Ipamd::start(dir.path());
        assert_sound(&db);
        let now = fingerprint(&db);
        assert!(
            now == live || now == restored,
            "after a kill during {phase} the live data is neither the old nor the restored: {now:?}"
        );
        // A safety backup cut short is never restored as good.
        let safety: BTreeSet<String> = backup_files(dir.path()).difference(&known).cloned().collect();
        restore_each(&server, dir.path(), &safety).await;
    }
}
